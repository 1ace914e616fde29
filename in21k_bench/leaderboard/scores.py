"""The scores of one prediction file for the leaderboard: the evaluator's result reduced to the metric values."""

from __future__ import annotations

import math
import os
from typing import Any

from .schema import METRICS


def result_metrics(result: Any) -> dict[str, float]:
    """Metric values of one :class:`EvaluationResult` (only those it reports)."""
    data = result.model_dump() if hasattr(result, "model_dump") else dict(result)
    out: dict[str, float] = {}
    for name in METRICS:
        v = data.get(name)
        if isinstance(v, dict):  # a {"mean": ..., "std": ...} summary (e.g. the ReaL protocol)
            v = v.get("mean")
        if v is None:
            continue
        v = float(v)
        if math.isfinite(v):
            out[name] = v
    return out


def evaluate_predictions(pred: str | os.PathLike, benchmark: str, version: str | None):
    """The evaluator's :class:`~in21k_bench.evaluation.evaluator.EvaluationResult` for one prediction file."""
    from ..evaluation.evaluator import evaluate  # the evaluator (and its array libraries) only when scoring

    return evaluate(pred, benchmark=benchmark, version=version)
