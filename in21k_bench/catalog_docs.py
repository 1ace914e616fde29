"""Generate ``docs/benchmarks.md`` and per-family class-size histograms from the registry."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .benchmark import load
from .catalog import list_definitions
from .fileio import atomic_path, write_text

_HEADER = """# Benchmarks

Generated from the registry by `in21k-bench benchmark-docs` -- do not edit by hand.

Every benchmark is a named, versioned definition (SPEC section 2). Methods are fit on train and
scored on val. IN-21K train counts are **estimates** (fall 2011 `numImages` - 50; no per-class
listing of the winter 2021 release exists; they reproduce the published 11,060,239 total to within
33 images); `Benchmark.materialize(root)` recounts from a local copy. Val has exactly 50 images per
class. *Imbalance* = largest / smallest train count of a label.

Where the paper's wording leaves a choice, the rule is a parameter of the definition (`rule` in
`in21k-bench info NAME --json`):

- **Percentiles** (frequency and imbalance families): numpy's `linear` interpolation over the
  per-class train counts of all 10,450 classes; both bounds inclusive (`lo <= count <= hi`).
- **imbalanced-2k**: the 10% band around the median is the percentile interval [45, 55]; the 10%
  most frequent classes are those with count >= the 90th percentile. The two sets are disjoint.
- **centered-2k**: as many classes as imbalanced-2k, taken as the contiguous window of the count
  ranking (sorted by count, then class index) centred on the median.
- **coarse-dN**: level = depth + 1 (roots are level 1). Classes at level > N take their ancestor at
  level N; C counts the distinct resulting labels.
- **random-1k**: `numpy.random.default_rng(0).choice(10450, 1000, replace=False)`.
- **imagenet-1k-odd**: odd-index classes keep the files at even positions of their sorted file
  list (ceil(n/2)); ImageNet-1K per-class train counts are not part of the sources, so the total is
  known after `materialize`.
- **Label sets** (multi-label metrics): for IN-21K benchmarks, the label plus its MIIL-tree
  ancestors that are labels of the benchmark; for `real1k`, the ReaL set; ImageNet-1K: the label.

Benchmarks marked *needs-input* are registered with their builders; `load()` says what input is
missing and how to produce or download it.

WordNet-derived names and hierarchy: WordNet 3.0 (c) Princeton University, used under the WordNet
3.0 licence (see `WORDNET-LICENSE` in the sources).

"""


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,}"


def write_benchmark_docs(out_dir: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    rows = []
    by_family: dict[str, list] = defaultdict(list)
    for d in list_definitions():
        if d.status == "needs-input":
            rows.append(f"| `{d.name}` | {d.family} | {d.version} | needs input | {d.description} | - | - | - | - |")
            continue
        b = load(d.name, d.version)
        info = b.info()
        ratio = info["imbalance_ratio"]
        rows.append(
            f"| `{d.name}` | {d.family} | {d.version} | ready | {d.description} | {_fmt(b.num_classes)} | {_fmt(b.num_train)} | {_fmt(b.num_val)} | {'-' if ratio is None else f'{ratio:.2f}'} |"
        )
        nt = b.classes["num_train"].to_numpy()
        if (nt >= 0).all():
            by_family[d.family].append((d.name, nt))
    figs = []
    for family, items in by_family.items():
        fig, ax = plt.subplots(figsize=(7, 3.2))
        lo = min(x.min() for _, x in items)
        hi = max(x.max() for _, x in items)
        bins = np.logspace(np.log10(max(lo, 1)), np.log10(hi + 1), 40) if hi / max(lo, 1) > 20 else np.linspace(lo, hi + 1, 40)
        for name, x in items:
            ax.hist(x, bins=bins, histtype="step", label=f"{name} (C={len(x):,})")
        if hi / max(lo, 1) > 20:
            ax.set_xscale("log")
        ax.set_xlabel("train images per label (estimated)")
        ax.set_ylabel("labels")
        ax.set_title(f"class sizes: {family} family")
        ax.legend(fontsize=7)
        fig.tight_layout()
        rel = f"figures/class-sizes-{family}.png"
        with atomic_path(out_dir / rel) as tmp:
            fig.savefig(tmp, dpi=90, format="png", metadata={"Software": None})
        plt.close(fig)
        figs.append((family, rel))
    text = _HEADER + "| name | family | version | status | rule | classes (C) | train | val | imbalance |\n|---|---|---|---|---|---|---|---|---|\n"
    text += "\n".join(rows) + "\n\n## Class-size histograms\n\n"
    text += "\n".join(f"### {fam}\n\n![class sizes of the {fam} family]({rel})\n" for fam, rel in figs)
    path = out_dir / "benchmarks.md"
    write_text(path, text)
    return path
