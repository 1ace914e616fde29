"""Qualitative findings of the paper (docs/methods.md), checked on SIMULATED features (not real images).

Two questions, on the 155 classes of the ``in21k`` benchmark under "dog" (n02084071), simulated by
``in21k_bench.features.simulate`` (scale 0.1 of the real per-class counts: 46 .. 300 train rows per
class; 20 val rows per class; dim 64):

1. Batch size vs C.  SCANv2's entropy term estimates the cluster marginal from one batch, so it
   needs a batch much larger than C (docs/methods.md); TEMI's prior is an EMA over batches, so it should be much less
   sensitive.  Sweep the batch of both methods over multiples of C (default 0.5C, C, 4C, 16C) on
   the *balanced* training set.  Every run takes the same number of optimisation steps (``--steps``;
   epochs = ceil(steps / steps-per-epoch)), so a larger batch is not penalised by fewer teacher
   updates, and the same peak lr (``--peak-lr``, default 2e-3), so batch size is the only change
   (``--peak-lr 0`` uses the package's rule lr = base_lr * batch / 256 instead).
2. Class imbalance.  The paper: the advantage of deep clustering over k-means shrinks on imbalanced
   data.  Two training sets with the SAME number of rows built from the same generated store:
   ``balanced`` (every class subsampled to the smallest class size) and ``imbalanced`` (every class
   subsampled by the same fraction, so sizes keep the real count ratios, max/min ~ 6.5).  Val is the
   same balanced val set for both.  k-means, TEMI and SCANv2 at batch ``--imbalance-batch-mult`` x C.

The subsampling happens here (rows taken per class from the store, seeded); ``simulate.py`` is
unchanged.  Everything else is the documented default except the scaled-down settings printed in the
header (heads, steps, k, lr).  Hungarian ACC and NMI on val; mean +- std over seeds.

    python benchmarks/simulator_findings.py [--seeds 3] [--big-batch-seeds 2] [--steps 600] [--heads 2] [--workers 2]
    [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOG = "n02084071"


def _log(msg: str) -> None:
    print(f"[findings] {msg}", file=sys.stderr, flush=True)


def per_class_subsample(labels: np.ndarray, take: np.ndarray, seed: int) -> np.ndarray:
    """Sorted row indices: ``take[c]`` rows drawn without replacement from class ``c`` (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c, t in enumerate(take):
        idx = np.flatnonzero(labels == c)
        if t > len(idx):
            raise ValueError(f"class {c}: asked for {t} rows, only {len(idx)} exist")
        rows.append(rng.choice(idx, size=int(t), replace=False))
    return np.sort(np.concatenate(rows))


def make_settings(labels: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices of the ``balanced`` and ``imbalanced`` training sets (same total size)."""
    counts = np.bincount(labels)
    m = int(counts.min())
    total = m * len(counts)
    bal = np.full(len(counts), m)
    # same fraction of every class -> sizes keep the real ratios; largest-remainder rounding to `total`
    raw = counts * (total / counts.sum())
    imb = np.floor(raw).astype(np.int64)
    imb[np.argsort(-(raw - imb), kind="stable")[: total - imb.sum()]] += 1
    imb = np.maximum(imb, 1)
    return {
        "balanced": per_class_subsample(labels, bal, seed),
        "imbalanced": per_class_subsample(labels, imb, seed + 1),
    }


def _score(top1: np.ndarray, y: np.ndarray, c: int) -> dict:
    from in21k_bench.scoring.metrics import accuracy, dense_matching, nmi

    m = dense_matching(top1, y, c, c)
    return {"acc": float(accuracy(top1, y, m.cluster_to_label)), "nmi": float(nmi(y, top1))}


def run_job(job: dict) -> dict:
    """One (setting, method, batch, seed) run in a worker process with one torch thread."""
    import torch

    torch.set_num_threads(1)
    from in21k_bench.methods.head_training import TrainConfig, fit
    from in21k_bench.methods.kmeans import SphericalKMeans

    w = Path(job["work"])
    x = np.load(w / f"{job['setting']}_x.npy")
    xv = np.load(w / "val_x.npy")
    yv = np.load(w / "val_y.npy")
    c = job["C"]
    t0 = time.perf_counter()
    out = dict(job)
    out.pop("work")
    if job["method"] == "kmeans":
        top1 = SphericalKMeans(c, niter=50, seed=job["seed"], device="cpu").fit(x).predict(xv)
    else:
        nbrs = np.load(w / f"{job['setting']}_knn.npy")
        spe = len(x) // job["batch"]
        epochs = max(1, math.ceil(job["steps"] / spe))
        # constant peak lr across batch sizes unless peak_lr <= 0 (then the package's batch/256 scaling)
        base_lr = job["peak_lr"] * 256 / job["batch"] if job["peak_lr"] > 0 else job["base_lr"]
        cfg = TrainConfig(
            method=job["method"],
            num_clusters=c,
            num_heads=job["heads"],
            epochs=epochs,
            batch_size=job["batch"],
            knn=job["k"],
            base_lr=base_lr,
            seed=job["seed"],
        )
        with open(os.devnull, "w") as quiet:  # fit logs one line per epoch; hundreds here
            old, sys.stderr = sys.stderr, (sys.stderr if job["verbose"] else quiet)
            try:
                res = fit(x, nbrs, cfg, val_features=xv, device="cpu", progress=False)
            finally:
                sys.stderr = old
        top1 = res.top1
        out.update(epochs=epochs, steps_run=epochs * spe, clusters_used=int(len(np.unique(top1))))
    out.update(_score(top1, yv, c))
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def _agg(rows: list[dict]) -> dict:
    a = np.array([r["acc"] for r in rows])
    n = np.array([r["nmi"] for r in rows])
    return {
        "acc_mean": float(a.mean()),
        "acc_std": float(a.std()),
        "nmi_mean": float(n.mean()),
        "nmi_std": float(n.std()),
        "n": len(rows),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=600, help="optimisation steps per TEMI/SCANv2 run")
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument(
        "--peak-lr", type=float, default=2e-3, help="peak lr, the same for every batch size (<= 0: use --base-lr)"
    )
    ap.add_argument(
        "--base-lr", type=float, default=4e-3, help="per 256 samples, scaled by batch/256 (only with --peak-lr 0)"
    )
    ap.add_argument("--verbose", action="store_true", help="show fit's per-epoch log lines")
    ap.add_argument("--batch-mults", default="0.5,1,4,16", help="batch sizes as multiples of C")
    ap.add_argument("--big-batch-seeds", type=int, default=2, help="seeds for batch mults > 4 (CPU time)")
    ap.add_argument("--imbalance-batch-mult", type=float, default=4.0)
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default="batch,imbalance")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from in21k_bench.features.simulate import simulate_features
    from in21k_bench.methods.knn import exact_knn

    t_all = time.perf_counter()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="simfindings-") as tmp:
        work = Path(tmp)
        train, val = simulate_features(
            "in21k", work / "feats", scale=args.scale, val_scale=0.4, dim=args.dim, seed=0, subtree=DOG, progress=False
        )
        x_all = train.to_array()
        y_all = np.asarray(train.labels, dtype=np.int64)
        c = int(y_all.max()) + 1
        np.save(work / "val_x.npy", val.to_array())
        np.save(work / "val_y.npy", np.asarray(val.labels, dtype=np.int64))
        info = {"C": c, "val_rows": int(len(val.labels)), "generated_train_rows": int(len(y_all))}
        for name, rows in make_settings(y_all).items():
            x = np.ascontiguousarray(x_all[rows], dtype=np.float32)
            y = y_all[rows]
            knn = exact_knn(x, args.k)
            np.save(work / f"{name}_x.npy", x)
            np.save(work / f"{name}_knn.npy", knn)
            cnt = np.bincount(y, minlength=c)
            info[name] = {
                "rows": int(len(y)),
                "min_class": int(cnt.min()),
                "max_class": int(cnt.max()),
                "knn_purity": float((y[knn] == y[:, None]).mean()),
            }
            _log(
                f"{name}: {len(y):,} rows, class sizes {cnt.min()}..{cnt.max()}, k={args.k} neighbour purity "
                f"{info[name]['knn_purity']:.3f}"
            )

        mults = [float(m) for m in args.batch_mults.split(",")]
        base = {
            "work": str(work),
            "C": c,
            "heads": args.heads,
            "k": args.k,
            "base_lr": args.base_lr,
            "steps": args.steps,
            "peak_lr": args.peak_lr,
            "verbose": args.verbose,
        }
        jobs = []
        bal_rows = info["balanced"]["rows"]
        for mult in mults if "batch" in parts else []:
            b = int(round(mult * c))
            if b > bal_rows:
                _log(f"batch {b} (x{mult} C) > {bal_rows} rows: skipped")
                continue
            for method in ("temi", "scanv2"):
                for seed in range(args.seeds if mult <= 4 else min(args.seeds, args.big_batch_seeds)):
                    jobs.append(
                        base
                        | {
                            "part": "batch",
                            "setting": "balanced",
                            "method": method,
                            "batch": b,
                            "mult": mult,
                            "seed": seed,
                        }
                    )
        if "imbalance" in parts:
            b = int(round(args.imbalance_batch_mult * c))
            for setting in ("balanced", "imbalanced"):
                for method in ("kmeans", "temi", "scanv2"):
                    for seed in range(args.seeds):
                        j = base | {
                            "part": "imbalance",
                            "setting": setting,
                            "method": method,
                            "batch": b,
                            "mult": args.imbalance_batch_mult,
                            "seed": seed,
                        }
                        # the balanced deep runs at this batch are shared with the batch sweep
                        dup = any(
                            o["setting"] == setting and o["method"] == method and o["batch"] == b and o["seed"] == seed
                            for o in jobs
                        )
                        if not dup:
                            jobs.append(j)
        # biggest jobs first so the pool finishes together
        jobs.sort(key=lambda j: -(j["batch"] * j["steps"] if j["method"] != "kmeans" else 0))
        _log(f"{len(jobs)} runs on {args.workers} worker(s); C = {c}")
        results = []
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(run_job, j) for j in jobs]
            for f in as_completed(futs):
                r = f.result()
                results.append(r)
                _log(
                    f"{r['setting']:<10} {r['method']:<6} batch {r['batch']:>5} seed {r['seed']}: ACC {r['acc']:.4f} "
                    f"NMI {r['nmi']:.4f} ({r['seconds']}s)"
                )

    def pick(**kw):
        return [r for r in results if all(r[k] == v for k, v in kw.items())]

    summary: dict = {"info": info, "config": vars(args), "batch": [], "imbalance": [], "runs": results}
    for mult in mults if "batch" in parts else []:
        for method in ("temi", "scanv2"):
            rs = pick(setting="balanced", method=method, mult=mult)
            if rs:
                summary["batch"].append(
                    {
                        "method": method,
                        "mult": mult,
                        "batch": rs[0]["batch"],
                        "steps": rs[0]["steps_run"],
                        "epochs": rs[0]["epochs"],
                        "clusters_used": float(np.mean([r["clusters_used"] for r in rs])),
                    }
                    | _agg(rs)
                )
    if "imbalance" in parts:
        b = int(round(args.imbalance_batch_mult * c))
        for setting in ("balanced", "imbalanced"):
            km = pick(setting=setting, method="kmeans")
            for method in ("kmeans", "temi", "scanv2"):
                rs = (
                    pick(setting=setting, method=method)
                    if method == "kmeans"
                    else pick(setting=setting, method=method, batch=b)
                )
                if not rs:
                    continue
                row = {"setting": setting, "method": method} | _agg(rs)
                if method != "kmeans" and km:
                    gains = [r["acc"] - k["acc"] for r in rs for k in km if k["seed"] == r["seed"]]
                    row["gain_vs_kmeans_mean"] = float(np.mean(gains))
                    row["gain_vs_kmeans_std"] = float(np.std(gains))
                summary["imbalance"].append(row)
    summary["seconds"] = round(time.perf_counter() - t_all, 1)

    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"simulated in21k dog subtree (SYNTHETIC features), C = {c}; {args.heads} heads, {args.steps} steps/run, "
        f"k = {args.k}, "
        + (f"peak lr {args.peak_lr} for every batch" if args.peak_lr > 0 else f"lr {args.base_lr} x batch/256")
        + f"; {args.seeds} seed(s), {min(args.seeds, args.big_batch_seeds)} for batch > 4C"
    )
    for name in ("balanced", "imbalanced"):
        i = info[name]
        print(
            f"  {name}: {i['rows']:,} train rows, class sizes {i['min_class']}..{i['max_class']}, neighbour purity "
            f"{i['knn_purity']:.3f}"
        )
    if summary["batch"]:
        print("\n1) batch size vs C (balanced set); ACC / NMI in %, mean +- std over seeds")
        print(f"{'method':<7} {'batch':>6} {'xC':>5} {'steps':>6} {'ACC':>14} {'NMI':>14} {'clusters':>9} {'n':>2}")
        for r in summary["batch"]:
            print(
                f"{r['method']:<7} {r['batch']:>6} {r['mult']:>5g} {r['steps']:>6} {100 * r['acc_mean']:>7.2f} +- "
                f"{100 * r['acc_std']:<4.2f}"
                f" {100 * r['nmi_mean']:>7.2f} +- {100 * r['nmi_std']:<4.2f} {r['clusters_used']:>9.1f} {r['n']:>2}"
            )
    if summary["imbalance"]:
        print(
            f"\n2) balanced vs imbalanced training set (same size), batch {int(round(args.imbalance_batch_mult * c))}"
        )
        print(f"{'setting':<11} {'method':<7} {'ACC':>14} {'NMI':>14} {'ACC - kmeans':>16}")
        for r in summary["imbalance"]:
            g = (
                f"{100 * r['gain_vs_kmeans_mean']:+7.2f} +- {100 * r['gain_vs_kmeans_std']:.2f}"
                if "gain_vs_kmeans_mean" in r
                else ""
            )
            print(
                f"{r['setting']:<11} {r['method']:<7} {100 * r['acc_mean']:>7.2f} +- {100 * r['acc_std']:<4.2f}"
                f" {100 * r['nmi_mean']:>7.2f} +- {100 * r['nmi_std']:<4.2f} {g:>16}"
            )
    print(f"\ntotal {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
