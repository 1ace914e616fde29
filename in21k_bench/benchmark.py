"""The loaded benchmark object and :func:`load`.

>>> import in21k_bench
>>> b = in21k_bench.load("imbalanced-2k")
>>> b.num_classes, b.num_val, b.val_labels()[:3]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import In21kError, InvalidInputError, NeedsInputError
from .manifests.files import read_arrow
from .manifests.index import ManifestIndex
from .paths import INPUTS_ENV, inputs_dir, splits_root
from .registry.catalog import BenchmarkDefinition, get_definition, list_definitions
from .registry.taxonomy import IMAGENET1K_NUM_TRAIN, ImageNet1k, Taxonomy, read_imagenet1k, read_taxonomy
from .scoring.label_protocols import LabelAndAncestors, LabelProtocol, OwnLabel, RealSets

__all__ = ["Benchmark", "INPUTS_ENV", "inputs_dir", "list_benchmarks", "load"]


class Benchmark:
    """A loaded benchmark: classes, labels, counts and label sets (see ``docs/design.md``)."""

    def __init__(
        self,
        definition: BenchmarkDefinition,
        tables: Mapping[str, pd.DataFrame],
        taxonomy: Taxonomy,
        imagenet1k: ImageNet1k | None = None,
    ):
        self.definition = definition
        self.name = definition.name
        self.version = definition.version
        self.family = definition.family
        self.status = definition.status
        self.rule = dict(definition.rule)
        self.description = definition.description
        self.taxonomy = taxonomy
        self.imagenet1k = imagenet1k
        self._tables = dict(tables)
        self.classes: pd.DataFrame = self._tables["labels"][["label", "wnid", "name", "num_train", "num_val"]].copy()
        self.num_classes = len(self.classes)
        self._val = self._tables.get("val")
        self._train = self._tables.get("train")
        if "classes" in self._tables:
            self.source_classes = self._tables["classes"].copy()
        elif definition.source == "imagenet-1k":
            lab = self._tables["labels"]
            self.source_classes = pd.DataFrame(
                {
                    "class_index": lab["label"],
                    "wnid": lab["wnid"],
                    "label": lab["label"],
                    "num_train": lab["num_train"],
                    "num_val": lab["num_val"],
                }
            )
        else:  # sample-level relabeling: counts per original class, label not a function of the class
            counts = {}
            for split, df in (("train", self._train), ("val", self._val)):
                counts[f"num_{split}"] = (
                    df["original_index"].value_counts() if df is not None else pd.Series(dtype=np.int64)
                )
            idx = np.union1d(counts["num_train"].index.to_numpy(), counts["num_val"].index.to_numpy()).astype(np.int64)
            self.source_classes = pd.DataFrame(
                {
                    "class_index": idx,
                    "wnid": taxonomy.wnids[idx],
                    "label": -1,
                    "num_train": counts["num_train"].reindex(idx, fill_value=0).to_numpy(),
                    "num_val": counts["num_val"].reindex(idx, fill_value=0).to_numpy(),
                }
            )
        self.num_val = int(len(self._val)) if self._val is not None else int(self.source_classes["num_val"].sum())
        self.num_train = self._count_train()
        self.val_source = "imagenet-1k" if definition.label_sets == "real" else None

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_tables(
        cls,
        definition: BenchmarkDefinition,
        arrow_tables: Mapping,
        taxonomy: Taxonomy,
        imagenet1k: ImageNet1k | None = None,
    ) -> "Benchmark":
        return cls(definition, {k: t.to_pandas() for k, t in arrow_tables.items()}, taxonomy, imagenet1k)

    def _count_train(self) -> int | None:
        if self._train is not None:
            return int(len(self._train))
        counts = self.source_classes["num_train"].to_numpy()
        if (counts >= 0).all():
            return int(counts.sum())
        if self.rule.get("odd_keep"):
            return None  # known only after materialize (per-class ImageNet-1K counts are not in the sources)
        if self.definition.source == "imagenet-1k":
            return IMAGENET1K_NUM_TRAIN
        return None

    @property
    def train_counts_estimated(self) -> bool:
        """True when per-class train counts are estimates (IN-21K: fall11 numImages - 50)."""
        return self.definition.source == "in21k" and self._train is None

    def __repr__(self) -> str:
        return (
            f"Benchmark({self.name!r}, version={self.version!r}, C={self.num_classes}, train={self.num_train}, "
            f"val={self.num_val}, status={self.status!r})"
        )

    # ------------------------------------------------------------------------------------------
    def val_labels(self) -> np.ndarray:
        """Label id of every val sample, in canonical val order (int64, shape (num_val,)).

        For ``real1k`` this is the *original* ImageNet-1K label, which is in the image's ReaL set for
        only 90.0% of the scored images; ``real1k`` is scored against the ReaL sets
        (:meth:`label_sets`, through :meth:`label_protocol`), not against these labels."""
        if self._val is not None:
            return self._val["label"].to_numpy(dtype=np.int64)
        sc = self.source_classes
        return np.repeat(sc["label"].to_numpy(dtype=np.int64), sc["num_val"].to_numpy())

    def train_labels(self) -> np.ndarray:
        """Label id of every train sample in canonical order. For IN-21K class-level benchmarks this uses
        the *estimated* per-class counts; use :meth:`materialize` for the exact list of a local copy."""
        if self._train is not None:
            return self._train["label"].to_numpy(dtype=np.int64)
        sc = self.source_classes
        counts = sc["num_train"].to_numpy()
        if (counts < 0).any():
            raise In21kError(
                f"benchmark {self.name}: per-class train counts are not in the manifest; call materialize(root) on a "
                "local copy"
            )
        return np.repeat(sc["label"].to_numpy(dtype=np.int64), counts)

    def val_sample_ids(self) -> np.ndarray | None:
        """Sample ids in canonical val order when the manifest holds them (ImageNet-1K, HZR), else None."""
        if self._val is not None and "sample_id" in self._val:
            return self._val["sample_id"].to_numpy(dtype=object)
        return None

    def val_source_rows(self) -> np.ndarray | None:
        """For ``real1k``: positions of the scored images in the full ImageNet-1K val order (50,000)."""
        if self._val is not None and "source_row" in self._val:
            return self._val["source_row"].to_numpy(dtype=np.int64)
        return None

    @property
    def val_source_size(self) -> int | None:
        return 50_000 if self.val_source == "imagenet-1k" else None

    def label_matrix(self) -> sp.csr_matrix:
        """(C x C) boolean CSR: row l = the label set of a sample whose label is l (label + its ancestors
        that are labels of this benchmark: MIIL ancestors, or for a label that is a WordNet synset outside
        the classes, the classes and extra synsets on its hypernym chain). Only for hierarchy-based label sets."""
        return self.taxonomy.label_ancestor_matrix(self.classes["wnid"].to_numpy(dtype=object))

    def label_sets(self) -> sp.csr_matrix:
        """Boolean CSR (num_val x C): row i = the label set S_L of val sample i (see :meth:`label_matrix`;
        the ReaL set for ``real1k``; the label itself for ImageNet-1K)."""
        kind = self.definition.label_sets
        if kind == "real":
            col = self._val["real"]
            lengths = col.map(len).to_numpy()
            indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            indices = np.concatenate([np.asarray(x, dtype=np.int32) for x in col])
            return sp.csr_matrix(
                (np.ones(len(indices), dtype=bool), indices, indptr), shape=(self.num_val, self.num_classes)
            )
        labels = self.val_labels()
        if kind == "self":
            n = len(labels)
            return sp.csr_matrix((np.ones(n, dtype=bool), labels, np.arange(n + 1)), shape=(n, self.num_classes))
        return self.label_matrix()[labels]

    def label_protocol(self) -> LabelProtocol:
        """How the val split is scored (see :mod:`in21k_bench.scoring.label_protocols`): the label itself, the label
        and its ancestors, or the ReaL sets (with the 50,000-row ImageNet-1K val order as source)."""
        kind = self.definition.label_sets
        if kind == "real":
            ids = self.imagenet1k.val_sample_ids if self.imagenet1k is not None else None
            return RealSets(
                self.label_sets(),
                source_rows=self.val_source_rows(),
                source_size=self.val_source_size,
                source_ids=ids,
                source_name="ImageNet-1K val",
            )
        if kind == "self":
            return OwnLabel(self.val_labels(), self.num_classes)
        return LabelAndAncestors(self.val_labels(), self.label_matrix())

    # ------------------------------------------------------------------------------------------
    def info(self) -> dict:
        nt = self.classes["num_train"].to_numpy()
        known = nt[nt >= 0]
        return {
            "name": self.name,
            "version": self.version,
            "family": self.family,
            "status": self.status,
            "description": self.description,
            "rule": self.rule,
            "notes": self.definition.notes or None,
            "num_classes": self.num_classes,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "train_counts_estimated": self.train_counts_estimated,
            "imbalance_ratio": float(known.max() / known.min()) if len(known) and known.min() > 0 else None,
            "label_sets": self.definition.label_sets,
        }

    def materialize(self, root: str | os.PathLike, log=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Scan a local copy (``<root>/train/<wnid>/...``, ``<root>/val/<wnid>/...``) and return the
        sample-level (train, val) tables (``sample_id``, ``label``) in canonical order. Count mismatches
        against the manifest are reported on ``log`` (default: the current ``sys.stderr``) and in
        ``df.attrs["mismatches"]``."""
        return self.materialize_split(root, "train", log), self.materialize_split(root, "val", log)

    def materialize_split(
        self, root: str | os.PathLike, split: str, log=None, listing: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """:meth:`materialize` for one split only (``"train"`` or ``"val"``).

        ``listing``: the split's images as listed by a reader of another layout
        (:meth:`in21k_bench.images.readers.Source.listing`: ``sample_id``, ``class_dir`` and location
        columns, in canonical order) instead of a scan of ``root``; its columns are kept."""
        from .images.folder import scan_split

        root = Path(root)
        if split not in ("train", "val"):
            raise InvalidInputError(f"benchmark {self.name}: expected split train or val, found {split!r}")
        manifest = self._train if split == "train" else self._val
        if (
            manifest is not None
            and "sample_id" in manifest
            and split == "val"
            and self.definition.source == "imagenet-1k"
        ):
            df = _imagenet1k_val(root, manifest)
        elif manifest is not None and "sample_id" in manifest and listing is not None:
            have = listing.drop(columns=[c for c in ("label",) if c in listing]).set_index("sample_id")
            df = manifest[["sample_id", "label"]].join(have, on="sample_id", how="left")
            found = df["class_dir"].notna().to_numpy()
            df = df[found].copy()
            df.attrs["mismatches"] = {"missing_files": int((~found).sum())}
        elif manifest is not None and "sample_id" in manifest:
            df = manifest[["sample_id", "label"]].copy()
            exists = np.array([(root / s).is_file() for s in df["sample_id"]])
            df.attrs["mismatches"] = {"missing_files": int((~exists).sum())}
        elif listing is None and not (root / split).is_dir():
            df = pd.DataFrame({"sample_id": pd.Series(dtype=object), "label": pd.Series(dtype=np.int64)})
            df.attrs["mismatches"] = {"missing_split_folder": str(root / split)}
        else:
            sc = self.source_classes
            if listing is None:
                listing = scan_split(root, split, classes=sc["wnid"].tolist())
            else:  # the benchmark's classes in its class order, the listing's order within a class
                where = pd.Series(np.arange(len(sc)), index=sc["wnid"].astype(str).to_numpy(dtype=object))
                pos = where.reindex(listing["class_dir"].to_numpy(dtype=object)).to_numpy()
                keep = np.flatnonzero(~np.isnan(pos))
                listing = listing.iloc[keep[np.argsort(pos[keep], kind="stable")]].reset_index(drop=True)
            label_of = dict(zip(sc["wnid"], sc["label"]))
            listing["label"] = listing["class_dir"].map(label_of).astype(np.int64)
            if split == "train" and self.rule.get("odd_keep"):
                pos = listing.groupby("class_dir", sort=False).cumcount().to_numpy()
                odd = (listing["label"].to_numpy() % 2) == 1
                listing = listing[~odd | (pos % 2 == 0)].reset_index(drop=True)
            found = listing["class_dir"].value_counts()
            expected = sc.set_index("wnid")[f"num_{split}"]
            diff = {
                w: (int(expected[w]), int(found.get(w, 0)))
                for w in expected.index
                if expected[w] >= 0 and int(found.get(w, 0)) != int(expected[w])
            }
            df = listing.copy() if "file" in listing else listing[["sample_id", "label"]].copy()
            df.attrs["mismatches"] = {"classes_with_other_count": len(diff), "examples": dict(list(diff.items())[:5])}
        mm = df.attrs.get("mismatches", {})
        if any(v for k, v in mm.items() if k != "examples"):
            print(
                f"materialize {self.name} {split}: {len(df)} samples; differences from the manifest: {mm}",
                file=log or sys.stderr,
            )
        return df.reset_index(drop=True)

    def sample_table(self, split: str) -> pd.DataFrame | None:
        """The manifest's sample-level table of ``split`` (``sample_id``, ``label``, in canonical order)
        when the benchmark lists samples (ImageNet-1K val, HZR relabels), else None (class-level rule)."""
        manifest = self._train if split == "train" else self._val
        if manifest is not None and "sample_id" in manifest:
            return manifest[["sample_id", "label"]].reset_index(drop=True)
        return None

    def to_pandas(self, split: str = "val", root: str | os.PathLike | None = None) -> pd.DataFrame:
        """One row per sample of ``split`` in canonical order: ``sample_id``, ``label``, ``class_name``
        (the label's name in :attr:`classes`).

        ``sample_id`` comes from the manifest when it lists samples (ImageNet-1K val, HZR relabels), else
        from a scan of the local copy at ``root`` (:meth:`materialize_split`); without either it is None
        (class-level benchmarks list counts, not files) and the rows are the label sequence of
        :meth:`val_labels` / :meth:`train_labels`. An HF ``datasets.Dataset`` without a new dependency:
        ``datasets.Dataset.from_pandas(b.to_pandas())``."""
        if split not in ("train", "val"):
            raise InvalidInputError(f"benchmark {self.name}: expected split train or val, found {split!r}")
        df = self.sample_table(split)
        if df is None and root is not None:
            df = self.materialize_split(root, split)
        if df is None:
            labels = self.val_labels() if split == "val" else self.train_labels()
            df = pd.DataFrame({"sample_id": pd.Series([None] * len(labels), dtype=object), "label": labels})
        df = df[["sample_id", "label"]].reset_index(drop=True)
        names = self.classes.set_index("label")["name"]
        df["class_name"] = names.reindex(df["label"].to_numpy()).to_numpy(dtype=object)
        return df

    def torch_dataset(self, root: str | os.PathLike, split: str, transform=None):
        """A ``torch.utils.data.Dataset`` of ``(image, label)`` over a local ImageNet-21K-P / ImageNet-1K
        copy at ``root``, in this benchmark's canonical order (``transform`` maps the RGB PIL image;
        ``.sample_ids`` and ``.labels`` give the order). Samples missing from the copy are skipped."""
        from .runtime.extras import require

        require("torch", "PIL", what="Benchmark.torch_dataset", extra="extract")
        from .images.dataset import ImageDataset

        return ImageDataset.from_table(self.materialize_split(root, split), root, transform)


def _imagenet1k_val(root: Path, manifest: pd.DataFrame) -> pd.DataFrame:
    """ImageNet-1K val may be flat (``val/ILSVRC2012_val_*.JPEG``) or sorted into class folders
    (``val/<wnid>/ILSVRC2012_val_*.JPEG``). Sample ids stay the canonical flat ids; ``path`` is where the
    file was found (empty when missing)."""
    df = manifest[["sample_id", "label"]].copy()
    found: dict[str, str] = {}
    val_dir = root / "val"
    if val_dir.is_dir():
        for dirpath, _, files in os.walk(val_dir):
            rel = Path(dirpath).relative_to(root).as_posix()
            for f in files:
                found[f] = f"{rel}/{f}"
    names = df["sample_id"].str.rsplit("/", n=1).str[-1]
    df["path"] = [found.get(n, "") for n in names]
    df.attrs["mismatches"] = {"missing_files": int((df["path"] == "").sum())}
    return df


# --------------------------------------------------------------------------------------------------


def _resolve_inputs(d: BenchmarkDefinition, inputs) -> dict[str, Path]:
    given: dict[str, Path] = {}
    if isinstance(inputs, (str, os.PathLike)):
        if len(d.inputs) != 1:
            raise In21kError(
                f"benchmark {d.name}: expected a mapping of inputs {[i.key for i in d.inputs]}, found a single path"
            )
        given[d.inputs[0].key] = Path(inputs)
    elif inputs:
        given = {k: Path(v) for k, v in dict(inputs).items()}
    unknown = sorted(set(given) - {i.key for i in d.inputs})
    if unknown:
        raise InvalidInputError(
            f"benchmark {d.name}: expected inputs named {[i.key for i in d.inputs]}, found {unknown}"
        )
    for key, p in given.items():  # a path the caller names must exist; only the default location may be absent
        if not p.is_file():
            raise InvalidInputError(
                f"benchmark {d.name}: expected the {key} input file at {p}, found "
                f"{'a folder' if p.is_dir() else 'none'}"
            )
    resolved, missing = {}, []
    for spec in d.inputs:
        p = given.get(spec.key, inputs_dir() / d.version / spec.filename)
        if p.is_file():
            resolved[spec.key] = p
        else:
            missing.append((spec, p))
    if missing:
        lines = "; ".join(
            f"missing {s.key} ({s.description}) at {p}; produce it with `{s.produce}` or fetch it with `{s.download}`, "
            f"then pass it as load({d.name!r}, inputs=...) or place it at {inputs_dir() / d.version / s.filename}"
            for s, p in missing
        )
        raise NeedsInputError(f"benchmark {d.name} {d.version} needs input: {lines}")
    return resolved


def load(
    name: str,
    version: str | None = None,
    *,
    source: str = "package",
    inputs=None,
    root: str | os.PathLike | None = None,
) -> Benchmark:
    """Load a registered benchmark (``version`` None = the latest version of ``name``).

    ``source="package"`` reads the manifests shipped with the package (checksummed); ``source="hub"``
    downloads the pinned manifest version from the hub (see ``docs/hub.md``); ``root`` points at another
    splits folder. ``inputs`` (a path, or a mapping input-name -> path) feeds "needs-input" benchmarks.
    """
    d = get_definition(name, version)
    if source not in ("package", "hub"):
        raise In21kError(f"load: expected source 'package' or 'hub', found {source!r}")
    if d.status == "needs-input":
        resolved = _resolve_inputs(d, inputs)
        taxonomy = read_taxonomy(d.version)
        in1k = read_imagenet1k(d.version) if d.source == "imagenet-1k" else None
        return Benchmark.from_tables(d, d.build(taxonomy, in1k, inputs=resolved), taxonomy, in1k)
    if source == "hub":
        from .hub import download_manifest

        root = download_manifest(d.name, d.version)
    root = splits_root(root)
    files = ManifestIndex.load(root).benchmark_entry(d.name, d.version)
    if files is None:
        raise In21kError(
            f"benchmark {d.name}: expected version {d.version} in the manifest index at {root}, found none (run "
            "`in21k-bench build-manifests`)"
        )
    taxonomy = read_taxonomy(d.version, root)
    in1k = read_imagenet1k(d.version, root) if d.source == "imagenet-1k" else None
    tables = {Path(rel).stem: read_arrow(rel, root) for rel in files["files"]}
    return Benchmark.from_tables(d, tables, taxonomy, in1k)


def list_benchmarks(version: str | None = None) -> list[str]:
    """Names of the registered benchmarks (of ``version``, or the latest of each name)."""
    return [d.name for d in list_definitions(version)]
