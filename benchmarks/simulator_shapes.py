"""k-means vs TEMI / SCANv2 under the simulator's class-shape model -- SYNTHETIC features, not real images.

One run: simulate the ``--benchmark`` classes under ``--subtree`` (default: the 155 ``in21k`` dog classes)
in memory with the SimParams given as JSON (``--sim '{"rank": 1, "separation": 4, "curve": 1.5}'``),
L2-normalise (``--center``: subtract the training mean first), report exact-kNN label purity (k = 1, 5,
10, 20), then Hungarian ACC / NMI / class share (mean largest fraction of a class in one cluster) on val of
spherical k-means (20 iterations) and of TEMI / SCANv2 trained for ``--steps`` optimizer steps at a
constant peak lr (``--lr``; ``--min-lr`` < lr gives the cosine schedule) with teacher momentum
``--momentum``. One torch thread; prints one JSON line. The numbers in docs/features.md and
docs/methods.md ("The demo") come from runs of this script, e.g.

    python benchmarks/simulator_shapes.py --methods kmeans,temi --sim '{"rank":1,"separation":4,"curve":1.5}' \\
        --steps 1000 --batch 256 --lr 2e-3 --min-lr 2e-3 --momentum 0.99 --k 5
    python benchmarks/simulator_shapes.py --benchmark coarse-d2 --methods kmeans,temi ...   # coarse labels
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sim", default="{}", help="SimParams fields as JSON (dim defaults to 64)")
    ap.add_argument("--benchmark", default="in21k")
    ap.add_argument("--subtree", default="n02084071")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--val-scale", type=float, default=0.4)
    ap.add_argument("--per-class", type=int, default=0, help="train rows of every class (0: real counts x scale)")
    ap.add_argument("--methods", default="kmeans")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak lr")
    ap.add_argument("--min-lr", type=float, default=2e-3, help="end of the cosine schedule (= lr: constant)")
    ap.add_argument("--momentum", type=float, default=0.99, help="teacher EMA momentum")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--center", action="store_true", help="Subtract the training mean before L2 normalisation")
    a = ap.parse_args(argv)

    import torch

    import in21k_bench
    from in21k_bench.features.simulate import SimParams, _class_table, _Generator  # noqa: PLC2701 - same package, benchmark script
    from in21k_bench.methods.kmeans import SphericalKMeans
    from in21k_bench.methods.knn import exact_knn
    from in21k_bench.scoring.metrics import accuracy, dense_matching, nmi

    torch.set_num_threads(1)
    p = SimParams(**({"dim": 64, "seed": a.seed} | json.loads(a.sim)))
    g = _Generator(p)
    classes, label_wnids = _class_table(in21k_bench.load(a.benchmark), a.subtree or None)
    c = len(label_wnids)
    n_tr = np.maximum(2, np.rint(classes["num_train"].to_numpy() * a.scale)).astype(int)
    if a.per_class > 0:
        n_tr = np.full(len(n_tr), a.per_class)
    n_va = np.maximum(1, np.rint(classes["num_val"].to_numpy() * a.val_scale)).astype(int)
    x = np.concatenate([g.sample(w, int(n), 0) for w, n in zip(classes["wnid"], n_tr)])
    xv = np.concatenate([g.sample(w, int(n), 1) for w, n in zip(classes["wnid"], n_va)])
    y = np.repeat(classes["label"].to_numpy(), n_tr)
    yv = np.repeat(classes["label"].to_numpy(), n_va)
    if a.center:
        mean = x.mean(axis=0)
        x, xv = x - mean, xv - mean
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xv /= np.linalg.norm(xv, axis=1, keepdims=True)
    knn = exact_knn(x, max(a.k, 20))
    out = {
        "synthetic": True,
        "sim": json.loads(a.sim),
        "center": a.center,
        "benchmark": a.benchmark,
        "subtree": a.subtree,
        "C": c,
        "train_rows": int(len(y)),
        "val_rows": int(len(yv)),
        "knn_purity": {k: round(float((y[knn[:, :k]] == y[:, None]).mean()), 3) for k in (1, 5, 10, 20)},
    }

    def score(top1):
        m = dense_matching(top1, yv, c, c)
        table = np.zeros((c, c))
        np.add.at(table, (yv, top1), 1)
        return {
            "acc": round(float(accuracy(top1, yv, m.cluster_to_label)), 4),
            "nmi": round(float(nmi(yv, top1)), 4),
            # mean over classes of the largest share of a class's val rows that one cluster holds
            "class_share": round(float((table.max(axis=1) / table.sum(axis=1)).mean()), 4),
        }

    for method in a.methods.split(","):
        t0 = time.process_time()
        if method == "kmeans":
            top1 = SphericalKMeans(c, niter=20, seed=a.seed, device="cpu").fit(x).predict(xv)
            rec = {}
        else:
            from in21k_bench.methods.head_training import TrainConfig, fit

            spe = len(x) // a.batch
            epochs = max(1, -(-a.steps // spe))
            cfg = TrainConfig(
                method=method,
                num_clusters=c,
                num_heads=a.heads,
                epochs=epochs,
                batch_size=a.batch,
                knn=a.k,
                base_lr=a.lr * 256 / a.batch,
                min_lr=a.min_lr,
                teacher_momentum=a.momentum,
                seed=a.seed,
            )
            with open(os.devnull, "w") as quiet:
                old, sys.stderr = sys.stderr, quiet
                try:
                    top1 = fit(x, knn[:, : a.k], cfg, val_features=xv, device="cpu", progress=False).top1
                finally:
                    sys.stderr = old
            rec = {"steps": epochs * spe, "batch": a.batch, "clusters_used": int(len(np.unique(top1)))}
        out[method] = score(top1) | rec | {"cpu_seconds": round(time.process_time() - t0, 1)}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
