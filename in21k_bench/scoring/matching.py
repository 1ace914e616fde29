"""Exact one-to-one matching of clusters to labels on the sparse contingency table.

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

MATCHING = "hungarian-one-to-one"  # the matching's name in results

__all__ = [
    "MATCHING",
    "Matching",
    "contingency",
    "forced_pairs",
    "max_agreement_matching",
    "match_clusters",
    "dense_matching",
]


def contingency(
    labels: np.ndarray, clusters: np.ndarray, num_classes: int | None = None, num_clusters: int | None = None
) -> sp.csr_matrix:
    """Sparse C x K table: entry (l, k) = number of samples with label ``l`` and cluster ``k`` (int64 CSR,
    sorted indices, no explicit zeros). Never a dense C x K array."""
    labels = np.asarray(labels, dtype=np.int64)
    clusters = np.asarray(clusters, dtype=np.int64)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(
            f"contingency: expected two 1-d arrays of equal length, found {labels.shape} and {clusters.shape}"
        )
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


def forced_pairs(
    rows: np.ndarray, cols: np.ndarray, w: np.ndarray, max_rounds: int = 8
) -> tuple[np.ndarray, np.ndarray]:
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
        (
            np.concatenate([M - wf, np.full(R, M)]),
            (np.concatenate([ri_, np.arange(R)]), np.concatenate([ci_, Kc + np.arange(R)])),
        ),
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
