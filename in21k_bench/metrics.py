"""Evaluation metrics on plain arrays (SPEC section 3).

Everything here is a pure function of numpy / scipy arrays; :func:`evaluate_arrays` bundles them into an
:class:`~in21k_bench.evaluate.EvaluationResult`. File formats and benchmark binding live in
:mod:`in21k_bench.evaluate`.

Matching
--------
The cluster -> label map ``f`` is the one-to-one matching that maximises the number of agreements between
top-1 predictions and labels (the classical "Hungarian" clustering accuracy). :func:`max_agreement_matching`
solves it exactly on the *sparse* C x K contingency table with scipy's LAPJVsp solver
(:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`). A sparse table usually has no full
matching, so every label row ``i`` gets a private dummy column with cost ``M`` while a real edge with
``w`` agreements costs ``M - w`` (``M = max w + 1``, so every cost is a positive integer, exactly
representable). A full matching of the rows always exists (all dummies), and for any set of real edges
that forms a matching, completing it with dummies costs ``rows * M - agreements``. Minimising the cost
therefore maximises the agreements, and because all entries of the dense table are >= 0, that maximum is
exactly the optimum of ``scipy.optimize.linear_sum_assignment(dense, maximize=True)`` (a dense optimal
assignment can drop its zero pairs without loss). Clusters that are not matched through a real edge
(no sample of theirs carries the matched label) get ``f = -1`` and never count as a hit in any metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

NUM_ECE_BINS = 15
REAL_DRAWS = 50
MATCHING = "hungarian-one-to-one"

__all__ = [
    "Matching",
    "contingency",
    "max_agreement_matching",
    "match_clusters",
    "accuracy",
    "set_membership",
    "topk_accuracy",
    "nmi",
    "ari",
    "ece",
    "reliability",
    "majority_vote_accuracy",
    "per_class_accuracy",
    "real_draws",
    "compute_metrics",
    "evaluate_arrays",
]


# ---------------------------------------------------------------------------------------------------
# contingency and matching


def contingency(labels: np.ndarray, clusters: np.ndarray, num_classes: int | None = None, num_clusters: int | None = None) -> sp.csr_matrix:
    """Sparse C x K table: entry (l, k) = number of samples with label ``l`` and cluster ``k`` (int64 CSR,
    sorted indices, no explicit zeros). Built by sorting keys, never a dense C x K array."""
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(f"contingency: expected two 1-d arrays of equal length, found {labels.shape} and {clusters.shape}")
    C = int(num_classes) if num_classes is not None else int(labels.max(initial=-1)) + 1
    K = int(num_clusters) if num_clusters is not None else int(clusters.max(initial=-1)) + 1
    keys, counts = np.unique(labels * K + clusters, return_counts=True)
    m = sp.csr_matrix((counts.astype(np.int64), (keys // K, keys % K)), shape=(C, K))
    m.sort_indices()
    return m


@dataclass
class Matching:
    """Result of the one-to-one matching.

    ``cluster_to_label[k]`` = f(k) or -1; ``label_to_cluster[l]`` = f^-1(l) or -1; ``agreements`` = number
    of samples whose top-1 cluster maps to their label (the optimum)."""

    cluster_to_label: np.ndarray
    label_to_cluster: np.ndarray
    agreements: int
    pairs: tuple[np.ndarray, np.ndarray] = field(repr=False, default=None)  # (labels, clusters) of real edges


def max_agreement_matching(table: sp.spmatrix) -> Matching:
    """Exact maximum-weight one-to-one matching on a non-negative sparse C x K table (see module docstring)."""
    table = sp.csr_matrix(table)
    table.eliminate_zeros()
    C, K = table.shape
    c2l = np.full(K, -1, dtype=np.int64)
    l2c = np.full(C, -1, dtype=np.int64)
    empty = Matching(c2l, l2c, 0, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
    if table.nnz == 0:
        return empty
    if table.data.min() < 0:
        raise ValueError("max_agreement_matching: expected a non-negative table, found negative entries")
    coo = table.tocoo()
    rows_used = np.unique(coo.row)
    cols_used = np.unique(coo.col)
    r = np.searchsorted(rows_used, coo.row)
    c = np.searchsorted(cols_used, coo.col)
    R, Kc = len(rows_used), len(cols_used)
    w = coo.data.astype(np.float64)
    M = float(w.max()) + 1.0
    # real edges cost M - w in [1, M - 1]; the dummy column K_c + i of row i costs M
    big = sp.csr_matrix(
        (np.concatenate([M - w, np.full(R, M)]), (np.concatenate([r, np.arange(R)]), np.concatenate([c, Kc + np.arange(R)]))),
        shape=(R, Kc + R),
    )
    ri, ci = min_weight_full_bipartite_matching(big)
    real = ci < Kc
    lab = rows_used[ri[real]].astype(np.int64)
    clu = cols_used[ci[real]].astype(np.int64)
    c2l[clu] = lab
    l2c[lab] = clu
    agreements = int(np.asarray(table[lab, clu]).sum()) if len(lab) else 0
    return Matching(c2l, l2c, agreements, (lab, clu))


def match_clusters(top1: np.ndarray, labels: np.ndarray, num_classes: int, num_clusters: int) -> Matching:
    """f estimated from top-1 predictions and labels."""
    return max_agreement_matching(contingency(labels, top1, num_classes, num_clusters))


def dense_matching(top1: np.ndarray, labels: np.ndarray, num_classes: int, num_clusters: int) -> Matching:
    """Reference: ``linear_sum_assignment`` on the dense C x K table (memory O(C K); tests and baselines only).
    Zero-agreement pairs are dropped so the map is comparable with :func:`max_agreement_matching`."""
    from scipy.optimize import linear_sum_assignment

    dense = np.zeros((num_classes, num_clusters), dtype=np.float64)
    np.add.at(dense, (np.asarray(labels, np.int64), np.asarray(top1, np.int64)), 1.0)
    ri, ci = linear_sum_assignment(dense, maximize=True)
    keep = dense[ri, ci] > 0
    c2l = np.full(num_clusters, -1, dtype=np.int64)
    l2c = np.full(num_classes, -1, dtype=np.int64)
    c2l[ci[keep]] = ri[keep]
    l2c[ri[keep]] = ci[keep]
    return Matching(c2l, l2c, int(dense[ri, ci].sum()), (ri[keep].astype(np.int64), ci[keep].astype(np.int64)))


# ---------------------------------------------------------------------------------------------------
# accuracies


def _mapped(cluster_to_label: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    return cluster_to_label[np.asarray(clusters, dtype=np.int64)]


def accuracy(top1: np.ndarray, labels: np.ndarray, cluster_to_label: np.ndarray) -> float:
    """ACC (top-1 -> 1): fraction of samples with f(pred) == label."""
    labels = np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(_mapped(cluster_to_label, top1) == labels))


class SetIndex:
    """Fast membership tests ``col in row i`` for a boolean CSR label-set matrix (N x C)."""

    def __init__(self, label_sets: sp.spmatrix):
        m = sp.csr_matrix(label_sets)
        m.eliminate_zeros()
        m.sort_indices()
        self.shape = m.shape
        self.C = int(m.shape[1])
        self.lengths = np.diff(m.indptr)
        self.indptr = m.indptr.astype(np.int64)
        self.indices = m.indices
        self._pad = None
        self._keys = None

    @property
    def keys(self) -> np.ndarray:
        """Sorted int64 keys ``row * C + col`` of all members (built on first use)."""
        if self._keys is None:
            rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), self.lengths)
            self._keys = rows * self.C + self.indices.astype(np.int64)
        return self._keys

    def contains_aligned(self, mapped: np.ndarray) -> np.ndarray:
        """``mapped`` (N, j) labels, row i tested against set i -> (N, j) bool. Small sets (the usual case:
        ancestors, ReaL) are compared column by column against a padded (rows x max set size) table."""
        mapped = np.asarray(mapped, dtype=np.int64)
        n, j = mapped.shape
        if n != self.shape[0]:
            raise ValueError(f"contains_aligned: expected {self.shape[0]} rows, found {n}")
        width = int(self.lengths.max(initial=0))
        if width > 64:
            rows = np.repeat(np.arange(n, dtype=np.int64), j)
            return self.contains(rows, mapped.ravel()).reshape(n, j)
        out = np.zeros((n, j), dtype=bool)
        if width == 0:
            return out
        if self._pad is None:  # (width, N): w-th member of every set, -2 = padding; built once
            pad = np.full((width, n), -2, dtype=np.int32)
            starts = self.indptr[:-1]
            for w in range(width):
                has = np.flatnonzero(self.lengths > w)
                pad[w, has] = self.indices[starts[has] + w]
            self._pad = pad
        mapped32 = np.where(mapped >= 0, mapped, -1).astype(np.int32)
        for w in range(width):
            out |= mapped32 == self._pad[w][:, None]
        return out

    def contains(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Boolean array: ``cols[j]`` is in the set of ``rows[j]``; negative cols (unmatched) are never in."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.zeros(cols.shape, dtype=bool)
        ok = (cols >= 0) & (cols < self.C)
        q = rows[ok] * self.C + cols[ok]
        if len(self.keys) == 0:
            return out
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        out[ok] = self.keys[pos] == q
        return out


def set_membership(label_sets, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    idx = label_sets if isinstance(label_sets, SetIndex) else SetIndex(label_sets)
    return idx.contains(rows, cols)


def topk_accuracy(topk: np.ndarray, labels: np.ndarray | None, cluster_to_label: np.ndarray, label_sets=None, k: int = 5) -> float:
    """Fraction of samples whose first ``k`` ranked clusters, mapped through f, hit the label
    (``label_sets`` None) or hit the sample's label set."""
    topk = np.asarray(topk, dtype=np.int64)
    if topk.ndim == 1:
        topk = topk[:, None]
    n = topk.shape[0]
    if n == 0:
        return float("nan")
    mapped = _mapped(cluster_to_label, topk[:, :k])
    if label_sets is None:
        hit = (mapped == np.asarray(labels, dtype=np.int64)[:, None]) & (mapped >= 0)
    else:
        idx = label_sets if isinstance(label_sets, SetIndex) else SetIndex(label_sets)
        hit = idx.contains_aligned(mapped)
    return float(hit.any(axis=1).mean())


def majority_vote_accuracy(top1: np.ndarray, labels: np.ndarray, num_classes: int | None = None, num_clusters: int | None = None) -> float:
    """Many-to-one ACC: every cluster takes its most frequent label (NOT the one-to-one ACC; with K > C it
    can only be higher)."""
    return _majority_from_table(contingency(labels, top1, num_classes, num_clusters), len(labels))


def _majority_from_table(table: sp.spmatrix, n: int) -> float:
    t = sp.csc_matrix(table)
    if t.nnz == 0 or n == 0:
        return float("nan")
    return float(np.asarray(t.max(axis=0).todense()).sum() / n)


def per_class_accuracy(top1: np.ndarray, labels: np.ndarray, cluster_to_label: np.ndarray, num_classes: int) -> np.ndarray:
    """Per label l: fraction of its samples with f(pred) == l (float64, NaN for labels without samples)."""
    labels = np.asarray(labels, dtype=np.int64)
    hit = _mapped(cluster_to_label, top1) == labels
    n = np.bincount(labels, minlength=num_classes).astype(np.float64)
    h = np.bincount(labels, weights=hit.astype(np.float64), minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, h / np.maximum(n, 1), np.nan)


# ---------------------------------------------------------------------------------------------------
# NMI / ARI on the sparse contingency table (same conventions as scikit-learn)


def nmi(labels: np.ndarray, clusters: np.ndarray, table: sp.spmatrix | None = None) -> float:
    """Normalised mutual information with arithmetic-mean normalisation (scikit-learn's default)."""
    t = sp.csr_matrix(table) if table is not None else contingency(labels, clusters)
    t.eliminate_zeros()
    a = np.asarray(t.sum(axis=1)).ravel().astype(np.float64)
    b = np.asarray(t.sum(axis=0)).ravel().astype(np.float64)
    a, b = a[a > 0], b[b > 0]
    if (len(a) == len(b) == 1) or (len(a) == len(b) == 0):
        return 1.0
    n = float(a.sum())
    coo = t.tocoo()
    nij = coo.data.astype(np.float64)
    rs = np.asarray(t.sum(axis=1)).ravel().astype(np.float64)
    cs = np.asarray(t.sum(axis=0)).ravel().astype(np.float64)
    mi = float(np.sum(nij / n * (np.log(nij) + np.log(n) - np.log(rs[coo.row]) - np.log(cs[coo.col]))))
    mi = max(mi, 0.0)
    if abs(mi) < np.finfo(np.float64).eps:
        return 0.0
    h_a = float(-np.sum(a / n * (np.log(a) - np.log(n))))
    h_b = float(-np.sum(b / n * (np.log(b) - np.log(n))))
    return float(mi / max((h_a + h_b) / 2.0, np.finfo(np.float64).eps))


def ari(labels: np.ndarray, clusters: np.ndarray, table: sp.spmatrix | None = None) -> float:
    """Adjusted Rand index from pair counts (exact integer arithmetic)."""
    t = sp.csr_matrix(table) if table is not None else contingency(labels, clusters)
    d = t.data.astype(np.int64)
    n = int(d.sum())
    sum_sq = int(np.sum(d.astype(object) ** 2)) if n > 3_000_000_000 else int(np.sum(d * d))
    a = np.asarray(t.sum(axis=1)).ravel().astype(np.int64)
    b = np.asarray(t.sum(axis=0)).ravel().astype(np.int64)
    sa, sb = int(np.sum(a * a)), int(np.sum(b * b))
    tp = sum_sq - n
    fp = sb - sum_sq  # same cluster, different label
    fn = sa - sum_sq  # same label, different cluster
    tn = n * n - tp - fp - fn - n
    if fn == 0 and fp == 0:
        return 1.0
    return float(2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)))


# ---------------------------------------------------------------------------------------------------
# calibration


def reliability(confidence: np.ndarray, correct: np.ndarray, num_bins: int = NUM_ECE_BINS) -> dict:
    """Per equal-width confidence bin ``(lo, hi]`` (the first bin also takes 0): count, mean confidence,
    accuracy (None for empty bins), plus the ECE. ``confidence`` = max softmax probability."""
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    b = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(b, minlength=num_bins)
    sconf = np.bincount(b, weights=conf, minlength=num_bins)
    sacc = np.bincount(b, weights=corr.astype(np.float64), minlength=num_bins)
    n = max(len(conf), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mconf = np.where(count > 0, sconf / np.maximum(count, 1), np.nan)
        macc = np.where(count > 0, sacc / np.maximum(count, 1), np.nan)
    ece_v = float(np.nansum(count / n * np.abs(macc - mconf))) if len(conf) else float("nan")
    return {
        "edges": edges.tolist(),
        "count": count.astype(int).tolist(),
        "confidence": [None if np.isnan(x) else float(x) for x in mconf],
        "accuracy": [None if np.isnan(x) else float(x) for x in macc],
        "ece": ece_v,
    }


def ece(confidence: np.ndarray, correct: np.ndarray, num_bins: int = NUM_ECE_BINS) -> float:
    """Expected calibration error: sum over bins of (bin share) * |accuracy - mean confidence|."""
    return reliability(confidence, correct, num_bins)["ece"]


# ---------------------------------------------------------------------------------------------------
# ReaL protocol


def real_draws(label_sets: sp.spmatrix, num_draws: int = REAL_DRAWS, first_seed: int = 0):
    """Yield ``(seed, labels)``: one label per image drawn uniformly from its set with
    ``numpy.random.default_rng(seed)``, seeds ``first_seed .. first_seed + num_draws - 1``.
    Every row must be non-empty."""
    m = sp.csr_matrix(label_sets)
    m.eliminate_zeros()
    m.sort_indices()
    lengths = np.diff(m.indptr)
    if (lengths == 0).any():
        raise ValueError("real_draws: expected a non-empty set in every row, found empty rows (exclude them first)")
    for seed in range(first_seed, first_seed + num_draws):
        rng = np.random.default_rng(seed)
        pick = m.indptr[:-1] + np.minimum((rng.random(len(lengths)) * lengths).astype(np.int64), lengths - 1)
        yield seed, m.indices[pick].astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# everything together


def _single(top1, labels, topk, confidence, sets_idx, C, K, with_details: bool) -> dict:
    table = contingency(labels, top1, C, K)
    m = max_agreement_matching(table)
    f = m.cluster_to_label
    mapped = f[top1]
    correct = mapped == labels
    n = len(labels)
    out = {
        "acc": m.agreements / n if n else float("nan"),
        "top1_L": float(sets_idx.contains_aligned(mapped[:, None]).mean()) if sets_idx is not None else None,
        "top5_1": topk_accuracy(topk, labels, f, None, 5) if topk is not None else None,
        "top5_L": topk_accuracy(topk, labels, f, sets_idx, 5) if (topk is not None and sets_idx is not None) else None,
        "nmi": nmi(labels, top1, table),
        "ari": ari(labels, top1, table),
        "ece": ece(confidence, correct) if confidence is not None else None,
        "majority_acc": _majority_from_table(table, n),
    }
    if with_details:
        out["_matching"] = m
        out["_correct"] = correct
        out["per_class_acc"] = per_class_accuracy(top1, labels, f, C)
        out["reliability"] = reliability(confidence, correct) if confidence is not None else None
    return out


def compute_metrics(
    top1: np.ndarray,
    labels: np.ndarray | None,
    *,
    num_classes: int,
    num_clusters: int,
    topk: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    label_sets: sp.spmatrix | None = None,
    real_protocol: bool = False,
    num_draws: int = REAL_DRAWS,
    progress: bool | None = None,
) -> dict:
    """All metrics as a dict (see :func:`evaluate_arrays`). Inputs are assumed valid (ids in range).

    ``real_protocol``: ``labels`` is ignored; ``num_draws`` label draws from ``label_sets`` (seeds 0..49),
    f re-estimated per draw; every metric is the mean over draws and ``<metric>_std`` its standard
    deviation (ddof=0). Rows with an empty label set are excluded first (``n`` = the remaining count).
    """
    top1 = np.asarray(top1, dtype=np.int64)
    topk = None if topk is None else np.asarray(topk, dtype=np.int64)
    if topk is not None and topk.shape[1] < 5:
        topk_for5 = None
    else:
        topk_for5 = topk
    C, K = int(num_classes), int(num_clusters)
    if not real_protocol:
        labels = np.asarray(labels, dtype=np.int64)
        sets_idx = SetIndex(label_sets) if label_sets is not None else None
        out = _single(top1, labels, topk_for5, confidence, sets_idx, C, K, True)
        m = out.pop("_matching")
        out.pop("_correct")
        out["n"] = int(len(top1))
        out["cluster_to_label"] = m.cluster_to_label
        return out

    if label_sets is None:
        raise ValueError("compute_metrics: the ReaL protocol needs label_sets")
    sets = sp.csr_matrix(label_sets)
    sets.eliminate_zeros()
    keep = np.diff(sets.indptr) > 0
    if not keep.all():
        sets, top1 = sets[keep], top1[keep]
        topk_for5 = None if topk_for5 is None else topk_for5[keep]
        confidence = None if confidence is None else np.asarray(confidence)[keep]
    sets_idx = SetIndex(sets)
    from tqdm.auto import tqdm

    runs = []
    for _, draw in tqdm(real_draws(sets, num_draws), total=num_draws, desc="ReaL draws", disable=None if progress is None else not progress):
        runs.append(_single(top1, draw, topk_for5, confidence, sets_idx, C, K, False))
    out: dict = {"n": int(len(top1)), "num_draws": int(num_draws), "excluded_empty_sets": int((~keep).sum())}
    for key in ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari", "ece", "majority_acc"):
        vals = [r[key] for r in runs]
        if vals and vals[0] is not None:
            out[key] = float(np.mean(vals))
            out[f"{key}_std"] = float(np.std(vals))
        else:
            out[key] = None
            out[f"{key}_std"] = None
    # per-class accuracy and reliability of the first draw (seed 0) for plots
    first = _single(top1, next(iter(real_draws(sets, 1)))[1], topk_for5, confidence, sets_idx, C, K, True)
    out["per_class_acc"] = first["per_class_acc"]
    out["reliability"] = first["reliability"]
    out["cluster_to_label"] = first["_matching"].cluster_to_label
    return out


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
):
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
    from .evaluate import EvaluationResult, PredictionArrays, validate_predictions

    preds = validate_predictions(
        PredictionArrays(top1=top1, topk=topk, probs=probs, confidence=confidence),
        n_expected=None,
        num_clusters=num_clusters,
        what=benchmark,
    )
    if real_protocol:
        if label_sets is None:
            from .errors import InvalidInputError

            raise InvalidInputError(f"{benchmark}: the ReaL protocol needs label_sets (N x C CSR), found none")
        C = int(num_classes) if num_classes is not None else int(label_sets.shape[1])
        lab = None
    else:
        lab = _check_labels(labels, preds.n, benchmark)
        C = int(num_classes) if num_classes is not None else (int(label_sets.shape[1]) if label_sets is not None else int(lab.max(initial=-1)) + 1)
    _check_sets(label_sets, preds.n, C, benchmark)
    K = preds.num_clusters(num_clusters, C)
    res = compute_metrics(
        preds.top1,
        lab,
        num_classes=C,
        num_clusters=K,
        topk=preds.topk,
        confidence=preds.confidence,
        label_sets=label_sets,
        real_protocol=real_protocol,
        num_draws=num_draws,
    )
    return EvaluationResult.from_metrics(
        res,
        benchmark=benchmark,
        version=version,
        num_classes=C,
        num_clusters=K,
        k=preds.k,
        predictions_sha256=predictions_sha256 or preds.sha256(),
    )


def _check_labels(labels, n, what):
    from .errors import InvalidInputError

    if labels is None:
        raise InvalidInputError(f"{what}: expected labels (N,) int, found none")
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n or not np.issubdtype(lab.dtype, np.integer):
        raise InvalidInputError(f"{what}: expected labels as an int array of shape ({n},), found {lab.dtype} {lab.shape}")
    if n and lab.min() < 0:
        raise InvalidInputError(f"{what}: expected labels >= 0, found {int(lab.min())}")
    return lab.astype(np.int64)


def _check_sets(label_sets, n, C, what):
    from .errors import InvalidInputError

    if label_sets is None:
        return
    if not sp.issparse(label_sets) or label_sets.shape != (n, C):
        found = label_sets.shape if hasattr(label_sets, "shape") else type(label_sets).__name__
        raise InvalidInputError(f"{what}: expected label_sets as a sparse ({n}, {C}) boolean matrix, found {found}")
