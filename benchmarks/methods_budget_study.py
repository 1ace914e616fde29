"""Sensitivity of TEMI and SCANv2 to their training budget and recipe, on real and simulated data.

Measures ACC (Hungarian, on val) against the number of optimizer steps, the batch size, the peak
learning rate and its schedule (cosine to ~0 vs constant after warm-up), the number of neighbours k,
the first-epoch freeze of the cluster layer, normalised vs raw inputs and the teacher's EMA momentum -- one factor at a
time
around a centre setting -- for both methods on two data sets:

* ``digits``: scikit-learn's digits, 1,442 train / 355 val real 8x8 images, 64 raw pixel values
  (0-16), C = 10 (``in21k_bench.features.digits``);
* ``sim``: SYNTHETIC features from ``in21k_bench.features.simulate``: the demo's data (the 155 ``in21k``
  classes under "dog", n02084071, scale 0.1 = 20,119 train rows, dim 64, 20 val rows per class, class
  shape rank 1, separation 4, curve 1.5: thin curved classes, every exact neighbour in the class), C = 155.

Centre: 2,000 steps, batch 64 (digits) / 256 (sim), peak lr 1e-3 (constant after a 10% warm-up),
cluster layer frozen for the first epoch, L2-normalised inputs, k = 20 (digits) / 43 (sim: ``fit``'s
default clamp(N / 3C, 5, 50)), teacher momentum 0.996 (digits) / 0.99 (sim: ``fit``'s default), and
2 heads (the heads are independent copies; more heads only improve the pick of the best one, so
the study uses 2 to keep CPU time modest). Seeds: ``--seeds`` (default 1) per point. k-means
(spherical, 50 iterations) on the same split is the reference line. Results are appended to a JSON
lines file (re-running skips finished points) and summarised / plotted with ``--plot``.

    python benchmarks/methods_budget_study.py --workers 2 --out runs/budget_study.jsonl
    python benchmarks/methods_budget_study.py --out runs/budget_study.jsonl --plot docs/figures/methods_budget.png
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DOG = "n02084071"
CENTRE = {
    "digits": {
        "steps": 2000,
        "batch": 64,
        "peak_lr": 1e-3,
        "schedule": "constant",
        "freeze": 1,
        "input": "l2",
        "k": 20,
        "momentum": 0.996,
    },
    "sim": {
        "steps": 2000,
        "batch": 256,
        "peak_lr": 1e-3,
        "schedule": "constant",
        "freeze": 1,
        "input": "l2",
        "k": 43,
        "momentum": 0.99,
    },
}
FACTORS = {
    "steps": [250, 500, 1000, 2000, 4000],
    "batch": {"digits": [16, 32, 64, 128, 256], "sim": [64, 128, 256, 512, 1024]},
    "peak_lr": [1e-4, 3e-4, 1e-3, 3e-3],
    "schedule": ["constant", "cosine"],
    "k": {"digits": [5, 10, 20, 50], "sim": [5, 10, 20, 43, 50]},
    "freeze": [0, 1],
    "input": ["l2", "raw"],
    "momentum": [0.99, 0.996],
}


def _log(msg: str) -> None:
    print(f"[study] {msg}", file=sys.stderr, flush=True)


def prepare(work: Path) -> dict:
    """Write each data set's arrays (x, y, val x, val y, k=50 neighbours) to ``work``; returns sizes."""
    from in21k_bench.features.digits import digits_split
    from in21k_bench.methods.knn import exact_knn

    work.mkdir(parents=True, exist_ok=True)
    info = {}
    for name in ("digits", "sim"):
        if not (work / f"{name}_knn.npy").is_file():
            if name == "digits":
                sp = digits_split()
                (x, y, _), (xv, yv, _) = sp["train"], sp["val"]
            else:
                from in21k_bench.features.simulate import SimParams, simulate_features

                shape = SimParams(dim=64, seed=0, rank=1, separation=4.0, curve=1.5)  # the demo's class shape
                tr, va = simulate_features(
                    "in21k", work / "simstore", scale=0.1, val_scale=0.4, params=shape, progress=False, subtree=DOG
                )
                x, y, xv, yv = tr.to_array(normalize=False), tr.labels, va.to_array(normalize=False), va.labels
            xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            nbrs = exact_knn(np.ascontiguousarray(xn, dtype=np.float32), 50)
            for suffix, arr in (("x", x), ("y", y), ("xv", xv), ("yv", yv), ("knn", nbrs)):
                np.save(work / f"{name}_{suffix}.npy", np.asarray(arr))
        y = np.load(work / f"{name}_y.npy")
        info[name] = {
            "n": int(len(y)),
            "C": int(y.max() + 1),
            "dim": int(np.load(work / f"{name}_x.npy", mmap_mode="r").shape[1]),
        }
    return info


def jobs(datasets: list[str], methods: list[str], seeds: int, info: dict) -> list[dict]:
    out, seen = [], set()
    for ds in datasets:
        for seed in range(seeds):
            out.append({"dataset": ds, "method": "kmeans", "seed": seed, "factor": "reference"})
        for method in methods:
            for factor, values in FACTORS.items():
                vals = values[ds] if isinstance(values, dict) else values
                for v in vals:
                    p = dict(CENTRE[ds], **{factor: v})
                    if p["batch"] > info[ds]["n"]:
                        continue
                    for seed in range(seeds):
                        key = (ds, method, seed, json.dumps(p, sort_keys=True))
                        if key in seen:
                            continue
                        seen.add(key)
                        out.append({"dataset": ds, "method": method, "seed": seed, "factor": factor, **p})
    return out


INPUT_KEYS = ("dataset", "method", "seed", "steps", "batch", "peak_lr", "schedule", "freeze", "input", "k", "momentum")


def job_key(j: dict) -> str:
    return json.dumps({k: j.get(k) for k in INPUT_KEYS}, sort_keys=True)


def run_job(job: dict, work: str, heads: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from in21k_bench.methods.head_training import TrainConfig, fit
    from in21k_bench.methods.kmeans import SphericalKMeans
    from in21k_bench.scoring.metrics import accuracy, dense_matching, nmi

    w = Path(work)
    ds = job["dataset"]
    x, xv, yv = (np.load(w / f"{ds}_{s}.npy") for s in ("x", "xv", "yv"))
    c = int(np.load(w / f"{ds}_y.npy").max() + 1)
    t0 = time.perf_counter()
    out = dict(job)
    if job["method"] == "kmeans":
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):
            top1 = SphericalKMeans(c, niter=50, seed=job["seed"], device="cpu").fit(x).predict(xv)
    else:
        nbrs = np.load(w / f"{ds}_knn.npy")[:, : job["k"]]
        spe = len(x) // job["batch"]
        epochs = max(1, math.ceil(job["steps"] / spe))
        cfg = TrainConfig(
            method=job["method"],
            num_clusters=c,
            num_heads=heads,
            epochs=epochs,
            batch_size=job["batch"],
            knn=job["k"],
            base_lr=job["peak_lr"] * 256 / job["batch"],
            seed=job["seed"],
            lr_schedule=job["schedule"],
            freeze_last_layer_epochs=job["freeze"],
            input_norm=job["input"],
            teacher_momentum=job.get("momentum", 0.996),
        )
        with open(os.devnull, "w") as quiet:
            old, sys.stderr = sys.stderr, quiet
            try:
                res = fit(x, nbrs, cfg, val_features=xv, device="cpu", progress=False)
            finally:
                sys.stderr = old
        top1 = res.top1
        out.update(
            epochs=epochs,
            steps_run=epochs * spe,
            empty_clusters=res.health["chosen_head"]["empty_clusters"],
            loss_tail_ratio=res.health["loss_tail_ratio"],
        )
    m = dense_matching(top1, yv, c, c)
    out.update(
        acc=float(accuracy(top1, yv, m.cluster_to_label)),
        nmi=float(nmi(yv, top1)),
        seconds=round(time.perf_counter() - t0, 1),
    )
    return out


def load_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for r in rows:  # rows written before the momentum factor existed ran at the default 0.996
        if r["method"] != "kmeans":
            r.setdefault("momentum", 0.996)
    return rows


def summarise(rows: list[dict]) -> dict:
    """``{dataset: {method: {factor: [(value, acc mean, acc std, n)]}}}`` plus k-means reference."""
    out: dict = {}
    for ds in sorted({r["dataset"] for r in rows}):
        d = out.setdefault(ds, {})
        km = [r["acc"] for r in rows if r["dataset"] == ds and r["method"] == "kmeans"]
        d["kmeans"] = {"acc_mean": float(np.mean(km)) if km else None, "n": len(km)}
        for method in ("temi", "scanv2"):
            mrows = [r for r in rows if r["dataset"] == ds and r["method"] == method]
            for factor, values in FACTORS.items():
                vals = values[ds] if isinstance(values, dict) else values
                pts = []
                for v in vals:
                    p = dict(CENTRE[ds], **{factor: v})
                    hit = [r["acc"] for r in mrows if all(r.get(k) == p[k] for k in p)]
                    if hit:
                        pts.append(
                            {"value": v, "acc_mean": float(np.mean(hit)), "acc_std": float(np.std(hit)), "n": len(hit)}
                        )
                d.setdefault(method, {})[factor] = pts
    return out


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = ["steps", "batch", "peak_lr", "k", "schedule", "freeze", "input", "momentum"]
    dsets = list(summary)
    # only factors measured at two or more values for some data set (a lone centre point says nothing)
    factors = [
        f for f in order if any(len(summary[ds].get(m, {}).get(f, [])) >= 2 for ds in dsets for m in ("temi", "scanv2"))
    ]
    fig, axes = plt.subplots(len(dsets), len(factors), figsize=(3.0 * len(factors), 2.8 * len(dsets)), squeeze=False)
    for i, ds in enumerate(dsets):
        for j, f in enumerate(factors):
            ax = axes[i][j]
            categorical = f in ("schedule", "input", "freeze", "momentum")
            if f in ("steps", "batch", "peak_lr"):
                ax.set_xscale("log")
            for method, colour in (("temi", "C0"), ("scanv2", "C1")):
                pts = summary[ds].get(method, {}).get(f, [])
                if not pts:
                    continue
                xs = [str(p["value"]) for p in pts] if categorical else [p["value"] for p in pts]
                ax.errorbar(
                    xs,
                    [100 * p["acc_mean"] for p in pts],
                    yerr=[100 * p["acc_std"] for p in pts],
                    marker="o",
                    color=colour,
                    label=method,
                    capsize=2,
                )
                if not categorical:
                    ax.set_xticks([p["value"] for p in pts], [f"{p['value']:g}" for p in pts], fontsize=7)
                    ax.minorticks_off()
            km = summary[ds]["kmeans"]["acc_mean"]
            if km is not None:
                ax.axhline(100 * km, color="grey", ls="--", lw=1, label="k-means")
            ax.set_title(f"{ds}: {f}", fontsize=9)
            if j == 0:
                ax.set_ylabel("val ACC (%)")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("TEMI / SCANv2 sensitivity (one factor at a time; 'sim' = SYNTHETIC features)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/budget_study.jsonl"))
    ap.add_argument("--work", type=Path, default=None, help="Data folder (default: <out>.data/).")
    ap.add_argument("--datasets", default="digits,sim")
    ap.add_argument("--methods", default="temi,scanv2")
    ap.add_argument("--factors", default=",".join(FACTORS), help="Subset of factors to run.")
    ap.add_argument(
        "--only",
        default=None,
        help="Run only these points, in this order: 'method:factor=value;...' (e.g. 'temi:steps=4000;scanv2:k=50').",
    )
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--plot", type=Path, default=None, help="Only summarise the results file and write this PNG.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.plot is None:
        work = args.work or args.out.with_suffix(".data")
        info = prepare(work)
        _log(f"data: {info}")
        done = {job_key(r) for r in load_rows(args.out)}
        factors = set(args.factors.split(","))
        todo = [
            j
            for j in jobs(args.datasets.split(","), args.methods.split(","), args.seeds, info)
            if (j["factor"] in factors or j["method"] == "kmeans") and job_key(j) not in done
        ]
        if args.only:
            want = []
            for item in args.only.split(";"):
                method, fv = item.split(":")
                f, v = fv.split("=")
                want.append((method, f, v))

            def rank(j):
                for i, (m, f, v) in enumerate(want):
                    if (
                        j["method"] == m
                        and str(j.get(f)) == v
                        and all(j.get(g) == CENTRE[j["dataset"]][g] for g in CENTRE[j["dataset"]] if g != f)
                    ):
                        return i
                return None

            todo = sorted(
                (
                    j
                    for j in jobs(args.datasets.split(","), args.methods.split(","), args.seeds, info)
                    if j["method"] == "kmeans" or rank(j) is not None
                ),
                key=lambda j: -1 if j["method"] == "kmeans" else rank(j),
            )
            todo = [j for j in todo if job_key(j) not in done]
        # the centre point is in every factor's list: run it once
        _log(f"{len(todo)} runs to do on {args.workers} worker(s)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with concurrent.futures.ProcessPoolExecutor(args.workers) as pool, open(args.out, "a") as fh:
            futs = {pool.submit(run_job, j, str(work), args.heads): j for j in todo}
            for fut in concurrent.futures.as_completed(futs):
                r = fut.result()
                fh.write(json.dumps(r) + "\n")
                fh.flush()
                _log(f"{r['dataset']} {r['method']} {r['factor']}: ACC {r['acc']:.4f} ({r['seconds']}s)")
    summary = summarise(load_rows(args.out))
    if args.plot is not None:
        plot(summary, args.plot)
    if args.json or args.plot is None:
        print(json.dumps(summary, indent=1))
    else:
        for ds, d in summary.items():
            print(f"{ds}: k-means ACC {d['kmeans']['acc_mean']}")
            for method in ("temi", "scanv2"):
                for f, pts in d.get(method, {}).items():
                    print(f"  {method:7s} {f:9s} " + "  ".join(f"{p['value']}: {100 * p['acc_mean']:.1f}" for p in pts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
