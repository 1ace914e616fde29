"""Evaluator at full ImageNet-21K val scale: sparse exact matching vs a dense-assignment evaluator.

Builds realistic top-5 predictions for the ``in21k`` benchmark (522,500 val samples, C = K = 10,450;
label sets = label + MIIL ancestors from the real taxonomy), writes them to a .npy, then scores the file
in two fresh subprocesses, one after the other:

- ours:  ``in21k_bench.evaluate(file, "in21k")`` (sparse contingency, exact forced-pair reduction +
  LAPJVsp on the remainder, label-set membership looked up in the C x C label -> ancestor matrix),
- dense: the same metrics, but the C x K contingency table is a dense array solved with
  ``scipy.optimize.linear_sum_assignment`` and NMI/ARI come from scikit-learn (a typical evaluator).

Each subprocess reports its wall time from "file on disk" to "all metrics" (both sides: benchmark loading,
label sets and reading the .npy included; ours also validates the file and hashes it, the dense side does
not), the time of the matching step alone (sparse: contingency + matching, timed in a second call after
the end-to-end run; dense: C x K table + assignment, inside its run),
and its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). The parent prints both side by side
and the speed ratio, and checks that ACC is identical.

Each evaluator runs ``--repeats`` times (default 3, ours and dense interleaved); the table shows the
median times and the largest peak RSS, the per-run times go to stderr.

    python benchmarks/evaluate_scale.py [--benchmark in21k] [--seed 0] [--moved 0.6] [--repeats 3] [--skip-dense]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def make_predictions(bench, seed: int, moved_frac: float = 0.6) -> np.ndarray:
    """Top-5 clusters per val sample, shaped like the output of a real clustering method: a
    hidden permutation maps labels to clusters, with merges, splits and semantic confusions (a sibling,
    else the parent). Ranks 2..5 hold the label's own cluster (60% of the time), a neighbour's cluster and
    random clusters, all distinct."""
    rng = np.random.default_rng(seed)
    labels = bench.val_labels()
    n, C = len(labels), bench.num_classes
    perm = rng.permutation(C)
    # semantic neighbour of each label: a random sibling (child of the same parent), else the parent
    tax = bench.taxonomy
    cls_idx = tax.indices(bench.classes["wnid"].to_numpy(dtype=object)) if C != tax.num_classes else np.arange(C)
    label_of = np.full(tax.num_classes, -1, dtype=np.int64)
    label_of[cls_idx] = np.arange(C)
    parent = label_of[np.where(tax.parent[cls_idx] >= 0, tax.parent[cls_idx], 0)]
    parent[tax.parent[cls_idx] < 0] = -1
    order = np.argsort(parent, kind="stable")
    sp_ = parent[order]
    starts = np.searchsorted(sp_, parent, side="left")
    ends = np.searchsorted(sp_, parent, side="right")

    def neighbour(lab: np.ndarray) -> np.ndarray:
        p = parent[lab]
        has = p >= 0
        s, e = starts[lab], ends[lab]
        pick = order[np.minimum(s + (rng.random(len(lab)) * (e - s)).astype(np.int64), e - 1)]
        out = np.where(has & (pick != lab), pick, np.where(has, p, rng.integers(0, C, len(lab))))
        return out

    # cluster structure of a real clustering: 20% of labels share the cluster of a semantic neighbour
    # (merges), 20% of labels have half of their samples in a second cluster (splits; the clusters freed
    # by merges are reused); a fraction `moved_frac` of samples is then moved to a neighbour's cluster
    # (half of them) or a random one.
    lab2clu = perm.copy()
    merge = rng.random(C) < 0.2
    lab2clu[merge] = perm[neighbour(np.flatnonzero(merge))]
    free = perm[merge]
    top1 = lab2clu[labels]
    split_label = rng.random(C) < 0.2
    split = split_label[labels] & (rng.random(n) < 0.5)
    top1[split] = free[labels[split] % len(free)] if len(free) else rng.integers(0, C, split.sum())
    wrong = rng.random(n) < moved_frac
    moved = np.where(rng.random(n) < 0.5, perm[neighbour(labels)], rng.integers(0, C, n))
    top1[wrong] = moved[wrong]
    cand = np.stack(
        [top1, np.where(rng.random(n) < 0.6, perm[labels], rng.integers(0, C, n)), perm[neighbour(labels)]]
        + [rng.integers(0, C, n) for _ in range(5)],
        axis=1,
    )
    top5 = np.full((n, 5), -1, dtype=np.int64)
    filled = np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    for j in range(cand.shape[1]):
        c = cand[:, j]
        new = (filled < 5) & ~(top5 == c[:, None]).any(axis=1)
        top5[rows[new], filled[new]] = c[new]
        filled += new
    assert (filled == 5).all(), "not enough distinct candidates"
    return top5


# --------------------------------------------------------------------------------------------------
# the two evaluators (each runs in its own subprocess)


def run_ours(path: str, benchmark: str) -> dict:
    from in21k_bench.evaluation.evaluator import evaluate

    base = peak_rss_mb()
    t = time.perf_counter()
    r = evaluate(path, benchmark, progress=False)
    dt = time.perf_counter() - t
    from in21k_bench import load
    from in21k_bench.scoring.metrics import match_clusters

    b = load(benchmark)
    top1 = np.load(path, allow_pickle=False)[:, 0]
    t = time.perf_counter()
    match_clusters(top1, b.val_labels(), b.num_classes, max(b.num_classes, int(top1.max()) + 1))
    tm = time.perf_counter() - t
    return {
        "seconds": dt,
        "matching_seconds": tm,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_import_mb": base,
        "acc": r.acc,
        "top1_L": r.top1_L,
        "top5_1": r.top5_1,
        "top5_L": r.top5_L,
        "nmi": r.nmi,
        "ari": r.ari,
    }


def run_dense(path: str, benchmark: str) -> dict:
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import in21k_bench

    base = peak_rss_mb()
    t = time.perf_counter()
    b = in21k_bench.load(benchmark)
    top5 = np.load(path, allow_pickle=False)
    top1 = top5[:, 0]
    labels = b.val_labels()
    S = b.label_sets().tocsr()
    C = b.num_classes
    K = max(C, int(top5.max()) + 1)
    tm = time.perf_counter()
    table = np.zeros((C, K), dtype=np.float64)
    np.add.at(table, (labels, top1), 1.0)
    ri, ci = linear_sum_assignment(table, maximize=True)
    tm = time.perf_counter() - tm
    f = np.full(K, -1, dtype=np.int64)
    f[ci] = ri
    mapped = f[top5]
    n = len(labels)
    acc = float(table[ri, ci].sum() / n)
    in_set = lambda m: np.asarray(S[np.arange(n), np.maximum(m, 0)]).ravel().astype(bool) & (m >= 0)  # noqa: E731
    res = {
        "acc": acc,
        "top1_L": float(in_set(mapped[:, 0]).mean()),
        "top5_1": float((mapped == labels[:, None]).any(axis=1).mean()),
        "top5_L": float(np.any([in_set(mapped[:, j]) for j in range(5)], axis=0).mean()),
        "nmi": float(normalized_mutual_info_score(labels, top1)),
        "ari": float(adjusted_rand_score(labels, top1)),
    }
    dt = time.perf_counter() - t
    return {"seconds": dt, "matching_seconds": tm, "peak_rss_mb": peak_rss_mb(), "rss_after_import_mb": base, **res}


def _median_run(rs: list[dict]) -> dict:
    """Median wall time and matching time over fresh-process runs; peak memory = the largest of them."""
    out = dict(rs[0])
    for key in ("seconds", "matching_seconds"):
        out[key] = float(np.median([r[key] for r in rs]))
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
    return out


def child(mode: str, path: str, benchmark: str) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--preds", path, "--benchmark", benchmark]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--benchmark", default="in21k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--moved",
        type=float,
        default=0.6,
        help="fraction of samples moved to a neighbour's or a random cluster (0.6 -> ACC ~ 30%%)",
    )
    ap.add_argument("--skip-dense", action="store_true", help="only time the sparse evaluator")
    ap.add_argument("--repeats", type=int, default=3, help="fresh-process runs per evaluator (median reported)")
    ap.add_argument("--child", choices=["ours", "dense"], help=argparse.SUPPRESS)
    ap.add_argument("--preds", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = run_ours if args.child == "ours" else run_dense
        print(json.dumps(fn(args.preds, args.benchmark)))
        return

    import in21k_bench
    from in21k_bench.fileio import save_npy

    bench = in21k_bench.load(args.benchmark)
    t = time.perf_counter()
    top5 = make_predictions(bench, args.seed, args.moved)
    print(
        f"benchmark {bench.name} {bench.version}: N={len(top5):,} C={bench.num_classes:,} top-5 predictions built in "
        f"{time.perf_counter() - t:.1f}s",
        file=sys.stderr,
    )
    runs: dict[str, list[dict]] = {"ours": [], "dense": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "top5.npy")
        save_npy(path, top5)
        for _ in range(args.repeats):  # interleaved, so both sides see the same machine load
            runs["ours"].append(child("ours", path, bench.name))
            if not args.skip_dense:
                runs["dense"].append(child("dense", path, bench.name))
    for name, rs in runs.items():
        if rs:
            print(f"{name}: end-to-end seconds per run {[round(r['seconds'], 3) for r in rs]}", file=sys.stderr)
    ours = _median_run(runs["ours"])
    dense = _median_run(runs["dense"]) if runs["dense"] else None
    rows = [("ours (sparse, exact)", ours)] + ([("dense linear_sum_assignment", dense)] if dense else [])
    print(
        f"{'evaluator':<30}{'seconds':>9}{'matching':>10}{'peak RSS MB':>13}{'(after import)':>16}{'ACC':>10}"
        f"{'top1->L':>9}{'top5->1':>9}{'top5->L':>9}{'NMI':>8}{'ARI':>8}"
    )
    for name, r in rows:
        print(
            f"{name:<30}{r['seconds']:>9.2f}{r['matching_seconds']:>10.2f}{r['peak_rss_mb']:>13.0f}{r['rss_after_import_mb']:>16.0f}{r['acc']:>10.5f}{r['top1_L']:>9.5f}{r['top5_1']:>9.5f}{r['top5_L']:>9.5f}{r['nmi']:>8.4f}{r['ari']:>8.4f}"
        )
    if dense:
        same = len({r["acc"] for r in runs["ours"] + runs["dense"]}) == 1  # every run, both sides
        print(
            f"speed-up end to end (medians of {args.repeats}): {dense['seconds'] / ours['seconds']:.1f}x   matching "
            f"step: {dense['matching_seconds'] / ours['matching_seconds']:.1f}x   ACC identical: {same}   peak memory "
            f"ours: {ours['peak_rss_mb']:.0f} MB (< 1024: {ours['peak_rss_mb'] < 1024})"
        )
        if not same:
            raise SystemExit("ACC differs between the sparse and the dense evaluator")


if __name__ == "__main__":
    main()
