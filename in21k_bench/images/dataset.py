"""A torch ``Dataset`` of ``(image, label)`` over image files listed in canonical sample order.

Made by :meth:`in21k_bench.benchmark.Benchmark.torch_dataset` (a benchmark's split of a local
ImageNet-21K-P / ImageNet-1K copy) and by :func:`ImageDataset.from_folder` (any
``<root>/<split>/<class>/<file>`` folder); ``features extract`` encodes exactly these datasets.

>>> ds = in21k_bench.load("tiny").torch_dataset("/data/imagenet21k", "val", transform=preprocess)
>>> image, label = ds[0]; ds.sample_ids[0]        # 'val/n01440764/n01440764_10026.JPEG'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from torch.utils.data import Dataset

from ..errors import InvalidInputError


class ImageDataset(Dataset):
    """``ds[i] -> (transform(RGB PIL image), label)`` for sample ``i`` of ``sample_ids`` (label -1 = unknown)."""

    def __init__(self, sample_ids: Sequence[str], paths: Sequence[str], labels: Sequence[int], transform=None):
        if not (len(sample_ids) == len(paths) == len(labels)):
            raise InvalidInputError(
                f"image dataset: expected as many paths and labels as sample ids ({len(sample_ids)}), found "
                f"{len(paths)} and {len(labels)}"
            )
        self.sample_ids = np.asarray(sample_ids, dtype=object)
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform

    @classmethod
    def from_table(cls, table: pd.DataFrame, root: str | os.PathLike, transform=None) -> "ImageDataset":
        """From a table with ``sample_id``, ``label`` and optionally ``path`` (relative to ``root``; ``""``
        = not found). Without ``path`` a sample's file is ``root / sample_id``; rows whose file is
        known to be missing are dropped."""
        root = Path(root)
        df = table
        if "path" in df:
            df = df[df["path"] != ""]
            paths = [str(root / p) for p in df["path"]]
        else:
            paths = [str(root / s) for s in df["sample_id"]]
        return cls(df["sample_id"].tolist(), paths, df["label"].to_numpy(dtype=np.int64), transform)

    @classmethod
    def from_folder(
        cls, root: str | os.PathLike, split: str | None, class_names: Sequence[str] | None = None, transform=None
    ) -> "ImageDataset":
        """Every image of ``<root>/<split>/<class>/<file>`` (or ``<root>/<class>/<file>`` when ``split``
        is None) in canonical order; label = position of the class folder in ``class_names`` (-1 when
        not given or not listed)."""
        from .folder import scan_split

        df = scan_split(root, split or None, classes=class_names)
        label_of = {c: i for i, c in enumerate(class_names)} if class_names is not None else {}
        labels = df["class_dir"].map(label_of).fillna(-1).astype(np.int64).to_numpy()
        return cls(df["sample_id"].tolist(), df["path"].tolist(), labels, transform)

    def table(self) -> pd.DataFrame:
        """``sample_id``, ``path``, ``label`` (the order of the dataset)."""
        return pd.DataFrame({"sample_id": self.sample_ids, "path": self.paths, "label": self.labels})

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        path = self.paths[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except OSError as exc:  # PIL's UnidentifiedImageError and truncated files are OSErrors
            raise InvalidInputError(
                f"image folder: expected a readable image at {path}, found {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:160]}"
            ) from None
        return (self.transform(img) if self.transform is not None else img), int(self.labels[i])
