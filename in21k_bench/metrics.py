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

Before LAPJVsp runs, :func:`forced_pairs` fixes the edges that some optimal matching is sure to contain
(an exact reduction, not a heuristic): if an edge ``(l, k)`` weighs at least (the largest
other weight in row ``l``) + (the largest other weight in column ``k``), some optimal matching contains
it -- take any optimal matching, drop the edges it uses at ``l`` and at ``k`` (they weigh at most those two
maxima together) and add ``(l, k)``: the weight does not decrease. Fixing it leaves the same problem on the
other rows and columns, whose maxima can only shrink, so a whole set of such edges that forms a matching
can be fixed at once, and the rule is applied again on what is left. On clustering tables most labels have
such a dominant cluster; LAPJVsp then only solves the small contested remainder.
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
    "LabelMatrixIndex",
    "contingency",
    "forced_pairs",
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
    sorted indices, no explicit zeros). Never a dense C x K array."""
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(f"contingency: expected two 1-d arrays of equal length, found {labels.shape} and {clusters.shape}")
    C = int(num_classes) if num_classes is not None else int(labels.max(initial=-1)) + 1
    K = int(num_clusters) if num_clusters is not None else int(clusters.max(initial=-1)) + 1
    m = sp.csr_matrix((np.ones(len(labels), dtype=np.int64), (labels, clusters)), shape=(C, K))
    m.sum_duplicates()  # per-row sort + sum of repeated (label, cluster) pairs -> canonical CSR
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


def _other_max(v: np.ndarray, starts: np.ndarray, grp: np.ndarray) -> np.ndarray:
    """Per entry of a grouped array (groups = contiguous runs starting at ``starts``, ``grp`` = group of
    each entry, ``v >= 0``): the largest value among the *other* entries of its group (0 if none)."""
    m1 = np.maximum.reduceat(v, starts)
    is1 = v == m1[grp]
    ties = np.add.reduceat(is1.astype(np.int64), starts) >= 2
    m2 = np.where(ties, m1, np.maximum.reduceat(np.where(is1, 0, v), starts))
    return np.where(is1, m2[grp], m1[grp])


def _groups(keys_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run starts and the run id of every entry of an array whose equal values are contiguous."""
    first = np.ones(len(keys_sorted), dtype=bool)
    first[1:] = keys_sorted[1:] != keys_sorted[:-1]
    return np.flatnonzero(first), np.cumsum(first) - 1


def forced_pairs(rows: np.ndarray, cols: np.ndarray, w: np.ndarray, max_rounds: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Exact reduction of a maximum-weight matching (see the module docstring).

    ``rows`` (sorted, non-negative), ``cols`` (non-negative), ``w`` (> 0): the edges of a bipartite graph,
    one entry per (row, col). Returns ``(fixed, rest)``, two boolean masks over the edges: ``fixed`` forms
    a matching contained in some maximum-weight matching; ``rest`` are the edges whose row and column are
    both still free. The optimum equals ``w[fixed].sum()`` + the optimum on the ``rest`` edges."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    w = np.asarray(w)
    n = len(w)
    fixed = np.zeros(n, dtype=bool)
    alive = np.ones(n, dtype=bool)
    if n == 0:
        return fixed, alive
    if (np.diff(rows) < 0).any():
        raise ValueError("forced_pairs: expected edges sorted by row, found them unsorted")
    # edges grouped by column: CSR -> CSC is a counting sort (any grouping by column will do)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows))])
    corder = sp.csr_matrix((np.arange(n), cols, indptr), shape=(len(indptr) - 1, int(cols.max()) + 1)).tocsc().data
    cur = np.arange(n)  # edges still in play, in row order
    ccur = corder  # the same edges, grouped by column
    for _ in range(max_rounds):
        r, wc = rows[cur], w[cur]
        rstarts, rgrp = _groups(r)
        cstarts, cgrp = _groups(cols[ccur])
        pos = np.empty(n, dtype=np.int64)
        pos[cur] = np.arange(len(cur))
        cp = pos[ccur]  # column-grouped position -> row-ordered position
        other_c = np.empty_like(wc)
        other_c[cp] = _other_max(wc[cp], cstarts, cgrp)
        cand = np.flatnonzero(wc >= _other_max(wc, rstarts, rgrp) + other_c)
        if len(cand) == 0:
            break
        cgrp_of = np.empty(len(cur), dtype=np.int64)
        cgrp_of[cp] = cgrp
        # only ties can put two candidates in one row / column; either one is safe, keep the first
        cand = cand[np.unique(rgrp[cand], return_index=True)[1]]
        cand = cand[np.unique(cgrp_of[cand], return_index=True)[1]]
        fixed[cur[cand]] = True
        row_free = np.ones(len(rstarts), dtype=bool)
        row_free[rgrp[cand]] = False
        col_free = np.ones(len(cstarts), dtype=bool)
        col_free[cgrp_of[cand]] = False
        keep = row_free[rgrp] & col_free[cgrp_of]
        alive[cur[~keep]] = False
        cur = cur[keep]
        ccur = ccur[alive[ccur]]
        if len(cur) == 0 or len(cand) * 100 < len(rstarts):  # little left to gain from another round
            break
    return fixed, alive


def _lapjvsp(r: np.ndarray, c: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-weight matching of the bipartite graph with edges (r, c, w > 0) via LAPJVsp, with one
    private dummy column per row so that a full matching always exists. Returns matched (rows, cols)."""
    rows_used = np.unique(r)
    cols_used = np.unique(c)
    ri_ = np.searchsorted(rows_used, r)
    ci_ = np.searchsorted(cols_used, c)
    R, Kc = len(rows_used), len(cols_used)
    wf = w.astype(np.float64)
    M = float(wf.max()) + 1.0
    # real edges cost M - w in [1, M - 1]; the dummy column K_c + i of row i costs M
    big = sp.csr_matrix(
        (np.concatenate([M - wf, np.full(R, M)]), (np.concatenate([ri_, np.arange(R)]), np.concatenate([ci_, Kc + np.arange(R)]))),
        shape=(R, Kc + R),
    )
    ri, ci = min_weight_full_bipartite_matching(big)
    real = ci < Kc
    return rows_used[ri[real]].astype(np.int64), cols_used[ci[real]].astype(np.int64)


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
    table.sum_duplicates()
    coo = table.tocoo()  # row-major, so rows are sorted
    r = coo.row.astype(np.int64)
    c = coo.col.astype(np.int64)
    w = coo.data
    if w.dtype.kind in "iub":
        fixed, rest = forced_pairs(r, c, w)
    else:  # float weights: a rounded sum in the dominance test could fix a pair by mistake; solve it all
        fixed, rest = np.zeros(len(w), dtype=bool), np.ones(len(w), dtype=bool)
    lab, clu = r[fixed], c[fixed]
    if rest.any():
        lr, lc = _lapjvsp(r[rest], c[rest], w[rest])
        lab, clu = np.concatenate([lab, lr]), np.concatenate([clu, lc])
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


class LabelMatrixIndex:
    """Membership tests for label sets that depend on the label only (hierarchy / self sets): ``S_i = row
    labels[i]`` of a boolean C x C matrix (``Benchmark.label_matrix()``). ``f(pred) in S_L`` is then one
    lookup of (label, mapped label) in a C x C bit table (C^2 / 8 bytes: 13.7 MB at C = 10,450); above
    ``max_bits`` a sorted-key search is used instead."""

    def __init__(self, label_matrix: sp.spmatrix, max_bits: int = 1 << 30):
        m = sp.csr_matrix(label_matrix)
        if m.shape[0] != m.shape[1]:
            raise ValueError(f"LabelMatrixIndex: expected a square C x C label matrix, found shape {m.shape}")
        m.eliminate_zeros()
        m.sum_duplicates()
        self.C = int(m.shape[0])
        rows = np.repeat(np.arange(self.C, dtype=np.int64), np.diff(m.indptr))
        keys = rows * self.C + m.indices.astype(np.int64)  # sorted (canonical CSR)
        if self.C * self.C <= max_bits:
            self.bits = np.zeros((self.C * self.C + 7) // 8, dtype=np.uint8)
            np.bitwise_or.at(self.bits, keys >> 3, (np.uint8(1) << (keys & 7).astype(np.uint8)))
            self.keys = None
        else:
            self.bits, self.keys = None, keys

    def contains(self, labels: np.ndarray, mapped: np.ndarray) -> np.ndarray:
        """``mapped`` (N,) or (N, j) labels, tested against the set of ``labels`` (N,) -> bool of the shape
        of ``mapped``; negative entries (unmatched clusters) are never in."""
        dt = np.int32 if self.C * self.C < 2**31 else np.int64  # keys fit: half the memory traffic
        labels = np.asarray(labels).astype(dt, copy=False)
        mapped = np.asarray(mapped)
        lab = labels if mapped.ndim == 1 else labels[:, None]
        q = np.maximum(mapped, 0).astype(dt, copy=False)
        q += lab * dt(self.C)
        if self.bits is not None:
            hit = self.bits[q >> 3]
            hit >>= (q & 7).astype(np.uint8)
            hit &= np.uint8(1)
            return hit.view(bool) & (mapped >= 0)
        if len(self.keys) == 0:
            return np.zeros(mapped.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return (self.keys[pos] == q) & (mapped >= 0)


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


def _set_hits(mapped: np.ndarray, labels: np.ndarray, sets_idx) -> np.ndarray | None:
    """(N, j) bool: mapped[i, j] in S_i, with ``sets_idx`` a :class:`SetIndex` (per-sample sets) or a
    :class:`LabelMatrixIndex` (per-label sets)."""
    if sets_idx is None:
        return None
    if isinstance(sets_idx, LabelMatrixIndex):
        return sets_idx.contains(labels, mapped)
    return sets_idx.contains_aligned(mapped)


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def _single(top1, labels, topk, confidence, sets_idx, C, K, with_details: bool) -> dict:
    table = contingency(labels, top1, C, K)
    m = max_agreement_matching(table)
    f = m.cluster_to_label
    mapped = f[top1]
    correct = mapped == labels
    n = len(labels)
    top1_L = top5_1 = top5_L = None
    if topk is not None:
        first_is_top1 = np.array_equal(topk[:, 0], top1)
        mk = f[topk[:, :5]] if first_is_top1 else np.concatenate([mapped[:, None], f[topk[:, :5]]], axis=1)
        top5_1 = _mean((mk[:, int(not first_is_top1) :] == labels[:, None]).any(axis=1))
        hits = _set_hits(mk, labels, sets_idx)
        if hits is not None:
            top1_L = _mean(hits[:, 0])
            top5_L = _mean(hits[:, int(not first_is_top1) :].any(axis=1))
    elif sets_idx is not None:
        top1_L = _mean(_set_hits(mapped[:, None], labels, sets_idx)[:, 0])
    out = {
        "acc": m.agreements / n if n else float("nan"),
        "top1_L": top1_L,
        "top5_1": top5_1,
        "top5_L": top5_L,
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
    label_matrix: sp.spmatrix | None = None,
    real_protocol: bool = False,
    num_draws: int = REAL_DRAWS,
    progress: bool | None = None,
) -> dict:
    """All metrics as a dict (see :func:`evaluate_arrays`). Inputs are assumed valid (ids in range).

    Label sets for top-1 -> L / top-5 -> L come either per sample (``label_sets``, N x C) or per label
    (``label_matrix``, C x C, sample i's set = row ``labels[i]``; hierarchy / self sets, much faster at
    scale); give at most one. The ReaL protocol needs ``label_sets``.

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
    if label_sets is not None and label_matrix is not None:
        raise ValueError("compute_metrics: expected label_sets (N x C) or label_matrix (C x C), found both")
    if label_matrix is not None and (real_protocol or label_matrix.shape != (C, C)):
        raise ValueError(f"compute_metrics: expected a ({C}, {C}) label_matrix outside the ReaL protocol, found shape {label_matrix.shape}")
    if not real_protocol:
        labels = np.asarray(labels, dtype=np.int64)
        if label_matrix is not None:
            sets_idx = LabelMatrixIndex(label_matrix)
        else:
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
