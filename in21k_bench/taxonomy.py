"""The ImageNet-21K-P (winter 2021) taxonomy and the ImageNet-1K label files.

Both are *built* from the raw sources by :func:`build_taxonomy_tables` (part of
``in21k-bench build-manifests``) and committed as parquet under ``splits/v1/taxonomy/``;
:func:`load_taxonomy` and :func:`load_imagenet1k` read the committed files (sha256-checked through the
splits index), so installed users never need the raw sources.

Class index = position in the sorted winter21 wnid list. Depth 0 = a root of the MIIL tree;
hierarchy level = depth + 1 (the paper's "levels 1..11").
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from .errors import In21kError, SourcesError

TAXONOMY_VERSION = "v1"
VAL_IMAGES_PER_CLASS = 50  # the winter21 release moved the first 50 files of each class to val
IMAGENET1K_NUM_TRAIN = 1_281_167  # ILSVRC-2012 train images (Russakovsky et al., 2015)


# --------------------------------------------------------------------------------------------------
# Build (from raw sources)
# --------------------------------------------------------------------------------------------------


def build_taxonomy_tables(sources) -> dict[str, pa.Table]:
    """Build the taxonomy tables from verified :class:`~in21k_bench.sources.Sources`.

    Returns ``{"taxonomy/classes": ..., "taxonomy/imagenet1k_classes": ..., "taxonomy/imagenet1k_val": ...}``.
    Raises :class:`SourcesError` if the MIIL tree in the release does not match the tree rebuilt from
    ``wordnet.is_a.txt`` (they agree for all 10,450 classes; docs/benchmarks.md, "The data").
    """
    from .sources import miil_parents_from_is_a

    wnids = sources.winter21_wnids
    n = len(wnids)
    tree = sources.miil_tree
    paths = tree["class_tree_list"]
    if len(paths) != n or list(tree["class_description"].keys()) != wnids:
        raise SourcesError("raw sources: expected the MIIL tree in the same class order as the wnid list, found otherwise")
    parent = np.array([p[1] if len(p) > 1 else -1 for p in paths], dtype=np.int32)
    rebuilt = miil_parents_from_is_a(wnids, sources.is_a_edges)
    mismatch = int((rebuilt != parent).sum())
    if mismatch:
        raise SourcesError(f"raw sources: expected the MIIL tree to equal the one rebuilt from wordnet.is_a.txt, found {mismatch} differing parents")
    depth = np.array([len(p) - 1 for p in paths], dtype=np.int16)

    has_wordnet_child = {parent_w for parent_w, _ in sources.is_a_edges}
    is_wordnet_leaf = np.array([w not in has_wordnet_child for w in wnids])
    is_miil_leaf = np.ones(n, dtype=bool)
    is_miil_leaf[parent[parent >= 0]] = False

    num_images = sources.num_images_fall11
    missing = [w for w in wnids if w not in num_images]
    if missing:
        raise SourcesError(f"raw sources: expected numImages for every winter21 class in ReleaseStatus.xml, found none for {missing[:3]}")
    fall11 = np.array([num_images[w] for w in wnids], dtype=np.int64)

    classes = pa.table(
        {
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
        },
        metadata={
            "in21k_bench": '{"train_count": "estimate: fall11 ReleaseStatus numImages - 50 (no per-class winter21 listing exists); recount with Benchmark.materialize(root)"}'
        },
    )

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
        raise SourcesError(f"raw sources: expected 50,000 ImageNet-1K val labels and ReaL sets, found {len(val_wnids)} and {len(real)}")
    in1k_val = pa.table(
        {
            "sample_id": pa.array([f"val/ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(50_000)], pa.string()),
            "label": pa.array(np.array([in1k_index[w] for w in val_wnids], dtype=np.int32)),
            "real": pa.array([sorted(int(x) for x in r) for r in real], pa.list_(pa.int16())),
        }
    )
    return {
        "taxonomy/classes": classes,
        "taxonomy/imagenet1k_classes": in1k_classes,
        "taxonomy/imagenet1k_val": in1k_val,
    }


# --------------------------------------------------------------------------------------------------
# Load (from committed, checksummed files)
# --------------------------------------------------------------------------------------------------


class Taxonomy:
    """The 10,450 winter21 classes and the MIIL tree. All per-class arrays are indexed by class index.

    Queries (``children``, ``path``, ``ancestors``, ``descendants``, ``siblings``,
    ``ancestor_at_level``) are O(depth) or O(subtree) on precomputed CSR structures.
    """

    def __init__(self, table: pd.DataFrame, version: str = TAXONOMY_VERSION):
        self.version = version
        self.classes = table
        self.num_classes = len(table)
        self.wnids = table["wnid"].to_numpy(dtype=object)
        self.names = table["name"].to_numpy(dtype=object)
        self.definitions = table["definition"].to_numpy(dtype=object)
        self.parent = table["parent"].to_numpy(dtype=np.int32)
        self.depth = table["depth"].to_numpy(dtype=np.int16)
        self.level = self.depth.astype(np.int16) + 1
        self.is_wordnet_leaf = table["is_wordnet_leaf"].to_numpy(dtype=bool)
        self.is_miil_leaf = table["is_miil_leaf"].to_numpy(dtype=bool)
        self.train_count = table["train_count"].to_numpy(dtype=np.int64)
        self.val_count = table["val_count"].to_numpy(dtype=np.int64)
        self._index = {w: i for i, w in enumerate(self.wnids)}
        # children in CSR form, each list sorted by class index
        has_parent = np.flatnonzero(self.parent >= 0)
        order = has_parent[np.argsort(self.parent[has_parent], kind="stable")]
        counts = np.bincount(self.parent[has_parent], minlength=self.num_classes)
        self._child_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._child_idx = order.astype(np.int32)
        self.roots = np.flatnonzero(self.parent < 0).astype(np.int32)
        # ancestor table: anc[i, d] = ancestor of i at depth d (or -1 when depth(i) < d); filled one depth
        # level at a time (a node's row = its parent's row + itself)
        max_depth = int(self.depth.max()) if self.num_classes else 0
        anc = np.full((self.num_classes, max_depth + 1), -1, dtype=np.int32)
        for d in range(max_depth + 1):
            nodes = np.flatnonzero(self.depth == d)
            p = self.parent[nodes]
            has = p >= 0
            anc[nodes[has], :d] = anc[p[has], :d]
            anc[nodes, d] = nodes
        self._anc = anc
        self._ancestor_matrix = None

    @cached_property
    def lemmas(self) -> list[list[str]]:
        """WordNet lemmas of every class (built on first use)."""
        return [list(x) for x in self.classes["lemmas"]]

    # --- lookups ---------------------------------------------------------------------------------
    def index(self, wnid: str) -> int:
        try:
            return self._index[wnid]
        except KeyError:
            raise In21kError(f"taxonomy: expected a winter21 wnid like n01440764, found {wnid!r}") from None

    def indices(self, wnids) -> np.ndarray:
        return np.array([self.index(w) for w in wnids], dtype=np.int64)

    def children(self, i: int) -> np.ndarray:
        return self._child_idx[self._child_ptr[i] : self._child_ptr[i + 1]]

    def path(self, i: int) -> list[int]:
        """``[i, parent, grandparent, ..., root]`` (the release's ``class_tree_list`` entry)."""
        return [int(x) for x in self._anc[i, : self.depth[i] + 1][::-1]]

    def ancestors(self, i: int) -> list[int]:
        return self.path(i)[1:]

    def descendants(self, i: int) -> np.ndarray:
        """All classes below ``i`` (excluding ``i``), breadth first."""
        out, frontier = [], [i]
        while frontier:
            nxt = np.concatenate([self.children(j) for j in frontier]) if frontier else np.empty(0, np.int32)
            out.append(nxt)
            frontier = nxt.tolist()
        return np.concatenate(out).astype(np.int32) if out else np.empty(0, np.int32)

    def siblings(self, i: int) -> np.ndarray:
        """Classes with the same parent (other roots for a root), excluding ``i``."""
        p = self.parent[i]
        group = self.roots if p < 0 else self.children(p)
        return group[group != i]

    def ancestor_at_level(self, i: int, level: int) -> int:
        """The ancestor of ``i`` at hierarchy ``level`` (1 = roots); ``i`` itself if it is that shallow."""
        if level < 1:
            raise In21kError(f"taxonomy: expected a hierarchy level >= 1, found {level}")
        if self.level[i] <= level:
            return int(i)
        return int(self._anc[i, level - 1])

    def ancestor_at_level_all(self, level: int) -> np.ndarray:
        """Vectorised :meth:`ancestor_at_level` for every class."""
        if level < 1:
            raise In21kError(f"taxonomy: expected a hierarchy level >= 1, found {level}")
        out = np.arange(self.num_classes, dtype=np.int32)
        deep = self.level > level
        out[deep] = self._anc[deep, level - 1]
        return out

    def ancestor_matrix(self) -> sp.csr_matrix:
        """Boolean (n x n) CSR: row i has i and all its ancestors (a fresh copy of a cached matrix)."""
        if self._ancestor_matrix is None:
            rows, cols = np.nonzero(self._anc >= 0)
            data = np.ones(len(rows), dtype=bool)
            self._ancestor_matrix = sp.csr_matrix((data, (rows, self._anc[rows, cols])), shape=(self.num_classes,) * 2)
        return self._ancestor_matrix.copy()

    def label_ancestor_matrix(self, label_wnids) -> sp.csr_matrix:
        """(C x C) boolean CSR for a label space given by ``label_wnids``: row l holds l and those of its
        MIIL ancestors that are themselves labels (the label set S_L of docs/benchmarks.md)."""
        wn = np.asarray(label_wnids, dtype=object)
        c = len(wn)
        cls_idx = np.arange(c, dtype=np.int64) if c == self.num_classes and (wn == self.wnids).all() else self.indices(wn)
        label_of_class = np.full(self.num_classes, -1, dtype=np.int64)
        label_of_class[cls_idx] = np.arange(c)
        anc = self.ancestor_matrix()[cls_idx].tocoo()
        lab = label_of_class[anc.col]
        keep = lab >= 0
        m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (anc.row[keep], lab[keep])), shape=(c, c))
        m.sort_indices()
        return m


class ImageNet1k:
    """ILSVRC-2012: classes in standard order, val labels in file order, ReaL sets."""

    def __init__(self, classes: pd.DataFrame, val: pd.DataFrame):
        self.classes = classes
        self.wnids = classes["wnid"].to_numpy(dtype=object)
        self.names = classes["name"].to_numpy(dtype=object)
        self.in21k_index = classes["in21k_index"].to_numpy(dtype=np.int64)
        self.val_sample_ids = val["sample_id"].to_numpy(dtype=object)
        self.val_labels = val["label"].to_numpy(dtype=np.int64)
        lengths = val["real"].map(len).to_numpy()
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate([np.asarray(x, dtype=np.int32) for x in val["real"]]) if indptr[-1] else np.empty(0, np.int32)
        self.real_sets = sp.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(val), len(classes))
        )


@lru_cache(maxsize=4)
def load_taxonomy(version: str = TAXONOMY_VERSION) -> Taxonomy:
    from .manifests import read_table

    return Taxonomy(read_table(f"{version}/taxonomy/classes.parquet"), version=version)


@lru_cache(maxsize=4)
def load_imagenet1k(version: str = TAXONOMY_VERSION) -> ImageNet1k:
    from .manifests import read_table

    return ImageNet1k(
        read_table(f"{version}/taxonomy/imagenet1k_classes.parquet"),
        read_table(f"{version}/taxonomy/imagenet1k_val.parquet"),
    )
