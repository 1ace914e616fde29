"""Benchmark: our exact kNN vs raw faiss.IndexFlatIP on the same data.

    python benchmarks/knn.py                    # N=200,000  D=256  k=50
    python benchmarks/knn.py --n 50000          # quicker

Ours: ``exact_knn(x, k)`` (query chunks of 65,536 rows, k + 1 neighbours, self dropped by index). Raw:
``IndexFlatIP`` with every row added, one ``search(x, k + 1)`` call, then the first column dropped (the
usual -- leaky -- recipe). Same normalised array, same process. Neighbour lists must agree wherever
the raw recipe's first column is the row itself.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from kmeans import make_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import faiss

    from in21k_bench.methods.knn import exact_knn

    x = make_data(args.n, args.d)
    print(f"data: N={args.n:,} D={args.d} k={args.k}; faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    ours_t, raw_t = [], []
    for r in range(args.repeat):

        def run_ours():
            t = time.perf_counter()
            res = exact_knn(x, args.k, device="cpu")
            ours_t.append(time.perf_counter() - t)
            return res

        def run_raw():
            t = time.perf_counter()
            index = faiss.IndexFlatIP(args.d)
            index.add(x)
            _, res = index.search(x, args.k + 1)
            raw_t.append(time.perf_counter() - t)
            return res

        if r % 2 == 0:  # alternate the order: the shared machine drifts
            ours, raw = run_ours(), run_raw()
        else:
            raw, ours = run_raw(), run_ours()
        self_first = raw[:, 0] == np.arange(args.n)
        agree = (ours[self_first] == raw[self_first, 1:]).mean()
        leaks = int((raw[:, 1:] == np.arange(args.n)[:, None]).any(axis=1).sum())
        print(
            f"run {r}: ours {ours_t[-1]:.2f}s  faiss {raw_t[-1]:.2f}s  identical lists {agree:.6f} "
            f"(rows with self first: {self_first.mean():.6f}); self-pairs left by the raw recipe: {leaks}; by ours: "
            f"{int((ours == np.arange(args.n)[:, None]).any(axis=1).sum())}"
        )
    o, f = min(ours_t), min(raw_t)
    print(
        f"\nbest of {args.repeat}: ours {o:.2f}s  raw IndexFlatIP {f:.2f}s  ratio ours/faiss = {o / f:.3f}x (target <= "
        "1.15x)"
    )


if __name__ == "__main__":
    main()
