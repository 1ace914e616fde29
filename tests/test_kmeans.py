"""Spherical k-means: same result as raw faiss without its silent subsampling, explicit train sample,
nearest-centroid top-k, store input, predictions for the evaluator, CLI on real digits."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from in21k_bench.errors import InvalidInputError
from in21k_bench.features.store import l2_normalize, write_store
from in21k_bench.methods.kmeans import SphericalKMeans, run_kmeans


def _blobs(n=3000, k=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    return (c[y] + 0.6 * rng.normal(size=(n, d))).astype(np.float32), y


def _hungarian_acc(y, p):
    m = np.zeros((p.max() + 1, y.max() + 1))
    np.add.at(m, (p, y), 1)
    r, c = linear_sum_assignment(-m)
    return m[r, c].sum() / len(y)


def test_same_as_faiss_without_subsampling():
    x, _ = _blobs()  # 3000 rows > 256 x 4: faiss's default would silently train on 1024 of them
    km = SphericalKMeans(4, niter=15, seed=7, device="cpu").fit(x)
    ref = faiss.Kmeans(8, 4, niter=15, seed=7, spherical=True, max_points_per_centroid=10**7)
    ref.train(l2_normalize(x))
    assert km.objective == pytest.approx(float(ref.obj[-1]), rel=1e-6)
    np.testing.assert_allclose(km.centroids, ref.centroids, atol=1e-6)
    # the objective sums over all 3000 rows (mean cosine well below 1 but the sum far above 1024)
    assert km.num_train_rows == 3000 and km.objective > 1500
    default = faiss.Kmeans(8, 4, niter=15, seed=7, spherical=True)
    default.train(l2_normalize(x))
    assert default.obj[-1] < 1100  # what the silent default does
    np.testing.assert_allclose(np.linalg.norm(km.centroids, axis=1), 1.0, rtol=1e-5)


def test_predict_topk_is_nearest_centroids():
    x, y = _blobs()
    km = SphericalKMeans(4, niter=10, seed=0, device="cpu").fit(x)
    top1, top3 = km.predict_topk(x, k=3, chunk_rows=700, progress=False)
    sims = l2_normalize(x) @ km.centroids.T
    np.testing.assert_array_equal(top1, sims.argmax(1))
    np.testing.assert_array_equal(top3[:, 0], top1)
    ordered = np.take_along_axis(sims, top3, axis=1)
    assert (np.diff(ordered, axis=1) <= 1e-6).all()
    assert _hungarian_acc(y, top1) > 0.9


def test_explicit_train_sample_and_store_input(tmp_path):
    x, _ = _blobs()
    a = SphericalKMeans(4, niter=5, seed=3, train_size=500, device="cpu").fit(x)
    b = SphericalKMeans(4, niter=5, seed=3, train_size="500", device="cpu").fit(x)
    assert a.num_train_rows == 500 and len(a.train_rows) == 500
    m = SphericalKMeans(4, niter=5, seed=3, max_points_per_centroid=125, device="cpu").fit(x)
    np.testing.assert_array_equal(m.train_rows, a.train_rows)  # 125 x 4 = the same explicit 500-row sample
    np.testing.assert_array_equal(a.train_rows, b.train_rows)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    # a store gives the same result as its (fp16-rounded) array
    store = write_store(tmp_path / "s", x, backbone="t", shard_rows=256)
    c = SphericalKMeans(4, niter=5, seed=3, train_size=500, device="cpu").fit(store)
    d = SphericalKMeans(4, niter=5, seed=3, train_size=500, device="cpu").fit(x.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(c.centroids, d.centroids, atol=1e-6)
    np.testing.assert_array_equal(
        c.predict_topk(store, progress=False)[1], d.predict_topk(x.astype(np.float16), progress=False)[1]
    )


def test_bad_arguments():
    x, _ = _blobs(n=10)
    with pytest.raises(InvalidInputError, match="at least K=20"):
        SphericalKMeans(20, device="cpu").fit(x)
    with pytest.raises(InvalidInputError, match="train_size"):
        SphericalKMeans(2, train_size="most")
    with pytest.raises(InvalidInputError, match="fitted"):
        SphericalKMeans(2, device="cpu").predict_topk(x)


def test_run_kmeans_writes_evaluator_files(tmp_path):
    x, y = _blobs()
    rec = run_kmeans(x[:2500], x[2500:], 4, tmp_path / "out", niter=5, device="cpu")
    top1 = np.load(tmp_path / "out" / "top1.npy", allow_pickle=False)
    top4 = np.load(
        tmp_path / "out" / "top5.npy", allow_pickle=False
    )  # K = 4 < 5: all 4 clusters, ranked, in the one top-k file
    assert top1.shape == (500,) and top4.shape == (500, 4) and (top4[:, 0] == top1).all()
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert set(run["prediction_files"]) == {
        "top1.npy",
        "top5.npy",
    }  # written through in21k_bench.evaluation.predictions
    assert run["num_clusters"] == 4 and run["train_size"] == "all" and run["num_train_rows"] == 2500
    assert rec["objective"] == run["objective"]


def test_cli_fit_kmeans_on_digits(tmp_path, capsys):
    from in21k_bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["features", "digits", "--out", str(tmp_path / "digits")])
    assert e.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(
            [
                "fit",
                "kmeans",
                "--features",
                str(tmp_path / "digits"),
                "--out",
                str(tmp_path / "km"),
                "--device",
                "cpu",
                "--nredo",
                "3",
                "--json",
            ]
        )
    assert e.value.code == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["num_clusters"] == 10 and rec["nredo"] == 3
    top1 = np.load(tmp_path / "km" / "top1.npy")
    top5 = np.load(tmp_path / "km" / "top5.npy")
    from in21k_bench.features.store import open_features

    _, val = open_features(tmp_path / "digits")
    assert top5.shape == (val.num_rows, 5)
    acc = _hungarian_acc(val.labels, top1)
    assert acc > 0.6, acc  # spherical k-means on raw digit pixels: about 0.8
    m = np.zeros((10, 10))
    np.add.at(m, (top1, val.labels), 1)
    r, c = linear_sum_assignment(-m)
    f = np.full(10, -1)
    f[r] = c
    hit5 = (f[top5] == val.labels[:, None]).any(axis=1).mean()
    assert acc < hit5 <= 1.0
