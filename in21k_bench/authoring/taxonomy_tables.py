"""Build the taxonomy tables of a manifest version from verified raw sources.

Tables (relative names, written as ``<version>/<name>.parquet``):

- ``taxonomy/classes``: one row per winter21 class (class index = position in the sorted wnid list):
  wnid, MIIL short name, WordNet lemmas and gloss, MIIL parent and depth (roots 0), leaf flags,
  estimated train count (fall11 ``numImages`` - 50), val count (50).
- ``taxonomy/imagenet1k_classes``, ``taxonomy/imagenet1k_val``: ILSVRC-2012 classes, val labels, ReaL sets.

From version v2 on, the taxonomy also knows the WordNet synsets that are direct hypernyms of a class
without being classes themselves (the extra labels of the one-step coarse benchmarks):

- ``taxonomy/classes`` gains ``is_wordnet_instance`` (the class is a WordNet instance synset),
  ``hypernym`` (wnid of the direct WordNet hypernym: the parent on the LAST line of
  ``wordnet.is_a.txt`` naming the class; "" for none) and ``node_parent``.
- ``taxonomy/synsets``: one row per extra synset, sorted by wnid: ``node_index`` (10,450 + row),
  ``wnid``, ``name`` (first WordNet lemma, spaces as underscores, the MIIL naming), ``lemmas``
  (``words.txt``), ``definition`` (timm's gloss file, "" where it has none), ``hypernym``,
  ``node_parent``, ``class_parent`` (nearest class on its hypernym chain: where it hangs in the MIIL
  tree; -1 for none) and ``depth`` (number of classes above it, the MIIL depth it would have).

Classes and extra synsets together are the *nodes* (classes first, then extra synsets). The
``node_parent`` of a node is the first node on its hypernym chain (each step: last line of
``wordnet.is_a.txt``); -1 for none. Restricted to classes, the node tree is the MIIL tree.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from ..errors import SourcesError
from ..manifests.versions import version_key
from .sources import miil_parents_from_is_a

VAL_IMAGES_PER_CLASS = 50  # the winter21 release moved the first 50 files of each class to val
TRAIN_COUNT_NOTE = {
    "train_count": "estimate: fall11 ReleaseStatus numImages - 50 (no per-class winter21 listing exists); recount with "
    "Benchmark.materialize(root)"
}


def has_extra_synsets(version: str) -> bool:
    """Whether a version's taxonomy carries the extra synsets and instance flags (v2 and later)."""
    return version_key(version)[0] >= 2


def _chain_first(start: str | None, last: dict[str, str], stop) -> str | None:
    """First synset on the hypernym chain starting at ``start`` (inclusive) for which ``stop`` holds."""
    seen: set[str] = set()
    p = start
    while p is not None and not stop(p):
        if p in seen:  # defensive: WordNet has no cycles
            return None
        seen.add(p)
        p = last.get(p)
    return p


def _node_tables(sources, wnids: list[str], depth: np.ndarray) -> tuple[dict[str, pa.Array], pa.Table]:
    """The v2 columns added to the classes table and the extra-synsets table."""
    last = sources.last_hypernym
    n = len(wnids)
    index = {w: i for i, w in enumerate(wnids)}
    hyper = [last.get(w, "") for w in wnids]
    extra = sorted({h for h in hyper if h and h not in index})
    node_index = dict(index)
    node_index.update({w: n + j for j, w in enumerate(extra)})
    missing = [w for w in extra if w not in sources.words]
    if missing:
        raise SourcesError(
            f"raw sources: expected lemmas in words.txt for every hypernym of a class, found none for {missing[:3]}"
        )

    def node_parent_of(w: str) -> int:
        p = _chain_first(last.get(w), last, lambda x: x in node_index)
        return -1 if p is None else node_index[p]

    def class_parent_of(w: str) -> int:
        p = _chain_first(last.get(w), last, lambda x: x in index)
        return -1 if p is None else index[p]

    instances = sources.instance_synsets
    class_cols = {
        "is_wordnet_instance": pa.array(np.array([w in instances for w in wnids], dtype=bool)),
        "hypernym": pa.array(hyper, pa.string()),
        "node_parent": pa.array(np.array([node_parent_of(w) for w in wnids], dtype=np.int32)),
    }
    cparent = np.array([class_parent_of(w) for w in extra], dtype=np.int32)
    sdepth = np.where(cparent >= 0, depth[np.maximum(cparent, 0)].astype(np.int32) + 1, 0).astype(np.int16)
    synsets = pa.table(
        {
            "node_index": pa.array(np.arange(n, n + len(extra), dtype=np.int32)),
            "wnid": pa.array(extra, pa.string()),
            "name": pa.array([sources.words[w][0].replace(" ", "_") for w in extra], pa.string()),
            "lemmas": pa.array([sources.words[w] for w in extra], pa.list_(pa.string())),
            "definition": pa.array([sources.definitions.get(w, "") for w in extra], pa.string()),
            "hypernym": pa.array([last.get(w, "") for w in extra], pa.string()),
            "node_parent": pa.array(np.array([node_parent_of(w) for w in extra], dtype=np.int32)),
            "class_parent": pa.array(cparent),
            "depth": pa.array(sdepth),
        },
        metadata={
            "in21k_bench": json.dumps(
                {
                    "synsets": "WordNet synsets that are the direct hypernym (last line of wordnet.is_a.txt) of a "
                    "class without being a class",
                    "depth": "number of classes on the hypernym chain above the synset (the MIIL depth it would have)",
                }
            )
        },
    )
    return class_cols, synsets


def build_taxonomy_tables(sources, version: str = "v1") -> dict[str, pa.Table]:
    """Build the taxonomy tables of ``version`` from verified :class:`~in21k_bench.authoring.sources.Sources`.

    Returns ``{"taxonomy/classes": ..., "taxonomy/imagenet1k_classes": ..., "taxonomy/imagenet1k_val": ...}``
    (plus ``"taxonomy/synsets"`` from v2 on). Raises :class:`SourcesError` if the MIIL tree in the release
    does not match the tree rebuilt from ``wordnet.is_a.txt`` (they agree exactly for the published files).
    """
    wnids = sources.winter21_wnids
    n = len(wnids)
    tree = sources.miil_tree
    paths = tree["class_tree_list"]
    if len(paths) != n or list(tree["class_description"].keys()) != wnids:
        raise SourcesError(
            "raw sources: expected the MIIL tree in the same class order as the wnid list, found otherwise"
        )
    parent = np.array([p[1] if len(p) > 1 else -1 for p in paths], dtype=np.int32)
    rebuilt = miil_parents_from_is_a(wnids, sources.is_a_edges)
    mismatch = int((rebuilt != parent).sum())
    if mismatch:
        raise SourcesError(
            f"raw sources: expected the MIIL tree to equal the one rebuilt from wordnet.is_a.txt, found {mismatch} "
            "differing parents"
        )
    depth = np.array([len(p) - 1 for p in paths], dtype=np.int16)

    has_wordnet_child = {parent_w for parent_w, _ in sources.is_a_edges}
    is_wordnet_leaf = np.array([w not in has_wordnet_child for w in wnids])
    is_miil_leaf = np.ones(n, dtype=bool)
    is_miil_leaf[parent[parent >= 0]] = False

    num_images = sources.num_images_fall11
    missing = [w for w in wnids if w not in num_images]
    if missing:
        raise SourcesError(
            "raw sources: expected numImages for every winter21 class in ReleaseStatus.xml, found none for "
            f"{missing[:3]}"
        )
    fall11 = np.array([num_images[w] for w in wnids], dtype=np.int64)

    cols = {
        "class_index": pa.array(np.arange(n, dtype=np.int32)),
        "wnid": pa.array(wnids, pa.string()),
        "name": pa.array(list(tree["class_description"].values()), pa.string()),
        "lemmas": pa.array([sources.lemmas.get(w, []) for w in wnids], pa.list_(pa.string())),
        "definition": pa.array([sources.definitions.get(w, "") for w in wnids], pa.string()),
        "parent": pa.array(parent),
        "depth": pa.array(depth),
        "is_wordnet_leaf": pa.array(is_wordnet_leaf),
        "is_miil_leaf": pa.array(is_miil_leaf),
        "fall11_num_images": pa.array(fall11),
        "train_count": pa.array(fall11 - VAL_IMAGES_PER_CLASS),
        "val_count": pa.array(np.full(n, VAL_IMAGES_PER_CLASS, dtype=np.int64)),
    }
    out: dict[str, pa.Table] = {}
    if has_extra_synsets(version):
        extra_cols, synsets = _node_tables(sources, wnids, depth)
        cols.update(extra_cols)
        out["taxonomy/synsets"] = synsets
    classes = pa.table(cols, metadata={"in21k_bench": json.dumps(TRAIN_COUNT_NOTE)})

    in1k = sources.imagenet1k_wnids
    index21 = {w: i for i, w in enumerate(wnids)}
    in1k_name = [(sources.lemmas.get(w) or [w])[0] for w in in1k]
    in1k_classes = pa.table(
        {
            "label": pa.array(np.arange(len(in1k), dtype=np.int32)),
            "wnid": pa.array(in1k, pa.string()),
            "name": pa.array(in1k_name, pa.string()),
            "in21k_index": pa.array(np.array([index21.get(w, -1) for w in in1k], dtype=np.int32)),
        }
    )
    in1k_index = {w: i for i, w in enumerate(in1k)}
    val_wnids = sources.imagenet1k_val_wnids
    real = sources.real_sets
    if len(val_wnids) != 50_000 or len(real) != 50_000:
        raise SourcesError(
            f"raw sources: expected 50,000 ImageNet-1K val labels and ReaL sets, found {len(val_wnids)} and {len(real)}"
        )
    in1k_val = pa.table(
        {
            "sample_id": pa.array([f"val/ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(50_000)], pa.string()),
            "label": pa.array(np.array([in1k_index[w] for w in val_wnids], dtype=np.int32)),
            "real": pa.array([sorted(int(x) for x in r) for r in real], pa.list_(pa.int16())),
        }
    )
    out.update(
        {"taxonomy/classes": classes, "taxonomy/imagenet1k_classes": in1k_classes, "taxonomy/imagenet1k_val": in1k_val}
    )
    return dict(sorted(out.items()))
