"""What predictions are scored against: a :class:`Target` (a name, a label protocol, canonical val ids).

Three kinds, one constructor each -- :func:`benchmark_target` (a registered benchmark: its val labels and
label protocol), :func:`labels_target` (a ``.npy`` / array of class ids, one per prediction row) and
:func:`features_target` (the ``label`` column of a feature store's val ``index.parquet``, its
``sample_id`` column ordering id-keyed tables). :func:`read_labels` checks a labels file or array.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse as sp

from ..benchmark import Benchmark, load
from ..errors import InvalidInputError
from ..features.store import META, FeatureStore
from ..fileio import sha256_file
from ..scoring.label_protocols import FixedLabels, LabelProtocol
from .predictions import PredictionArrays, array_sha256, as_numeric_array, check_id_classes, open_npy, read_sample_ids
from .validation import MAX_CLUSTERS

__all__ = ["Target", "benchmark_target", "features_target", "labels_target", "per_label_sets", "read_labels"]


@dataclass
class Target:
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


def benchmark_target(benchmark, version, sample_ids) -> Target:
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
    return Target(what, bench.name, bench.version, bench.label_protocol(), f"val samples of {bench.name}", ids, hint)


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


def custom_target(
    what: str, labels: np.ndarray, sha: str, source: str, ids: Callable[[], np.ndarray | None], id_hint: str
) -> Target:
    return Target(
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


def labels_target(labels, sample_ids) -> Target:
    source = str(labels) if isinstance(labels, (str, os.PathLike)) else "array"
    what = f"labels {Path(source).name if source != 'array' else 'array'}"
    lab, sha = read_labels(labels, what)
    ids = (lambda: read_sample_ids(sample_ids, len(lab), what)) if sample_ids is not None else (lambda: None)
    return custom_target(
        what,
        lab,
        sha,
        source,
        ids,
        "pass sample_ids= / --val-ids with the ids of the label rows in order; or submit a .npy in the labels' order",
    )


def features_target(features, sample_ids) -> Target:
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

    return custom_target(what, lab, sha, f"features {store.path} (label column)", ids, "")


def per_label_sets(bench: Benchmark) -> sp.csr_matrix | None:
    """The benchmark's label sets as a boolean C x C matrix (row l = the set of every sample labelled l),
    or None when sets are per sample (ReaL). ``per_label_sets(b)[b.val_labels()]`` equals
    ``b.label_sets()``; scoring looks labels up in it instead of building the N x C matrix."""
    return bench.label_protocol().label_matrix()
