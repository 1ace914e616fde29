"""Training-health diagnostics of a TEMI / SCANv2 run: collapse and under-training.

* **Cluster usage** of every head on the predicted (val) rows: the size of each of the C clusters
  under the head's top-1 assignment, the number of empty clusters and the entropy of the marginal
  (``H(p) = -sum_c p_c log p_c`` of the cluster-size distribution, in nats; ``log C`` is perfectly
  balanced, 0 is everything in one cluster), also as a fraction of ``log C``.
* **Collapse**: the chosen head leaves more than :data:`COLLAPSE_EMPTY_FRACTION` of the clusters
  empty.
* **Under-training**: the loss of the chosen head is still falling steeply at the end. The loss is
  recorded as the mean over :data:`CURVE_POINTS` equal windows of the optimizer steps; the run is
  flagged when the drop over the last 15% of the steps is more than :data:`STEEP_TAIL_FRACTION` of
  the drop over the whole run (an exponential approach with time constant tau reaches that only when
  the run is shorter than about 1.5 tau), or when it ran fewer than ``min_steps`` optimizer steps.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "COLLAPSE_EMPTY_FRACTION",
    "CURVE_POINTS",
    "STEEP_TAIL_FRACTION",
    "cluster_usage",
    "health_report",
    "loss_tail_ratio",
]

COLLAPSE_EMPTY_FRACTION = 0.10
CURVE_POINTS = 20
STEEP_TAIL_FRACTION = 0.05


def cluster_usage(sizes: Any) -> dict:
    """Usage summary of one head from its cluster sizes ``(C,)``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    c = int(sizes.size)
    total = int(sizes.sum())
    p = sizes[sizes > 0] / max(total, 1)
    ent = float(-(p * np.log(p)).sum()) if total else 0.0
    return {
        "cluster_sizes": [int(v) for v in sizes],
        "empty_clusters": int((sizes == 0).sum()),
        "used_clusters": int((sizes > 0).sum()),
        "largest_cluster_fraction": float(sizes.max() / total) if total else 0.0,
        "marginal_entropy": ent,
        "marginal_entropy_fraction": float(ent / math.log(c)) if c > 1 else 1.0,
    }


def loss_tail_ratio(curve: Any) -> float | None:
    """Drop over the last 15% of a loss curve divided by the drop over the whole curve (None when the
    curve is too short or did not fall)."""
    y = np.asarray([v for v in curve if v is not None and np.isfinite(v)], dtype=np.float64)
    if y.size < 8:
        return None
    tail = max(1, int(round(0.15 * y.size)))
    total = y[0] - y[-1]
    if total <= 1e-12:
        return None
    return float((y[-1 - tail] - y[-1]) / total)


def health_report(
    head_sizes: Any, best_head: int, curve: Any, total_steps: int, *, min_steps: int = 0, method: str = "temi"
) -> dict:
    """Per-head and chosen-head cluster usage, the loss-tail ratio and human-readable warnings
    (each says what to change)."""
    head_sizes = np.asarray(head_sizes)
    heads = [cluster_usage(s) for s in head_sizes]
    chosen = heads[best_head]
    c = len(chosen["cluster_sizes"])
    warnings: list[str] = []
    if chosen["empty_clusters"] > COLLAPSE_EMPTY_FRACTION * c:
        fix = (
            "use a larger --batch-size (the entropy term needs a batch much larger than C)"
            if method == "scanv2"
            else "train longer or with a lower --lr"
        )
        warnings.append(
            f"collapse: the chosen head {best_head} leaves {chosen['empty_clusters']} of {c} clusters empty on the "
            f"predicted rows (marginal entropy {chosen['marginal_entropy_fraction']:.0%} of log C); {fix}, "
            "or check --num-clusters against the data"
        )
    ratio = loss_tail_ratio(curve)
    if total_steps < min_steps:
        warnings.append(
            f"under-trained: only {total_steps:,} optimizer steps (the budget rule asks for >= {min_steps:,}); "
            "raise --epochs or lower --batch-size"
        )
    elif ratio is not None and ratio > STEEP_TAIL_FRACTION:
        warnings.append(
            f"under-trained: the loss of head {best_head} was still falling at the end ({ratio:.0%} of its total drop "
            "came in the last 15% of the steps); raise --epochs (or lower --batch-size for more steps per epoch)"
        )
    return {
        "chosen_head": {"head": int(best_head), **chosen},
        "heads": [
            {"head": i, **{k: v for k, v in h.items() if k != "cluster_sizes"}, "cluster_sizes": h["cluster_sizes"]}
            for i, h in enumerate(heads)
        ],
        "loss_curve": [None if v is None else float(v) for v in curve],
        "loss_tail_ratio": ratio,
        "total_steps": int(total_steps),
        "warnings": warnings,
    }
