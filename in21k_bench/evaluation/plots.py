"""Every figure the package draws (matplotlib, the ``plots`` extra), written atomically as PNG.

* :func:`reliability_diagram` -- accuracy per confidence bin against the diagonal, with the gap to the
  bin's mean confidence (``evaluate --plots`` and ``zeroshot``);
* :func:`per_class_accuracy_histogram` -- how many classes reach each accuracy (``evaluate --plots``);
* :func:`class_size_histograms` -- train images per label, one step curve per benchmark of a
  family (the generated ``docs/benchmarks.md``);
* :func:`write_evaluation_plots` -- the two evaluation figures of one result into a folder.

``bins`` is the dict of :func:`in21k_bench.scoring.metrics.reliability` (``edges``, ``accuracy``,
``confidence``; None for an empty bin).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..fileio import atomic_path

__all__ = [
    "class_size_histograms",
    "per_class_accuracy_histogram",
    "reliability_diagram",
    "write_evaluation_plots",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike, dpi: int, **savefig: Any) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", **savefig)
    _pyplot().close(fig)
    return path


def _values(xs: Sequence) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in xs], dtype=np.float64)


def reliability_diagram(path: str | os.PathLike, bins: dict, title: str, *, size: float = 4.5, dpi: int = 120) -> Path:
    """Accuracy per confidence bin (bars), the gap to the bin's mean confidence, and the diagonal."""
    plt = _pyplot()
    edges = np.asarray(bins["edges"])
    centers = (edges[:-1] + edges[1:]) / 2
    acc = _values(bins["accuracy"])
    width = (edges[1] - edges[0]) * 0.95
    fig, ax = plt.subplots(figsize=(size, size))
    ax.bar(centers, np.nan_to_num(acc), width=width, color="#4c72b0", edgecolor="black", label="accuracy")
    if bins.get("confidence") is not None:
        conf = _values(bins["confidence"])
        ax.bar(
            centers,
            np.nan_to_num(conf - acc),
            bottom=np.nan_to_num(acc),
            width=width,
            color="#dd8452",
            alpha=0.5,
            label="gap to confidence",
        )
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path, dpi)


def per_class_accuracy_histogram(path: str | os.PathLike, per_class_acc: Sequence[float], title: str) -> Path:
    """Histogram of per-class accuracies (non-finite entries, classes without samples, left out)."""
    plt = _pyplot()
    pca = np.asarray(per_class_acc, dtype=np.float64)
    pca = pca[np.isfinite(pca)]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(pca, bins=np.linspace(0, 1, 21), color="#55a868", edgecolor="black")
    ax.set_xlabel("per-class accuracy (Hungarian map)")
    ax.set_ylabel("number of classes")
    ax.set_title(f"{title}: {len(pca):,} classes, mean {pca.mean():.3f}" if len(pca) else title)
    fig.tight_layout()
    return _save(fig, path, 120)


def write_evaluation_plots(result: Any, out_dir: str | os.PathLike) -> list[Path]:
    """``reliability.png`` (when the result has confidences) and ``per_class_accuracy.png`` of an
    evaluation result, in ``out_dir``. Returns the written paths."""
    out_dir = Path(out_dir)
    written: list[Path] = []
    title = f"{result.benchmark} {result.version or ''}".strip()
    if result.reliability is not None:
        head = f"{title}: ECE {result.ece:.4f}" if result.ece is not None else title
        written.append(reliability_diagram(out_dir / "reliability.png", result.reliability, head))
    else:
        print("no probabilities given: reliability diagram skipped", file=sys.stderr)
    if result.per_class_acc is not None:
        written.append(per_class_accuracy_histogram(out_dir / "per_class_accuracy.png", result.per_class_acc, title))
    return written


def class_size_histograms(path: str | os.PathLike, items: Sequence[tuple[str, np.ndarray]], title: str) -> Path:
    """Step histograms of train images per label, one per ``(benchmark name, counts)``; log bins when
    the counts span more than a factor 20. No software stamp, so the file is reproducible."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    lo = min(x.min() for _, x in items)
    hi = max(x.max() for _, x in items)
    wide = hi / max(lo, 1) > 20
    bins = np.logspace(np.log10(max(lo, 1)), np.log10(hi + 1), 40) if wide else np.linspace(lo, hi + 1, 40)
    for name, x in items:
        ax.hist(x, bins=bins, histtype="step", label=f"{name} (C={len(x):,})")
    if wide:
        ax.set_xscale("log")
    ax.set_xlabel("train images per label (estimated)")
    ax.set_ylabel("labels")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, 90, metadata={"Software": None})
