"""TEMI and SCANv2 vs spherical k-means on scikit-learn's digits (real images, pixels as features).

Protocol: the fixed digits split of ``in21k_bench.features.digits`` (1,442 train / 355 val rows,
64 pixel values L2-normalised); every method is fit on train and scored on val with the package's
Hungarian-matched accuracy (``in21k_bench.metrics``); 3 seeds; mean and std printed.

The self-distillation settings are the documented defaults (temperatures 0.1, EMA 0.996, beta 0.6,
alpha 5, AdamW wd 1e-4, warm-up 10% then cosine, lr scaled by batch/256) with these changes for
1.4k points on a CPU (see docs/methods.md): batch 64 (TEMI and SCANv2), k = 20 neighbours,
200 epochs (~4,400 steps), base lr 4e-3 per 256 (peak 1e-3), 4 heads (CPU time).

    python benchmarks/digits_methods.py [--seeds 3] [--heads 8] [--epochs 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from in21k_bench.features.digits import digits_split  # noqa: E402
from in21k_bench.methods.kmeans import SphericalKMeans  # noqa: E402
from in21k_bench.methods.knn import exact_knn  # noqa: E402
from in21k_bench.methods.train import TrainConfig, fit  # noqa: E402
from in21k_bench.metrics import accuracy, dense_matching, nmi  # noqa: E402


def digits_config(method: str, seed: int, heads: int = 4, epochs: int = 200, k: int = 20) -> TrainConfig:
    return TrainConfig(method=method, num_clusters=10, num_heads=heads, epochs=epochs, batch_size=64, knn=k,
                       base_lr=4e-3, seed=seed)


def score(top1: np.ndarray, y: np.ndarray) -> dict:
    m = dense_matching(top1, y, 10, 10)
    return {"acc": accuracy(top1, y, m.cluster_to_label), "nmi": nmi(y, top1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--methods", default="kmeans,temi,scanv2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    split = digits_split()
    xtr, ytr, _ = split["train"]
    xva, yva, _ = split["val"]
    xtr_n = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
    nbrs = exact_knn(np.ascontiguousarray(xtr_n, dtype=np.float32), args.k)
    purity = float((ytr[nbrs] == ytr[:, None]).mean())
    print(f"digits: {len(xtr)} train / {len(xva)} val; k={args.k} neighbour purity {purity:.3f}", file=sys.stderr)
    results: dict[str, list[dict]] = {}
    for method in args.methods.split(","):
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            if method == "kmeans":
                km = SphericalKMeans(10, niter=50, seed=seed, device="cpu").fit(xtr)
                top1 = km.predict(xva)
            else:
                res = fit(xtr, nbrs, digits_config(method, seed, args.heads, args.epochs, args.k), val_features=xva,
                          device="cpu", progress=False)
                top1 = res.top1
            r = score(top1, yva) | {"seed": seed, "seconds": round(time.perf_counter() - t0, 1)}
            results.setdefault(method, []).append(r)
            print(f"{method} seed {seed}: ACC {r['acc']:.4f} NMI {r['nmi']:.4f} ({r['seconds']}s)", file=sys.stderr, flush=True)
    summary = {
        m: {"acc_mean": float(np.mean([r["acc"] for r in rs])), "acc_std": float(np.std([r["acc"] for r in rs])),
            "nmi_mean": float(np.mean([r["nmi"] for r in rs])), "nmi_std": float(np.std([r["nmi"] for r in rs])),
            "runs": rs}
        for m, rs in results.items()
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{'method':<8} {'ACC mean':>9} {'ACC std':>8} {'NMI mean':>9} {'NMI std':>8}")
        for m, s in summary.items():
            print(f"{m:<8} {s['acc_mean']:>9.4f} {s['acc_std']:>8.4f} {s['nmi_mean']:>9.4f} {s['nmi_std']:>8.4f}")
        if "kmeans" in summary:
            for m in summary:
                if m != "kmeans":
                    print(f"{m} - kmeans: {summary[m]['acc_mean'] - summary['kmeans']['acc_mean']:+.4f} ACC")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
