"""Training loop: learning on separable data, outputs, schedules, pair sampling, resume after a real kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from in21k_bench.errors import InvalidInputError
from in21k_bench.methods.head_training import ResumeError, TrainConfig, epoch_pairs, fit, lr_at, paper_defaults

REPO = Path(__file__).resolve().parents[1]


def _blobs(n_per=64, c=4, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(c, d)) * 3
    x = np.concatenate([centers[i] + rng.normal(size=(n_per, d)) for i in range(c)]).astype(np.float32)
    y = np.repeat(np.arange(c), n_per)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    nbrs = np.argsort(-s, axis=1)[:, :8]
    return x, y, nbrs


def _acc(pred, y, c):
    from scipy.optimize import linear_sum_assignment

    m = np.zeros((c, c))
    np.add.at(m, (pred, y), 1)
    r, col = linear_sum_assignment(-m)
    return m[r, col].sum() / len(y)


def _small(method, **kw):
    base = dict(
        method=method,
        num_clusters=4,
        num_heads=2,
        epochs=12,
        batch_size=32,
        knn=8,
        base_lr=4e-3,
        hidden_dim=64,
        bottleneck_dim=32,
        teacher_momentum=0.99,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("method", ["temi", "scanv2"])
def test_fit_learns_separable_clusters_and_writes_outputs(method, tmp_path):
    x, y, nbrs = _blobs()
    res = fit(x, nbrs, _small(method), out_dir=tmp_path, progress=False, device="cpu")
    assert _acc(res.top1, y, 4) > 0.9
    top1, top5, probs = (np.load(tmp_path / f, allow_pickle=False) for f in ("top1.npy", "top5.npy", "probs.npy"))
    assert top1.shape == (256,) and top1.dtype == np.int64 and np.array_equal(top1, res.top1)
    assert top5.shape == (256, 4) and np.array_equal(top5[:, 0], top1)
    assert probs.shape == (256, 4) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.array_equal(probs.argmax(1), top1)
    meta = json.loads((tmp_path / "fit.json").read_text())
    assert meta["best_head"] == res.best_head == int(np.argmin(res.head_losses))
    assert len(meta["history"]) == 12 and (tmp_path / "checkpoint.pt").is_file()
    # the training loss went down
    assert res.history[-1]["loss"] < res.history[0]["loss"]


def test_val_features_and_store_like_source_give_the_same_result():
    x, y, nbrs = _blobs(n_per=16)

    class Store:  # the FeatureStore duck type of docs/design.md, not normalised on disk
        def __init__(self, a):
            self.a, self.num_rows, self.dim = a * 7.0, a.shape[0], a.shape[1]

        def _n(self, v):
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        def take(self, idx, normalize=True):
            return self._n(self.a[idx])

        def iter_chunks(self, chunk_rows=65536, normalize=True):
            for s in range(0, self.num_rows, 5):
                yield s, self._n(self.a[s : s + 5])

    cfg = _small("temi", epochs=2, batch_size=16)
    a = fit(x, nbrs, cfg, val_features=x[:10], progress=False, device="cpu")
    b = fit(Store(x), nbrs, cfg, val_features=Store(x[:10]), progress=False, device="cpu")
    assert a.top1.shape == (10,)
    np.testing.assert_allclose(a.probs, b.probs, rtol=1e-5, atol=1e-6)


def test_lr_schedule_and_defaults():
    cfg = TrainConfig(epochs=10, batch_size=512, base_lr=1e-4, min_lr=1e-6, warmup_epochs=2)
    assert cfg.lr == pytest.approx(2e-4)  # scaled by batch / 256
    lrs = [lr_at(s, 5, cfg) for s in range(50)]
    assert lrs[0] == pytest.approx(2e-4 / 10) and lrs[9] == pytest.approx(2e-4)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))  # linear warm-up
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine decay
    assert lrs[-1] == pytest.approx(1e-6)
    t = paper_defaults("temi", "imagenet-1k")
    s = paper_defaults("scanv2", "in21k", num_clusters=10450)
    assert (t.epochs, t.batch_size, t.num_heads, t.knn) == (50, 512, 32, 50)
    assert (s.epochs, s.batch_size, s.num_clusters) == (25, 4096, 10450)
    assert t.student_temp == t.teacher_temp == 0.1 and t.teacher_momentum == 0.996


def test_epoch_pairs_draw_partners_from_neighbours():
    rng = np.random.default_rng(0)
    n, k = 100, 5
    nbrs = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    a, p = epoch_pairs(n, nbrs, steps=3, batch=32, seed=1, epoch=0)
    assert len(np.unique(a)) == 96
    assert all(p[i] in nbrs[a[i]] for i in range(96))
    a2, p2 = epoch_pairs(n, nbrs, steps=3, batch=32, seed=1, epoch=0)
    assert np.array_equal(a, a2) and np.array_equal(p, p2)
    a3, _ = epoch_pairs(n, nbrs, steps=3, batch=32, seed=1, epoch=1)
    assert not np.array_equal(a, a3)
    # partners are uniform over the k columns
    big = np.tile(np.arange(1, 6), (5000, 1))
    _, pp = epoch_pairs(5000, big, steps=1, batch=5000, seed=0, epoch=0)
    counts = np.bincount(pp, minlength=6)[1:]
    assert counts.min() > 850


def test_bad_inputs(tmp_path):
    x, _, nbrs = _blobs(n_per=8)
    cfg = _small("temi", epochs=1, batch_size=16, knn=4)
    with pytest.raises(InvalidInputError, match="neighbour indices"):
        fit(x, np.full_like(nbrs, 999), cfg, progress=False)
    with pytest.raises(InvalidInputError, match="at least k=4"):
        fit(x, nbrs[:, :2], cfg, progress=False)
    with pytest.raises(InvalidInputError, match="shape"):
        fit(x, nbrs[:5], cfg, progress=False)
    with pytest.raises(InvalidInputError, match="larger than the training set"):
        fit(x, nbrs, _small("temi", batch_size=64, knn=4), progress=False)
    with pytest.raises(InvalidInputError, match="method"):
        TrainConfig(method="dino")
    fit(x, nbrs, cfg, out_dir=tmp_path, progress=False)
    with pytest.raises(ResumeError, match="different configuration"):
        fit(x, nbrs, _small("temi", epochs=1, batch_size=16, knn=4, seed=5), out_dir=tmp_path, progress=False)


_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from in21k_bench.methods.head_training import TrainConfig, fit
    out, method, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(192, 16)).astype(np.float32)
    x[:96] += 2.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    nbrs = np.argsort(-s, axis=1)[:, :6]
    cfg = TrainConfig(method=method, num_clusters=3, num_heads=2, epochs=6, batch_size=32, knn=6,
                      base_lr=2e-3, hidden_dim=32, bottleneck_dim=16, teacher_momentum=0.99,
                      teacher_momentum_final=1.0)
    def pause(epoch, rec):
        if slow and epoch == 2:  # checkpoint of epoch 2 written; the test kills us while we wait
            print(f"EPOCH {epoch}", flush=True)
            time.sleep(60)
    fit(x, nbrs, cfg, out_dir=out, progress=False, device="cpu", on_epoch_end=pause)
    print("DONE", flush=True)
    """
)


def _run(script, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize("method", ["temi", "scanv2"])
def test_resume_after_kill_reproduces_uninterrupted_run(method, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    full, killed = tmp_path / "full", tmp_path / "killed"
    r = _run(script, full, method, "fast")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, str(script), killed, method, "slow"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        seen = []
        deadline = time.time() + 90
        while time.time() < deadline:  # wait until epoch 2 (third) is checkpointed, then kill mid-run
            line = proc.stdout.readline()
            seen.append(line)
            if line.startswith("EPOCH 2"):
                break
        assert any(s.startswith("EPOCH 2") for s in seen), seen
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "top1.npy").exists()
    ck = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2
    r = _run(script, killed, method, "fast")
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and "after epoch 3/6" in r.stderr
    for name in ("top1.npy", "top5.npy", "probs.npy"):
        a = np.load(full / name, allow_pickle=False)
        b = np.load(killed / name, allow_pickle=False)
        assert np.array_equal(a, b), name
    ha = json.loads((full / "fit.json").read_text())["history"]
    hb = json.loads((killed / "fit.json").read_text())["history"]
    assert [h["head_losses"] for h in ha] == [h["head_losses"] for h in hb]


def test_cli_fit_temi_on_digits_store(tmp_path):
    from typer.testing import CliRunner

    from in21k_bench.cli import app
    from in21k_bench.features.digits import write_digits

    write_digits(tmp_path / "feats")
    out = tmp_path / "run"
    args = [
        "fit",
        "temi",
        "--features",
        str(tmp_path / "feats"),
        "--out",
        str(out),
        "--num-clusters",
        "10",
        "--epochs",
        "1",
        "--batch-size",
        "256",
        "--heads",
        "2",
        "--k",
        "5",
        "--device",
        "cpu",
        "--json",
    ]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["num_val"] == 355 and summary["epochs"] == 1 and summary["knn"] == 5
    assert (tmp_path / "feats" / "train" / "knn-k5.npy").is_file()  # mined on first use
    assert np.load(out / "top1.npy", allow_pickle=False).shape == (355,)
    assert np.load(out / "top5.npy", allow_pickle=False).shape == (355, 5)
    # a second call resumes from the finished checkpoint and writes the same predictions
    before = np.load(out / "probs.npy", allow_pickle=False)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["resumed_from_epoch"] == 1
    assert np.array_equal(np.load(out / "probs.npy", allow_pickle=False), before)
    # bad input: a one-line error with exit code 2
    bad = CliRunner().invoke(
        app, args[:-3] + ["--neighbors", str(tmp_path / "feats" / "train" / "knn-k5.npy"), "--k", "9", "--json"]
    )
    assert bad.exit_code != 0
