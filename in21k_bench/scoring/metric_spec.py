"""The one list of evaluation metrics.

Every place that names a metric reads it from :data:`METRICS`: the aggregation over ReaL label draws,
the fields of :class:`~in21k_bench.evaluation.result.EvaluationResult` (each metric ``key`` plus ``key_std``),
its text table, the leaderboard's columns and the demo's table. Adding a metric means adding one
:class:`MetricSpec` here and computing the value in :mod:`in21k_bench.scoring.metrics`.

Values are stored as fractions; ``percent`` only says how they are displayed.

>>> from in21k_bench.scoring.metric_spec import METRICS, metric
>>> [m.key for m in METRICS][:4]
['acc', 'top1_L', 'top5_1', 'top5_L']
>>> metric("ece").higher_is_better
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InvalidInputError

NUM_ECE_BINS = 15  # equal-width confidence bins of the expected calibration error

__all__ = [
    "NUM_ECE_BINS",
    "MetricSpec",
    "METRICS",
    "METRIC_KEYS",
    "LEADERBOARD_METRICS",
    "RANK_METRIC",
    "metric",
    "format_value",
]


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    ``key``: field name in results, JSON and submissions. ``label``: long display name (evaluation
    table). ``short``: column header (leaderboard, demo). ``percent``: a fraction displayed in %
    (otherwise 4 decimals). ``higher_is_better``: ranking direction. ``leaderboard``: shown as a
    leaderboard column. ``conditional``: reported only in some settings (tables omit it when absent).
    ``description``: one line for schemas and docs.
    """

    key: str
    label: str
    percent: bool
    higher_is_better: bool
    short: str = ""
    leaderboard: bool = True
    conditional: bool = False
    description: str = ""

    @property
    def std_key(self) -> str:
        """Field holding the standard deviation over ReaL label draws."""
        return f"{self.key}_std"


#: Every metric, in display order.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "acc",
        "ACC (top-1 -> 1, Hungarian)",
        True,
        True,
        "ACC (top-1→1)",
        description="top-1 -> 1 with the one-to-one Hungarian map f",
    ),
    MetricSpec("top1_L", "top-1 -> L", True, True, "top-1→L", description="f(top-1) in the label set S_L"),
    MetricSpec(
        "top5_1",
        "top-5 -> 1",
        True,
        True,
        "top-5→1",
        description="any of the 5 top clusters mapped through f equals the label",
    ),
    MetricSpec(
        "top5_L",
        "top-5 -> L",
        True,
        True,
        "top-5→L",
        description="any of the 5 top clusters mapped through f is in S_L",
    ),
    MetricSpec(
        "nmi",
        "NMI",
        False,
        True,
        "NMI",
        description="normalised mutual information of top-1 and labels (arithmetic mean)",
    ),
    MetricSpec("ari", "ARI", False, True, "ARI", description="adjusted Rand index of top-1 and labels"),
    MetricSpec(
        "majority_acc",
        "majority-vote ACC (many-to-one)",
        True,
        True,
        "majority ACC",
        description="many-to-one ACC: every cluster takes its most frequent label (NOT the Hungarian ACC)",
    ),
    MetricSpec(
        "acc_temi_overcluster",
        "over-clustering ACC (TEMI eval)",
        True,
        True,
        "TEMI over-cluster ACC",
        leaderboard=False,
        conditional=True,
        description="K > C only: Hungarian map, then every unmatched cluster takes its majority label (as TEMI's "
        "evaluation code)",
    ),
    MetricSpec(
        "ece",
        f"ECE ({NUM_ECE_BINS} bins)",
        True,
        False,
        "ECE",
        description=f"expected calibration error, {NUM_ECE_BINS} equal-width bins of max-probability confidence, "
        "after f",
    ),
)

METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
#: The metrics that are leaderboard columns, in display order.
LEADERBOARD_METRICS: tuple[MetricSpec, ...] = tuple(m for m in METRICS if m.leaderboard)
#: The metric leaderboard entries are ranked by.
RANK_METRIC = "acc"

_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> MetricSpec:
    """The spec of ``key``; an unknown key is an :class:`~in21k_bench.errors.InvalidInputError`."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise InvalidInputError(f"metric: expected one of {', '.join(METRIC_KEYS)}, found {key!r}") from None


def format_value(spec: MetricSpec, value: float | None, std: float | None = None) -> str:
    """Display string: ``"12.34%"`` / ``"0.1234"``, ``"-"`` for None or NaN, ``" +- std"`` when given
    (std in points for percentages)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    cell = f"{100 * value:.2f}%" if spec.percent else f"{value:.4f}"
    if std is not None:
        cell += f" +- {100 * std:.2f}" if spec.percent else f" +- {std:.4f}"
    return cell
