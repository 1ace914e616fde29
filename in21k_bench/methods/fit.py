"""Library entry point of ``in21k-bench fit temi|scanv2``: features directory in, predictions out.

:func:`fit_features` owns what surrounds the training loop (:func:`.train.fit`):

* the distributed set-up (initialised once; only rank 0 writes and prints);
* the defaults (:func:`.recipe.default_config`: the paper's settings on the paper's benchmarks at
  full size, budget-adapted ones elsewhere; explicit overrides win) and their record in ``fit.json``;
* the number of clusters (``num_clusters``, else the benchmark's, else the store's ``num_classes``);
* the neighbour-file convention: ``<features>/train/knn-k<k>.npy`` (or the first ``k`` columns of a
  ``knn-k<K>.npy`` with ``K > k`` beside it); mined there on first use (never inside ``torchrun``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..runtime.distributed import Dist
from ..runtime.distributed import init as init_distributed
from .head_training import FitResult, fit
from .recipe import Recipe, default_config

__all__ = ["FitRun", "fit_features", "find_neighbors"]


@dataclass
class FitRun:
    result: FitResult
    recipe: Recipe
    out: Path
    benchmark: str | None
    dist: Dist
    neighbors: Path

    def summary(self) -> dict:
        """The JSON summary printed by the CLI (rank 0)."""
        cfg, res = self.recipe.config, self.result
        return {
            "method": cfg.method,
            "out": str(self.out),
            "best_head": res.best_head,
            "best_loss": float(res.head_losses[res.best_head]),
            "regime": self.recipe.regime,
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "total_steps": res.total_steps,
            "num_heads": cfg.num_heads,
            "knn": cfg.knn,
            "peak_lr": cfg.lr,
            "lr_schedule": cfg.lr_schedule,
            "num_clusters": cfg.num_clusters,
            "benchmark": self.benchmark,
            "world_size": self.dist.world_size,
            "resumed_from_epoch": res.resumed_from_epoch,
            "num_val": int(len(res.top1)) if res.top1 is not None else 0,
            "empty_clusters": (res.health or {}).get("chosen_head", {}).get("empty_clusters"),
            "warnings": (res.health or {}).get("warnings", []),
            "files": ["top1.npy", "top5.npy"]
            + (["probs.npy"] if res.probs is not None else [])
            + ["fit.json", "checkpoint.pt"],
        }


def find_neighbors(store: Any, k: int) -> tuple[Path, bool]:
    """``(path, exists)`` of the neighbour file for ``k`` by the folder convention
    (:func:`.knn.default_knn_path`: ``knn-k<k>.npy``, or ``knn-k<k>-<benchmark>.npy`` for a benchmark's
    view of a larger store), else the smallest ``knn-k<K>.npy`` with ``K > k`` beside it (plain stores
    only), else (not existing) the conventional path."""
    from .knn import default_knn_path

    exact = default_knn_path(store, k)
    if exact.is_file():
        return exact, True
    if getattr(store, "view_name", None):
        return exact, False
    larger = []
    for p in Path(store.path).glob("knn-k*.npy"):
        m = re.fullmatch(r"knn-k(\d+)\.npy", p.name)
        if m and int(m.group(1)) > k:
            larger.append((int(m.group(1)), p))
    if larger:
        return min(larger)[1], True
    return exact, False


def record_provenance(record_path: Path, train: Any, bench: Any = None) -> None:
    """Add the provenance of the fit (the train store's backbone / preprocessing, the benchmark's
    manifest version + sha256, the package version; see :mod:`in21k_bench.evaluation.provenance`) to the run
    record written by :func:`.train.fit` (rewritten atomically; ``prediction_files`` unchanged)."""
    import json

    from ..evaluation.provenance import provenance_record
    from ..fileio import write_json

    if not record_path.is_file():
        return
    meta = getattr(train, "meta", None) or {}
    name = getattr(bench, "name", None) or meta.get("benchmark")
    version = getattr(bench, "version", None) or meta.get("version")
    rec = json.loads(record_path.read_text(encoding="utf-8"))
    rec["provenance"] = provenance_record(store=train, benchmark=name, version=version)
    write_json(record_path, rec)


def _log(dist: Dist, msg: str) -> None:
    if dist.is_main:
        print(msg, file=sys.stderr, flush=True)


def fit_features(
    method: str,
    features: Any,
    out: str | os.PathLike,
    *,
    benchmark: Any = None,
    num_clusters: int | None = None,
    neighbors: str | os.PathLike | None = None,
    device: str = "auto",
    resume: bool = True,
    save_probs: bool | None = None,
    progress: bool | None = None,
    **overrides: Any,
) -> FitRun:
    """Train ``method`` ("temi" or "scanv2") on ``features`` (a features directory with ``train/`` and
    ``val/``, or a ``(train, val)`` pair of stores) and write predictions of the best head to ``out``.

    ``benchmark``: a name or a loaded benchmark (sets C, the paper's epochs, and the paper regime
    when the store is full size). ``overrides``: TrainConfig fields (``epochs``, ``batch_size``,
    ``num_heads``, ``knn``, ``base_lr``, ``seed``, ``lr_schedule``, ``freeze_last_layer_epochs``,
    ``input_norm``, ``teacher_momentum_final``, ...); None means "use the default".
    """
    from ..features.store import open_features

    if method not in ("temi", "scanv2"):
        raise InvalidInputError(f"fit: expected method temi or scanv2, found {method!r}")
    dist = init_distributed(device)
    if isinstance(features, (tuple, list)):
        train, val = features
    else:
        train, val = open_features(features)
    bench = benchmark
    if isinstance(benchmark, str) and benchmark:
        from ..benchmark import load

        bench = load(benchmark)
    name = getattr(bench, "name", None) or (train.meta.get("benchmark") if hasattr(train, "meta") else None) or None
    if num_clusters is None:
        num_clusters = (
            bench.num_classes
            if bench is not None
            else (train.meta.get("num_classes") if hasattr(train, "meta") else None)
        )
        if num_clusters is None:
            raise InvalidInputError(
                f"fit {method}: expected --num-clusters or --benchmark (the store records no number of classes), found "
                "neither"
            )
    if bench is not None and val.num_rows != bench.num_val:
        _log(
            dist,
            f"fit {method}: warning: val has {val.num_rows:,} rows, benchmark {bench.name} has {bench.num_val:,}; "
            "`evaluate --benchmark` will reject the predictions",
        )
    recipe = default_config(method, int(train.num_rows), int(num_clusters), benchmark=bench, overrides=overrides)
    cfg = recipe.config
    _log(dist, recipe.describe())
    if recipe.regime == "adapted":
        _log(dist, f"fit {method}: rule: {recipe.settings()['rule']}")
    k = cfg.knn
    if neighbors is not None:
        nb_path, exists = Path(neighbors), Path(neighbors).is_file()
    else:
        nb_path, exists = find_neighbors(train, k)
    if exists:
        nbrs = np.load(nb_path, mmap_mode="r", allow_pickle=False)
        if nbrs.ndim == 2 and nbrs.shape[1] > k:
            nbrs = nbrs[:, :k]
    else:
        if dist.enabled:
            raise InvalidInputError(
                f"fit {method}: neighbour file {nb_path} not found; mine it first with "
                f"`in21k-bench knn --features {features} --k {k}` (not inside torchrun)"
            )
        from .knn import mine_knn

        _log(dist, f"fit {method}: mining {k} neighbours per train row -> {nb_path}")
        nbrs = mine_knn(train, k, nb_path, device=device)
    res = fit(
        train,
        nbrs,
        cfg,
        val_features=val,
        out_dir=out,
        resume=resume,
        device=device,
        save_probs=save_probs,
        progress=progress,
        settings=recipe.settings(),
        min_steps=recipe.min_steps,
    )
    if dist.is_main and out is not None:
        record_provenance(Path(out) / "fit.json", train, bench)
    return FitRun(res, recipe, Path(out), name, dist, nb_path)
