"""The ImageNet-21K-P (winter 2021) taxonomy and the ImageNet-1K label files.

Both are *built* from the raw sources by :mod:`in21k_bench.authoring.taxonomy_tables` (part of
``in21k-bench build-manifests``) and committed as parquet under ``splits/<version>/taxonomy/``;
:func:`read_taxonomy` and :func:`read_imagenet1k` read the committed files (sha256-checked through the
splits index), so installed users never need the raw sources.

Class index = position in the sorted winter21 wnid list. Depth 0 = a root of the MIIL tree;
hierarchy level = depth + 1 (the paper's "levels 1..11").

Nodes (v2 taxonomies): the 10,450 classes plus the *extra synsets*, the WordNet synsets that are the
direct hypernym of a class without being a class (labels of the one-step coarse benchmarks). Node
index = class index for classes, then 10,450 + row of the extra-synsets table. The parent of a node
is the first node on its WordNet hypernym chain (each step: the last line of ``wordnet.is_a.txt``
naming the synset as child). Restricted to classes this is exactly the MIIL tree, so the label set
of a sample (its label plus the label's node ancestors that are labels of the benchmark) is the
same as with MIIL ancestors whenever every label is a class. A v1 taxonomy has no extra synsets;
its node tree is the MIIL tree.
"""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from ..errors import In21kError
from ..manifests.files import read_arrow
from ..manifests.index import ManifestIndex
from ..paths import SPLITS_DIR, index_path, splits_root

TAXONOMY_VERSION = "v1"  # the default of load_taxonomy() (kept for callers that predate versioned taxonomies)
IMAGENET1K_NUM_TRAIN = 1_281_167  # ILSVRC-2012 train images (Russakovsky et al., 2015)


class Taxonomy:
    """The 10,450 winter21 classes and the MIIL tree (plus, from v2, the extra synsets: see the module
    docstring). All per-class arrays are indexed by class index; ``node_*`` arrays by node index.

    Queries (``children``, ``path``, ``ancestors``, ``descendants``, ``siblings``,
    ``ancestor_at_level``) are O(depth) or O(subtree) on precomputed CSR structures.
    """

    def __init__(self, table: pd.DataFrame, version: str = TAXONOMY_VERSION, synsets: pd.DataFrame | None = None):
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
        self._init_nodes(table, synsets)

    # --- nodes: classes + extra synsets (v2) -----------------------------------------------------
    def _init_nodes(self, table: pd.DataFrame, synsets: pd.DataFrame | None) -> None:
        n = self.num_classes
        self.synsets = (
            synsets
            if synsets is not None
            else pd.DataFrame(
                {
                    "node_index": np.empty(0, np.int32),
                    "wnid": np.empty(0, object),
                    "name": np.empty(0, object),
                    "lemmas": np.empty(0, object),
                    "definition": np.empty(0, object),
                    "hypernym": np.empty(0, object),
                    "node_parent": np.empty(0, np.int32),
                    "class_parent": np.empty(0, np.int32),
                    "depth": np.empty(0, np.int16),
                }
            )
        )
        if (
            len(self.synsets)
            and not (self.synsets["node_index"].to_numpy() == np.arange(n, n + len(self.synsets))).all()
        ):
            raise In21kError(f"taxonomy {self.version}: expected extra synsets numbered {n}.., found another numbering")
        self.num_synsets = len(self.synsets)
        self.num_nodes = n + self.num_synsets
        self.node_wnids = np.concatenate([self.wnids, self.synsets["wnid"].to_numpy(dtype=object)])
        self.node_names = np.concatenate([self.names, self.synsets["name"].to_numpy(dtype=object)])
        self.node_depth = np.concatenate([self.depth, self.synsets["depth"].to_numpy(dtype=np.int16)]).astype(np.int16)
        own = table["node_parent"].to_numpy(dtype=np.int32) if "node_parent" in table else self.parent
        self.node_parent = np.concatenate([own, self.synsets["node_parent"].to_numpy(dtype=np.int32)]).astype(np.int32)
        #: per class: is it a WordNet instance synset (None for a v1 taxonomy, which does not record it)
        self.is_wordnet_instance = (
            table["is_wordnet_instance"].to_numpy(dtype=bool) if "is_wordnet_instance" in table else None
        )
        #: per class: wnid of its direct WordNet hypernym ("" for none; None for a v1 taxonomy)
        self.hypernym = table["hypernym"].to_numpy(dtype=object) if "hypernym" in table else None
        self._node_index = dict(self._index)
        self._node_index.update({w: n + j for j, w in enumerate(self.synsets["wnid"])})
        self._node_ancestor_matrix = None

    def node_index(self, wnid: str) -> int:
        """Node index of a class or extra synset (:class:`In21kError` for any other wnid)."""
        try:
            return self._node_index[wnid]
        except KeyError:
            raise In21kError(
                f"taxonomy {self.version}: expected a class or extra-synset wnid like n01440764, found {wnid!r}"
            ) from None

    def node_indices(self, wnids) -> np.ndarray:
        return np.array([self.node_index(w) for w in wnids], dtype=np.int64)

    def lookup(self, wnid: str) -> int:
        """Class index of ``wnid``, or -1 when it is not a class (no error)."""
        return self._index.get(wnid, -1)

    def hypernym_nodes(self) -> np.ndarray:
        """Per class: node index of its direct WordNet hypernym (-1 for none). Needs a v2 taxonomy."""
        if self.hypernym is None:
            raise In21kError(
                f"taxonomy {self.version}: expected a taxonomy with direct hypernyms (v2 or later), found version "
                f"{self.version}"
            )
        return np.array([self._node_index[h] if h else -1 for h in self.hypernym], dtype=np.int64)

    def node_path(self, i: int) -> list[int]:
        """``[i, parent node, ..., top node]`` in the node tree."""
        out = [int(i)]
        while self.node_parent[out[-1]] >= 0:
            out.append(int(self.node_parent[out[-1]]))
        return out

    def lemmas_of(self, wnids) -> list[list[str]]:
        """WordNet lemmas of classes or extra synsets (for zero-shot prompts)."""
        n = self.num_classes
        lem = self.synsets["lemmas"].to_numpy(dtype=object)
        out = []
        for w in wnids:
            i = self.node_index(w)
            out.append(list(self.classes["lemmas"].iat[i]) if i < n else list(lem[i - n]))
        return out

    def node_ancestor_matrix(self) -> sp.csr_matrix:
        """Boolean (nodes x nodes) CSR: row i has node i and all its node ancestors (cached; a copy)."""
        if self._node_ancestor_matrix is None:
            if self.num_synsets == 0 and (self.node_parent == self.parent).all():
                self._node_ancestor_matrix = self.ancestor_matrix()
            else:
                rows, cols = [np.arange(self.num_nodes)], [np.arange(self.num_nodes)]
                cur = np.arange(self.num_nodes)
                p = self.node_parent[cur]
                while (p >= 0).any():  # one step up the tree per pass, all nodes at once
                    keep = p >= 0
                    cur, p = cur[keep], p[keep]
                    rows.append(cur)
                    cols.append(p)
                    p = self.node_parent[p]
                r, c = np.concatenate(rows), np.concatenate(cols)
                self._node_ancestor_matrix = sp.csr_matrix(
                    (np.ones(len(r), dtype=bool), (r, c)), shape=(self.num_nodes,) * 2
                )
        return self._node_ancestor_matrix.copy()

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
        """(C x C) boolean CSR for a label space given by ``label_wnids`` (classes or extra synsets): row l
        holds l and those of its node ancestors that are themselves labels -- the label set S_L of a
        sample labelled l. When every label is a class these are its MIIL ancestors that are labels."""
        wn = np.asarray(label_wnids, dtype=object)
        c = len(wn)
        cls_idx = (
            np.arange(c, dtype=np.int64)
            if c == self.num_classes and (wn == self.wnids).all()
            else self.node_indices(wn)
        )
        label_of_class = np.full(self.num_nodes, -1, dtype=np.int64)
        label_of_class[cls_idx] = np.arange(c)
        anc = self.node_ancestor_matrix()[cls_idx].tocoo()
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
        indices = (
            np.concatenate([np.asarray(x, dtype=np.int32) for x in val["real"]])
            if indptr[-1]
            else np.empty(0, np.int32)
        )
        self.real_sets = sp.csr_matrix(
            (np.ones(len(indices), dtype=bool), indices, indptr), shape=(len(val), len(classes))
        )


def taxonomy_from_tables(tables: Mapping[str, pa.Table | pd.DataFrame], version: str) -> Taxonomy:
    """A :class:`Taxonomy` from a version's tables (``{"classes": ..., "synsets": ...}``; synsets optional)."""
    frames = {k: (t.to_pandas() if isinstance(t, pa.Table) else t) for k, t in tables.items()}
    return Taxonomy(frames["classes"], version=version, synsets=frames.get("synsets"))


def imagenet1k_from_tables(tables: Mapping[str, pa.Table | pd.DataFrame]) -> ImageNet1k:
    """An :class:`ImageNet1k` from ``{"imagenet1k_classes": ..., "imagenet1k_val": ...}``."""
    frames = {k: (t.to_pandas() if isinstance(t, pa.Table) else t) for k, t in tables.items()}
    return ImageNet1k(frames["imagenet1k_classes"], frames["imagenet1k_val"])


def _taxonomy_tables(version: str, root, names: tuple[str, ...]) -> dict[str, pa.Table]:
    have = set(ManifestIndex.load(root).taxonomy_files(version))
    out = {}
    for name in names:
        rel = f"{version}/taxonomy/{name}.parquet"
        if name == "synsets" and rel not in have:
            continue  # a v1 taxonomy has no extra synsets
        out[name] = read_arrow(rel, root)
    return out


def _default_version(root) -> str:
    latest = ManifestIndex.load(root).latest()
    if latest is None:
        raise In21kError(
            f"taxonomy: expected a built version in {splits_root(root)}, found none (run `in21k-bench build-manifests`)"
        )
    return latest


def _cache_key(root) -> tuple[str, int]:
    """(resolved root, index mtime): a rebuilt index invalidates the cached tables."""
    p = index_path(root)
    return str(splits_root(root).resolve()), (p.stat().st_mtime_ns if p.is_file() else 0)


@lru_cache(maxsize=8)
def _read_taxonomy_cached(version: str, root: str, index_mtime: int) -> Taxonomy:
    return taxonomy_from_tables(_taxonomy_tables(version, Path(root), ("classes", "synsets")), version)


@lru_cache(maxsize=8)
def _read_imagenet1k_cached(version: str, root: str, index_mtime: int) -> ImageNet1k:
    return imagenet1k_from_tables(_taxonomy_tables(version, Path(root), ("imagenet1k_classes", "imagenet1k_val")))


def read_taxonomy(version: str | None = None, root: str | os.PathLike | None = None) -> Taxonomy:
    """The taxonomy of manifest ``version`` (default: the latest) from the splits folder ``root``
    (default: the package's), every file sha256-checked against that folder's index. Cached per
    (version, root): do not modify the returned object."""
    version = version or _default_version(root)
    return _read_taxonomy_cached(version, *_cache_key(root))


def read_imagenet1k(version: str | None = None, root: str | os.PathLike | None = None) -> ImageNet1k:
    """The ImageNet-1K classes, val labels and ReaL sets of manifest ``version`` (see :func:`read_taxonomy`)."""
    version = version or _default_version(root)
    return _read_imagenet1k_cached(version, *_cache_key(root))


def load_taxonomy(version: str | None = None) -> Taxonomy:
    """The package's taxonomy of ``version`` (default: the latest manifest version)."""
    return read_taxonomy(version, SPLITS_DIR)


def load_imagenet1k(version: str | None = None) -> ImageNet1k:
    """The package's ImageNet-1K tables of ``version`` (default: the latest manifest version)."""
    return read_imagenet1k(version, SPLITS_DIR)
