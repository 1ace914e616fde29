"""Benchmark: the image and kNN jobs under ``torchrun --nproc_per_node=2`` vs one process, on CPU.

    python benchmarks/scale.py                 # all three jobs (about 2-3 min on an idle 2-core machine)
    python benchmarks/scale.py --jobs extract  # one job

Each job runs the same ``in21k-bench`` command twice, back to back, with ONE thread per process
(``OMP_NUM_THREADS=1``, ``--workers 0`` / ``--num-workers 0``): first as one process, then as
``torchrun --standalone --nproc_per_node=2 --no-python in21k-bench ...`` (gloo). Wall time of the
whole command is measured (process start, model load, assembly included: what a user waits for).
Then the outputs are compared:

* ``features extract``: 1,024 real small images (scikit-learn digits upscaled to 64 px JPEGs, 16
  class folders), random-init ``timm:resnet18`` at 128 px, 16 shards of 64 rows; the two stores must
  have the same ids, order, labels and shard layout, values within float16 rounding;
* ``knn``: 64,000 x 256 random unit rows (a store written in-process), k = 50, chunks of 4,096; the
  neighbour files must be identical;
* ``relabel --mode leaf-hzr``: the same 1,024 images in 16 winter21 class folders (the grasshopper
  and toothed-whale subtrees), the random-weight open_clip ``in21k-test-small`` (a 6-layer ViT, 64 px,
about 0.5 GMAC per image), chunks of 64; the manifests
  must be identical.

Prints one line per job: wall seconds for 1 and 2 processes, the ratio (target >= 1.3x), and the CPU
seconds each run used (all its processes: the torchrun agent and ranks included), plus the machine's
load average before and after. On a busy machine the wall ratio says little (two processes get no
more cores than one when others compete for them); equal CPU seconds then show that the split itself
costs nothing but the extra start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "in21k-bench")


def _env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
        TQDM_DISABLE="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    return env


CPU: dict[str, float] = {}  # CPU seconds (user + system) of the last run's process tree, by label


def timed(args: list[str], nproc: int, label: str = "") -> float:
    """Wall seconds of the whole command; its CPU seconds go to ``CPU[label]``."""
    import resource

    cmd = (
        [CLI, *args]
        if nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "--no-python",
            CLI,
            *args,
        ]
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    dt = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[label] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if r.returncode != 0:
        sys.exit(f"command failed ({' '.join(cmd)}):\n{r.stderr[-3000:]}")
    return dt


SIZES = {"image_size": 128, "knn_rows": 64_000}


def bench_extract(work: Path) -> tuple[float, float, str]:
    from in21k_bench.features.digits import write_digit_images
    from in21k_bench.features.store import FeatureStore

    img = work / "digits"
    write_digit_images(img, 64, classes=[f"c{j:02d}" for j in range(16)], splits=("train",), size=64)
    base = [
        "features",
        "extract",
        "--images",
        str(img),
        "--split",
        "train",
        "--backbone",
        "timm:resnet18",
        "--random-init",
        "--image-size",
        str(SIZES["image_size"]),
        "--workers",
        "0",
        "--batch-size",
        "32",
        "--shard-rows",
        "64",
        "--device",
        "cpu",
    ]
    t1 = timed([*base, "--out", str(work / "ext1")], 1, "extract-1")
    t2 = timed([*base, "--out", str(work / "ext2")], 2, "extract-2")
    a, b = (
        FeatureStore.open(work / "ext1" / "train", verify=True),
        FeatureStore.open(work / "ext2" / "train", verify=True),
    )
    assert a.num_rows == b.num_rows == 1024 and list(a.sample_ids) == list(b.sample_ids)
    assert np.array_equal(a.labels, b.labels) and [s["rows"] for s in a.meta["shards"]] == [
        s["rows"] for s in b.meta["shards"]
    ]
    xa, xb = a.to_array(normalize=False), b.to_array(normalize=False)
    rel = float(np.max(np.abs(xa - xb) / np.maximum(np.abs(xa), 1e-3)))
    same = np.allclose(xa, xb, rtol=2e-3, atol=2e-3)
    return (
        t1,
        t2,
        f"same ids/order/labels/shards; values {'within' if same else 'NOT within'} fp16 rounding (max rel diff "
        f"{rel:.1e})",
    )


def bench_knn(work: Path) -> tuple[float, float, str]:
    from in21k_bench.features.store import write_store

    x = np.random.default_rng(0).normal(size=(SIZES["knn_rows"], 256)).astype(np.float32)
    write_store(work / "rand" / "train", x, backbone="random", shard_rows=8192)
    base = ["knn", "--features", str(work / "rand"), "--k", "50", "--chunk-rows", "4096", "--device", "cpu"]
    t1 = timed([*base, "--out", str(work / "knn1.npy")], 1, "knn-1")
    t2 = timed([*base, "--out", str(work / "knn2.npy")], 2, "knn-2")
    same = np.array_equal(np.load(work / "knn1.npy"), np.load(work / "knn2.npy"))
    return t1, t2, f"neighbour files {'identical' if same else 'DIFFER'}"


def bench_relabel(work: Path) -> tuple[float, float, str]:
    import pandas as pd

    from in21k_bench.features.digits import write_digit_images
    from in21k_bench.registry.taxonomy import load_taxonomy

    tax = load_taxonomy()
    classes = []
    for top in (1731, 1348):  # grasshopper, toothed whale: non-leaf classes with subtrees
        classes += [top, *tax.descendants(top).tolist()]
    wnids = [tax.wnids[c] for c in sorted(classes)[:16]]
    img = work / "hzr"
    write_digit_images(img, 64, classes=wnids, splits=("train",), size=64)
    base = [
        "relabel",
        "--mode",
        "leaf-hzr",
        "--root",
        str(img),
        "--splits",
        "train",
        "--model",
        "in21k-test-small",
        "--device",
        "cpu",
        "--num-workers",
        "0",
        "--batch-size",
        "32",
        "--chunk-rows",
        "64",
    ]
    t1 = timed([*base, "--out", str(work / "r1.parquet"), "--cache-dir", str(work / "cache1")], 1, "relabel-1")
    t2 = timed([*base, "--out", str(work / "r2.parquet"), "--cache-dir", str(work / "cache2")], 2, "relabel-2")
    a, b = pd.read_parquet(work / "r1.parquet"), pd.read_parquet(work / "r2.parquet")
    same = a.equals(b)
    return t1, t2, f"{len(a):,} samples; manifests {'identical' if same else 'DIFFER'}"


JOBS = {"extract": bench_extract, "knn": bench_knn, "relabel": bench_relabel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", default="extract,knn,relabel", help="Comma-separated: extract, knn, relabel.")
    ap.add_argument("--json", action="store_true", help="Also print the results as JSON.")
    ap.add_argument(
        "--image-size",
        type=int,
        default=SIZES["image_size"],
        help="Input size of the extract job's resnet18 (its work per image).",
    )
    ap.add_argument("--knn-rows", type=int, default=SIZES["knn_rows"], help="Rows of the knn job's store.")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    SIZES.update(image_size=args.image_size, knn_rows=args.knn_rows)
    load0 = os.getloadavg()
    print(
        f"cpus: {os.cpu_count()}; load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}; one thread per "
        f"process; extract at {SIZES['image_size']} px, knn over {SIZES['knn_rows']:,} rows"
    )
    print(f"{'job':<9} {'1 process':>10} {'2 processes':>12} {'ratio':>7} {'CPU s 1 / 2':>13}  check")
    results = {}
    work = Path(tempfile.mkdtemp(prefix="in21k-scale-"))
    try:
        for j in jobs:
            t1, t2, check = JOBS[j](work / j)
            c1, c2 = CPU[f"{j}-1"], CPU[f"{j}-2"]
            results[j] = {
                "one_process_s": round(t1, 2),
                "two_processes_s": round(t2, 2),
                "ratio": round(t1 / t2, 2),
                "cpu_one_s": round(c1, 1),
                "cpu_two_s": round(c2, 1),
                "check": check,
            }
            print(f"{j:<9} {t1:>9.1f}s {t2:>11.1f}s {t1 / t2:>6.2f}x {c1:>6.0f} / {c2:<6.0f}  {check}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    if args.json:
        print(json.dumps({"load_before": load0, "load_after": load1, "jobs": results}, indent=2))


if __name__ == "__main__":
    main()
