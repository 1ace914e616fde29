"""The main job: features -> kNN -> k-means / TEMI / SCANv2 -> evaluation, on an embedded default.

The default data set is *simulated* ImageNet-21K features (:mod:`in21k_bench.features.simulate`):
the 155 classes of the ``in21k`` benchmark under "dog" (n02084071) -- a 6-level subtree of the MIIL
tree, so the hierarchy-aware metrics (top-1 -> L, top-5 -> L) mean something -- with class means that
follow the tree, class sizes that follow the real (estimated) per-class counts scaled by 0.1, and
several anisotropic sub-modes per class. Nothing is downloaded. ``--subtree ''`` simulates a whole
benchmark; ``--dataset digits`` runs the same pipeline on scikit-learn's real 8x8 digit images.

TEMI / SCANv2 run with far fewer epochs and heads than the paper (see ``docs/methods.md``) so the demo
finishes in about three minutes on two CPU cores; the numbers show the pipeline, not the methods' best.

Every step writes into ``out`` and is skipped when its output is already complete, so an
interrupted demo resumes where it stopped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InvalidInputError

METHODS = ("kmeans", "temi", "scanv2")


@dataclass
class DemoConfig:
    dataset: str = "simulated"  # "simulated" or "digits"
    benchmark: str = "in21k"
    subtree: str | None = "n02084071"  # dog: 155 classes, 6 levels
    scale: float = 0.1  # fraction of the (estimated) per-class train counts
    val_scale: float = 0.4  # fraction of the 50 val images per class
    dim: int = 64
    methods: tuple[str, ...] = METHODS
    knn: int = 5
    epochs: int = 12
    heads: int = 4
    temi_batch: int = 256
    temi_lr: float = 4e-3  # base lr per 256 samples (scaled by batch / 256)
    scanv2_batch: int = 512
    scanv2_lr: float = 1e-3
    kmeans_redo: int = 1
    seed: int = 0
    device: str = "auto"
    out: Path = field(default_factory=lambda: Path("runs/demo"))


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _features(cfg: DemoConfig):
    from .features.store import open_features

    feat_dir = cfg.out / "features"
    try:
        train, val = open_features(feat_dir)
        if train.meta.get("complete", True) and val.meta.get("complete", True):
            _log(f"features: reusing {feat_dir}")
            return train, val
    except Exception:  # noqa: BLE001 - absent or partial: (re)build below
        pass
    if cfg.dataset == "digits":
        from .features.digits import write_digits

        return write_digits(feat_dir)
    from .features.simulate import simulate_features

    return simulate_features(cfg.benchmark, feat_dir, scale=cfg.scale, val_scale=cfg.val_scale, dim=cfg.dim, seed=cfg.seed, subtree=cfg.subtree or None)


def _label_space(cfg: DemoConfig, val, val_labels: np.ndarray):
    """(num_classes, label_sets CSR) for the val samples: label + its MIIL ancestors among the labels."""
    import scipy.sparse as sp

    if cfg.dataset == "digits":
        n = len(val_labels)
        return 10, sp.csr_matrix((np.ones(n, dtype=bool), val_labels, np.arange(n + 1)), shape=(n, 10))
    from .taxonomy import load_taxonomy

    label_wnids = val.meta["label_wnids"]
    return len(label_wnids), load_taxonomy().label_ancestor_matrix(label_wnids)[val_labels]


def run_demo(cfg: DemoConfig) -> list[dict]:
    """Run the pipeline; returns one result dict per method (metrics + wall time)."""
    from .methods.kmeans import run_kmeans
    from .methods.knn import mine_knn
    from .methods.train import TrainConfig, fit
    from .evaluate import evaluate_arrays

    bad = [m for m in cfg.methods if m not in METHODS]
    if bad:
        raise InvalidInputError(f"demo: expected methods among {', '.join(METHODS)}, found {', '.join(bad)}")
    if cfg.dataset not in ("simulated", "digits"):
        raise InvalidInputError(f"demo: expected --dataset simulated or digits, found {cfg.dataset!r}")
    t0 = time.perf_counter()
    train, val = _features(cfg)
    labels = np.asarray(val.labels, dtype=np.int64)
    num_classes, label_sets = _label_space(cfg, val, labels)
    name = "digits" if cfg.dataset == "digits" else f"{cfg.benchmark} (simulated)"
    _log(f"features: {train.num_rows:,} train / {val.num_rows:,} val, dim {train.dim}, C = {num_classes:,} ({time.perf_counter() - t0:.1f} s)")

    results = []
    knn = None
    for method in cfg.methods:
        t = time.perf_counter()
        out = cfg.out / method
        if method == "kmeans":
            run_kmeans(train, val, num_classes, out, niter=20, nredo=cfg.kmeans_redo, seed=cfg.seed, device=cfg.device)
            top1, top5, probs = np.load(out / "top1.npy"), np.load(out / "top5.npy"), None
        else:
            if knn is None:
                tk = time.perf_counter()
                knn = mine_knn(train, cfg.knn, cfg.out / f"knn{cfg.knn}.npy", device=cfg.device)
                _log(f"knn: k = {cfg.knn} ({time.perf_counter() - tk:.1f} s)")
            batch, lr = (cfg.temi_batch, cfg.temi_lr) if method == "temi" else (cfg.scanv2_batch, cfg.scanv2_lr)
            tc = TrainConfig(method=method, num_clusters=num_classes, num_heads=cfg.heads, epochs=cfg.epochs, batch_size=batch, knn=cfg.knn, base_lr=lr, seed=cfg.seed)
            res = fit(train, knn, tc, val_features=val, out_dir=out, device=cfg.device)
            top1, top5, probs = res.top1, res.top5, res.probs
        r = evaluate_arrays(top1, labels, topk=top5, probs=probs, label_sets=label_sets, num_classes=num_classes, num_clusters=num_classes, benchmark=name)
        row = {"method": method, "seconds": round(time.perf_counter() - t, 1)}
        row.update({k: getattr(r, k) for k in ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari", "ece")})
        results.append(row)
        _log(f"{method}: ACC {row['acc']:.4f} ({row['seconds']} s)")
    return results


def format_table(rows: list[dict], title: str) -> str:
    cols = [("method", "method"), ("acc", "ACC"), ("top1_L", "top1->L"), ("top5_1", "top5->1"), ("top5_L", "top5->L"), ("nmi", "NMI"), ("ari", "ARI"), ("seconds", "time s")]
    out = [title, "  ".join(f"{h:>8}" for _, h in cols)]
    for r in rows:
        cells = []
        for k, _ in cols:
            v = r.get(k)
            cells.append(f"{v:>8}" if isinstance(v, str) else ("       -" if v is None else (f"{v:8.1f}" if k == "seconds" else f"{100 * v:8.2f}")))
        out.append("  ".join(cells))
    out.append("accuracies in %; top1->L / top5->L count a hit when the matched label is the true label or one of its ancestors")
    return "\n".join(out)
