"""Evaluation metrics on plain arrays.

Everything here is a pure function of numpy / scipy arrays. The cluster -> label map ``f`` comes from
:mod:`in21k_bench.scoring.matching`; which labels count for each sample comes from a label protocol
(:mod:`in21k_bench.scoring.label_protocols`); which metrics exist and how they are aggregated from
:mod:`in21k_bench.scoring.metric_spec`. :func:`score` puts them together; file formats, validation and
benchmark binding live in :mod:`in21k_bench.evaluate`.

Over-clustering (K > C)
-----------------------
Three accuracies are reported, and they answer different questions:

- ``acc``: one-to-one Hungarian ACC. At most C clusters can be matched; samples of every other
  cluster count as wrong.
- ``majority_acc``: many-to-one. Every cluster takes its most frequent label; grows with K and reaches
  1 when every sample has its own cluster.
- ``acc_temi_overcluster`` (K > C only): the number TEMI's evaluation code prints for over-clustering
  (``compute_metrics`` in ``utils.py`` of HHU-MMBS/TEMI-official-BMVC2023): the Hungarian matching
  first, then every cluster left unmatched takes its majority label. When several maximum matchings
  exist, that number depends on which one the solver returns; here the tie is broken towards the
  matching that leaves the clusters with the largest majority counts unmatched (see
  :func:`temi_overcluster_accuracy`), so the value is a function of the table alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .label_protocols import (
    REAL_DRAWS,
    FixedLabels,
    LabelAndAncestors,
    LabelMatrixIndex,
    LabelProtocol,
    PerSampleSets,
    RealSets,
    SetIndex,
    real_draws,
)
from .matching import (
    MATCHING,
    Matching,
    contingency,
    dense_matching,
    forced_pairs,
    match_clusters,
    max_agreement_matching,
)
from .metric_spec import METRICS, NUM_ECE_BINS

EXACT_FLOAT_LIMIT = 2.0**52  # composite matching weights must stay exact in float64

__all__ = [
    "MATCHING",
    "NUM_ECE_BINS",
    "REAL_DRAWS",
    "Matching",
    "SetIndex",
    "LabelMatrixIndex",
    "contingency",
    "forced_pairs",
    "max_agreement_matching",
    "match_clusters",
    "dense_matching",
    "accuracy",
    "set_membership",
    "topk_accuracy",
    "nmi",
    "ari",
    "ece",
    "reliability",
    "majority_vote_accuracy",
    "temi_overcluster_accuracy",
    "per_class_accuracy",
    "real_draws",
    "score",
    "compute_metrics",
]


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


def set_membership(label_sets, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    idx = label_sets if isinstance(label_sets, SetIndex) else SetIndex(label_sets)
    return idx.contains(rows, cols)


def topk_accuracy(
    topk: np.ndarray, labels: np.ndarray | None, cluster_to_label: np.ndarray, label_sets=None, k: int = 5
) -> float:
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


def majority_vote_accuracy(
    top1: np.ndarray, labels: np.ndarray, num_classes: int | None = None, num_clusters: int | None = None
) -> float:
    """Many-to-one ACC: every cluster takes its most frequent label (NOT the one-to-one ACC; with K > C it
    can only be higher)."""
    return _majority_from_table(contingency(labels, top1, num_classes, num_clusters), len(labels))


def _majority_from_table(table: sp.spmatrix, n: int) -> float:
    t = sp.csc_matrix(table)
    if t.nnz == 0 or n == 0:
        return float("nan")
    return float(np.asarray(t.max(axis=0).todense()).sum() / n)


def temi_overcluster_accuracy(table: sp.spmatrix) -> float:
    """Over-clustering ACC as TEMI's evaluation code defines it, on a C x K contingency table.

    TEMI's rule: solve the one-to-one matching; if more clusters are used (hold samples) than labels
    occur, every cluster left without a label takes its majority label; otherwise the value is the
    plain Hungarian ACC. The result then depends on *which* maximum matching the solver returns (the
    leftover clusters differ). The tie-break used here: among all maximum-agreement matchings take one
    that maximises the final value, i.e. the agreements plus the majority counts of the unmatched used
    clusters; a cluster paired with a label it holds no sample of counts as unmatched. Computed exactly
    with one more matching on the integer weights ``w * (n + 1) + (w - colmax_k)`` (lexicographic: the
    agreements first, then the secondary term ``sum over matched (w - colmax_k)``, which lies in
    [-n, 0]), so TEMI's code can print this value or a lower one for the same table, never a higher one.
    Exact while ``(n + 1) * max(w) * (C + 1) < 2^52`` (the LAPJVsp costs stay exact in float64; IN-21K
    val: 2.9e15 < 4.5e15); beyond that the plain matching's tie-break is used, with a warning.
    """
    t = sp.csr_matrix(table).astype(np.int64)
    t.eliminate_zeros()
    n = int(t.sum())
    if n == 0:
        return float("nan")
    used = int((np.asarray(t.sum(axis=0)).ravel() > 0).sum())
    present = int((np.asarray(t.sum(axis=1)).ravel() > 0).sum())
    if used <= present:  # TEMI's code only reassigns when there are more clusters than labels
        return max_agreement_matching(t).agreements / n
    colmax = np.asarray(sp.csc_matrix(t).max(axis=0).todense()).ravel().astype(np.int64)
    coo = t.tocoo()
    w = coo.data.astype(np.int64)
    if float(n + 1) * float(w.max()) * float(t.shape[0] + 1) < EXACT_FLOAT_LIMIT:
        composite = w * (n + 1) + (w - colmax[coo.col])  # >= 2 for every edge
        m = max_agreement_matching(sp.csr_matrix((composite, (coo.row, coo.col)), shape=t.shape))
    else:  # composite costs would not be exact in float64 (far beyond IN-21K val scale): solver's tie-break
        warnings.warn(
            f"temi_overcluster_accuracy: n = {n:,} samples is too large for the exact tie-break; ties between maximum "
            "matchings are broken by the solver",
            stacklevel=2,
        )
        m = max_agreement_matching(t)
    lab, clu = m.pairs
    agreements = int(np.asarray(t[lab, clu]).sum()) if len(lab) else 0
    unmatched = np.ones(t.shape[1], dtype=bool)
    unmatched[clu] = False
    return float((agreements + int(colmax[unmatched].sum())) / n)


def per_class_accuracy(
    top1: np.ndarray, labels: np.ndarray, cluster_to_label: np.ndarray, num_classes: int
) -> np.ndarray:
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
# everything together


def _mean(x: np.ndarray) -> float:
    return float(x.mean()) if len(x) else float("nan")


def _single(top1, labels, topk, confidence, protocol: LabelProtocol, C, K, with_details: bool) -> dict:
    """Every metric for one label array (the scored rows only)."""
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
        skip = int(not first_is_top1)
        top5_1 = _mean((mk[:, skip:] == labels[:, None]).any(axis=1))
        hits = protocol.contains(labels, mk)
        if hits is not None:
            top1_L = _mean(hits[:, 0])
            top5_L = _mean(hits[:, skip:].any(axis=1))
    else:
        hits = protocol.contains(labels, mapped[:, None])
        if hits is not None:
            top1_L = _mean(hits[:, 0])
    out = {
        "acc": m.agreements / n if n else float("nan"),
        "top1_L": top1_L,
        "top5_1": top5_1,
        "top5_L": top5_L,
        "nmi": nmi(labels, top1, table),
        "ari": ari(labels, top1, table),
        "ece": ece(confidence, correct) if confidence is not None else None,
        "majority_acc": _majority_from_table(table, n),
        "acc_temi_overcluster": temi_overcluster_accuracy(table) if K > C else None,
    }
    if with_details:
        out["_matching"] = m
        out["per_class_acc"] = per_class_accuracy(top1, labels, f, C)
        out["reliability"] = reliability(confidence, correct) if confidence is not None else None
    return out


def score(
    top1: np.ndarray,
    protocol: LabelProtocol,
    *,
    num_clusters: int,
    topk: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    num_draws: int = REAL_DRAWS,
    progress: bool | None = None,
) -> dict:
    """Every metric of :data:`~in21k_bench.scoring.metric_spec.METRICS` for valid predictions (ids in range,
    one row per val row of ``protocol``) -> dict.

    Rows the protocol does not score are dropped. For each label draw of the protocol (one for fixed
    labels, ``num_draws`` for ReaL) f is estimated and every metric computed; with several draws each
    metric is the mean and ``<key>_std`` the population standard deviation (ddof=0), and the per-class
    accuracy, reliability bins and f are those of the first draw. Top-5 metrics need k >= 5 ranked
    clusters. The dict also holds ``n`` (scored rows), ``excluded_empty_sets``, ``num_draws`` (repeated
    protocols only), ``per_class_acc``, ``reliability`` and ``cluster_to_label``.
    """
    top1 = np.asarray(top1, dtype=np.int64)
    topk = None if topk is None or topk.shape[1] < 5 else np.asarray(topk, dtype=np.int64)
    keep = protocol.scored()
    if keep is not None:
        top1 = top1[keep]
        topk = None if topk is None else topk[keep]
        confidence = None if confidence is None else np.asarray(confidence)[keep]
    C, K = int(protocol.num_classes), int(num_clusters)
    excluded = 0 if keep is None else int((~keep).sum())
    if not protocol.repeated:
        out = _single(top1, next(iter(protocol.draws())), topk, confidence, protocol, C, K, True)
        out.update(
            n=int(len(top1)), excluded_empty_sets=excluded, cluster_to_label=out.pop("_matching").cluster_to_label
        )
        return out

    from tqdm.auto import tqdm

    runs, first = [], None
    for labels in tqdm(
        protocol.draws(num_draws),
        total=num_draws,
        desc="label draws",
        disable=None if progress is None else not progress,
    ):
        r = _single(top1, labels, topk, confidence, protocol, C, K, first is None)
        first = first or r
        runs.append(r)
    out: dict = {"n": int(len(top1)), "num_draws": int(num_draws), "excluded_empty_sets": excluded}
    for spec in METRICS:
        vals = [r[spec.key] for r in runs]
        ok = bool(vals) and vals[0] is not None
        out[spec.key] = float(np.mean(vals)) if ok else None
        out[spec.std_key] = float(np.std(vals)) if ok else None
    out["per_class_acc"] = first["per_class_acc"]
    out["reliability"] = first["reliability"]
    out["cluster_to_label"] = first["_matching"].cluster_to_label
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
    """:func:`score` with the label protocol given as arrays. Inputs are assumed valid (ids in range).

    Label sets for top-1 -> L / top-5 -> L come either per sample (``label_sets``, N x C) or per label
    (``label_matrix``, C x C, sample i's set = row ``labels[i]``); give at most one. ``real_protocol``:
    ``labels`` is ignored and ``num_draws`` labels are drawn from ``label_sets`` (see
    :class:`~in21k_bench.scoring.label_protocols.RealSets`); rows with an empty set are excluded first.
    """
    C = int(num_classes)
    if label_sets is not None and label_matrix is not None:
        raise ValueError("compute_metrics: expected label_sets (N x C) or label_matrix (C x C), found both")
    if label_matrix is not None and (real_protocol or label_matrix.shape != (C, C)):
        raise ValueError(
            f"compute_metrics: expected a ({C}, {C}) label_matrix outside the ReaL protocol, found shape "
            f"{label_matrix.shape}"
        )
    if real_protocol:
        if label_sets is None:
            raise ValueError("compute_metrics: the ReaL protocol needs label_sets")
        protocol: LabelProtocol = RealSets(label_sets, C)
    elif label_matrix is not None:
        protocol = LabelAndAncestors(labels, label_matrix)
    elif label_sets is not None:
        protocol = PerSampleSets(labels, label_sets, C)
    else:
        protocol = FixedLabels(labels, C)
    return score(
        top1,
        protocol,
        num_clusters=num_clusters,
        topk=topk,
        confidence=confidence,
        num_draws=num_draws,
        progress=progress,
    )
