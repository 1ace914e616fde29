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

## The data: ImageNet-21K-P, winter 2021

The IN-21K benchmarks are defined on the preprocessed winter 2021 release of ImageNet-21K-P
(Ridnik et al., *ImageNet-21K Pretraining for the Masses*, 2021):

- **Classes**: 10,450, each a WordNet 3.0 noun synset named by its wnid (`n01440764`). The class
  index of a class is its position in the sorted list of wnids.
- **Local copy**: `<root>/train/<wnid>/<file>.JPEG` and `<root>/val/<wnid>/<file>.JPEG`. The release
  kept synsets with more than 500 images and moved the first 50 files of every class (by file name)
  to `val`: val has exactly 50 images per class (522,500), train about 11.06 M.
- **Canonical sample order** of a split: classes by class index, files of a class sorted by name.
  A sample id is the path relative to the root, e.g. `val/n01440764/n01440764_123.JPEG`. Prediction
  files, feature stores and manifests all use this order.
- **Class tree** (the "MIIL tree" of the release): every class has a path `[self, parent, ...,
  root]` through classes of the data set, and a short name. Depth = path length - 1 (0 for a root);
  level = depth + 1, the paper's "hierarchy levels 1..11". The tree is rebuilt exactly from
  ImageNet's WordNet hypernym list `wordnet.is_a.txt`: take each class's parent from the *last*
  line that names it as a child, follow parents to the top, and keep only classes of the data set.
  A class is a *WordNet leaf* when no line names it as a parent, a *tree leaf* when no class of the
  tree has it as parent.
- **Train counts** are **estimates**: no per-class listing of the winter 2021 release exists, so
  the train count of a class is its fall 2011 `numImages` minus the 50 val images. This reproduces
  the published 11,060,239 total to within 33 images; `Benchmark.materialize(root)` recounts from a
  local copy.
- **Raw sources** (class lists, tree, counts, ImageNet-1K and ReaL labels) are vendored in
  `splits/sources/` with their provenance, sha256 and licences (`SOURCES.md`);
  `in21k-bench build-manifests` rebuilds every manifest from them.

## Definitions

Every benchmark is a named, versioned definition: which classes (and samples) it contains, the
label of each sample, the number of clusters C to ask for, and the label set S_L of each sample for
the multi-label metrics. Train and val are both defined; methods are fit on train and scored on val
with the [evaluation protocol](evaluation.md). A released manifest version never changes: a fix is
a new version and the old one stays loadable; the sha256 of every manifest file is recorded in
`splits/index.json` and checked on load. IN-21K train counts are the estimates described above.
*Imbalance* = largest / smallest train count of a label.

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
3.0 licence (`splits/sources/WORDNET-LICENSE.txt`).

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
