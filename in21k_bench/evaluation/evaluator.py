"""Score predictions: :func:`evaluate` (files, folders or arrays) and :func:`evaluate_arrays` (arrays).

What is scored against is one of

- a **benchmark** (``benchmark="in21k"``): its val labels and label protocol (own label, label +
  ancestors, ReaL sets; see :mod:`in21k_bench.scoring.label_protocols`);
- a **labels file** (``labels="y.npy"`` or an int array): one class id per prediction row, no label
  sets, so top-1 -> L / top-5 -> L are not reported;
- a **feature store's val labels** (``features="feats/"``): the ``label`` column of the val store's
  ``index.parquet``; its ``sample_id`` column orders id-keyed tables.

The flow is one-way: read (:mod:`in21k_bench.evaluation.predictions`) -> validate
(:mod:`in21k_bench.evaluation.validation`) -> score against a target
(:mod:`in21k_bench.evaluation.targets`, :mod:`in21k_bench.scoring.metrics`) ->
:class:`~in21k_bench.evaluation.result.EvaluationResult`. Every malformed input raises
:class:`~in21k_bench.errors.InvalidInputError` with one line naming what is scored against, what was
expected and what was found. Files are never unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import InvalidInputError
from ..scoring.label_protocols import REAL_DRAWS, FixedLabels, LabelProtocol, PerSampleSets, RealSets
from ..scoring.metrics import score
from .predictions import (
    PredictionArrays,
    PredictionTable,
    as_numeric_array,
    load_predictions,
    npy_to_arrays,
    read_run_record,
    table_to_arrays,
)
from .result import EvaluationResult
from .targets import Target, benchmark_target, features_target, labels_target, per_label_sets, read_labels
from .validation import PROB_SUM_TOL, validate_predictions

__all__ = [
    "EvaluationResult",
    "PredictionArrays",
    "PredictionTable",
    "evaluate",
    "evaluate_arrays",
    "per_label_sets",
    "read_labels",
    "validate_predictions",
    "PROB_SUM_TOL",
]


def evaluate(
    preds,
    benchmark=None,
    version: str | None = None,
    num_clusters: int | None = None,
    *,
    labels=None,
    features=None,
    sample_ids=None,
    num_draws: int = REAL_DRAWS,
    progress: bool | None = None,
) -> EvaluationResult:
    """Score predictions on a benchmark, against a labels file, or against a feature store's val labels.

    ``preds``: a path (``.npy`` / ``.parquet`` / ``.csv`` / folder with ``top1.npy``, ``top5.npy``,
    ``probs.npy``), a numpy array (int (N,) top-1, int (N, k) ranked, float (N, K) probabilities), a
    :class:`~in21k_bench.evaluation.predictions.PredictionArrays` or
    :class:`~in21k_bench.evaluation.predictions.PredictionTable`.

    Give exactly one of ``benchmark`` (a name, loaded with :func:`in21k_bench.load` at ``version``, or a
    loaded :class:`~in21k_bench.benchmark.Benchmark`), ``labels`` (a ``.npy`` path or an int array, one
    class id >= 0 per prediction row) or ``features`` (a features directory, whose ``val/`` store must
    hold labels, a single store directory, or a :class:`~in21k_bench.features.store.FeatureStore`).

    ``num_clusters`` K: when given, ids must be < K; default K = number of probability columns, else
    max(C, largest id + 1). ``sample_ids``: canonical val ids (array or a parquet/csv with a
    ``sample_id`` column) for id-keyed tables when the benchmark's manifest (IN-21K) or the labels file
    does not provide them. ``num_draws``: ReaL label draws.
    """
    given = [n for n, v in (("benchmark", benchmark), ("labels", labels), ("features", features)) if v is not None]
    if len(given) != 1:
        raise InvalidInputError(
            "evaluate: expected exactly one of --benchmark / --labels / --features, found "
            f"{' and '.join(given) if given else 'none'}"
        )
    if benchmark is not None:
        target = benchmark_target(benchmark, version, sample_ids)
    elif labels is not None:
        target = labels_target(labels, sample_ids)
    else:
        target = features_target(features, sample_ids)
    return _score(preds, target, num_clusters, num_draws, progress)


def _score(preds, target: Target, num_clusters, num_draws, progress) -> EvaluationResult:
    what, p = target.what, target.protocol
    if num_clusters is not None and int(num_clusters) < 1:
        raise InvalidInputError(f"{what}: expected --num-clusters >= 1, found {num_clusters}")
    sha = None
    if isinstance(preds, (str, os.PathLike)):
        arrays, sha = load_predictions(preds, what)
    elif isinstance(preds, (PredictionArrays, PredictionTable)):
        arrays = preds
    elif isinstance(preds, pd.DataFrame):
        arrays = PredictionTable(preds)
    else:
        arrays = npy_to_arrays(as_numeric_array(preds, what, "predictions"), what)

    rows, n_expected = None, p.n
    if isinstance(arrays, PredictionTable):
        arrays = table_to_arrays(arrays, what, target.ids(), p.source_ids, target.id_hint)
    else:
        first = arrays.first()
        m = int(np.shape(first)[0]) if first is not None and np.ndim(first) >= 1 else -1
        rows = p.select_rows(m)
        if rows is not None:
            n_expected = m
    valid = validate_predictions(
        arrays,
        n_expected=n_expected,
        num_clusters=num_clusters,
        what=what,
        rows=rows,
        n_hint=p.row_hint(target.rows_hint),
    )
    if valid.n != p.n:
        raise InvalidInputError(f"{what}: expected {p.n} rows after selection, found {valid.n}")
    K = valid.num_clusters(num_clusters, p.num_classes)
    res = score(
        valid.top1,
        p,
        num_clusters=K,
        topk=valid.topk,
        confidence=valid.confidence,
        num_draws=num_draws,
        progress=progress,
    )
    return EvaluationResult.from_metrics(
        res,
        benchmark=target.name,
        version=target.version,
        num_classes=p.num_classes,
        num_clusters=K,
        k=valid.k,
        predictions_sha256=sha or valid.sha256(),
        excluded=p.source_excluded,
        labels_source=target.labels_source,
        labels_sha256=target.labels_sha256,
        provenance=_provenance(preds, target, sha),
    )


def _provenance(preds, target: Target, sha: str | None) -> dict:
    """The provenance of the scored predictions (:mod:`in21k_bench.evaluation.provenance`): the evaluated
    benchmark's manifest version + sha256 (from the index), this package's version, and the backbone /
    preprocessing of the run record (``run.json`` / ``fit.json``) of a predictions folder -- or of the
    folder holding a single prediction file its record lists with the same sha256; None otherwise."""
    from .provenance import provenance_from_record, provenance_record

    record = None
    if isinstance(preds, (str, os.PathLike)):
        path = Path(preds)
        if path.is_dir():
            record = read_run_record(path, target.what)
        elif path.parent.is_dir():
            parent = read_run_record(path.parent, target.what)
            listed = ((parent or {}).get("prediction_files") or {}).get(path.name) or {}
            if isinstance(listed, dict) and sha is not None and listed.get("sha256") == sha:
                record = parent
    found = provenance_from_record(record)
    bench = None if target.labels_source else target.name
    return provenance_record(
        benchmark=bench,
        version=target.version if bench else None,
        backbone=found["backbone"],
        preprocessing=found["preprocessing"],
        features=found["features"],
    )


# ---------------------------------------------------------------------------------------------------
# arrays in memory


def evaluate_arrays(
    top1: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    *,
    topk: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    label_sets: sp.spmatrix | None = None,
    num_classes: int | None = None,
    num_clusters: int | None = None,
    real_protocol: bool = False,
    num_draws: int = REAL_DRAWS,
    benchmark: str = "custom",
    version: str | None = None,
    predictions_sha256: str | None = None,
) -> EvaluationResult:
    """Score predictions given as arrays (no benchmark registry needed) -> ``EvaluationResult``.

    - ``top1`` (N,) int cluster ids, and/or ``topk`` (N, k) int ranked clusters (``topk[:, 0]`` is the
      top-1), and/or ``probs`` (N, K) probabilities (top-1 / top-5 / confidence derived from it).
    - ``labels`` (N,) int in [0, C) (ignored with ``real_protocol``); ``label_sets`` N x C boolean CSR
      (S_L per sample; needed for top-1 -> L / top-5 -> L and for the ReaL protocol).
    - ``num_classes`` C (default: from ``label_sets`` or ``labels``), ``num_clusters`` K (default: from
      ``probs`` or the largest id + 1, at least C).

    Inputs are validated with the same one-line :class:`~in21k_bench.errors.InvalidInputError` messages as
    prediction files.
    """
    preds = validate_predictions(
        PredictionArrays(top1=top1, topk=topk, probs=probs, confidence=confidence),
        n_expected=None,
        num_clusters=num_clusters,
        what=benchmark,
    )
    if real_protocol:
        if label_sets is None:
            raise InvalidInputError(f"{benchmark}: the ReaL protocol needs label_sets (N x C CSR), found none")
        C = int(num_classes) if num_classes is not None else int(label_sets.shape[1])
        _check_sets(label_sets, preds.n, C, benchmark)
        protocol: LabelProtocol = RealSets(label_sets, C)
    else:
        lab = _check_labels(labels, preds.n, benchmark)
        C = (
            int(num_classes)
            if num_classes is not None
            else (int(label_sets.shape[1]) if label_sets is not None else int(lab.max(initial=-1)) + 1)
        )
        _check_sets(label_sets, preds.n, C, benchmark)
        protocol = PerSampleSets(lab, label_sets, C) if label_sets is not None else FixedLabels(lab, C)
    K = preds.num_clusters(num_clusters, C)
    res = score(preds.top1, protocol, num_clusters=K, topk=preds.topk, confidence=preds.confidence, num_draws=num_draws)
    return EvaluationResult.from_metrics(
        res,
        benchmark=benchmark,
        version=version,
        num_classes=C,
        num_clusters=K,
        k=preds.k,
        predictions_sha256=predictions_sha256 or preds.sha256(),
    )


def _check_labels(labels, n: int, what: str) -> np.ndarray:
    if labels is None:
        raise InvalidInputError(f"{what}: expected labels (N,) int, found none")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
        raise InvalidInputError(
            f"{what}: expected labels as an int array of shape ({n},), found {lab.dtype} {lab.shape}"
        )
    if n and lab.min() < 0:
        raise InvalidInputError(f"{what}: expected labels >= 0, found {int(lab.min())}")
    return lab.astype(np.int64)


def _check_sets(label_sets, n: int, C: int, what: str) -> None:
    if label_sets is None:
        return
    if not sp.issparse(label_sets) or label_sets.shape != (n, C):
        found = label_sets.shape if hasattr(label_sets, "shape") else type(label_sets).__name__
        raise InvalidInputError(f"{what}: expected label_sets as a sparse ({n}, {C}) boolean matrix, found {found}")
