"""Score predictions: :func:`evaluate` (files, folders or arrays) and :func:`evaluate_arrays` (arrays).

What is scored against is one of

- a **benchmark** (``benchmark="in21k"``): its val labels and label protocol (own label, label +
  ancestors, ReaL sets; see :mod:`in21k_bench.label_protocol`);
- a **labels file** (``labels="y.npy"`` or an int array): one class id per prediction row, no label
  sets, so top-1 -> L / top-5 -> L are not reported;
- a **feature store's val labels** (``features="feats/"``): the ``label`` column of the val store's
  ``index.parquet``; its ``sample_id`` column orders id-keyed tables.

The flow is one-way: read (:mod:`in21k_bench.predictions`, :mod:`in21k_bench.prediction_table`) ->
validate (:mod:`in21k_bench.validation`) -> score (:mod:`in21k_bench.metrics`) ->
:class:`~in21k_bench.result.EvaluationResult`. Every malformed input raises
:class:`~in21k_bench.errors.InvalidInputError` with one line naming what is scored against, what was
expected and what was found. Files are never unpickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .benchmark import Benchmark, load
from .errors import InvalidInputError
from .features.store import META, FeatureStore
from .fileio import sha256_file
from .label_protocol import REAL_DRAWS, FixedLabels, LabelProtocol, PerSampleSets, RealSets
from .metrics import score
from .prediction_table import check_id_classes, read_sample_ids, table_to_arrays
from .predictions import PredictionArrays, PredictionTable, array_sha256, load_predictions, npy_to_arrays, open_npy
from .result import EvaluationResult
from .validation import MAX_CLUSTERS, PROB_SUM_TOL, as_numeric_array, validate_predictions

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


@dataclass
class _Target:
    """What predictions are scored against."""

    what: str  # prefix of error messages
    name: str  # ``benchmark`` field of the result
    version: str | None
    protocol: LabelProtocol
    rows_hint: str  # what one row is, for row-count errors
    ids: Callable[[], np.ndarray | None]  # canonical val ids for tables (None: unknown)
    id_hint: str  # how to supply ids when unknown
    labels_source: str | None = None
    labels_sha256: str | None = None


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
    :class:`~in21k_bench.predictions.PredictionArrays` or :class:`~in21k_bench.predictions.PredictionTable`.

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
        target = _benchmark_target(benchmark, version, sample_ids)
    elif labels is not None:
        target = _labels_target(labels, sample_ids)
    else:
        target = _features_target(features, sample_ids)
    return _score(preds, target, num_clusters, num_draws, progress)


def _score(preds, target: _Target, num_clusters, num_draws, progress) -> EvaluationResult:
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


def _provenance(preds, target: _Target, sha: str | None) -> dict:
    """The provenance of the scored predictions (:mod:`in21k_bench.provenance`): the evaluated
    benchmark's manifest version + sha256 (from the index), this package's version, and the backbone /
    preprocessing of the run record (``run.json`` / ``fit.json``) of a predictions folder -- or of the
    folder holding a single prediction file its record lists with the same sha256; None otherwise."""
    from .predictions import read_run_record
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
# what to score against


def _benchmark_target(benchmark, version, sample_ids) -> _Target:
    bench = benchmark if isinstance(benchmark, Benchmark) else load(str(benchmark), version)
    what = f"benchmark {bench.name}"

    def ids():
        if sample_ids is None:
            v = bench.val_sample_ids()
            return None if v is None else np.asarray(v, dtype=str)
        got = read_sample_ids(sample_ids, bench.num_val, what)
        sc = bench.source_classes
        if not (sc["label"] < 0).any():  # class-level benchmark: ids live in class folders
            check_id_classes(got, np.repeat(sc["wnid"].to_numpy(dtype=str), sc["num_val"].to_numpy()), what)
        return got

    hint = (
        "materialize the benchmark or pass sample_ids= / --val-ids (e.g. the val/index.parquet of a feature store); "
        "or submit a .npy in canonical order"
    )
    return _Target(what, bench.name, bench.version, bench.label_protocol(), f"val samples of {bench.name}", ids, hint)


def read_labels(labels, what: str = "labels") -> tuple[np.ndarray, str]:
    """Class labels from a ``.npy`` path or an array -> (int64 (N,), sha256). The sha256 is the file's, or
    that of the array's ``np.save`` serialisation. Expected: a 1-d integer array (bool and float dtypes
    are rejected, even when integral), every value in [0, 2^24); never unpickled."""
    if isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        if path.is_dir() or path.suffix.lower() != ".npy":
            raise InvalidInputError(
                f"{what}: expected a .npy file of integer class labels, found "
                f"{'a folder' if path.is_dir() else repr(path.name)} (use --features for a feature store)"
            )
        if not path.exists():
            raise InvalidInputError(f"{what}: expected a .npy file of integer class labels, found nothing at {path}")
        a = np.asarray(open_npy(path, what))
        sha = sha256_file(path)
    else:
        a = as_numeric_array(labels, what, "labels")
        sha = array_sha256(PredictionArrays(top1=a))
    if a.ndim != 1:
        raise InvalidInputError(
            f"{what}: expected labels of shape (N,), found {a.ndim}-d array of shape {tuple(a.shape)}"
        )
    if a.dtype.kind not in "iu":
        raise InvalidInputError(f"{what}: expected integer class labels, found {a.dtype} (cast to an integer dtype)")
    if len(a) == 0:
        raise InvalidInputError(f"{what}: expected at least one label, found 0")
    if a.min() < 0:
        i = int(np.flatnonzero(a < 0)[0])
        raise InvalidInputError(f"{what}: expected class labels >= 0, found {int(a[i])} (row {i})")
    if int(a.max()) >= MAX_CLUSTERS:
        raise InvalidInputError(f"{what}: expected class labels < {MAX_CLUSTERS:,}, found {int(a.max()):,}")
    return a.astype(np.int64, copy=False), sha


def _custom_target(
    what: str, labels: np.ndarray, sha: str, source: str, ids: Callable[[], np.ndarray | None], id_hint: str
) -> _Target:
    return _Target(
        what,
        "custom",
        None,
        FixedLabels(labels),
        f"one per label in {source}",
        ids,
        id_hint,
        labels_source=source,
        labels_sha256=sha,
    )


def _labels_target(labels, sample_ids) -> _Target:
    source = str(labels) if isinstance(labels, (str, os.PathLike)) else "array"
    what = f"labels {Path(source).name if source != 'array' else 'array'}"
    lab, sha = read_labels(labels, what)
    ids = (lambda: read_sample_ids(sample_ids, len(lab), what)) if sample_ids is not None else (lambda: None)
    return _custom_target(
        what,
        lab,
        sha,
        source,
        ids,
        "pass sample_ids= / --val-ids with the ids of the label rows in order; or submit a .npy in the labels' order",
    )


def _features_target(features, sample_ids) -> _Target:
    if isinstance(features, FeatureStore):
        store = features
    else:
        d = Path(features)
        if (d / "val" / META).is_file():
            store = FeatureStore.open(d / "val")
        elif (d / META).is_file():
            store = FeatureStore.open(d)
        else:
            raise InvalidInputError(
                f"features {d}: expected a features directory with val/{META} (or a store with {META}), found neither"
            )
    what = f"features {store.path}"
    raw = store.labels
    if raw is None:
        raise InvalidInputError(
            f"{what}: expected a 'label' column in the store's index.parquet, found none (the store was written "
            "without labels; pass --labels LABELS.npy)"
        )
    lab, sha = read_labels(raw, what)

    def ids():
        if sample_ids is not None:
            return read_sample_ids(sample_ids, len(lab), what)
        return np.asarray(store.sample_ids, dtype=str)

    return _custom_target(what, lab, sha, f"features {store.path} (label column)", ids, "")


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


def per_label_sets(bench: Benchmark) -> sp.csr_matrix | None:
    """The benchmark's label sets as a boolean C x C matrix (row l = the set of every sample labelled l),
    or None when sets are per sample (ReaL). ``per_label_sets(b)[b.val_labels()]`` equals
    ``b.label_sets()``; scoring looks labels up in it instead of building the N x C matrix."""
    return bench.label_protocol().label_matrix()
