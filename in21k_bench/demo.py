"""The main job: features -> kNN -> k-means / TEMI / SCANv2 -> evaluation, on an embedded default.

The default data set is *simulated* ImageNet-21K features (:mod:`in21k_bench.features.simulate`;
SYNTHETIC, not features of any real image): the 155 classes of the ``in21k`` benchmark under "dog"
(n02084071) -- a 6-level subtree of the MIIL tree, so the hierarchy-aware metrics (top-1 -> L,
top-5 -> L) mean something -- with class means that follow the tree and class sizes that follow the
real (estimated) per-class counts scaled by 0.1. Nothing is downloaded.

Two presets show the two regimes of Adaloglou et al. (2024) on the same simulated points
(a class's points depend only on the seed and its wnid, so both presets simulate identical rows):

* ``fine`` (default): the 155 fine labels; classes are well separated (thin, ``separation`` 4) and
  irregular: each class is a long curved arc (``rank`` 1, ``curve`` 1.5) plus sub-modes, so every
  exact nearest neighbour shares the label while a class is far from a round blob.
* ``coarse``: the same rows labelled by ``coarse-d2`` (35 coarse, very unequal labels: each is
  the union of up to dozens of fine classes).

TEMI / SCANv2 train with ``fit``'s own budget-aware defaults (:mod:`in21k_bench.methods.recipe`,
adapted regime: k = clamp(N / 3C, 5, 50) neighbours -- 43 for the fine preset --, constant peak lr
1e-3 after warm-up, teacher momentum 0.99, cluster layer frozen for the first epoch) with three
changes to fit ~2 minutes on two CPU cores: 2 heads instead of 8, TEMI 2,000 steps (the recipe's
minimum) and SCANv2 the same number of pairs at batch 512 instead of 1,024 (1,000 steps). The
neighbour count is what lets the deep heads follow the curved classes: with k = 5 they stay below
k-means on the fine preset (docs/methods.md, "The demo").

Every step writes into ``out`` and is skipped when its output is already complete, so an
interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InvalidInputError, ResumeError

METHODS = ("kmeans", "temi", "scanv2")
_TABLE_KEYS = ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari")


#: Class shape of the simulated features in both presets (see SimParams): thin, curved, well separated.
DEMO_SHAPE = {"rank": 1, "separation": 4.0, "curve": 1.5}
#: preset -> benchmark whose labels the simulated rows get (same classes, same rows).
PRESETS = {"fine": "in21k", "coarse": "coarse-d2"}


@dataclass
class DemoConfig:
    dataset: str = "simulated"  # "simulated" or "digits"
    preset: str = "fine"  # "fine" or "coarse" (simulated only)
    benchmark: str | None = None  # None: the preset's
    subtree: str | None = "n02084071"  # dog: 155 classes, 6 levels
    scale: float = 0.1  # fraction of the (estimated) per-class train counts
    val_scale: float = 0.4  # fraction of the 50 val images per class
    dim: int = 64
    shape: dict = field(default_factory=lambda: dict(DEMO_SHAPE))  # SimParams fields
    methods: tuple[str, ...] = METHODS
    knn: int | None = None  # None: fit's default k for the training set's size
    steps: int = 2000  # TEMI optimizer steps; SCANv2 gets the same number of pairs at its batch
    heads: int = 2
    scanv2_batch: int = 512  # fit's default would be 1,024 (>= 4C) at twice the cost per pair step
    kmeans_redo: int = 1
    seed: int = 0
    device: str = "auto"
    out: Path = field(default_factory=lambda: Path("runs/demo"))

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InvalidInputError(f"demo: expected --preset {' or '.join(PRESETS)}, found {self.preset!r}")
        if self.benchmark is None:
            self.benchmark = PRESETS[self.preset]
        if int(self.steps) < 1 or int(self.heads) < 1 or (self.knn is not None and int(self.knn) < 1):
            raise InvalidInputError(
                f"demo: expected steps, heads, knn >= 1, found {self.steps}, {self.heads}, {self.knn}"
            )

    def recipe(self, method: str, num_rows: int, num_clusters: int):
        """``fit``'s default recipe for ``method`` (:func:`~in21k_bench.methods.recipe.default_config`)
        with the demo's overrides: heads, seed, k when given, SCANv2's batch, and the epochs that give
        ``steps`` optimizer steps (SCANv2: the same number of pairs at its batch)."""
        import math

        from .methods.recipe import default_config

        over = {"num_heads": int(self.heads), "seed": int(self.seed) or None, "knn": self.knn}  # None: fit's
        if method == "scanv2":
            over["batch_size"] = max(1, min(int(self.scanv2_batch), num_rows))
        batch = default_config(method, num_rows, num_clusters, overrides=over).config.batch_size
        temi_batch = default_config("temi", num_rows, num_clusters).config.batch_size
        steps = self.steps if method == "temi" else max(1, round(self.steps * temi_batch / batch))
        over["epochs"] = max(1, math.ceil(steps / max(1, num_rows // batch)))
        return default_config(method, num_rows, num_clusters, overrides=over)


def _table_metrics():
    from .scoring.metric_spec import metric

    return tuple(metric(k) for k in _TABLE_KEYS)


TABLE_METRICS = _table_metrics()


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _features(cfg: DemoConfig):
    from .features.store import open_features

    feat_dir = cfg.out / "features"
    try:
        train, val = open_features(feat_dir)
        same = cfg.dataset == "digits" or (
            train.meta.get("benchmark") == cfg.benchmark
            and train.meta.get("params", {}).get("dim") == cfg.dim
            and all(train.meta.get("params", {}).get(k) == v for k, v in cfg.shape.items())
        )
        if train.meta.get("complete", True) and val.meta.get("complete", True) and same:
            _log(f"features: reusing {feat_dir}")
            return train, val
    except Exception:  # noqa: BLE001 - absent or partial: (re)build below
        pass
    # new features: neighbours, checkpoints and predictions of earlier features must not be reused
    for stale in [cfg.out / m for m in METHODS] + sorted(cfg.out.glob("knn*")) if cfg.out.is_dir() else []:
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    if cfg.dataset == "digits":
        from .features.digits import write_digits

        return write_digits(feat_dir)
    from .features.simulate import SimParams, simulate_features

    params = SimParams(dim=int(cfg.dim), seed=int(cfg.seed), **cfg.shape)
    return simulate_features(
        cfg.benchmark, feat_dir, scale=cfg.scale, val_scale=cfg.val_scale, params=params, subtree=cfg.subtree or None
    )


def _label_space(cfg: DemoConfig, val, val_labels: np.ndarray):
    """(num_classes, label_sets CSR) for the val samples: label + its MIIL ancestors among the labels."""
    import scipy.sparse as sp

    if cfg.dataset == "digits":
        n = len(val_labels)
        return 10, sp.csr_matrix((np.ones(n, dtype=bool), val_labels, np.arange(n + 1)), shape=(n, 10))
    from .registry.taxonomy import load_taxonomy

    label_wnids = val.meta["label_wnids"]
    return len(label_wnids), load_taxonomy().label_ancestor_matrix(label_wnids)[val_labels]


def run_demo(cfg: DemoConfig) -> list[dict]:
    """Run the pipeline; returns one result dict per method (metrics + wall time)."""
    from .evaluation.evaluator import evaluate_arrays
    from .evaluation.predictions import read_prediction_folder
    from .methods.fit import record_provenance
    from .methods.head_training import fit
    from .methods.kmeans import run_kmeans
    from .methods.knn import mine_knn

    bad = [m for m in cfg.methods if m not in METHODS]
    if bad:
        raise InvalidInputError(f"demo: expected methods among {', '.join(METHODS)}, found {', '.join(bad)}")
    if cfg.dataset not in ("simulated", "digits"):
        raise InvalidInputError(f"demo: expected --dataset simulated or digits, found {cfg.dataset!r}")
    t0 = time.perf_counter()
    train, val = _features(cfg)
    labels = np.asarray(val.labels, dtype=np.int64)
    num_classes, label_sets = _label_space(cfg, val, labels)
    name = "digits" if cfg.dataset == "digits" else f"{cfg.benchmark} (SIMULATED)"
    _log(
        f"features: {train.num_rows:,} train / {val.num_rows:,} val, dim {train.dim}, C = {num_classes:,} "
        f"({time.perf_counter() - t0:.1f} s)"
    )

    results = []
    knn = None
    for method in cfg.methods:
        t = time.perf_counter()
        out = cfg.out / method
        if method == "kmeans":
            run_kmeans(train, val, num_classes, out, niter=20, nredo=cfg.kmeans_redo, seed=cfg.seed, device=cfg.device)
            settings = {"niter": 20, "nredo": cfg.kmeans_redo}
        else:
            rec = cfg.recipe(method, int(train.num_rows), num_classes)
            tc = rec.config
            if knn is None or knn.shape[1] < tc.knn:  # one neighbour file serves both methods (first k columns)
                tk = time.perf_counter()
                knn = mine_knn(train, tc.knn, cfg.out / f"knn{tc.knn}.npy", device=cfg.device)
                _log(f"knn: k = {tc.knn} ({time.perf_counter() - tk:.1f} s)")
            steps = tc.epochs * (int(train.num_rows) // tc.batch_size)
            sources = rec.settings()["effective"]
            settings = {
                "batch": tc.batch_size,
                "epochs": tc.epochs,
                "steps": steps,
                "heads": tc.num_heads,
                "k": tc.knn,
                "peak_lr": tc.lr,
                "schedule": f"{tc.lr_schedule} after warm-up",
                "teacher_momentum": tc.teacher_momentum,
                "freeze_cluster_layer_epochs": tc.freeze_last_layer_epochs,
                "regime": rec.regime,
                "from_demo": sorted(k for k, v in sources.items() if v["source"] == "option"),
            }
            _log(f"{method}: " + ", ".join(f"{k} {v}" for k, v in settings.items()))
            try:
                fit(train, knn, tc, val_features=val, out_dir=out, device=cfg.device)
            except ResumeError as exc:  # an earlier demo run with other settings: start this method afresh
                _log(f"{method}: not resuming ({exc}); training from scratch")
                shutil.rmtree(out)
                fit(train, knn, tc, val_features=val, out_dir=out, device=cfg.device)
            record_provenance(Path(out) / "fit.json", train)
        arrays, _ = read_prediction_folder(out)
        r = evaluate_arrays(
            np.asarray(arrays.top1),
            labels,
            topk=None if arrays.topk is None else np.asarray(arrays.topk),
            probs=None if arrays.probs is None else np.asarray(arrays.probs),
            label_sets=label_sets,
            num_classes=num_classes,
            num_clusters=num_classes,
            benchmark=name,
        )
        row = {"method": method, "seconds": round(time.perf_counter() - t, 1)}
        row.update({m.key: getattr(r, m.key, None) for m in TABLE_METRICS})
        row["settings"] = settings
        results.append(row)
        _log(f"{method}: ACC {row['acc']:.4f} ({row['seconds']} s)")
    return results


def format_table(rows: list[dict], title: str, synthetic: bool = True) -> str:
    """Text table; column headers are the metrics' short labels from :mod:`in21k_bench.scoring.metric_spec`."""
    heads = ["method"] + [m.short or m.key for m in TABLE_METRICS] + ["time s"]
    width = [max(8, len(h)) for h in heads]
    out = [title, "  ".join(h.rjust(w) for h, w in zip(heads, width))]
    for r in rows:
        cells = [str(r["method"])]
        for m in TABLE_METRICS:
            v = r.get(m.key)
            cells.append("-" if v is None else (f"{100 * v:.2f}" if m.percent else f"{v:.4f}"))
        cells.append(f"{r['seconds']:.1f}")
        out.append("  ".join(c.rjust(w) for c, w in zip(cells, width)))
    out.append(
        "ACC / top-k in %, NMI / ARI as fractions; ->L counts a hit when the matched label is the true label or one of "
        "its ancestors"
    )
    if synthetic:
        out.append(
            "SYNTHETIC data: these numbers show the pipeline and the regime, not the quality of any real backbone or "
            "method"
        )
    return "\n".join(out)
