"""Linear probing on frozen features (docs/methods.md, "Linear probing"): the supervised upper bound.

A linear layer (weights and bias, zero-initialised) on L2-normalised features, trained with SGD
(momentum 0.9, batch 256, constant learning rate, cross-entropy) for 100 epochs, for every point of
the grid lr in {1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3} x weight decay in {0, 1e-3, 1e-5}. All 18
grid points are trained TOGETHER as one batched program: the logits of every configuration come
from one ``(B, D) x (D, G*C)`` matrix product, and the SGD update is applied with per-configuration
learning-rate and weight-decay tensors, so the grid costs one pass over the data per epoch.

Reported: the val accuracy of every grid point after the last epoch, the best one, and the
per-class val accuracy of the best one. :func:`write_class_scores` writes the per-class score file
(parquet: ``wnid``, ``class_index``, ``score``) that the model-based benchmark builder reads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..errors import InvalidInputError
from ..fileio import atomic_path
from ..runtime.device import resolve_device
from .features_input import as_features

__all__ = ["DEFAULT_LRS", "DEFAULT_WDS", "ProbeResult", "linear_probe", "write_class_scores"]

DEFAULT_LRS = (1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3)
DEFAULT_WDS = (0.0, 1e-3, 1e-5)


@dataclass
class ProbeResult:
    best_lr: float
    best_weight_decay: float
    best_accuracy: float
    per_class_accuracy: np.ndarray  # (C,), NaN for classes without val samples
    grid: list[dict] = field(default_factory=list)  # {"lr", "weight_decay", "val_accuracy"} per point
    epochs: int = 0

    def to_dict(self) -> dict:
        return {
            "best_lr": self.best_lr,
            "best_weight_decay": self.best_weight_decay,
            "best_accuracy": self.best_accuracy,
            "mean_per_class_accuracy": float(np.nanmean(self.per_class_accuracy)),
            "grid": self.grid,
            "epochs": self.epochs,
        }


def _labels(y: Any, n: int, c: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise InvalidInputError(f"probe: expected {n} integer {what} labels, got {y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() >= c):
        raise InvalidInputError(f"probe: {what} labels must lie in [0, {c}), found [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def _batches(feats, n: int, batch_size: int, gen: torch.Generator, chunk_rows: int):
    """Shuffled mini-batches: random chunk order, rows shuffled inside each chunk (stores stream)."""
    starts = list(range(0, n, chunk_rows))
    for ci in torch.randperm(len(starts), generator=gen).tolist():
        lo = starts[ci]
        hi = min(lo + chunk_rows, n)
        x = feats.take(np.arange(lo, hi), normalize=True)
        perm = torch.randperm(hi - lo, generator=gen).numpy()
        for b in range(0, hi - lo, batch_size):
            rows = perm[b : b + batch_size]
            yield lo + rows, x[rows]


def linear_probe(
    train_x: Any,
    train_y: Any,
    val_x: Any,
    val_y: Any,
    num_classes: int,
    *,
    lrs: Sequence[float] = DEFAULT_LRS,
    weight_decays: Sequence[float] = DEFAULT_WDS,
    epochs: int = 100,
    batch_size: int = 256,
    momentum: float = 0.9,
    seed: int = 0,
    device: str = "auto",
    chunk_rows: int = 1 << 20,
    progress: bool | None = None,
) -> ProbeResult:
    """Train the whole (lr x weight decay) grid of linear probes; return the best by val accuracy."""
    tr, va = as_features(train_x), as_features(val_x)
    if tr.dim != va.dim:
        raise InvalidInputError(
            f"probe: train and val features must have the same dimension, got {tr.dim} and {va.dim}"
        )
    c = int(num_classes)
    if c < 2:
        raise InvalidInputError(f"probe: expected at least 2 classes, got {c}")
    ytr = torch.from_numpy(_labels(train_y, tr.num_rows, c, "train"))
    yva = _labels(val_y, va.num_rows, c, "val")
    dev = torch.device(resolve_device(device, engine="torch"))
    grid = [(lr, wd) for lr in lrs for wd in weight_decays]
    g_count, d = len(grid), int(tr.dim)
    lr_t = torch.tensor([p[0] for p in grid], dtype=torch.float32, device=dev).view(g_count, 1, 1)
    wd_t = torch.tensor([p[1] for p in grid], dtype=torch.float32, device=dev).view(g_count, 1, 1)
    w = torch.zeros(g_count, d, c, device=dev, requires_grad=True)
    b = torch.zeros(g_count, 1, c, device=dev, requires_grad=True)
    mw, mb = torch.zeros_like(w), torch.zeros_like(b)
    gen = torch.Generator().manual_seed(seed)
    n = int(tr.num_rows)
    steps = sum(-(-(min(lo + chunk_rows, n) - lo) // int(batch_size)) for lo in range(0, n, chunk_rows))
    tty = sys.stderr.isatty()
    for _epoch in range(epochs):
        bar = tqdm(
            total=steps,
            unit="step",
            file=sys.stderr,
            desc=f"probe epoch {_epoch + 1}/{epochs}",
            disable=progress is False,
            leave=False,
            mininterval=0.5 if tty else 30.0,
        )
        for rows, x in _batches(tr, n, batch_size, gen, chunk_rows):
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)
            yt = ytr[rows].to(dev)
            logits = (xt @ w.permute(1, 0, 2).reshape(d, g_count * c)).view(-1, g_count, c) + b.view(1, g_count, c)
            # sum over grid points of each point's mean cross-entropy: the gradients stay separate
            loss = F.cross_entropy(logits.reshape(-1, c), yt.repeat_interleave(g_count), reduction="sum") / len(rows)
            gw, gb = torch.autograd.grad(loss, (w, b))
            with torch.no_grad():
                mw.mul_(momentum).add_(gw + wd_t * w)
                mb.mul_(momentum).add_(gb)  # no weight decay on the bias
                w.sub_(lr_t * mw)
                b.sub_(lr_t * mb)
            bar.update(1)
        bar.close()
    correct = np.zeros((g_count, va.num_rows), dtype=bool)
    with torch.no_grad():
        for start, x in va.iter_chunks(65536, normalize=True):
            xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(dev)
            pred = (torch.einsum("nd,gdc->gnc", xt, w) + b).argmax(-1).cpu().numpy()
            correct[:, start : start + len(xt)] = pred == yva[start : start + len(xt)]
    acc = correct.mean(axis=1) if va.num_rows else np.zeros(g_count)
    best = int(np.argmax(acc))  # first best (smallest lr, then wd order) on ties
    counts = np.bincount(yva, minlength=c)
    hits = np.bincount(yva, weights=correct[best].astype(np.float64), minlength=c)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return ProbeResult(
        best_lr=float(grid[best][0]),
        best_weight_decay=float(grid[best][1]),
        best_accuracy=float(acc[best]),
        per_class_accuracy=per_class,
        grid=[{"lr": float(lr), "weight_decay": float(wd), "val_accuracy": float(a)} for (lr, wd), a in zip(grid, acc)],
        epochs=int(epochs),
    )


def write_class_scores(
    path: str | Path, scores: np.ndarray, wnids: Sequence[str], class_index: Sequence[int] | None = None
) -> Path:
    """Per-class score file for the model-based benchmark builder: parquet with columns
    ``wnid`` (str), ``class_index`` (int64), ``score`` (float64, e.g. per-class probe accuracy)."""
    import pandas as pd

    scores = np.asarray(scores, dtype=np.float64)
    wnids = [str(w) for w in wnids]
    if scores.ndim != 1 or len(wnids) != len(scores):
        raise InvalidInputError(f"probe: expected one score per wnid, got {scores.shape} scores and {len(wnids)} wnids")
    if class_index is None:
        class_index = np.arange(len(scores))
    df = pd.DataFrame({"wnid": wnids, "class_index": np.asarray(class_index, dtype=np.int64), "score": scores})
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path
