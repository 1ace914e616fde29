"""TEMI and SCANv2 vs spherical k-means on scikit-learn's digits with DEFAULT settings.

Exactly what ``in21k-bench fit kmeans|temi|scanv2 --features DIGITS --num-clusters 10 --seed S``
does (``in21k_bench.methods.fit.fit_features`` / ``kmeans.run_kmeans``, nothing else set), on the
digits features directory of ``in21k_bench.features.digits`` (1,442 train / 355 val real 8x8 images,
64 raw pixel values). Scored on val with the package's Hungarian-matched ACC and NMI; seeds 0..S-1;
the settings each run used (``regime`` and the effective batch / epochs / steps / lr / k) are printed.

    python benchmarks/digits_methods.py [--seeds 3] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(method: str, seed: int, feats: str, work: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from in21k_bench.features.store import open_features
    from in21k_bench.methods.fit import fit_features
    from in21k_bench.methods.kmeans import run_kmeans
    from in21k_bench.scoring.metrics import accuracy, dense_matching, nmi

    out = Path(work) / f"{method}-{seed}"
    t0 = time.perf_counter()
    train, val = open_features(feats)
    info: dict = {}
    with contextlib.redirect_stderr(io.StringIO()) as err:
        if method == "kmeans":
            run_kmeans(train, val, 10, out, seed=seed, device="cpu")
            top1 = np.load(out / "top1.npy", allow_pickle=False)
        else:
            run = fit_features(method, feats, out, num_clusters=10, seed=seed, device="cpu", progress=False)
            top1 = run.result.top1
            s = run.summary()
            info = {
                k: s[k]
                for k in (
                    "regime",
                    "batch_size",
                    "epochs",
                    "total_steps",
                    "peak_lr",
                    "lr_schedule",
                    "knn",
                    "num_heads",
                    "empty_clusters",
                    "warnings",
                )
            }
    y = np.asarray(val.labels)
    m = dense_matching(top1, y, 10, 10)
    return {
        "method": method,
        "seed": seed,
        "acc": float(accuracy(top1, y, m.cluster_to_label)),
        "nmi": float(nmi(y, top1)),
        "seconds": round(time.perf_counter() - t0, 1),
        **info,
        "warnings_logged": [line for line in err.getvalue().splitlines() if "warning" in line],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed-list", default=None, help="Comma-separated seeds (instead of 0..seeds-1).")
    ap.add_argument("--methods", default="kmeans,temi,scanv2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--work", type=Path, default=None, help="Folder for the features and runs (default: a temporary one)."
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    from in21k_bench.features.digits import write_digits

    tmp = tempfile.TemporaryDirectory() if args.work is None else None
    work = Path(tmp.name) if tmp else args.work
    feats = work / "digits"
    if not (feats / "val").is_dir():
        write_digits(feats)
    seeds = [int(v) for v in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    jobs = [(m, s) for m in args.methods.split(",") for s in seeds]
    # mine the default neighbour file once, before the parallel runs (they would race to write it)
    from in21k_bench.features.store import open_features
    from in21k_bench.methods.fit import find_neighbors
    from in21k_bench.methods.knn import mine_knn
    from in21k_bench.methods.recipe import default_config

    train, _ = open_features(feats)
    for m in {m for m, _ in jobs if m != "kmeans"}:
        k = default_config(m, train.num_rows, 10).config.knn
        path, exists = find_neighbors(train, k)
        if not exists:
            mine_knn(train, k, path, device="cpu")
    results: dict[str, list[dict]] = {}
    with concurrent.futures.ProcessPoolExecutor(args.workers) as pool:
        futs = [pool.submit(run_one, m, s, str(feats), str(work)) for m, s in jobs]
        for f in concurrent.futures.as_completed(futs):
            r = f.result()
            results.setdefault(r["method"], []).append(r)
            print(
                f"{r['method']} seed {r['seed']}: ACC {r['acc']:.4f} NMI {r['nmi']:.4f} ({r['seconds']}s) "
                + (
                    f"[{r['regime']}: batch {r['batch_size']}, {r['total_steps']} steps, peak lr {r['peak_lr']:g} "
                    f"{r['lr_schedule']}, k {r['knn']}, {r['num_heads']} heads]"
                    if "regime" in r
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
    summary = {
        m: {
            "acc_mean": float(np.mean([r["acc"] for r in rs])),
            "acc_std": float(np.std([r["acc"] for r in rs])),
            "nmi_mean": float(np.mean([r["nmi"] for r in rs])),
            "nmi_std": float(np.std([r["nmi"] for r in rs])),
            "runs": sorted(rs, key=lambda r: r["seed"]),
        }
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
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
