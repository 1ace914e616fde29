"""Benchmark: our spherical k-means vs raw faiss.Kmeans (and scikit-learn KMeans) on the same data.

    python benchmarks/kmeans.py                      # N=200,000  D=256  K=1,000  20 iterations
    python benchmarks/kmeans.py --n 20000 --k 100    # quicker

Data: Gaussian mixture (2,000 components) in D dims, L2-normalised, fixed seed. Ours is
``SphericalKMeans(K, niter, seed).fit(x)`` (normalises and fits on every row); the baseline is
``faiss.Kmeans(d, K, niter, seed, spherical=True, max_points_per_centroid=<no subsampling>)`` on the
same normalised array, same process, alternating runs. The objectives must be identical. scikit-learn
``KMeans(n_init=1, max_iter=niter, tol=0, init="random")`` (Euclidean Lloyd on the normalised rows) is
the common alternative; its quality is reported as the mean cosine to its re-normalised centroids.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(2000, d)).astype(np.float32)
    x = centers[rng.integers(0, 2000, n)] + 0.8 * rng.normal(size=(n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--k", type=int, default=1_000)
    ap.add_argument("--niter", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args()

    import faiss

    from in21k_bench.methods.kmeans import SphericalKMeans

    x = make_data(args.n, args.d)
    print(
        f"data: N={args.n:,} D={args.d} K={args.k:,} niter={args.niter}; faiss {faiss.__version__}, "
        f"{faiss.omp_get_max_threads()} threads"
    )
    ours_t, raw_t = [], []
    for r in range(args.repeat):
        t = time.perf_counter()
        km = SphericalKMeans(args.k, niter=args.niter, seed=r, device="cpu").fit(x)
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw = faiss.Kmeans(
            args.d, args.k, niter=args.niter, seed=r, spherical=True, max_points_per_centroid=args.n // args.k + 2
        )
        raw.train(x)
        raw_t.append(time.perf_counter() - t)
        same = abs(km.objective - float(raw.obj[-1])) <= 1e-6 * abs(km.objective)
        dc = float(np.abs(km.centroids - raw.centroids).max())
        print(
            f"run {r}: ours {ours_t[-1]:.2f}s  faiss {raw_t[-1]:.2f}s  objective ours {km.objective:.4f} faiss "
            f"{float(raw.obj[-1]):.4f}  "
            f"same objective (rel 1e-6)={same}  max centroid diff {dc:.1e} (multithreaded float sums)"
        )
        if not same:
            raise SystemExit("objectives differ")
    o, f = min(ours_t), min(raw_t)
    print(
        f"\nbest of {args.repeat}: ours {o:.2f}s  raw faiss.Kmeans {f:.2f}s  ratio ours/faiss = {o / f:.3f}x (target "
        "<= 1.15x)"
    )
    print(f"mean cosine to centroid: {km.objective / args.n:.4f}")
    if not args.no_sklearn:
        from sklearn.cluster import KMeans

        t = time.perf_counter()
        sk = KMeans(
            n_clusters=args.k, n_init=1, max_iter=args.niter, tol=0.0, init="random", algorithm="lloyd", random_state=0
        ).fit(x)
        ts = time.perf_counter() - t
        c = sk.cluster_centers_ / np.linalg.norm(sk.cluster_centers_, axis=1, keepdims=True)
        cos = float(np.einsum("ij,ij->i", x, c[sk.labels_]).mean())
        print(
            f"scikit-learn KMeans(n_init=1, max_iter={args.niter}): {ts:.2f}s  ratio sklearn/faiss = {ts / f:.2f}x  "
            f"mean cosine {cos:.4f}"
        )


if __name__ == "__main__":
    main()
