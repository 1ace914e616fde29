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
            write_store(out / split, x, ids, y, backbone="pixels:sklearn-digits", split=split, benchmark="digits",
                        num_classes=10, synthetic=False, note="scikit-learn load_digits, 8x8 pixels as features")
        )
    return stores[0], stores[1]
