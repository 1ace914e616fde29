"""Simulated ImageNet-21K-like features -- SYNTHETIC data, not features of any real image.

What it is for: an embedded default that needs no download (the README's first command), fast
development and tests of methods, evaluators and the scale machinery on any benchmark's exact class
structure. Numbers measured on it say nothing about real backbones; never report them as results.

How the features are generated (deterministic from ``seed``; a class's distribution depends only on
the seed and its wnid, so the same class looks the same in every benchmark):

* A shared offset ``mu0`` (real embeddings are not centred: cosines between unrelated images are
  positive).
* Class means follow the real MIIL tree top-down: a root's mean is ``mu0 + N(0, s_root^2 I/D)``;
  a child's mean is its parent's mean plus ``N(0, s_d^2 I/D)`` with ``s_d = s_child * decay^(d-1)`` at
  depth ``d`` -- children lie close to their parent and to their siblings, deeper levels closer still.
* Each class has 1-4 sub-modes (offsets ``N(0, s_mode^2 I/D)`` around its mean, unequal weights) and
  anisotropic spread: isotropic noise ``sigma`` plus ``rank`` class-specific directions with a
  larger scale (``sigma * aniso``).
* Class sizes follow the real per-class train counts of the benchmark (``fall11 numImages - 50``),
  times ``scale``, at least ``min_train``; val has the benchmark's val count (50 per class) times
  ``val_scale`` (at least 1). With ``val_scale=1`` the val store matches the benchmark's val split
  row for row, so predictions on it are scored by ``in21k-bench evaluate --benchmark NAME``.

Stored as a normal features directory (``train/``, ``val/``) with labels in ``index.parquet`` and
``"synthetic": true`` plus every generator parameter in ``meta.json``.
"""

from __future__ import annotations

import os
import sys
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from ..fileio import check_output_dir
from .store import DEFAULT_SHARD_ROWS, FeatureStore, FeatureStoreWriter

GENERATOR = "in21k-sim-v1"
IMAGENET1K_DEFAULT_TRAIN = 1_281  # per-class train count used when a benchmark has no per-class count


@dataclass(frozen=True)
class SimParams:
    dim: int = 128
    seed: int = 0
    offset: float = 1.0  # norm of the shared offset mu0
    s_root: float = 1.3
    s_child: float = 0.9
    decay: float = 0.8
    s_mode: float = 0.35
    max_modes: int = 4
    sigma: float = 0.45
    rank: int = 4
    aniso: float = 2.0
    separation: float = 1.0  # divides the isotropic noise: class thickness sigma / separation
    curve: float = 0.0  # bend of the first long direction, radians per standard deviation (0: straight)

    def __post_init__(self) -> None:
        bad = [
            f"{k}={getattr(self, k)}"
            for k in ("sigma", "aniso", "separation")
            if not (np.isfinite(getattr(self, k)) and getattr(self, k) > 0)
        ]
        bad += [
            f"{k}={getattr(self, k)}"
            for k in ("s_mode", "curve")
            if not (np.isfinite(getattr(self, k)) and getattr(self, k) >= 0)
        ]
        if int(self.rank) < 1 or int(self.max_modes) < 1 or int(self.dim) < 1 or (self.curve > 0 and int(self.dim) < 2):
            bad.append(f"rank={self.rank}, max_modes={self.max_modes}, dim={self.dim}")
        if bad:
            raise InvalidInputError(
                "simulate: expected sigma, aniso, separation > 0, s_mode, curve >= 0, rank, max_modes, dim >= 1 "
                f"(dim >= 2 with curve > 0), found {', '.join(bad)}"
            )


def _class_key(wnid: str) -> int:
    return zlib.crc32(wnid.encode())


class _Generator:
    """Class means for the whole taxonomy plus per-class samplers."""

    def __init__(self, p: SimParams):
        from ..registry.taxonomy import load_taxonomy

        self.p = p
        self.tax = load_taxonomy()
        d = p.dim
        g0 = np.random.default_rng([p.seed, 0])
        self.mu0 = g0.normal(size=d) / np.sqrt(d) * p.offset
        means = np.zeros((self.tax.num_classes, d))
        for i in np.argsort(self.tax.depth, kind="stable"):
            rng = np.random.default_rng([p.seed, 1, _class_key(self.tax.wnids[i])])
            par = self.tax.parent[i]
            if par < 0:
                means[i] = self.mu0 + rng.normal(size=d) / np.sqrt(d) * p.s_root
            else:
                s = p.s_child * p.decay ** (int(self.tax.depth[i]) - 1)
                means[i] = means[par] + rng.normal(size=d) / np.sqrt(d) * s
        self.means = means

    def class_mean(self, wnid: str) -> np.ndarray:
        if wnid in self.tax._index:
            return self.means[self.tax._index[wnid]]
        rng = np.random.default_rng([self.p.seed, 1, _class_key(wnid)])  # not in winter21: a root of its own
        return self.mu0 + rng.normal(size=self.p.dim) / np.sqrt(self.p.dim) * self.p.s_root

    def sample(self, wnid: str, n: int, split_id: int) -> np.ndarray:
        p, d = self.p, self.p.dim
        shape_rng = np.random.default_rng([p.seed, 2, _class_key(wnid)])
        n_modes = int(shape_rng.integers(1, p.max_modes + 1))
        weights = shape_rng.dirichlet(np.full(n_modes, 2.0))
        modes = self.class_mean(wnid) + shape_rng.normal(size=(n_modes, d)) / np.sqrt(d) * p.s_mode
        basis = shape_rng.normal(size=(p.rank, d)) / np.sqrt(d)
        rng = np.random.default_rng([p.seed, 3, _class_key(wnid), split_id])
        which = rng.choice(n_modes, size=n, p=weights)
        x = modes[which]
        x += rng.normal(size=(n, d)) / np.sqrt(d) * (p.sigma / p.separation)
        t = rng.normal(size=(n, p.rank)) * (p.sigma * p.aniso)
        if p.curve > 0:  # the first long direction becomes a circular arc of the same arc length
            u = basis[0] / np.linalg.norm(basis[0])
            v = shape_rng.normal(size=d)  # drawn after every default draw: curve = 0 streams unchanged
            v -= (v @ u) * u
            v /= np.linalg.norm(v)
            radius = p.sigma * p.aniso / p.curve
            theta = t[:, 0] / radius
            x += np.outer(radius * np.sin(theta), u) + np.outer(radius * (1.0 - np.cos(theta)), v)
            t[:, 0] = 0.0
        x += t @ basis
        return x.astype(np.float32)


def _class_table(benchmark, subtree: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The classes to simulate and the label wnids (label id = position). With ``subtree`` (a wnid),
    only classes at or below it in the MIIL tree are kept and their labels renumbered 0..C'-1."""
    sc = benchmark.source_classes
    if (sc["label"] < 0).any():
        raise InvalidInputError(
            f"simulate: benchmark {benchmark.name} relabels individual samples (no per-class label); "
            "expected a class-level benchmark"
        )
    sc = sc[["wnid", "label", "num_train", "num_val"]].reset_index(drop=True)
    label_wnids = benchmark.classes["wnid"].astype(str).tolist()
    if subtree:
        tax = benchmark.taxonomy
        root = tax.index(subtree)
        inside = np.array([root in tax.path(tax.index(w)) for w in sc["wnid"]], dtype=bool)
        if not inside.any():
            raise InvalidInputError(
                f"simulate: expected classes of {benchmark.name} under {subtree} ({tax.names[root]}), found none"
            )
        sc = sc[inside].reset_index(drop=True)
        kept, new_label = np.unique(sc["label"].to_numpy(), return_inverse=True)
        sc["label"] = new_label.astype(np.int64)
        label_wnids = [label_wnids[i] for i in kept]
    return sc, label_wnids


def simulate_features(
    benchmark: str,
    out_dir: str | os.PathLike,
    *,
    scale: float = 0.01,
    val_scale: float = 1.0,
    min_train: int = 2,
    dim: int = 128,
    seed: int = 0,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    params: SimParams | None = None,
    progress: bool = True,
    subtree: str | None = None,
) -> tuple[FeatureStore, FeatureStore]:
    """Write synthetic features for ``benchmark`` to ``out_dir/train`` and ``out_dir/val``.

    Train size of a class = ``max(min_train, round(num_train * scale))``; val = ``max(1, round(num_val *
    val_scale))``. ``subtree`` (a wnid) keeps only the benchmark's classes at or below that MIIL node,
    labels renumbered in order (their wnids are recorded as ``label_wnids`` in the stores' meta).
    Returns the opened ``(train, val)`` stores. See the module docstring.
    """
    from tqdm.auto import tqdm

    from ..benchmark import load

    if not (np.isfinite(scale) and np.isfinite(val_scale) and scale > 0 and val_scale > 0):
        raise InvalidInputError(
            f"simulate: expected finite scale > 0 and val_scale > 0, found scale={scale}, val_scale={val_scale}"
        )
    if min_train < 1:
        raise InvalidInputError(f"simulate: expected min_train >= 1, found {min_train}")
    if params is None and (int(dim) < 1 or int(seed) < 0):
        raise InvalidInputError(f"simulate: expected dim >= 1 and seed >= 0, found dim={dim}, seed={seed}")
    check_output_dir(out_dir, "simulate")
    b = load(benchmark)
    classes, label_wnids = _class_table(b, subtree)
    p = params or SimParams(dim=int(dim), seed=int(seed))
    gen = _Generator(p)
    out = Path(out_dir)
    n_train_raw = classes["num_train"].to_numpy()
    n_train_raw = np.where(n_train_raw < 0, IMAGENET1K_DEFAULT_TRAIN, n_train_raw)
    counts = {
        "train": np.maximum(min_train, np.rint(n_train_raw * scale)).astype(np.int64),
        "val": np.maximum(1, np.rint(classes["num_val"].to_numpy() * val_scale)).astype(np.int64),
    }
    extra = {
        "synthetic": True,
        "generator": GENERATOR,
        "params": asdict(p),
        "scale": scale,
        "val_scale": val_scale,
        "min_train": min_train,
        "num_classes": len(label_wnids),
        "subtree": subtree,
        "label_wnids": label_wnids,
        "note": "SYNTHETIC features (in21k_bench.features.simulate); not features of real images",
    }
    stores = []
    for split_id, split in enumerate(("train", "val")):
        w = FeatureStoreWriter(
            out / split,
            p.dim,
            f"synthetic:{GENERATOR}",
            shard_rows=shard_rows,
            split=split,
            benchmark=b.name,
            version=b.version,
            extra=extra,
            overwrite=True,
        )
        total = int(counts[split].sum())
        bar = tqdm(
            total=total,
            desc=f"simulate {split}",
            unit="rows",
            unit_scale=True,
            file=sys.stderr,
            disable=None if progress else True,
        )
        for wnid, label, n in zip(classes["wnid"], classes["label"], counts[split]):
            x = gen.sample(wnid, int(n), split_id)
            ids = np.array([f"{split}/{wnid}/sim_{i:07d}" for i in range(int(n))], dtype=object)
            w.append(x, ids, np.full(int(n), int(label), dtype=np.int64))
            bar.update(int(n))
        bar.close()
        stores.append(w.close())
    return stores[0], stores[1]
