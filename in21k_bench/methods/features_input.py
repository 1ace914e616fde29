"""Training inputs: features given as an in-memory array or as a feature store, behind one duck-typed
interface (``take(idx, normalize)``, ``iter_chunks(chunk_rows, normalize)``, ``num_rows``, ``dim``)
used by :mod:`.train` and :mod:`.probe`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InvalidInputError

__all__ = ["as_features"]


class _ArrayFeatures:
    """In-memory features (float32); the L2-normalised copy is made once, on first use."""

    def __init__(self, x: np.ndarray) -> None:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[0] < 1:
            raise InvalidInputError(f"train: expected a 2-D feature array, got {getattr(x, 'shape', type(x))}")
        x = np.asarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise InvalidInputError("train: features contain NaN or inf")
        self.raw = x
        self._unit: np.ndarray | None = None
        self.num_rows, self.dim = x.shape

    @property
    def x(self) -> np.ndarray:
        if self._unit is None:
            norms = np.linalg.norm(self.raw, axis=1, keepdims=True)
            self._unit = self.raw / np.maximum(norms, 1e-12)
        return self._unit

    def _rows(self, normalize: bool) -> np.ndarray:
        return self.x if normalize else self.raw

    def take(self, idx: np.ndarray, normalize: bool = True) -> np.ndarray:
        return self._rows(normalize)[idx]

    def iter_chunks(self, chunk_rows: int = 65536, normalize: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        rows = self._rows(normalize)
        for s in range(0, self.num_rows, chunk_rows):
            yield s, rows[s : s + chunk_rows]


def as_features(x: Any):
    """Wrap an array; pass a feature store through (duck-typed, see the module docstring)."""
    if isinstance(x, np.ndarray):
        return _ArrayFeatures(x)
    if all(hasattr(x, a) for a in ("take", "iter_chunks", "num_rows", "dim")):
        return x
    raise InvalidInputError(f"train: expected an np.ndarray or a FeatureStore, got {type(x).__name__}")
