"""Simulated IN-21K features (synthetic) and the digits store."""

from __future__ import annotations

import numpy as np
import pytest

import in21k_bench
from in21k_bench.errors import InvalidInputError
from in21k_bench.features.digits import digits_split, write_digits
from in21k_bench.features.simulate import SimParams, _Generator, simulate_features


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    return simulate_features("tiny", out / "a", scale=0.002, val_scale=0.1, dim=32, seed=5, progress=False), out


def test_sizes_labels_and_meta(sim):
    (train, val), _ = sim
    b = in21k_bench.load("tiny")
    sc = b.source_classes
    want_train = np.maximum(2, np.rint(sc["num_train"].to_numpy() * 0.002)).astype(int)
    want_val = np.maximum(1, np.rint(sc["num_val"].to_numpy() * 0.1)).astype(int)
    assert train.num_rows == want_train.sum() and val.num_rows == want_val.sum()
    np.testing.assert_array_equal(train.labels, np.repeat(sc["label"].to_numpy(), want_train))
    np.testing.assert_array_equal(val.labels, np.repeat(sc["label"].to_numpy(), want_val))
    assert (
        train.meta["synthetic"] is True
        and train.meta["params"]["seed"] == 5
        and train.meta["num_classes"] == b.num_classes
    )
    assert train.sample_ids[0].startswith("train/" + sc["wnid"].iloc[0] + "/sim_")
    assert train.dim == 32


def test_deterministic_from_seed(sim, tmp_path):
    (train, _), _ = sim
    t2, _ = simulate_features("tiny", tmp_path / "b", scale=0.002, val_scale=0.1, dim=32, seed=5, progress=False)
    t3, _ = simulate_features("tiny", tmp_path / "c", scale=0.002, val_scale=0.1, dim=32, seed=6, progress=False)
    np.testing.assert_array_equal(train.to_array(normalize=False), t2.to_array(normalize=False))
    assert not np.array_equal(train.to_array(normalize=False), t3.to_array(normalize=False))


def test_children_close_to_parents_and_classes_not_isotropic():
    g = _Generator(SimParams(dim=64, seed=0))
    tax = g.tax
    m = g.means / np.linalg.norm(g.means, axis=1, keepdims=True)
    child = np.flatnonzero(tax.parent >= 0)
    rng = np.random.default_rng(0)
    pick = rng.choice(child, 2000, replace=False)
    cos_parent = np.einsum("ij,ij->i", m[pick], m[tax.parent[pick]])
    cos_random = np.einsum("ij,ij->i", m[pick], m[rng.choice(tax.num_classes, 2000)])
    assert np.median(cos_parent) > np.median(cos_random) + 0.1
    # deeper children are closer to their parent than shallow ones
    deep = pick[tax.depth[pick] >= 5]
    shallow = pick[tax.depth[pick] == 1]
    cd = np.einsum("ij,ij->i", m[deep], m[tax.parent[deep]]).mean()
    cs = np.einsum("ij,ij->i", m[shallow], m[tax.parent[shallow]]).mean()
    assert cd > cs
    # anisotropic: the top covariance eigenvalue of a class is far above the median one
    x = g.sample(tax.wnids[100], 4000, 0)
    ev = np.linalg.eigvalsh(np.cov(x.T))
    assert ev[-1] > 4 * np.median(ev)


def test_bad_scale_rejected(tmp_path):
    with pytest.raises(InvalidInputError, match="scale"):
        simulate_features("tiny", tmp_path, scale=0, progress=False)


def test_cli_simulate(tmp_path, capsys):
    from in21k_bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(
            [
                "features",
                "simulate",
                "--benchmark",
                "coarse-d2",
                "--out",
                str(tmp_path / "f"),
                "--scale",
                "0.0002",
                "--val-scale",
                "0.02",
                "--dim",
                "16",
                "--json",
            ]
        )
    assert e.value.code == 0
    assert '"synthetic": true' in capsys.readouterr().out


def test_digits_split_is_fixed_and_stratified(tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    sp = digits_split()
    xt, yt, it = sp["train"]
    xv, yv, iv = sp["val"]
    assert (len(yt), len(yv)) == (1442, 355)
    assert np.intersect1d(it, iv).size == 0 and np.union1d(it, iv).size == 1797
    np.testing.assert_array_equal(xv, d.data[iv])
    np.testing.assert_array_equal(yv, d.target[iv])
    frac = np.bincount(yv) / np.bincount(d.target)
    assert np.all(np.abs(frac - 0.2) < 0.02)
    train, val = write_digits(tmp_path / "dg")
    np.testing.assert_array_equal(val.labels, yv)
    np.testing.assert_array_equal(train.to_array(normalize=False), xt)
    assert val.meta["num_classes"] == 10 and val.sample_ids[0] == f"digits/val/{iv[0]:04d}"


# --------------------------------------------------------------------------- class-shape model


def _class_cloud(params: SimParams, wnid: str = "n02085620", n: int = 3000) -> np.ndarray:
    g = _Generator(params)
    x = g.sample(wnid, n, 0).astype(np.float64)
    return x - x.mean(axis=0)


def test_default_shape_is_unchanged_by_the_shape_model():
    """Golden values from the generator before separation / curve existed: defaults reproduce old stores."""
    x = _Generator(SimParams(dim=16, seed=3)).sample("n02085620", 5, 1)
    np.testing.assert_allclose(
        x[0, :4], [0.13888655602931976, -0.039696432650089264, 0.8150606155395508, 1.126182198524475], rtol=1e-5
    )
    np.testing.assert_allclose(float(x.astype(np.float64).sum()), 0.43682088929926977, rtol=1e-5)
    y = _Generator(SimParams(dim=16, seed=3, separation=1.0, curve=0.0)).sample("n02085620", 5, 1)
    np.testing.assert_array_equal(x, y)


def test_separation_divides_the_isotropic_thickness_only():
    """Eigenvalues of one class's covariance: the bulk (isotropic noise, sigma^2/D) shrinks by separation^2,
    the top `rank` (the long directions) do not move."""
    base = dict(dim=32, seed=0, max_modes=1, rank=2)
    ev1 = np.linalg.eigvalsh(np.cov(_class_cloud(SimParams(**base)).T))
    ev3 = np.linalg.eigvalsh(np.cov(_class_cloud(SimParams(**base, separation=3.0)).T))
    bulk = np.median(ev1[:-2]) / np.median(ev3[:-2])
    assert 7.0 < bulk < 11.5, bulk  # 9 expected
    np.testing.assert_allclose(ev3[-2:], ev1[-2:], rtol=0.1)
    assert np.median(ev1[:-2]) == pytest.approx(0.45**2 / 32, rel=0.15)


def test_separation_makes_nearest_neighbours_purer():
    from in21k_bench.methods.knn import exact_knn

    def purity(sep: float) -> float:
        g = _Generator(SimParams(dim=32, seed=1, separation=sep))
        wnids = ["n02085620", "n02085782", "n02085936", "n02086079", "n02086240", "n02086646"]  # toy-dog siblings
        x = np.concatenate([g.sample(w, 150, 0) for w in wnids])
        y = np.repeat(np.arange(len(wnids)), 150)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        nb = exact_knn(x, 10)
        return float((y[nb] == y[:, None]).mean())

    lo, hi = purity(0.25), purity(4.0)
    assert hi > lo + 0.1 and hi > 0.9, (lo, hi)


def test_curve_bends_the_long_direction_into_an_arc():
    """rank 1, thin noise: straight -> one dominant direction; curve 1.5 -> a second large direction (the
    bend), with the arc length (spread along the curve) kept."""
    base = dict(dim=32, seed=0, max_modes=1, rank=1, separation=10.0)
    straight = np.linalg.eigvalsh(np.cov(_class_cloud(SimParams(**base)).T))[::-1]
    bent = np.linalg.eigvalsh(np.cov(_class_cloud(SimParams(**base, curve=1.5)).T))[::-1]
    assert straight[1] / straight[0] < 0.01
    assert bent[1] / bent[0] > 0.15
    # the bend keeps points on a circle of radius sigma * aniso / curve around its centre
    x = _class_cloud(SimParams(**base, curve=1.5), n=4000)
    r = 0.45 * 2.0 / 1.5
    u, _, _ = np.linalg.svd(x.T @ x)
    p2 = x @ u[:, :2]  # the arc's plane
    c, *_ = np.linalg.lstsq(np.c_[2 * p2, np.ones(len(p2))], (p2**2).sum(1), rcond=None)  # circle fit
    fitted = np.sqrt(c[2] + c[0] ** 2 + c[1] ** 2)
    assert fitted == pytest.approx(r, rel=0.1)


def test_bad_shape_parameters_rejected():
    for kw in ({"separation": 0.0}, {"curve": -1.0}, {"sigma": float("nan")}, {"rank": 0}):
        with pytest.raises(InvalidInputError, match="simulate: expected"):
            SimParams(**kw)
