"""Validation of raw prediction arrays: the checks every input passes before it is scored.

:func:`validate_predictions` turns :class:`~in21k_bench.evaluation.predictions.PredictionArrays` (any of top-1 ids,
ranked ids, probabilities, confidences) into :class:`ValidPredictions`: int64 top-1 and ranked ids in
``[0, K)``, distinct clusters per ranked row, probability rows that are finite, non-negative and sum to
1 within :data:`PROB_SUM_TOL`, a given top-1 that is a maximum of its probability row. Probabilities
are reduced to (top-1, top-5, confidence) in row chunks, so an N x K array never has to fit in memory.
Every failure is an :class:`~in21k_bench.errors.InvalidInputError` with one line: what was expected,
what was found, and the first offending row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from .predictions import PredictionArrays, array_sha256, as_numeric_array

PROB_SUM_TOL = 1e-3  # |sum_k p_ik - 1| allowed per row (float32 softmax over 10,450 classes is ~1e-5 off)
PROB_ARGMAX_TOL = 1e-6  # a given top-1 must have probability >= row max - this
TOP_K = 5
CHUNK_ROWS = 8192
MAX_CLUSTERS = 1 << 24  # K bound: metrics allocate O(K) arrays, so a stray huge id must not mean terabytes

__all__ = [
    "PROB_SUM_TOL",
    "PROB_ARGMAX_TOL",
    "MAX_CLUSTERS",
    "ValidPredictions",
    "validate_predictions",
    "row_duplicates",
]


@dataclass
class ValidPredictions:
    """Checked predictions: ``top1`` int64 (N,), ``topk`` int64 (N, k) ranked (None for top-1 only),
    ``confidence`` float64 (N,) (None without probabilities), ``k`` ranked columns, ``max_id`` the largest
    id, ``probs_k`` the probability columns (None without probabilities), ``raw`` the input arrays."""

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
        """K: ``given``, else the probability columns, else max(C, largest id + 1)."""
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


def _check_ids(a: np.ndarray, what: str, name: str, num_clusters: int | None) -> np.ndarray:
    if a.dtype.kind == "b":
        raise InvalidInputError(f"{what}: expected integer cluster ids in {name}, found bool {tuple(a.shape)}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise InvalidInputError(
                f"{what}: expected integer cluster ids in {name}, found float {a.dtype} with NaN/inf (probabilities "
                "must be 2-d (N, K))"
            )
        raise InvalidInputError(
            f"{what}: expected integer cluster ids in {name}, found float {a.dtype} (cast to int; probabilities must "
            "be 2-d (N, K))"
        )
    a = np.asarray(a)
    if a.size and a.min() < 0:
        i = int(np.flatnonzero(a.reshape(len(a), -1).min(axis=1) < 0)[0])
        raise InvalidInputError(f"{what}: expected cluster ids >= 0 in {name}, found {int(a.min())} (row {i})")
    if num_clusters is not None and a.size and a.max() >= num_clusters:
        i = int(np.flatnonzero(a.reshape(len(a), -1).max(axis=1) >= num_clusters)[0])
        raise InvalidInputError(
            f"{what}: expected cluster ids < K={num_clusters} in {name}, found {int(a.max())} (row {i})"
        )
    return a.astype(np.int64, copy=False)


def _reduce_probs(
    p: np.ndarray, what: str, rows: np.ndarray | None = None, tol: float = PROB_SUM_TOL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check probabilities chunk by chunk and derive (top1, top-5 ranked, confidence)."""
    from tqdm.auto import tqdm

    n = len(rows) if rows is not None else p.shape[0]
    K = p.shape[1]
    k = min(TOP_K, K)
    top1 = np.empty(n, dtype=np.int64)
    topk = np.empty((n, k), dtype=np.int64)
    conf = np.empty(n, dtype=np.float64)
    big = n * K > 50_000_000
    for s in tqdm(range(0, n, CHUNK_ROWS), desc="probabilities", disable=None if big else True, unit="chunk"):
        e = min(n, s + CHUNK_ROWS)
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
            raise InvalidInputError(
                f"{what}: expected probability rows summing to 1 (tolerance {tol:g}), found sum {sums[i]:.6g} (row "
                f"{s + i})"
            )
        part = (
            np.argpartition(-block, k - 1, axis=1)[:, :k] if k < K else np.broadcast_to(np.arange(K), (e - s, K)).copy()
        )
        vals = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        ranked = np.take_along_axis(part, order, axis=1)
        topk[s:e] = ranked
        top1[s:e] = ranked[:, 0]
        conf[s:e] = np.take_along_axis(block, ranked[:, :1], axis=1)[:, 0]
    return top1, topk, conf


def row_duplicates(a: np.ndarray) -> np.ndarray:
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


def _shaped_arrays(
    preds: PredictionArrays, n_expected: int | None, what: str, rows: np.ndarray | None, n_hint: str | None
) -> dict[str, np.ndarray]:
    """The given arrays, numeric, with the right number of dimensions and rows (``rows`` selected; the
    probabilities stay whole and are read by row later)."""
    arrays = {}
    for name in ("top1", "topk", "probs", "confidence"):
        a = as_numeric_array(getattr(preds, name), what, name)
        if a is not None:
            arrays[name] = a
    want_ndim = {"top1": 1, "topk": 2, "probs": 2, "confidence": 1}
    for name, a in arrays.items():
        if a.ndim != want_ndim[name]:
            hint = {1: "(N,)", 2: "(N, k)" if name == "topk" else "(N, K)"}[want_ndim[name]]
            raise InvalidInputError(
                f"{what}: expected {name} with shape {hint}, found {a.ndim}-d array of shape {tuple(a.shape)}"
            )
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
    return arrays


def _check_ranked(topk: np.ndarray, what: str) -> None:
    if topk.shape[1] == 0:
        raise InvalidInputError(
            f"{what}: expected at least one column of ranked clusters, found shape {tuple(topk.shape)}"
        )
    dup = row_duplicates(topk)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InvalidInputError(
            f"{what}: expected distinct clusters in every top-k row, found duplicates in row {i}: {topk[i].tolist()}"
        )


def _check_given_top1_is_argmax(
    given: np.ndarray, probs, conf: np.ndarray, rows: np.ndarray | None, probs_k: int, what: str
) -> None:
    """A top-1 given beside probabilities must be a maximum of its row (within :data:`PROB_ARGMAX_TOL`)."""
    if int(given.max()) >= probs_k:
        raise InvalidInputError(
            f"{what}: expected cluster ids < K={probs_k} (probability columns), found {int(given.max())}"
        )
    idx = np.arange(len(given)) if rows is None else rows
    pg = np.empty(len(given))
    for s in range(0, len(given), CHUNK_ROWS):
        blk = np.asarray(probs[idx[s : s + CHUNK_ROWS]], dtype=np.float64)
        pg[s : s + len(blk)] = blk[np.arange(len(blk)), given[s : s + len(blk)]]
    bad = pg < conf - PROB_ARGMAX_TOL
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{what}: expected the top-1 cluster to have the largest probability, found p={pg[i]:.4g} < max "
            f"{conf[i]:.4g} (row {i})"
        )


def _check_confidence(c: np.ndarray, conf_from_probs: np.ndarray | None, what: str) -> np.ndarray:
    if c.dtype.kind != "f" or not np.isfinite(c).all() or c.min() < 0 or c.max() > 1:
        raise InvalidInputError(
            f"{what}: expected confidence as finite floats in [0, 1], found {_kind(c)} with range "
            f"[{float(np.nanmin(c)) if c.size else 0:.3g}, {float(np.nanmax(c)) if c.size else 0:.3g}]"
        )
    if conf_from_probs is not None:
        raise InvalidInputError(f"{what}: expected either probabilities or confidence, found both")
    return c.astype(np.float64)


def validate_predictions(
    preds: PredictionArrays,
    *,
    n_expected: int | None,
    num_clusters: int | None,
    what: str,
    rows: np.ndarray | None = None,
    n_hint: str | None = None,
) -> ValidPredictions:
    """Validate raw arrays -> :class:`ValidPredictions`. ``rows`` selects rows (ReaL: 50,000 -> scored)
    after the row count check; ``n_hint`` replaces the "N rows" wording in the row-count message."""
    if preds.top1 is None and preds.topk is None and preds.probs is None:
        raise InvalidInputError(f"{what}: expected top-1 ids, ranked top-k ids or probabilities, found none")
    if num_clusters is not None and int(num_clusters) > MAX_CLUSTERS:
        raise InvalidInputError(f"{what}: expected K (--num-clusters) <= {MAX_CLUSTERS:,}, found {int(num_clusters):,}")
    arrays = _shaped_arrays(preds, n_expected, what, rows, n_hint)

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
        _check_ranked(topk, what)
    if "top1" in arrays:
        top1 = _check_ids(arrays["top1"], what, "top1", num_clusters if num_clusters is not None else probs_k)
    if top1 is not None and topk is not None:
        bad = top1 != topk[:, 0]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"{what}: expected top-1 == first ranked cluster, found {int(top1[i])} vs {int(topk[i, 0])} (row {i})"
            )
    if top1 is None:
        top1 = topk[:, 0].copy() if topk is not None else ptop1
    if probs_k is not None:
        if topk is None and ("top1" not in arrays):
            topk = ptopk
        if "top1" in arrays or "topk" in arrays:
            _check_given_top1_is_argmax(top1, arrays["probs"], conf, rows, probs_k, what)
        if topk is None:
            topk = _put_first(ptopk, top1)
    if "confidence" in arrays:
        conf = _check_confidence(arrays["confidence"], conf, what)
    max_id = int(max(top1.max(), topk.max() if topk is not None else -1))
    if max_id >= MAX_CLUSTERS:
        raise InvalidInputError(
            f"{what}: expected cluster ids < {MAX_CLUSTERS:,} (the largest K supported), found {max_id:,}"
        )
    k = int(topk.shape[1]) if topk is not None else 1
    return ValidPredictions(top1=top1, topk=topk, confidence=conf, k=k, max_id=max_id, probs_k=probs_k, raw=preds)
