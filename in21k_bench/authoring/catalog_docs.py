"""Generate ``docs/benchmarks.md`` and per-family class-size histograms from the registry."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from ..benchmark import load
from ..fileio import write_text
from ..manifests.index import ManifestIndex
from ..registry.catalog import check_version, list_definitions, versions

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
- **Raw sources** (class lists, tree, counts, WordNet lemmas and instance synsets, ImageNet-1K and ReaL labels) are vendored in
  `splits/sources/` with their provenance, sha256 and licences (`SOURCES.md`);
  `in21k-bench build-manifests` rebuilds every manifest from them.

## What a benchmark is

Every benchmark is a named, versioned definition: which classes (and samples) it contains, the
label of each sample, the number of clusters C to ask for, and the label set S_L of each sample for
the multi-label metrics. Train and val are both defined; methods are fit on train and scored on val
with the [evaluation protocol](evaluation.md). A released manifest version never changes: a fix is
a new version and the old one stays loadable; the sha256 of every manifest file is recorded in
`splits/index.json` and checked on load. `in21k_bench.load(name)` gives the latest version
({latest}), `load(name, version="v1")` the first release (also `--version` on the CLI). IN-21K train
counts are the estimates described above. *Imbalance* = largest / smallest train count of a label.

## Rules

Where the paper's wording leaves a choice, the rule is a parameter of the definition (`rule` and
`notes` in `in21k-bench info NAME --json`):

- **Percentiles** (frequency and imbalance families): numpy's `linear` interpolation over the
  per-class train counts of all 10,450 classes; both bounds inclusive (`lo <= count <= hi`).
- **imbalanced-2k** (v1 = v2): the 10% band around the median is the percentile interval [45, 55];
  the 10% most frequent classes are those with count >= the 90th percentile; the two sets are
  disjoint (2,106 classes). The paper gives 2,113 classes and 2.55M train images for this set, which
  its wording cannot produce: the 1,046 classes at or above the 90th percentile alone hold 1.70M
  images, and any band of the remaining 1,067 classes that contains the median class holds at least
  1.15M more, so every such set has at least 2.85M train images.
- **centered-2k**: the contiguous window of the count ranking (sorted by train count, then class
  index) centred on the median: ranks `(10450 - n) // 2` onwards. v2: n = 2,113, the paper's count
  (2.34M train images, as published). v1: n = the size of imbalanced-2k (2,106).
- **coarse-dN** (v2): let depth(c) be the MIIL-tree depth of class c (roots 0, i.e.
  `len(class_tree_list[c]) - 1`) and hypernym(c) its direct WordNet hypernym, the parent on the
  **last** line of `wordnet.is_a.txt` that names c as a child (the same parent choice that rebuilds
  the MIIL tree). A class with depth(c) > N takes the label hypernym(c), applied **once**, whether or
  not hypernym(c) is one of the 10,450 classes; other classes keep their label; no sample is
  dropped; C = the number of distinct labels. The paper's text says classes are relabelled
  "recursively" and calls d = 1 "root labels", but its published class counts (3,987 / 5,086 /
  6,772 / 8,386 / 9,429 / 9,997 / 10,241 / 10,351 for d = 1..8) follow this one-step rule exactly,
  and v2 follows the counts. **v1** implemented the prose: level = depth + 1, a class at level > N
  takes its MIIL ancestor at level N (302 labels at d = 1, the MIIL roots).
- **Labels outside the classes** (v2 coarse): a hypernym that is not one of the 10,450 classes is a
  WordNet noun synset (677 of the 3,987 labels at d = 1). The v2 taxonomy stores every such synset
  (the direct hypernyms of classes that are not classes, 1,217) in `taxonomy/synsets`: its name (first
  WordNet lemma, spaces as underscores, as the MIIL names are written), its lemmas (`words.txt`), its
  gloss where the timm gloss file has one (else empty), and its place in the tree. Its depth is the
  number of classes above it on its hypernym chain.
- **wordnet-leaf**: classes with no hyponym in WordNet (no child in `wordnet.is_a.txt`). v2 also
  excludes WordNet *instance* synsets (`wordnet/instance-synsets.txt`: synsets with an instance
  pointer in WordNet 3.0's `data.noun`): WordNet's hyponym relation does not include instances, so
  n09450163 'sun' (an instance of 'star'), the one class that is an instance, is not a leaf hyponym
  (7,353 classes as in the paper; v1: 7,354).
- **random-1k**: `numpy.random.default_rng(0).choice(10450, 1000, replace=False)`.
- **imagenet-1k-odd**: odd-index classes keep the files at even positions of their sorted file
  list (ceil(n/2)); ImageNet-1K per-class train counts are not part of the sources, so the total is
  known after `materialize`.
- **Label sets** (multi-label metrics): for IN-21K benchmarks, the sample's label plus its
  ancestors that are labels of the benchmark; for `real1k`, the ReaL set; ImageNet-1K: the label.
  Ancestors are taken in the tree of *nodes* (the classes plus, in v2, the extra synsets): the parent
  of a node is the first class or extra synset on its WordNet hypernym chain (each step: the last
  line of `wordnet.is_a.txt`). Restricted to classes this is exactly the MIIL tree, so whenever every
  label is a class (all benchmarks but v2 coarse) the label set is the label plus its MIIL ancestors
  that are labels. For v2 coarse labels it also contains the extra synsets above the label that are
  labels (a sample labelled with a class also counts a prediction of a WordNet hypernym of that
  class when that hypernym is a label).
- Label ids follow the wnid order of the labels (= class-index order when every label is a class).

Benchmarks marked *needs-input* are registered with their builders; `load()` says what input is
missing and how to produce or download it.

WordNet-derived names and hierarchy: WordNet 3.0 (c) Princeton University, used under the WordNet
3.0 licence (`splits/sources/WORDNET-LICENSE.txt`).

"""  # noqa: E501 -- one markdown bullet, kept on one line as in docs/benchmarks.md


def _fmt(v) -> str:
    return "-" if v is None else f"{v:,}"


def _changes_table(index: ManifestIndex, old: str, new: str) -> str:
    """Counts of every benchmark whose classes or train images differ between two versions."""
    a, b = index.benchmarks(old), index.benchmarks(new)
    rows = []
    for name, e in b.items():
        o = a.get(name)
        if o is None or e.get("status") != "ready":
            continue
        if (o.get("num_classes"), o.get("num_train")) != (e.get("num_classes"), e.get("num_train")):
            rows.append(
                f"| `{name}` | {_fmt(o.get('num_classes'))} | {_fmt(e.get('num_classes'))} | "
                f"{_fmt(o.get('num_train'))} | {_fmt(e.get('num_train'))} |"
            )
    if not rows:
        return ""
    head = (
        f"## Changes from {old} to {new}\n\nBenchmarks whose number of labels or train images differs between the two "
        "versions (the rules are under *Definitions* below); every other benchmark has the same content in both.\n\n"
    )
    head += f"| name | C {old} | C {new} | train {old} | train {new} |\n|---|---|---|---|---|\n"
    return head + "\n".join(rows) + "\n\n"


def write_benchmark_docs(out_dir: str | Path, version: str | None = None) -> Path:
    """Write ``benchmarks.md`` and ``figures/class-sizes-<family>.png`` for ``version`` (default: latest)."""
    from ..evaluation.plots import class_size_histograms

    known = versions()
    version = check_version(version, "benchmark-docs") if version is not None else known[-1]
    out_dir = Path(out_dir)
    rows, details = [], []
    by_family: dict[str, list] = defaultdict(list)
    for d in list_definitions(version):
        details.append(
            f"### `{d.name}` ({d.version})\n\n{d.description}\n\n"
            + (f"*Changes:* {d.notes}\n\n" if d.notes else "")
            + f"Rule parameters: `{json.dumps(d.rule, sort_keys=True)}`\n"
        )
        if d.status == "needs-input":
            rows.append(f"| `{d.name}` | {d.family} | {d.version} | needs input | {d.description} | - | - | - | - |")
            continue
        b = load(d.name, d.version)
        info = b.info()
        ratio = info["imbalance_ratio"]
        rows.append(
            f"| `{d.name}` | {d.family} | {d.version} | ready | {d.description} | {_fmt(b.num_classes)} | "
            f"{_fmt(b.num_train)} | {_fmt(b.num_val)} | {'-' if ratio is None else f'{ratio:.2f}'} |"
        )
        nt = b.classes["num_train"].to_numpy()
        if (nt >= 0).all():
            by_family[d.family].append((d.name, nt))
    figs = []
    for family, items in by_family.items():
        rel = f"figures/class-sizes-{family}.png"
        class_size_histograms(out_dir / rel, items, f"class sizes: {family} family ({version})")
        figs.append((family, rel))
    text = _HEADER.replace("{latest}", known[-1])
    text += (
        f"## Version {version}\n\n| name | family | version | status | rule | classes (C) | train | val | "
        "imbalance |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    text += "\n".join(rows) + "\n\n"
    pos = known.index(version)
    if pos > 0:
        text += _changes_table(ManifestIndex.load(), known[pos - 1], version)
    text += "## Definitions\n\n" + "\n".join(details) + "\n## Class-size histograms\n\n"
    text += "\n".join(f"### {fam}\n\n![class sizes of the {fam} family]({rel})\n" for fam, rel in figs)
    path = out_dir / "benchmarks.md"
    write_text(path, text)
    return path
