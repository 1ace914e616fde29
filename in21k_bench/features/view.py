"""A benchmark seen through a feature store of a larger image set: row selection, no copy.

Every ImageNet-21K benchmark is a subset or a relabelling of the ImageNet-21K-P images, and the
ImageNet-1K benchmarks are subsets of ImageNet-1K. So features are extracted once per image set
(``--benchmark in21k`` / ``imagenet-1k``) and any benchmark on those images is a *view*: the rows of
the store whose sample ids belong to the benchmark, in the benchmark's canonical order, with the
benchmark's labels. A :class:`StoreView` is a :class:`~in21k_bench.features.store.FeatureStore`
(same reading API) that reads the selected rows from the parent's memory-mapped shards on demand;
no feature byte is copied.

Selecting rows (:func:`select_rows`):

* benchmarks that list their samples (ImageNet-1K val, ReaL, leaf-HZR / p-HZR relabels): by sample
  id, in the manifest's order (falling back to the file name when the store was extracted from a
  differently foldered copy, e.g. ImageNet-1K val in class folders);
* class-level benchmarks (subsets, coarse levels, ImageNet-1K train): a sample's class is the folder
  of its id (``train/<wnid>/<file>``); rows of the benchmark's classes are kept, in class-index order
  then store order, labelled by the class's label (coarse labels included); ``imagenet-1k-odd`` keeps
  every other train image of its odd classes, as :meth:`Benchmark.materialize` does.

A store lacks what the benchmark needs -- one-line error -- when a listed sample id is absent, a
class of the benchmark has no row in the split, or (val) a class has fewer rows than the manifest
says (except for synthetic stores simulated with ``--val-scale`` below 1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .store import FeatureStore, open_features


class StoreView(FeatureStore):
    """The rows ``rows`` (indices into ``parent``) of a store, with their own ``labels``.

    ``view_of`` is ``{"benchmark", "version", "split"}``: what the selection is.
    """

    def __init__(
        self,
        parent: FeatureStore,
        rows: np.ndarray,
        labels: np.ndarray | None,
        *,
        benchmark: str,
        version: str | None,
        split: str,
    ):
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= parent.num_rows):
            raise InvalidInputError(
                f"store view: expected rows in [0, {parent.num_rows}), found [{rows.min()}, {rows.max()}]"
            )
        meta = {
            **parent.meta,
            "benchmark": benchmark,
            "version": version,
            "num_rows": int(rows.size),
            "view_of": {
                "store": str(parent.path),
                "benchmark": parent.meta.get("benchmark"),
                "num_rows": parent.num_rows,
            },
        }
        super().__init__(parent.path, meta, index=None)
        self.parent = parent
        self.rows = rows
        self.num_rows = int(rows.size)
        self._shards = parent._shards
        self._view_labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.view_name = benchmark
        self.view_of = {"benchmark": benchmark, "version": version, "split": split}
        # runs of consecutive parent rows: a chunk inside one run is a plain slice of the parent
        self._contiguous = bool(rows.size < 2 or np.all(np.diff(rows) == 1))

    def __repr__(self) -> str:
        return (
            f"StoreView({str(self.path)!r}, benchmark={self.view_name!r}, rows={self.num_rows} of "
            f"{self.parent.num_rows})"
        )

    @property
    def index(self) -> pd.DataFrame:
        base = self.parent.index
        cols = {"sample_id": base["sample_id"].to_numpy(dtype=object)[self.rows], "parent_row": self.rows}
        if self._view_labels is not None:
            cols["label"] = self._view_labels
        return pd.DataFrame(cols)

    @property
    def sample_ids(self) -> np.ndarray:
        return self.parent.sample_ids[self.rows]

    @property
    def labels(self) -> np.ndarray | None:
        return self._view_labels

    def _rows(self, start: int, stop: int) -> np.ndarray:
        sel = self.rows[start:stop]
        if sel.size and (self._contiguous or (sel[-1] - sel[0] == sel.size - 1 and np.all(np.diff(sel) == 1))):
            return self.parent._rows(int(sel[0]), int(sel[-1]) + 1)  # a slice of the parent's shards
        return self.parent.take(sel, normalize=False)

    def take(self, indices: Sequence[int] | np.ndarray, normalize: bool = True) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_rows):
            raise InvalidInputError(
                f"take: expected row indices in [0, {self.num_rows}), found [{idx.min()}, {idx.max()}]"
            )
        return self.parent.take(self.rows[idx], normalize=normalize)

    def verify(self) -> None:
        self.parent.verify()

    def info(self) -> dict:
        labels = self.labels
        return {
            **self.parent.info(),
            "num_rows": self.num_rows,
            "benchmark": self.view_name,
            "version": self.view_of["version"],
            "view_of": str(self.parent.path),
            "parent_rows": self.parent.num_rows,
            "has_labels": labels is not None,
            "num_labels": int(len(np.unique(labels))) if labels is not None and len(labels) else 0,
        }


def _class_of(sample_ids: np.ndarray) -> np.ndarray:
    """The folder of each sample id (``train/<wnid>/<file>`` -> ``<wnid>``)."""
    s = pd.Series(sample_ids, dtype=object).str.rsplit("/", n=2)
    return s.str[-2].fillna("").to_numpy(dtype=object)


def _by_sample_id(store: FeatureStore, table: pd.DataFrame, what: str, benchmark) -> tuple[np.ndarray, np.ndarray]:
    ids = pd.Index(store.sample_ids)
    want = table["sample_id"].to_numpy(dtype=object)
    pos = ids.get_indexer(want) if ids.is_unique else np.full(len(want), -1)
    if (pos < 0).any():  # same files in another folder layout (e.g. ImageNet-1K val flat vs class folders)
        names = pd.Index(pd.Series(ids, dtype=object).str.rsplit("/", n=1).str[-1])
        if names.is_unique:
            alt = names.get_indexer(pd.Series(want, dtype=object).str.rsplit("/", n=1).str[-1])
            if (alt >= 0).sum() > (pos >= 0).sum():
                pos = alt
    missing = np.flatnonzero(pos < 0)
    if len(missing):
        raise InvalidInputError(
            f"{what}: expected the store {store.path} to hold all {len(want):,} samples the benchmark lists, "
            f"found {len(missing):,} missing (first: {want[missing[0]]}); use features extracted with --benchmark "
            f"{_image_set(benchmark)}"
        )
    return pos.astype(np.int64), table["label"].to_numpy(dtype=np.int64)


def _image_set(benchmark) -> str:
    """The benchmark whose images contain ``benchmark``'s (what to extract once)."""
    return "imagenet-1k" if getattr(benchmark.definition, "source", "in21k") == "imagenet-1k" else "in21k"


def select_rows(store: FeatureStore, benchmark, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, labels)``: the store rows of ``benchmark``'s ``split`` in canonical order, and their labels.

    See the module docstring for the rules; raises a one-line :class:`InvalidInputError` when the
    store lacks samples the benchmark needs."""
    what = f"benchmark {benchmark.name} {split}"
    table = benchmark.sample_table(split)
    if table is not None:
        return _by_sample_id(store, table, what, benchmark)
    sc = benchmark.source_classes
    wnids = sc["wnid"].astype(str).to_numpy(dtype=object)
    class_pos = pd.Series(np.arange(len(sc)), index=wnids)
    cls = _class_of(store.sample_ids)
    pos = class_pos.reindex(cls).to_numpy()
    keep = np.flatnonzero(~np.isnan(pos))
    pos = pos[keep].astype(np.int64)
    order = np.argsort(pos, kind="stable")  # class-index order, store order within a class
    rows, pos = keep[order], pos[order]
    labels = sc["label"].to_numpy(dtype=np.int64)[pos]
    if split == "train" and benchmark.rule.get("odd_keep"):
        within = pd.Series(pos).groupby(pos).cumcount().to_numpy()
        keep_odd = (labels % 2 == 0) | (within % 2 == 0)
        rows, pos, labels = rows[keep_odd], pos[keep_odd], labels[keep_odd]
    found = np.bincount(pos, minlength=len(sc))
    expected = sc[f"num_{split}"].to_numpy()
    empty = np.flatnonzero((found == 0) & (expected != 0))
    if len(empty):
        raise InvalidInputError(
            f"{what}: expected rows of all {len(sc):,} classes in the store {store.path}, found none for "
            f"{len(empty):,} (first: {wnids[empty[0]]}); the store was made for {store.meta.get('benchmark')!r}: use "
            f"features extracted with --benchmark {_image_set(benchmark)}"
        )
    if split == "val" and not (store.meta.get("synthetic") and float(store.meta.get("val_scale", 1.0)) < 1.0):
        short = np.flatnonzero((expected > 0) & (found < expected))
        if len(short):
            j = short[0]
            raise InvalidInputError(
                f"{what}: expected {int(expected[j])} val rows of class {wnids[j]} (the manifest's count), found "
                f"{int(found[j])} "
                f"in {store.path} ({len(short):,} classes short); extract features of the full val split"
            )
    return rows, labels


def benchmark_view(store: FeatureStore, benchmark, split: str) -> FeatureStore:
    """``store`` seen as ``benchmark``'s ``split``: the store itself when it was made for this benchmark
    (its labels are the benchmark's), else a :class:`StoreView` selecting the benchmark's rows."""
    if store.meta.get("benchmark") == benchmark.name and store.meta.get("version") in (None, benchmark.version):
        return store
    rows, labels = select_rows(store, benchmark, split)
    return StoreView(store, rows, labels, benchmark=benchmark.name, version=benchmark.version, split=split)


def open_benchmark_features(directory: str | os.PathLike, benchmark) -> tuple[FeatureStore, FeatureStore]:
    """``(train, val)`` of a features directory as ``benchmark`` (a loaded :class:`Benchmark` or a name)."""
    if isinstance(benchmark, str):
        from ..benchmark import load

        benchmark = load(benchmark)
    train, val = open_features(directory)
    return benchmark_view(train, benchmark, "train"), benchmark_view(val, benchmark, "val")


def open_view(path: str | os.PathLike, benchmark=None, split: str = "train") -> FeatureStore:
    """A store directory, or the ``split`` store of a features directory, optionally as ``benchmark``."""
    p = Path(path)
    store = FeatureStore.open(p if (p / "meta.json").is_file() else p / split)
    if benchmark is None:
        return store
    if isinstance(benchmark, str):
        from ..benchmark import load

        benchmark = load(benchmark)
    return benchmark_view(store, benchmark, store.meta.get("split") or split)
