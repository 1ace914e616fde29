"""scikit-learn's ``digits`` (1,797 real 8x8 images of handwritten digits, 10 classes) as a tiny real
data set behind the feature-store interface: the 64 pixel values are the features.

Fixed stratified split, no randomness: within each class, samples in their scikit-learn order; every
5th one (positions 4, 9, 14, ... within the class) goes to val, the rest to train. That gives 1,442
train and 355 val rows. Labels (the digit, 0-9) are stored in ``index.parquet``; sample ids are
``digits/<split>/<original index>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .store import FeatureStore, write_store

VAL_EVERY = 5


def digits_split() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{"train": (x, labels, original_index), "val": (...)}`` as in-memory arrays."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data.astype(np.float32), d.target.astype(np.int64)
    is_val = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        pos = np.flatnonzero(y == c)
        is_val[pos[VAL_EVERY - 1 :: VAL_EVERY]] = True
    out = {}
    for split, mask in (("train", ~is_val), ("val", is_val)):
        idx = np.flatnonzero(mask)
        out[split] = (x[idx], y[idx], idx)
    return out


def write_digits(out_dir: str | os.PathLike) -> tuple[FeatureStore, FeatureStore]:
    """Write the digits features directory (``train/``, ``val/``) and return the opened stores."""
    out = Path(out_dir)
    stores = []
    for split, (x, y, idx) in digits_split().items():
        ids = np.array([f"digits/{split}/{i:04d}" for i in idx], dtype=object)
        stores.append(
            write_store(
                out / split,
                x,
                ids,
                y,
                backbone="pixels:sklearn-digits",
                split=split,
                benchmark="digits",
                num_classes=10,
                synthetic=False,
                note="scikit-learn load_digits, 8x8 pixels as features",
            )
        )
    return stores[0], stores[1]


def write_digit_images(
    root: str | os.PathLike,
    per_class: int,
    *,
    classes: list[str] | None = None,
    splits=("train", "val"),
    size: int = 32,
    val_per_class: int | None = None,
) -> int:
    """Write real digits images as JPEGs in an image-folder layout ``<root>/<split>/<class>/<file>.JPEG``
    (for tests and benchmarks of the image pipelines: real pixels, no download).

    Each 8x8 image is upscaled to ``size`` x ``size`` RGB. ``classes``: the folder names (default
    ``"0"``..``"9"``; pass winter21 wnids for ``relabel``); class ``j`` takes digit ``j % 10``, and
    images are drawn in order from the 1,797 samples (wrapping around). Returns the number written."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    classes = [str(c) for c in range(10)] if classes is None else list(classes)
    by_digit = {c: np.flatnonzero(d.target == c) for c in range(10)}
    root = Path(root)
    n = 0
    for si, split in enumerate(splits):
        count = per_class if (split != "val" or val_per_class is None) else val_per_class
        for j, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            pool = by_digit[j % 10]
            for i in range(count):
                img = d.images[pool[(i + si * 7 + j // 10) % len(pool)]]
                arr = np.clip(img * (255.0 / 16.0), 0, 255).astype(np.uint8)
                Image.fromarray(arr).resize((size, size), Image.BILINEAR).convert("RGB").save(
                    folder / f"{name}_{i:05d}.JPEG", quality=90
                )
                n += 1
    return n
