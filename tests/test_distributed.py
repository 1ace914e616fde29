"""The training loop under torchrun: 2 gloo processes on CPU match 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from in21k_bench.methods.head_training import TrainConfig, fit
    sys.path.insert(0, sys.argv[3])
    from test_distributed import problem, config
    x, nbrs = problem()
    fit(x, nbrs, config(sys.argv[2]), out_dir=sys.argv[1], progress=False, device="cpu")
    """
)


def problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 12)).astype(np.float32)
    x[:64, 0] += 3.0
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    np.fill_diagonal(s, -np.inf)
    return x, np.argsort(-s, axis=1)[:, :5]


def config(method):
    from in21k_bench.methods.head_training import TrainConfig

    return TrainConfig(
        method=method,
        num_clusters=3,
        num_heads=3,
        epochs=3,
        batch_size=32,
        knn=5,
        base_lr=4e-3,
        hidden_dim=32,
        bottleneck_dim=16,
        teacher_momentum=0.99,
    )


@pytest.mark.slow
@pytest.mark.parametrize("method", ["temi", "scanv2"])
def test_two_gloo_processes_match_one_process(method, tmp_path):
    from in21k_bench.methods.head_training import fit

    script = tmp_path / "ddp.py"
    script.write_text(_SCRIPT)
    out = tmp_path / "ddp"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(out),
            method,
            str(Path(__file__).parent),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    meta = json.loads((out / "fit.json").read_text())
    assert meta["world_size"] == 2

    x, nbrs = problem()
    single = fit(x, nbrs, config(method), progress=False, device="cpu")
    for a, b in zip(meta["history"], single.history):
        np.testing.assert_allclose(a["head_losses"], b["head_losses"], rtol=1e-5, atol=1e-6)
    assert meta["best_head"] == single.best_head
    probs = np.load(out / "probs.npy", allow_pickle=False)
    np.testing.assert_allclose(probs, single.probs, atol=1e-5)
    top1 = np.load(out / "top1.npy", allow_pickle=False)
    assert np.array_equal(top1, single.top1)
    # the distributed run differs from one with half the batch per step: it really used the global batch
    half = config(method)
    half.batch_size = 16
    other = fit(x, nbrs, half, progress=False, device="cpu")
    assert not np.allclose(other.history[0]["head_losses"], meta["history"][0]["head_losses"], rtol=1e-3)
