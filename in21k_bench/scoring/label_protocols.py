"""Label protocols: which label counts for each scored val sample, and which labels count as "in its set".

A benchmark carries one protocol (``Benchmark.label_protocol()``); the evaluator reads everything it
needs through it, without asking which kind it is:

- the **scored rows** (:meth:`LabelProtocol.scored`; ReaL leaves out images with an empty set) and, for
  benchmarks whose val split is a subset of a larger source order, which rows of a full-source
  prediction array to keep (:meth:`LabelProtocol.select_rows`);
- the **label draws** (:meth:`LabelProtocol.draws`): one fixed label array, or ``num_draws`` draws of
  one label per image from its set (ReaL, seeds 0..num_draws-1), each scored separately and averaged;
- **membership in S_L** (:meth:`LabelProtocol.contains`) for top-1 -> L / top-5 -> L.

The protocols (S_L of a sample labelled l; who uses it):

- :class:`FixedLabels`: no sets (top-1/5 -> L not reported); ``evaluate --labels`` / ``--features``;
- :class:`OwnLabel`: S_L = {l}; ``imagenet-1k``, ``imagenet-1k-odd``;
- :class:`LabelAndAncestors`: l and its ancestors that are labels; the hierarchy benchmarks;
- :class:`PerSampleSets`: any N x C set matrix; ``evaluate_arrays(label_sets=...)``;
- :class:`RealSets`: the image's ReaL set, labels drawn from it; ``real1k``.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp

__all__ = [
    "REAL_DRAWS",
    "SetIndex",
    "LabelMatrixIndex",
    "real_draws",
    "LabelProtocol",
    "FixedLabels",
    "OwnLabel",
    "LabelAndAncestors",
    "PerSampleSets",
    "RealSets",
]

REAL_DRAWS = 50  # ReaL protocol: label draws, seeds 0..49


# ---------------------------------------------------------------------------------------------------
# membership indexes


class SetIndex:
    """Fast membership tests ``col in row i`` for a boolean CSR label-set matrix (N x C)."""

    def __init__(self, label_sets: sp.spmatrix):
        m = sp.csr_matrix(label_sets)
        m.eliminate_zeros()
        m.sort_indices()
        self.shape = m.shape
        self.C = int(m.shape[1])
        self.lengths = np.diff(m.indptr)
        self.indptr = m.indptr.astype(np.int64)
        self.indices = m.indices
        self._pad = None
        self._keys = None

    @property
    def keys(self) -> np.ndarray:
        """Sorted int64 keys ``row * C + col`` of all members (built on first use)."""
        if self._keys is None:
            rows = np.repeat(np.arange(self.shape[0], dtype=np.int64), self.lengths)
            self._keys = rows * self.C + self.indices.astype(np.int64)
        return self._keys

    def contains_aligned(self, mapped: np.ndarray) -> np.ndarray:
        """``mapped`` (N, j) labels, row i tested against set i -> (N, j) bool. Small sets (the usual case:
        ancestors, ReaL) are compared column by column against a padded (rows x max set size) table."""
        mapped = np.asarray(mapped, dtype=np.int64)
        n, j = mapped.shape
        if n != self.shape[0]:
            raise ValueError(f"contains_aligned: expected {self.shape[0]} rows, found {n}")
        width = int(self.lengths.max(initial=0))
        if width > 64:
            rows = np.repeat(np.arange(n, dtype=np.int64), j)
            return self.contains(rows, mapped.ravel()).reshape(n, j)
        out = np.zeros((n, j), dtype=bool)
        if width == 0:
            return out
        if self._pad is None:  # (width, N): w-th member of every set, -2 = padding; built once
            pad = np.full((width, n), -2, dtype=np.int32)
            starts = self.indptr[:-1]
            for w in range(width):
                has = np.flatnonzero(self.lengths > w)
                pad[w, has] = self.indices[starts[has] + w]
            self._pad = pad
        mapped32 = np.where(mapped >= 0, mapped, -1).astype(np.int32)
        for w in range(width):
            out |= mapped32 == self._pad[w][:, None]
        return out

    def contains(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Boolean array: ``cols[j]`` is in the set of ``rows[j]``; negative cols (unmatched) are never in."""
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        out = np.zeros(cols.shape, dtype=bool)
        ok = (cols >= 0) & (cols < self.C)
        q = rows[ok] * self.C + cols[ok]
        if len(self.keys) == 0:
            return out
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        out[ok] = self.keys[pos] == q
        return out


class LabelMatrixIndex:
    """Membership tests for label sets that depend on the label only (hierarchy / self sets): ``S_i = row
    labels[i]`` of a boolean C x C matrix (``Benchmark.label_matrix()``). ``f(pred) in S_L`` is then one
    lookup of (label, mapped label) in a C x C bit table (C^2 / 8 bytes: 13.7 MB at C = 10,450); above
    ``max_bits`` a sorted-key search is used instead."""

    def __init__(self, label_matrix: sp.spmatrix, max_bits: int = 1 << 30):
        m = sp.csr_matrix(label_matrix)
        if m.shape[0] != m.shape[1]:
            raise ValueError(f"LabelMatrixIndex: expected a square C x C label matrix, found shape {m.shape}")
        m.eliminate_zeros()
        m.sum_duplicates()
        self.C = int(m.shape[0])
        rows = np.repeat(np.arange(self.C, dtype=np.int64), np.diff(m.indptr))
        keys = rows * self.C + m.indices.astype(np.int64)  # sorted (canonical CSR)
        if self.C * self.C <= max_bits:
            self.bits = np.zeros((self.C * self.C + 7) // 8, dtype=np.uint8)
            np.bitwise_or.at(self.bits, keys >> 3, (np.uint8(1) << (keys & 7).astype(np.uint8)))
            self.keys = None
        else:
            self.bits, self.keys = None, keys

    def contains(self, labels: np.ndarray, mapped: np.ndarray) -> np.ndarray:
        """``mapped`` (N,) or (N, j) labels, tested against the set of ``labels`` (N,) -> bool of the shape
        of ``mapped``; negative entries (unmatched clusters) are never in."""
        dt = np.int32 if self.C * self.C < 2**31 else np.int64  # keys fit: half the memory traffic
        labels = np.asarray(labels).astype(dt, copy=False)
        mapped = np.asarray(mapped)
        lab = labels if mapped.ndim == 1 else labels[:, None]
        q = np.maximum(mapped, 0).astype(dt, copy=False)
        q += lab * dt(self.C)
        if self.bits is not None:
            hit = self.bits[q >> 3]
            hit >>= (q & 7).astype(np.uint8)
            hit &= np.uint8(1)
            return hit.view(bool) & (mapped >= 0)
        if len(self.keys) == 0:
            return np.zeros(mapped.shape, dtype=bool)
        pos = np.minimum(np.searchsorted(self.keys, q), len(self.keys) - 1)
        return (self.keys[pos] == q) & (mapped >= 0)


def real_draws(label_sets: sp.spmatrix, num_draws: int = REAL_DRAWS, first_seed: int = 0):
    """Yield ``(seed, labels)``: one label per image drawn uniformly from its set with
    ``numpy.random.default_rng(seed)``, seeds ``first_seed .. first_seed + num_draws - 1``.
    Every row must be non-empty."""
    m = sp.csr_matrix(label_sets)
    m.eliminate_zeros()
    m.sort_indices()
    lengths = np.diff(m.indptr)
    if (lengths == 0).any():
        raise ValueError("real_draws: expected a non-empty set in every row, found empty rows (exclude them first)")
    for seed in range(first_seed, first_seed + num_draws):
        rng = np.random.default_rng(seed)
        pick = m.indptr[:-1] + np.minimum((rng.random(len(lengths)) * lengths).astype(np.int64), lengths - 1)
        yield seed, m.indices[pick].astype(np.int64)


# ---------------------------------------------------------------------------------------------------
# protocols


class LabelProtocol:
    """Base class. ``num_classes`` C; ``n`` rows of the val split in canonical order; ``name`` for
    messages and results. Subclasses fill in :meth:`draws` and :meth:`contains`."""

    name = "labels"
    repeated = False  #: True when metrics are means over several label draws (ReaL)
    has_sets = False  #: True when top-1 -> L / top-5 -> L are defined
    rows_name: str | None = None  #: what a row is, for row-count messages (default: the caller's words)

    def __init__(
        self,
        n: int,
        num_classes: int,
        *,
        source_rows: np.ndarray | None = None,
        source_size: int | None = None,
        source_ids: np.ndarray | None = None,
        source_name: str = "source",
    ):
        self.n = int(n)
        self.num_classes = int(num_classes)
        #: positions of the val rows in a larger source order (``real1k``: in the 50,000 ImageNet-1K val
        #: images); a prediction array with ``source_size`` rows is reduced to these rows
        self.source_rows = None if source_rows is None else np.asarray(source_rows, dtype=np.int64)
        self.source_size = None if source_size is None else int(source_size)
        #: sample ids of that larger source: tables may contain them, they are ignored
        self.source_ids = source_ids
        self.source_name = source_name

    def select_rows(self, m: int) -> np.ndarray | None:
        """Rows to keep from a prediction array of ``m`` rows: the val rows of a full-source array,
        None when ``m`` is (or should be) the val split's row count."""
        if self.source_rows is not None and self.source_size is not None and m == self.source_size and m != self.n:
            return self.source_rows
        return None

    def row_hint(self, what: str) -> str:
        """Expected row counts, for error messages."""
        what = self.rows_name or what
        if self.source_rows is not None and self.source_size is not None:
            return f"{self.n} rows ({what}) or {self.source_size} rows (full {self.source_name} order)"
        return f"{self.n} rows ({what}, canonical order)"

    @property
    def source_excluded(self) -> int:
        """Rows of the source order that are not val rows of the benchmark."""
        return int(self.source_size - self.n) if self.source_size is not None and self.source_rows is not None else 0

    def scored(self) -> np.ndarray | None:
        """Boolean mask of the scored val rows, or None when every row is scored."""
        return None

    def draws(self, num_draws: int = REAL_DRAWS) -> Iterator[np.ndarray]:
        """Label arrays over the scored rows: one for fixed labels, ``num_draws`` when :attr:`repeated`."""
        raise NotImplementedError

    def contains(self, labels: np.ndarray, mapped: np.ndarray) -> np.ndarray | None:
        """``mapped`` (N_scored, j) labels (``-1`` = unmatched cluster) tested against the label set of each
        scored row whose drawn label is ``labels`` -> bool (N_scored, j); None without label sets."""
        return None

    def label_matrix(self) -> sp.csr_matrix | None:
        """C x C boolean matrix whose row l is the set of every sample labelled l, when sets depend on the
        label only; None otherwise."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, C={self.num_classes})"


def _labels_array(labels) -> np.ndarray:
    return np.asarray(labels, dtype=np.int64)


class FixedLabels(LabelProtocol):
    """One known label per sample, no label sets (custom data: ``evaluate --labels``)."""

    name = "labels"

    def __init__(self, labels, num_classes: int | None = None, **kw):
        self.labels = _labels_array(labels)
        C = int(self.labels.max(initial=-1)) + 1 if num_classes is None else int(num_classes)
        super().__init__(len(self.labels), C, **kw)

    def draws(self, num_draws: int = REAL_DRAWS) -> Iterator[np.ndarray]:
        yield self.labels


class OwnLabel(FixedLabels):
    """S_L = the label itself (top-1 -> L equals ACC)."""

    name = "own-label"
    has_sets = True

    def contains(self, labels, mapped):
        mapped = np.asarray(mapped)
        lab = np.asarray(labels) if mapped.ndim == 1 else np.asarray(labels)[:, None]
        return (mapped == lab) & (mapped >= 0)

    def label_matrix(self):
        return sp.identity(self.num_classes, dtype=bool, format="csr")


class LabelAndAncestors(FixedLabels):
    """S_L = the label and its ancestors that are labels of the benchmark, given as a C x C boolean
    ``label_matrix`` (row l = the set of label l). Lookups go through a bit table
    (:class:`LabelMatrixIndex`), never an N x C matrix."""

    name = "label+ancestors"
    has_sets = True

    def __init__(self, labels, label_matrix: sp.spmatrix, **kw):
        m = sp.csr_matrix(label_matrix)
        if m.shape[0] != m.shape[1]:
            raise ValueError(f"LabelAndAncestors: expected a square C x C label matrix, found shape {m.shape}")
        super().__init__(labels, m.shape[0], **kw)
        self._matrix = m
        self._index = None

    def contains(self, labels, mapped):
        if self._index is None:
            self._index = LabelMatrixIndex(self._matrix)
        return self._index.contains(labels, mapped)

    def label_matrix(self):
        return self._matrix


class PerSampleSets(FixedLabels):
    """One label per sample and an arbitrary per-sample set matrix (N x C boolean CSR)."""

    name = "per-sample-sets"
    has_sets = True

    def __init__(self, labels, label_sets: sp.spmatrix, num_classes: int | None = None, **kw):
        super().__init__(labels, label_sets.shape[1] if num_classes is None else num_classes, **kw)
        self._index = SetIndex(label_sets)

    def contains(self, labels, mapped):
        mapped = np.asarray(mapped)
        return self._index.contains_aligned(mapped if mapped.ndim == 2 else mapped[:, None]).reshape(mapped.shape)


class RealSets(LabelProtocol):
    """ReaL protocol: every image has a set of acceptable labels (N x C boolean CSR); images with an empty
    set are not scored. Each draw picks one label per image uniformly from its set
    (:func:`real_draws`, seeds 0..num_draws-1); f is re-estimated per draw; ACC and top-5 -> 1 use the
    drawn label, top-1 -> L and top-5 -> L the whole set."""

    name = "real"
    repeated = True
    has_sets = True
    rows_name = "scored ReaL images"

    def __init__(self, label_sets: sp.spmatrix, num_classes: int | None = None, **kw):
        m = sp.csr_matrix(label_sets)
        m.eliminate_zeros()
        super().__init__(m.shape[0], m.shape[1] if num_classes is None else num_classes, **kw)
        self._keep = np.diff(m.indptr) > 0
        self.sets = m if self._keep.all() else m[self._keep]
        self._index = None

    @property
    def num_empty(self) -> int:
        """Rows with an empty set (excluded from scoring)."""
        return int((~self._keep).sum())

    def scored(self):
        return None if self._keep.all() else self._keep

    def draws(self, num_draws: int = REAL_DRAWS) -> Iterator[np.ndarray]:
        for _, labels in real_draws(self.sets, num_draws):
            yield labels

    def contains(self, labels, mapped):
        if self._index is None:
            self._index = SetIndex(self.sets)
        mapped = np.asarray(mapped)
        return self._index.contains_aligned(mapped if mapped.ndim == 2 else mapped[:, None]).reshape(mapped.shape)
