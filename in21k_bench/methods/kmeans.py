"""Spherical (cosine) k-means with faiss (docs/features.md, "Spherical k-means").

Features are L2-normalised; faiss ``Clustering`` runs with ``spherical=True`` so the centroids are
re-normalised after every iteration, and assignment uses an exact inner-product index
(``IndexFlatIP``; on all visible GPUs with ``device="cuda"``).

The training sample is explicit. faiss silently subsamples to ``max_points_per_centroid`` (256 by
default) x K points; here ``max_points_per_centroid`` is set so that faiss uses exactly the rows it is
given, and the rows are chosen by ``train_size``: ``"all"`` (default) or a number of rows drawn
uniformly without replacement with the run's seed (logged and recorded in ``run.json``);
``max_points_per_centroid=M`` (faiss's knob) is accepted as ``train_size = M x K``. Training
rows are held in RAM as float32 (4 x rows x dim bytes; ImageNet-21K at D = 1024 needs 45 GB for
"all" -- pass ``train_size`` to bound it). Assignment (``predict_topk``) streams a store in chunks.

``objective`` is faiss's: the sum over training rows of the cosine to the assigned centroid at the
last assignment step of the kept run (larger is better; ``nredo`` keeps the best run).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..evaluation.predictions import TOP1_FILE, TOPK_FILE, write_predictions
from ..features.store import FeatureStore, l2_normalize
from ..fileio import check_output_dir, ensure_dir, save_npy
from .knn import flat_ip_index, resolve_device

DEFAULT_CHUNK_ROWS = 65_536


def _log(msg: str) -> None:
    print(f"kmeans: {msg}", file=sys.stderr, flush=True)


def _num_rows(data) -> int:
    return data.num_rows if isinstance(data, FeatureStore) else int(np.asarray(data).shape[0])


class SphericalKMeans:
    """Spherical k-means on L2-normalised rows.

    ``fit(x_or_store)`` then ``predict_topk(x_or_store, k=5)`` -> ``(top1, topk)``. After ``fit``:
    ``centroids`` (K, D) float32 unit rows, ``objective``, ``train_rows`` (indices used, or None for all),
    ``iteration_objectives`` (per iteration, all redos).
    """

    def __init__(
        self,
        num_clusters: int,
        niter: int = 20,
        nredo: int = 1,
        seed: int = 0,
        train_size: int | str | None = "all",
        device: str = "auto",
        verbose: bool = False,
        max_points_per_centroid: int | None = None,
    ):
        if num_clusters < 1:
            raise InvalidInputError(f"kmeans: expected num_clusters >= 1, found {num_clusters}")
        if int(seed) < 0:
            raise InvalidInputError(f"kmeans: expected seed >= 0, found {seed}")
        if niter < 1 or nredo < 1:
            raise InvalidInputError(f"kmeans: expected niter >= 1 and nredo >= 1, found niter={niter}, nredo={nredo}")
        if train_size is None or (isinstance(train_size, str) and train_size.lower() == "all"):
            train_size = "all"
        else:
            try:
                train_size = int(train_size)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"kmeans: expected train_size 'all' or a positive integer, found {train_size!r}"
                ) from None
            if train_size < 1:
                raise InvalidInputError(f"kmeans: expected train_size 'all' or a positive integer, found {train_size}")
        if max_points_per_centroid is not None:
            if int(max_points_per_centroid) < 1:
                raise InvalidInputError(
                    f"kmeans: expected max_points_per_centroid >= 1, found {max_points_per_centroid}"
                )
            if train_size == "all":  # faiss's knob, made explicit: a seeded uniform sample of K x this many rows
                train_size = int(max_points_per_centroid) * int(num_clusters)
        self.max_points_per_centroid = max_points_per_centroid
        self.num_clusters = int(num_clusters)
        self.niter = int(niter)
        self.nredo = int(nredo)
        self.seed = int(seed)
        self.train_size = train_size
        self.device = resolve_device(device)
        self.verbose = verbose
        self.centroids: np.ndarray | None = None
        self.objective: float | None = None
        self.iteration_objectives: list[float] = []
        self.train_rows: np.ndarray | None = None
        self.num_train_rows: int | None = None
        self.fit_seconds: float | None = None

    # --------------------------------------------------------------------------------------------
    def _training_matrix(self, data) -> np.ndarray:
        n = _num_rows(data)
        if self.train_size == "all" or self.train_size >= n:
            self.train_rows = None
            rows = n
        else:
            rng = np.random.default_rng(self.seed)
            self.train_rows = np.sort(rng.choice(n, size=self.train_size, replace=False))
            rows = self.train_size
        self.num_train_rows = rows
        if rows < self.num_clusters:
            hint = " (raise --train-size)" if self.train_rows is not None else ""
            raise InvalidInputError(
                f"kmeans: expected at least K={self.num_clusters} training rows{hint}, found {rows}"
            )
        dim = data.dim if isinstance(data, FeatureStore) else np.asarray(data).shape[1]
        _log(
            f"training on {rows:,} of {n:,} rows "
            f"({'all' if self.train_rows is None else f'uniform sample, seed {self.seed}'}; "
            f"{rows * dim * 4 / 2**30:.2f} GiB float32), K={self.num_clusters}, niter={self.niter}, "
            f"nredo={self.nredo}, device={self.device}"
        )
        if isinstance(data, FeatureStore):
            return (
                data.to_array(normalize=True) if self.train_rows is None else data.take(self.train_rows, normalize=True)
            )
        x = np.asarray(data)
        if x.ndim != 2:
            raise InvalidInputError(f"kmeans: expected a 2-D feature array, found shape {x.shape}")
        x = x if self.train_rows is None else x[self.train_rows]
        return l2_normalize(x)

    def fit(self, data, init_centroids: np.ndarray | None = None, progress: bool | None = None) -> "SphericalKMeans":
        """Fit on an array (normalised here) or a :class:`FeatureStore`.

        ``progress`` (default on): a bar over the iterations on stderr. With ``nredo == 1`` faiss is
        driven one iteration at a time (each call continues from the previous centroids: the same
        assignment / update / re-normalisation sequence as one call with ``niter`` iterations); with
        ``nredo > 1`` faiss runs all iterations in one call and the bar advances per call."""
        import faiss

        x = self._training_matrix(data)
        n, dim = x.shape
        if n < self.num_clusters:
            raise InvalidInputError(f"kmeans: expected at least K={self.num_clusters} training rows, found {n}")
        if not np.isfinite(x).all():
            raise InvalidInputError("kmeans: expected finite features, found NaN or inf")
        t0 = time.perf_counter()
        from tqdm.auto import tqdm

        stepped = self.nredo == 1
        bar = tqdm(
            total=self.niter, desc="kmeans fit", unit="iter", file=sys.stderr, disable=progress is False, leave=False
        )
        centroids = None if init_centroids is None else l2_normalize(np.asarray(init_centroids, dtype=np.float32))
        if centroids is not None and centroids.shape != (self.num_clusters, dim):
            raise InvalidInputError(
                f"kmeans: expected init centroids of shape ({self.num_clusters}, {dim}), found {centroids.shape}"
            )
        objs: list[float] = []
        for _ in range(self.niter if stepped else 1):
            cp = faiss.ClusteringParameters()
            cp.niter = 1 if stepped else self.niter
            cp.nredo = self.nredo
            cp.seed = self.seed
            cp.spherical = True
            cp.verbose = self.verbose
            # never let faiss subsample: every given row is used
            cp.max_points_per_centroid = int(-(-n // self.num_clusters)) + 1
            clus = faiss.Clustering(dim, self.num_clusters, cp)
            if centroids is not None:
                faiss.copy_array_to_vector(centroids.ravel(), clus.centroids)
            index = flat_ip_index(dim, self.device)
            clus.train(x, index)
            centroids = faiss.vector_to_array(clus.centroids).reshape(self.num_clusters, dim).astype(np.float32)
            stats = clus.iteration_stats
            objs += [stats.at(i).obj for i in range(stats.size())]
            bar.update(1 if stepped else self.niter)
            bar.set_postfix(objective=f"{objs[-1]:.4g}", refresh=False)
        bar.close()
        self.centroids = centroids
        self.iteration_objectives = [float(o) for o in objs]
        finals = [objs[(r + 1) * self.niter - 1] for r in range(len(objs) // self.niter)] or objs[-1:]
        self.objective = float(max(finals))
        self.fit_seconds = time.perf_counter() - t0
        _log(f"fit in {self.fit_seconds:.1f}s, objective {self.objective:.4f} (mean cosine {self.objective / n:.4f})")
        return self

    # --------------------------------------------------------------------------------------------
    def _centroid_index(self):
        if self.centroids is None:
            raise InvalidInputError("kmeans: expected a fitted model (call fit first), found no centroids")
        index = flat_ip_index(self.centroids.shape[1], self.device)
        index.add(self.centroids)
        return index

    def predict_topk(
        self, data, k: int = 5, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest centroids of every row: ``(top1 (N,), topk (N, k))`` int64, nearest first."""
        k = min(int(k), self.num_clusters)
        index = self._centroid_index()
        n = _num_rows(data)
        topk = np.empty((n, k), dtype=np.int64)
        from tqdm.auto import tqdm

        bar = tqdm(
            total=n,
            desc="kmeans assign",
            unit="rows",
            unit_scale=True,
            file=sys.stderr,
            disable=None if progress else True,
        )
        if isinstance(data, FeatureStore):
            if data.dim != self.centroids.shape[1]:
                raise InvalidInputError(f"kmeans: expected features of dim {self.centroids.shape[1]}, found {data.dim}")
            chunks = data.iter_chunks(chunk_rows=chunk_rows, normalize=True)
        else:
            x = np.asarray(data)
            if x.ndim != 2 or x.shape[1] != self.centroids.shape[1]:
                raise InvalidInputError(
                    f"kmeans: expected features of shape (n, {self.centroids.shape[1]}), found {x.shape}"
                )
            chunks = ((a, l2_normalize(x[a : a + chunk_rows])) for a in range(0, n, chunk_rows))
        for a, xc in chunks:
            _, ids = index.search(xc, k)
            topk[a : a + len(xc)] = ids
            bar.update(len(xc))
        bar.close()
        return topk[:, 0].copy(), topk

    def predict(self, data, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
        return self.predict_topk(data, k=1, chunk_rows=chunk_rows, progress=False)[0]

    def params(self) -> dict[str, Any]:
        return {
            "num_clusters": self.num_clusters,
            "niter": self.niter,
            "nredo": self.nredo,
            "seed": self.seed,
            "train_size": self.train_size,
            "max_points_per_centroid": self.max_points_per_centroid,
            "num_train_rows": self.num_train_rows,
            "device": self.device,
        }


def run_kmeans(
    train,
    val,
    num_clusters: int,
    out_dir: str | os.PathLike,
    *,
    niter: int = 20,
    nredo: int = 1,
    seed: int = 0,
    train_size: int | str | None = "all",
    device: str = "auto",
    topk: int = 5,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    extra: dict | None = None,
) -> dict:
    """Fit on ``train``, assign ``val``, write ``top1.npy``, ``top5.npy`` (int64), ``centroids.npy`` and
    ``run.json`` into ``out_dir``; returns the run record."""
    import faiss

    t0 = time.perf_counter()
    if int(chunk_rows) < 1:
        raise InvalidInputError(f"kmeans: expected chunk_rows >= 1, found {chunk_rows}")
    out = check_output_dir(out_dir, "kmeans")  # before the fit, not after it
    km = SphericalKMeans(num_clusters, niter=niter, nredo=nredo, seed=seed, train_size=train_size, device=device)
    km.fit(train)
    top1, tk = km.predict_topk(val, k=topk, chunk_rows=chunk_rows)
    ensure_dir(out, "kmeans")
    save_npy(out / "centroids.npy", km.centroids)
    record = {
        "method": "kmeans",
        **km.params(),
        "objective": km.objective,
        "mean_cosine": km.objective / km.num_train_rows if km.num_train_rows else None,
        "fit_seconds": round(km.fit_seconds or 0.0, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
        "num_val": int(len(top1)),
        "files": {"top1": TOP1_FILE, "topk": TOPK_FILE, "centroids": "centroids.npy"},
        "faiss_version": faiss.__version__,
        **(extra or {}),
    }
    if isinstance(train, FeatureStore):
        record.setdefault("backbone", train.backbone)
        record.setdefault("train_features", str(train.path))
    if isinstance(val, FeatureStore):
        record.setdefault("val_features", str(val.path))
    if "provenance" not in record:
        from ..evaluation.provenance import provenance_record

        meta = getattr(train, "meta", None) or {}
        record["provenance"] = provenance_record(
            store=train if hasattr(train, "meta") else None,
            benchmark=record.get("benchmark") or meta.get("benchmark"),
            version=record.get("benchmark_version") or meta.get("version"),
        )
    return write_predictions(out, top1, tk, record=json.loads(json.dumps(record, default=str)), record_name="run.json")
