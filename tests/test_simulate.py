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
    assert train.meta["synthetic"] is True and train.meta["params"]["seed"] == 5 and train.meta["num_classes"] == b.num_classes
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
        main(["features", "simulate", "--benchmark", "coarse-d2", "--out", str(tmp_path / "f"), "--scale", "0.0002", "--val-scale", "0.02", "--dim", "16", "--json"])
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
