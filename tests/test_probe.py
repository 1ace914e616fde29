"""Linear probe (batched grid), per-class score file, separability diagnostics, and the CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from in21k_bench.errors import InvalidInputError
from in21k_bench.methods.diagnostics import alignment, separability
from in21k_bench.methods.probe import linear_probe, write_class_scores


def _data(seed=0, c=3, n_per=40, d=8, spread=1.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * 3
    x = np.concatenate([centers[i] + spread * rng.normal(size=(n_per, d)) for i in range(c)]).astype(np.float32)
    y = np.repeat(np.arange(c), n_per)
    return x, y


def test_probe_learns_and_reports_grid_and_per_class():
    x, y = _data(spread=2.5, n_per=60)
    idx = np.random.default_rng(0).permutation(len(x))
    tr, va = idx[:120], idx[120:]
    res = linear_probe(
        x[tr],
        y[tr],
        x[va],
        y[va],
        3,
        lrs=(1e-4, 0.5),
        weight_decays=(0.0, 1e-3),
        epochs=20,
        batch_size=16,
        device="cpu",
        progress=False,
    )
    assert len(res.grid) == 4
    assert res.best_accuracy == max(g["val_accuracy"] for g in res.grid) > 0.8
    assert res.per_class_accuracy.shape == (3,)
    counts = np.bincount(y[va], minlength=3)
    assert np.isclose((res.per_class_accuracy * counts).sum() / counts.sum(), res.best_accuracy)


def test_batched_grid_equals_independent_sgd_runs():
    """Each grid point trained alone with torch.optim.SGD reaches the same val accuracy and weights."""
    x, y = _data(spread=3.0)
    res = linear_probe(
        x,
        y,
        x,
        y,
        3,
        lrs=(0.05, 0.3),
        weight_decays=(0.0, 0.01),
        epochs=3,
        batch_size=32,
        device="cpu",
        progress=False,
        seed=4,
    )
    xn = torch.from_numpy(x / np.linalg.norm(x, axis=1, keepdims=True))
    yt = torch.from_numpy(y)
    for point in res.grid:
        gen = torch.Generator().manual_seed(4)
        w = torch.zeros(8, 3, requires_grad=True)
        b = torch.zeros(3, requires_grad=True)
        opt = torch.optim.SGD(
            [{"params": [w], "weight_decay": point["weight_decay"]}, {"params": [b], "weight_decay": 0.0}],
            lr=point["lr"],
            momentum=0.9,
        )
        for _ in range(3):
            torch.randperm(1, generator=gen)  # the chunk order draw (one chunk)
            perm = torch.randperm(len(y), generator=gen)
            for s in range(0, len(y), 32):
                rows = perm[s : s + 32]
                opt.zero_grad()
                F.cross_entropy(xn[rows] @ w + b, yt[rows]).backward()
                opt.step()
        acc = ((xn @ w + b).argmax(1) == yt).float().mean().item()
        assert acc == pytest.approx(point["val_accuracy"], abs=1e-6)


def test_class_scores_file(tmp_path):
    p = write_class_scores(tmp_path / "scores.parquet", np.array([0.5, 1.0]), ["n01", "n02"], [7, 9])
    df = pd.read_parquet(p)
    assert list(df.columns) == ["wnid", "class_index", "score"]
    assert df["wnid"].tolist() == ["n01", "n02"] and df["class_index"].tolist() == [7, 9]
    with pytest.raises(InvalidInputError, match="one score per wnid"):
        write_class_scores(tmp_path / "bad.parquet", np.array([0.5]), ["a", "b"])


def test_probe_bad_labels():
    x, y = _data()
    with pytest.raises(InvalidInputError, match=r"labels must lie in \[0, 2\)"):
        linear_probe(x, y, x, y, 2, epochs=1, device="cpu", progress=False)
    with pytest.raises(InvalidInputError, match="integer train labels"):
        linear_probe(x, y[:5], x, y, 3, epochs=1, device="cpu", progress=False)


def test_diagnostics_rank_separable_above_mixed():
    good = separability(*_data(spread=0.3))
    bad = separability(*_data(spread=5.0))
    assert good["silhouette"] > bad["silhouette"]
    assert good["davies_bouldin"] < bad["davies_bouldin"]
    assert good["nn_accuracy"] > bad["nn_accuracy"]
    assert good["alignment"] < bad["alignment"]


def test_alignment_by_hand():
    x = np.array([[1, 0], [1, 0.1], [0, 1], [-1, 0.05]], dtype=np.float32)
    y = np.array([0, 0, 1, 1])
    val, pairs, frac = alignment(x, y)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    # nearest neighbours: 0<->1 (same label), 2 -> 1 (different), 3 -> 2 (same label)
    expect = (np.sum((xn[0] - xn[1]) ** 2) * 2 + np.sum((xn[3] - xn[2]) ** 2)) / 3
    assert pairs == 3 and frac == 0.75
    assert val == pytest.approx(expect, rel=1e-5)


def test_cli_probe_on_digits_store(tmp_path):

    from typer.testing import CliRunner

    from in21k_bench.cli import app
    from in21k_bench.features.digits import write_digits

    write_digits(tmp_path / "feats")
    out = tmp_path / "probe"
    r = CliRunner().invoke(
        app,
        [
            "probe",
            "--features",
            str(tmp_path / "feats"),
            "--out",
            str(out),
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert len(rec["probe"]["grid"]) == 18 and rec["probe"]["best_accuracy"] > 0.5
    assert rec["diagnostics"]["nn_accuracy"] > 0.9
    df = pd.read_parquet(out / "class_scores.parquet")
    assert len(df) == 10 and set(df.columns) >= {"wnid", "score"}
    assert json.loads((out / "probe.json").read_text())["num_classes"] == 10
