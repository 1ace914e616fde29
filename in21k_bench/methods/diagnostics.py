"""Class-separability diagnostics of a feature space (docs/methods.md, "Separability diagnostics").

* silhouette score (scikit-learn; Euclidean distance on L2-normalised features, which ranks pairs
  exactly as the cosine distance does), on a uniform subsample of ``sample_size`` rows (the score
  is quadratic in N) drawn with ``seed``;
* Davies-Bouldin score (scikit-learn; lower is better), on the same subsample;
* alignment ``E ||g(x1) - g(x2)||^2`` over true-positive nearest-neighbour pairs: for every sample
  x1 its nearest neighbour x2 (cosine, itself excluded); pairs where both have the same label are
  kept; ``g`` = the L2-normalised feature, so the value lies in [0, 4] (lower = better aligned).
  Also reported: the fraction of true-positive pairs (1-NN accuracy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["alignment", "separability"]


def _normalise(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInputError(f"diagnostics: expected a 2-D feature array, got shape {x.shape}")
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _nearest(x: np.ndarray) -> np.ndarray:
    try:
        from .knn import exact_knn

        return np.asarray(exact_knn(x, 1))[:, 0].astype(np.int64)
    except ImportError:  # pragma: no cover - knn module not available
        s = x @ x.T
        np.fill_diagonal(s, -np.inf)
        return s.argmax(axis=1)


def alignment(x: Any, labels: Any, neighbors: np.ndarray | None = None) -> tuple[float, int, float]:
    """``(alignment, num_true_positive_pairs, true_positive_fraction)``; ``neighbors``: optional
    precomputed nearest-neighbour index per row (column 0 of a kNN array is used)."""
    xn = _normalise(x)
    y = np.asarray(labels)
    if y.shape != (len(xn),):
        raise InvalidInputError(f"diagnostics: expected {len(xn)} labels, got shape {y.shape}")
    if len(xn) < 2:
        raise InvalidInputError("diagnostics: need at least 2 samples")
    nn1 = _nearest(xn) if neighbors is None else np.asarray(neighbors).reshape(len(xn), -1)[:, 0].astype(np.int64)
    tp = y[nn1] == y
    if not tp.any():
        return float("nan"), 0, 0.0
    d = xn[tp] - xn[nn1[tp]]
    return float(np.einsum("ij,ij->i", d, d).mean()), int(tp.sum()), float(tp.mean())


def separability(
    x: Any, labels: Any, *, sample_size: int = 20000, seed: int = 0, neighbors: np.ndarray | None = None
) -> dict:
    """Silhouette, Davies-Bouldin and alignment of features ``x`` (N, D) under ``labels`` (N,)."""
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    xn = _normalise(x)
    y = np.asarray(labels)
    if y.shape != (len(xn),):
        raise InvalidInputError(f"diagnostics: expected {len(xn)} labels, got shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise InvalidInputError("diagnostics: need at least 2 distinct labels")
    rows = np.arange(len(xn))
    if len(xn) > sample_size:
        rows = np.sort(np.random.default_rng(seed).choice(len(xn), sample_size, replace=False))
    xs, ys = xn[rows], y[rows]
    ok = len(np.unique(ys)) >= 2 and len(np.unique(ys)) < len(ys)
    align, pairs, tp = alignment(xn, y, neighbors)
    return {
        "silhouette": float(silhouette_score(xs, ys, metric="euclidean")) if ok else float("nan"),
        "davies_bouldin": float(davies_bouldin_score(xs, ys)) if ok else float("nan"),
        "alignment": align,
        "true_positive_pairs": pairs,
        "nn_accuracy": tp,
        "num_samples": int(len(xn)),
        "num_scored": int(len(rows)),
    }
