"""Prediction files, their validation, and :func:`evaluate` -> :class:`EvaluationResult`.

Formats (see ``docs/evaluation.md``):

- ``.npy`` int (N,): top-1 cluster ids, canonical val order.
- ``.npy`` int (N, k): ranked clusters (column 0 = top-1; top-5 metrics need k >= 5).
- ``.npy`` float (N, K): probabilities; top-1 / top-5 / confidence are derived. Read memory-mapped and
  reduced in row chunks, so N x K never has to fit in memory.
- a folder holding ``top1.npy`` and/or ``top5.npy`` and/or ``probs.npy`` (what ``in21k-bench fit`` writes).
- ``.parquet`` / ``.csv``: ``sample_id`` + ``cluster`` (+ optional ``topk`` list column or
  ``top1..topN`` columns, + optional ``probs`` list column in parquet), matched to the canonical order by id.

Every malformed input raises :class:`~in21k_bench.errors.InvalidInputError` with one line naming the
benchmark, what was expected and what was found. Files are never unpickled.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidInputError
from .metrics import MATCHING, NUM_ECE_BINS, REAL_DRAWS, compute_metrics
from .predictions import PredictionArrays, PredictionTable, array_sha256, load_predictions, npy_to_arrays

PROB_SUM_TOL = 1e-3  # |sum_k p_ik - 1| allowed per row (float32 softmax over 10,450 classes is ~1e-5 off)
PROB_ARGMAX_TOL = 1e-6  # a given top-1 must have probability >= row max - this
TOP_K = 5
_CHUNK_ROWS = 8192
MAX_CLUSTERS = 1 << 24  # K bound: metrics allocate O(K) arrays, so a stray huge id must not mean terabytes

__all__ = ["EvaluationResult", "PredictionArrays", "evaluate", "load_predictions", "per_label_sets", "validate_predictions", "PROB_SUM_TOL"]


# ---------------------------------------------------------------------------------------------------
# result model


class EvaluationResult(BaseModel):
    """Scores of one prediction set on one benchmark. ``acc`` is the one-to-one Hungarian ACC;
    ``majority_acc`` the many-to-one majority-vote ACC (not comparable across K)."""

    model_config = ConfigDict(extra="forbid")

    benchmark: str
    version: Optional[str] = None
    n: int = Field(description="number of scored samples")
    num_clusters: int = Field(description="K, number of cluster ids allowed")
    num_classes: int = Field(description="C, number of labels of the benchmark")
    k: int = Field(description="ranked clusters per sample given (1 = top-1 only)")
    matching: str = MATCHING
    acc: float = Field(description="top-1 -> 1 with the one-to-one Hungarian map f")
    top1_L: Optional[float] = Field(None, description="f(top-1) in the label set S_L")
    top5_1: Optional[float] = Field(None, description="any of the 5 top clusters mapped through f equals the label")
    top5_L: Optional[float] = Field(None, description="any of the 5 top clusters mapped through f is in S_L")
    nmi: float
    ari: float
    ece: Optional[float] = Field(None, description=f"expected calibration error, {NUM_ECE_BINS} equal-width bins of max-probability confidence, after f")
    majority_acc: Optional[float] = Field(None, description="many-to-one ACC: every cluster takes its most frequent label (NOT the Hungarian ACC)")
    acc_std: Optional[float] = None
    top1_L_std: Optional[float] = None
    top5_1_std: Optional[float] = None
    top5_L_std: Optional[float] = None
    nmi_std: Optional[float] = None
    ari_std: Optional[float] = None
    ece_std: Optional[float] = None
    majority_acc_std: Optional[float] = None
    num_draws: Optional[int] = Field(None, description="ReaL protocol: label draws (seeds 0..num_draws-1); metrics are means, *_std population std")
    excluded: int = Field(0, description="samples excluded (ReaL: images with an empty set)")
    reliability: Optional[dict] = Field(None, description="per-bin count / confidence / accuracy of the reliability diagram")
    package_version: str
    predictions_sha256: Optional[str] = None
    per_class_acc: Optional[list[float]] = Field(None, exclude=True, description="per-label ACC (NaN without samples); not in JSON")

    @classmethod
    def from_metrics(cls, res: dict, *, benchmark: str, version: str | None, num_classes: int, num_clusters: int, k: int, predictions_sha256: str | None, excluded: int = 0) -> "EvaluationResult":
        from . import __version__

        fields = {key: res.get(key) for key in cls.model_fields if key in res and key not in ("per_class_acc",)}
        pca = res.get("per_class_acc")
        return cls(
            **fields,
            benchmark=benchmark,
            version=version,
            num_classes=num_classes,
            num_clusters=num_clusters,
            k=k,
            excluded=int(res.get("excluded_empty_sets", 0)) + int(excluded),
            package_version=__version__,
            predictions_sha256=predictions_sha256,
            per_class_acc=None if pca is None else [float(x) for x in pca],
        )

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json")

    def table(self) -> str:
        """Human-readable summary."""
        real = self.num_draws is not None
        head = f"benchmark {self.benchmark} {self.version or ''}".rstrip()
        lines = [
            head,
            f"  samples {self.n:,}   clusters K={self.num_clusters:,}   classes C={self.num_classes:,}   ranked k={self.k}   matching {self.matching}",
        ]
        if real:
            lines.append(f"  ReaL protocol: {self.num_draws} label draws (seeds 0..{self.num_draws - 1}), mean +- std; {self.excluded} images with an empty ReaL set excluded")
        rows = [
            ("ACC (top-1 -> 1, Hungarian)", "acc"),
            ("top-1 -> L", "top1_L"),
            ("top-5 -> 1", "top5_1"),
            ("top-5 -> L", "top5_L"),
            ("NMI", "nmi"),
            ("ARI", "ari"),
            (f"ECE ({NUM_ECE_BINS} bins)", "ece"),
            ("majority-vote ACC (many-to-one)", "majority_acc"),
        ]
        for title, key in rows:
            v = getattr(self, key)
            if v is None:
                cell = "-"
            elif key in ("nmi", "ari", "ece"):
                cell = f"{v:.4f}"
            else:
                cell = f"{100 * v:.2f}%"
            std = getattr(self, f"{key}_std", None)
            if real and std is not None and v is not None:
                cell += f" +- {std:.4f}" if key in ("nmi", "ari", "ece") else f" +- {100 * std:.2f}"
            lines.append(f"  {title:<34}{cell}")
        lines.append(f"  predictions sha256 {self.predictions_sha256 or '-'}   in21k-bench {self.package_version}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# arrays and validation


@dataclass
class ValidPredictions:
    top1: np.ndarray  # int64 (N,)
    topk: np.ndarray | None  # int64 (N, k)
    confidence: np.ndarray | None  # float64 (N,)
    k: int
    max_id: int
    probs_k: int | None  # K from probabilities
    raw: PredictionArrays

    @property
    def n(self) -> int:
        return int(len(self.top1))

    def num_clusters(self, given: int | None, num_classes: int) -> int:
        if given is not None:
            return int(given)
        if self.probs_k is not None:
            return int(self.probs_k)
        return max(int(num_classes), self.max_id + 1)

    def sha256(self) -> str:
        """sha256 over the ``.npy`` serialisation of the given arrays (top1, topk, probs, confidence in
        that order); for one array this equals the sha256 of the file ``np.save`` writes."""
        return array_sha256(self.raw)


def _kind(a: np.ndarray) -> str:
    return f"{a.dtype} array of shape {tuple(a.shape)}"


def _as_array(x, what: str, name: str) -> np.ndarray:
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # ragged lists etc.
            raise InvalidInputError(f"{what}: expected {name} as a numeric array, found {type(x).__name__} that numpy cannot convert ({exc.__class__.__name__})") from None
    if a.dtype.hasobject or a.dtype.fields is not None or a.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what}: expected {name} as a numeric array, found {a.dtype} dtype (object, string or structured arrays are not accepted)")
    return a


def _check_ids(a: np.ndarray, what: str, name: str, num_clusters: int | None) -> np.ndarray:
    if a.dtype.kind == "b":
        raise InvalidInputError(f"{what}: expected integer cluster ids in {name}, found bool {tuple(a.shape)}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise InvalidInputError(f"{what}: expected integer cluster ids in {name}, found float {a.dtype} with NaN/inf (probabilities must be 2-d (N, K))")
        raise InvalidInputError(f"{what}: expected integer cluster ids in {name}, found float {a.dtype} (cast to int; probabilities must be 2-d (N, K))")
    a = np.asarray(a)
    if a.size and a.min() < 0:
        i = int(np.flatnonzero(a.reshape(len(a), -1).min(axis=1) < 0)[0])
        raise InvalidInputError(f"{what}: expected cluster ids >= 0 in {name}, found {int(a.min())} (row {i})")
    if num_clusters is not None and a.size and a.max() >= num_clusters:
        i = int(np.flatnonzero(a.reshape(len(a), -1).max(axis=1) >= num_clusters)[0])
        raise InvalidInputError(f"{what}: expected cluster ids < K={num_clusters} in {name}, found {int(a.max())} (row {i})")
    return a.astype(np.int64, copy=False)


def _reduce_probs(p: np.ndarray, what: str, rows: np.ndarray | None = None, tol: float = PROB_SUM_TOL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check probabilities chunk by chunk and derive (top1, top-5 ranked, confidence)."""
    from tqdm.auto import tqdm

    n = len(rows) if rows is not None else p.shape[0]
    K = p.shape[1]
    k = min(TOP_K, K)
    top1 = np.empty(n, dtype=np.int64)
    topk = np.empty((n, k), dtype=np.int64)
    conf = np.empty(n, dtype=np.float64)
    big = n * K > 50_000_000
    for s in tqdm(range(0, n, _CHUNK_ROWS), desc="probabilities", disable=None if big else True, unit="chunk"):
        e = min(n, s + _CHUNK_ROWS)
        block = np.asarray(p[rows[s:e]] if rows is not None else p[s:e], dtype=np.float64)
        bad = ~np.isfinite(block)
        if bad.any():
            i = s + int(np.flatnonzero(bad.any(axis=1))[0])
            raise InvalidInputError(f"{what}: expected finite probabilities, found NaN/inf (row {i})")
        if (block < 0).any():
            i = s + int(np.flatnonzero((block < 0).any(axis=1))[0])
            raise InvalidInputError(f"{what}: expected probabilities >= 0, found {float(block.min()):.3g} (row {i})")
        sums = block.sum(axis=1)
        off = np.abs(sums - 1.0) > tol
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise InvalidInputError(f"{what}: expected probability rows summing to 1 (tolerance {tol:g}), found sum {sums[i]:.6g} (row {s + i})")
        part = np.argpartition(-block, k - 1, axis=1)[:, :k] if k < K else np.broadcast_to(np.arange(K), (e - s, K)).copy()
        vals = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ranked = np.take_along_axis(part, order, axis=1)
        topk[s:e] = ranked
        top1[s:e] = ranked[:, 0]
        conf[s:e] = np.take_along_axis(block, ranked[:, :1], axis=1)[:, 0]
    return top1, topk, conf


def _row_duplicates(a: np.ndarray) -> np.ndarray:
    """Bool (N,): row i holds a value twice. Column-pair comparisons for narrow rows (k <= 12; no sort of
    N tiny rows), a row-wise sort otherwise."""
    k = a.shape[1]
    if k > 12:
        srt = np.sort(a, axis=1)
        return (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    dup = np.zeros(a.shape[0], dtype=bool)
    cols = [np.ascontiguousarray(a[:, j]) for j in range(k)]
    for j in range(1, k):
        for i in range(j):
            dup |= cols[i] == cols[j]
    return dup


def _put_first(ranked: np.ndarray, top1: np.ndarray) -> np.ndarray:
    """Ranked clusters derived from probabilities, with a given top-1 (a tie for the max) moved first."""
    bad = np.flatnonzero(ranked[:, 0] != top1)
    if len(bad) == 0:
        return ranked
    ranked = ranked.copy()
    for i in bad:
        rest = [int(x) for x in ranked[i] if x != top1[i]]
        ranked[i] = [int(top1[i])] + rest[: ranked.shape[1] - 1]
    return ranked


def validate_predictions(preds: PredictionArrays, *, n_expected: int | None, num_clusters: int | None, what: str, rows: np.ndarray | None = None, n_hint: str | None = None) -> ValidPredictions:
    """Validate raw arrays -> :class:`ValidPredictions`. ``rows`` selects rows (ReaL: 50,000 -> scored)
    after the row count check; ``n_hint`` replaces the "N rows" wording in the row-count message."""
    if preds.top1 is None and preds.topk is None and preds.probs is None:
        raise InvalidInputError(f"{what}: expected top-1 ids, ranked top-k ids or probabilities, found none")
    if num_clusters is not None and int(num_clusters) > MAX_CLUSTERS:
        raise InvalidInputError(f"{what}: expected K (--num-clusters) <= {MAX_CLUSTERS:,}, found {int(num_clusters):,}")
    arrays = {}
    for name in ("top1", "topk", "probs", "confidence"):
        a = _as_array(getattr(preds, name), what, name)
        if a is not None:
            arrays[name] = a
    want_ndim = {"top1": 1, "topk": 2, "probs": 2, "confidence": 1}
    for name, a in arrays.items():
        if a.ndim != want_ndim[name]:
            hint = {1: "(N,)", 2: "(N, k)" if name == "topk" else "(N, K)"}[want_ndim[name]]
            raise InvalidInputError(f"{what}: expected {name} with shape {hint}, found {a.ndim}-d array of shape {tuple(a.shape)}")
        if n_expected is not None and a.shape[0] != n_expected:
            raise InvalidInputError(f"{what}: expected {n_hint or f'{n_expected} rows'} in {name}, found {a.shape[0]}")
    ns = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(ns.values())) > 1:
        raise InvalidInputError(f"{what}: expected the same number of rows in every array, found {ns}")
    n = next(iter(ns.values()))
    if n == 0:
        raise InvalidInputError(f"{what}: expected at least one prediction row, found 0")
    if rows is not None:
        arrays = {name: (a if name == "probs" else np.asarray(a)[rows]) for name, a in arrays.items()}

    probs_k = None
    top1 = topk = conf = None
    if "probs" in arrays:
        p = arrays["probs"]
        if p.dtype.kind != "f":
            raise InvalidInputError(f"{what}: expected probabilities as floats (N, K), found {_kind(p)}")
        probs_k = int(p.shape[1])
        if num_clusters is not None and probs_k != num_clusters:
            raise InvalidInputError(f"{what}: expected probabilities with K={num_clusters} columns, found {probs_k}")
        ptop1, ptopk, conf = _reduce_probs(p, what, rows)
    if "topk" in arrays:
        topk = _check_ids(arrays["topk"], what, "topk", num_clusters if num_clusters is not None else probs_k)
        if topk.shape[1] == 0:
            raise InvalidInputError(f"{what}: expected at least one column of ranked clusters, found shape {tuple(topk.shape)}")
        dup = _row_duplicates(topk)
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            raise InvalidInputError(f"{what}: expected distinct clusters in every top-k row, found duplicates in row {i}: {topk[i].tolist()}")
    if "top1" in arrays:
        top1 = _check_ids(arrays["top1"], what, "top1", num_clusters if num_clusters is not None else probs_k)
    if top1 is not None and topk is not None:
        bad = top1 != topk[:, 0]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f"{what}: expected top-1 == first ranked cluster, found {int(top1[i])} vs {int(topk[i, 0])} (row {i})")
    if top1 is None:
        top1 = topk[:, 0].copy() if topk is not None else ptop1
    if probs_k is not None:
        if topk is None and ("top1" not in arrays):
            topk = ptopk
        given = top1 if "top1" in arrays or "topk" in arrays else None
        if given is not None:
            if int(given.max()) >= probs_k:
                raise InvalidInputError(f"{what}: expected cluster ids < K={probs_k} (probability columns), found {int(given.max())}")
            src = arrays["probs"]
            idx = np.arange(len(given)) if rows is None else rows
            pg = np.empty(len(given))
            for s in range(0, len(given), _CHUNK_ROWS):
                blk = np.asarray(src[idx[s : s + _CHUNK_ROWS]], dtype=np.float64)
                pg[s : s + len(blk)] = blk[np.arange(len(blk)), given[s : s + len(blk)]]
            bad = pg < conf - PROB_ARGMAX_TOL
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InvalidInputError(f"{what}: expected the top-1 cluster to have the largest probability, found p={pg[i]:.4g} < max {conf[i]:.4g} (row {i})")
        if topk is None:
            topk = _put_first(ptopk, top1)
    if "confidence" in arrays:
        c = arrays["confidence"]
        if c.dtype.kind != "f" or not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
            raise InvalidInputError(f"{what}: expected confidence as finite floats in [0, 1], found {_kind(c)} with range [{float(np.nanmin(c)) if c.size else 0:.3g}, {float(np.nanmax(c)) if c.size else 0:.3g}]")
        if conf is not None:
            raise InvalidInputError(f"{what}: expected either probabilities or confidence, found both")
        conf = c.astype(np.float64)
    max_id = int(max(top1.max(), topk.max() if topk is not None else -1))
    if max_id >= MAX_CLUSTERS:
        raise InvalidInputError(f"{what}: expected cluster ids < {MAX_CLUSTERS:,} (the largest K supported), found {max_id:,}")
    k = int(topk.shape[1]) if topk is not None else 1
    return ValidPredictions(top1=top1, topk=topk, confidence=conf, k=k, max_id=max_id, probs_k=probs_k, raw=preds)


# ---------------------------------------------------------------------------------------------------
# files


def _parse_list_column(col, what: str, name: str) -> np.ndarray:
    vals = col.tolist()
    try:
        if vals and isinstance(vals[0], str):
            rows = [[float(x) if name == "probs" else int(x) for x in v.replace(",", " ").replace(";", " ").split()] for v in vals]
        else:
            rows = [list(v) for v in vals]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what}: expected column {name!r} to hold lists of numbers, found unparsable values ({exc})") from None
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise InvalidInputError(f"{what}: expected the same length in every {name!r} list, found lengths {sorted(lengths)[:5]}")
    return _as_array(np.asarray(rows), what, name)


def _table_to_arrays(df, what: str, expected_ids: np.ndarray | None, allowed_ids: np.ndarray | None, id_hint: str) -> PredictionArrays:
    """Table with ``sample_id`` -> arrays in the canonical order of ``expected_ids``. ``allowed_ids`` are
    extra ids that may be present and are ignored (ReaL: unscored ImageNet-1K val images)."""
    import pandas as pd

    cols = list(df.columns)
    if "sample_id" not in cols:
        raise InvalidInputError(f"{what}: expected a 'sample_id' column, found columns {cols[:8]}")
    tops = sorted((c for c in cols if isinstance(c, str) and c.startswith("top") and c[3:].isdigit()), key=lambda c: int(c[3:]))
    if "cluster" not in cols and not tops and "topk" not in cols and "probs" not in cols:
        raise InvalidInputError(f"{what}: expected a 'cluster' column (or topk / top1..topN / probs), found columns {cols[:8]}")
    if expected_ids is None:
        raise InvalidInputError(f"{what}: expected sample ids of the val split to match a table, found none in the manifest ({id_hint})")
    ids = df["sample_id"].astype(str).to_numpy()
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise InvalidInputError(f"{what}: expected each sample_id once, found duplicates (e.g. {ids[np.flatnonzero(dup)[0]]!r}, {int(dup.sum())} in all)")
    exp = pd.Index(np.asarray(expected_ids, dtype=str))
    pos = exp.get_indexer(ids)
    unknown = pos < 0
    if unknown.any():
        if allowed_ids is not None:
            ok = pd.Index(np.asarray(allowed_ids, dtype=str)).get_indexer(ids[unknown]) >= 0
            really = np.flatnonzero(unknown)[~ok]
        else:
            really = np.flatnonzero(unknown)
        if len(really):
            raise InvalidInputError(f"{what}: expected sample ids of the val split, found {len(really)} unknown (e.g. {ids[really[0]]!r})")
    keep = ~unknown
    present = np.zeros(len(exp), dtype=bool)
    present[pos[keep]] = True
    if not present.all():
        miss = np.flatnonzero(~present)
        raise InvalidInputError(f"{what}: expected all {len(exp)} val sample ids, found {len(exp) - len(miss)} ({len(miss)} missing, e.g. {exp[miss[0]]!r})")
    order = np.empty(len(exp), dtype=np.int64)
    order[pos[keep]] = np.flatnonzero(keep)
    df = df.iloc[order].reset_index(drop=True)

    out = PredictionArrays()
    if "cluster" in cols:
        out.top1 = _as_array(df["cluster"].to_numpy(), what, "cluster")
    if "topk" in cols:
        out.topk = _parse_list_column(df["topk"], what, "topk")
    elif tops:
        if [int(c[3:]) for c in tops] != list(range(1, len(tops) + 1)):
            raise InvalidInputError(f"{what}: expected columns top1..topN without gaps, found {tops}")
        out.topk = _as_array(df[tops].to_numpy(), what, "top1..topN")
    if "probs" in cols:
        out.probs = _parse_list_column(df["probs"], what, "probs")
    if out.top1 is not None and out.top1.dtype.kind == "f" and np.isnan(out.top1).any():
        raise InvalidInputError(f"{what}: expected an integer cluster id in every row, found empty/NaN entries in 'cluster'")
    return out


# ---------------------------------------------------------------------------------------------------
# benchmark-bound evaluation


def evaluate(
    preds,
    benchmark,
    version: str | None = None,
    num_clusters: int | None = None,
    *,
    sample_ids=None,
    num_draws: int = REAL_DRAWS,
    progress: bool | None = None,
) -> EvaluationResult:
    """Score predictions on a benchmark.

    ``preds``: a path (``.npy`` / ``.parquet`` / ``.csv`` / folder with ``top1.npy``, ``top5.npy``,
    ``probs.npy``), a numpy array (int (N,) top-1, int (N, k) ranked, float (N, K) probabilities) or a
    :class:`PredictionArrays`. ``benchmark``: a name (loaded with :func:`in21k_bench.load`) or a loaded
    :class:`~in21k_bench.benchmark.Benchmark`. ``num_clusters`` K: when given, ids must be < K; default K =
    number of probability columns, else max(C, largest id + 1). ``sample_ids``: canonical val ids (array or
    a parquet/csv with a ``sample_id`` column, e.g. a feature store's ``val/index.parquet``) for id-keyed
    tables on benchmarks whose manifest does not list val files (IN-21K).
    """
    import pandas as pd

    from .benchmark import Benchmark, load

    bench = benchmark if isinstance(benchmark, Benchmark) else load(str(benchmark), version)
    what = f"benchmark {bench.name}"
    n, C = int(bench.num_val), int(bench.num_classes)
    real = getattr(bench.definition, "label_sets", None) == "real"
    if num_clusters is not None and int(num_clusters) < 1:
        raise InvalidInputError(f"{what}: expected --num-clusters >= 1, found {num_clusters}")

    sha = None
    if isinstance(preds, (str, os.PathLike)):
        arrays, sha = load_predictions(preds, what)
        kind = "table" if isinstance(arrays, PredictionTable) else "files"
        if kind == "table":
            arrays = arrays.frame
    elif isinstance(preds, PredictionArrays):
        arrays, kind = preds, "arrays"
    elif isinstance(preds, pd.DataFrame):
        arrays, kind = preds, "table"
    else:
        a = _as_array(preds, what, "predictions")
        arrays, kind = npy_to_arrays(a, what), "arrays"

    rows = None
    n_expected, n_hint = n, f"{n} rows (val samples of {bench.name}, canonical order)"
    if kind == "table":
        df = arrays
        ids = _resolve_ids(sample_ids, bench, what)
        allowed = None
        if real and bench.imagenet1k is not None:
            allowed = bench.imagenet1k.val_sample_ids
        arrays = _table_to_arrays(df, what, ids, allowed, "materialize the benchmark or pass sample_ids= / --val-ids (e.g. the val/index.parquet of a feature store); or submit a .npy in canonical order")
    elif real:
        src_rows = bench.val_source_rows()
        full = bench.val_source_size
        first = next(a for a in (arrays.top1, arrays.topk, arrays.probs, arrays.confidence) if a is not None)
        m = int(np.shape(first)[0]) if np.ndim(first) >= 1 else -1
        n_hint = f"{n} rows (scored ReaL images) or {full} rows (full ImageNet-1K val order)"
        if full is not None and src_rows is not None and m == full:
            rows, n_expected = src_rows, full

    valid = validate_predictions(arrays, n_expected=n_expected, num_clusters=num_clusters, what=what, rows=rows, n_hint=n_hint)
    if valid.n != n:
        raise InvalidInputError(f"{what}: expected {n} rows after selection, found {valid.n}")
    K = valid.num_clusters(num_clusters, C)
    per_label = None if real else per_label_sets(bench)
    res = compute_metrics(
        valid.top1,
        None if real else bench.val_labels(),
        num_classes=C,
        num_clusters=K,
        topk=valid.topk,
        confidence=valid.confidence,
        label_sets=bench.label_sets() if per_label is None else None,
        label_matrix=per_label,
        real_protocol=real,
        num_draws=num_draws,
        progress=progress,
    )
    return EvaluationResult.from_metrics(
        res,
        benchmark=bench.name,
        version=bench.version,
        num_classes=C,
        num_clusters=K,
        k=valid.k,
        predictions_sha256=sha or valid.sha256(),
        excluded=(int(bench.val_source_size) - n) if real and bench.val_source_size else 0,
    )


def per_label_sets(bench):
    """The benchmark's label sets as a boolean C x C matrix (row l = the set of every sample labelled l),
    or None when sets are per sample (ReaL). ``per_label_sets(b)[b.val_labels()]`` equals
    ``b.label_sets()``; scoring looks labels up in it instead of building the N x C matrix."""
    import scipy.sparse as sp

    kind = getattr(bench.definition, "label_sets", None)
    if kind == "self":
        return sp.identity(int(bench.num_classes), dtype=bool, format="csr")
    if kind == "ancestors":
        return bench.label_matrix()
    return None


def _resolve_ids(sample_ids, bench, what: str) -> np.ndarray | None:
    if sample_ids is None:
        ids = bench.val_sample_ids()
        return None if ids is None else np.asarray(ids, dtype=str)
    if isinstance(sample_ids, (str, os.PathLike)):
        import pandas as pd

        p = Path(sample_ids)
        try:
            df = pd.read_parquet(p, columns=["sample_id"]) if p.suffix.lower() == ".parquet" else pd.read_csv(p, usecols=["sample_id"], dtype=str)
        except Exception as exc:
            raise InvalidInputError(f"{what}: expected a parquet/csv with a 'sample_id' column at {p}, found an unreadable file ({exc.__class__.__name__})") from None
        ids = df["sample_id"].astype(str).to_numpy()
    else:
        ids = np.asarray(sample_ids, dtype=str)
    if ids.ndim != 1 or len(ids) != bench.num_val:
        raise InvalidInputError(f"{what}: expected {bench.num_val} canonical val sample ids, found {ids.shape}")
    if len(np.unique(ids)) != len(ids):
        raise InvalidInputError(f"{what}: expected unique canonical val sample ids, found duplicates")
    _check_id_classes(ids, bench, what)
    return ids


def _check_id_classes(ids: np.ndarray, bench, what: str) -> None:
    """For class-level benchmarks, the folder part of id i (``val/<wnid>/...``) must be the class of sample i."""
    sc = bench.source_classes
    if (sc["label"] < 0).any():
        return
    expected = np.repeat(sc["wnid"].to_numpy(dtype=str), sc["num_val"].to_numpy())
    if len(expected) != len(ids):
        return
    parts = np.array([s.split("/")[-2] if s.count("/") >= 2 else "" for s in ids], dtype=str)
    bad = parts != expected
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(f"{what}: expected the val sample ids in canonical order (row {i} in class folder {expected[i]}), found {ids[i]!r}")
