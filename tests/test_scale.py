"""The image and kNN jobs under torchrun on CPU (gloo): 2 processes write the same store / neighbour
file / relabel manifest as 1 process; a rank killed mid-run (SIGKILL) is resumed, also with another
number of processes. Real images: scikit-learn digits written as small JPEGs; tiny random-weight
timm / open_clip models (no download)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from in21k_bench.runtime.distributed import FAULT_ENV

REPO = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "in21k-bench")
pytestmark = pytest.mark.slow


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", FAULT_ENV)
    }
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", **extra)
    return env


def run(args, nproc=1, fault=None, timeout=300):
    """``in21k-bench ARGS`` in one process, or under torchrun with ``nproc`` processes."""
    cmd = (
        [CLI, *args]
        if nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "--no-python",
            CLI,
            *args,
        ]
    )
    env = _env(**({FAULT_ENV: fault} if fault else {}))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from in21k_bench.features.digits import write_digit_images

    root = tmp_path_factory.mktemp("digits") / "img"
    write_digit_images(root, 12, classes=[str(c) for c in range(5)], val_per_class=4)  # 60 train, 20 val
    return root


EXTRACT = [
    "features",
    "extract",
    "--backbone",
    "timm:test_vit",
    "--random-init",
    "--image-size",
    "32",
    "--workers",
    "0",
    "--batch-size",
    "5",
    "--shard-rows",
    "8",
    "--device",
    "cpu",
]


def _same_store(a: Path, b: Path):
    from in21k_bench.features.store import FeatureStore

    sa, sb = FeatureStore.open(a, verify=True), FeatureStore.open(b, verify=True)
    assert list(sa.sample_ids) == list(sb.sample_ids)
    np.testing.assert_array_equal(sa.labels, sb.labels)
    pd.testing.assert_frame_equal(sa.index, sb.index)
    assert [(s["file"], s["rows"]) for s in sa.meta["shards"]] == [(s["file"], s["rows"]) for s in sb.meta["shards"]]
    drop = ("shards",)
    assert {k: v for k, v in sa.meta.items() if k not in drop} == {k: v for k, v in sb.meta.items() if k not in drop}
    # the same values up to float16 rounding (batches differ between the runs)
    np.testing.assert_allclose(sa.to_array(normalize=False), sb.to_array(normalize=False), rtol=2e-3, atol=2e-3)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())


@pytest.fixture(scope="module")
def one_process_store(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("ext1") / "f"
    r = run([*EXTRACT, "--images", str(images), "--out", str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    return out


def test_extract_two_processes_write_the_one_process_store(images, one_process_store, tmp_path):
    out = tmp_path / "f"
    r = run([*EXTRACT, "--images", str(images), "--out", str(out), "--json"], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout)  # only rank 0 reports
    assert info["train"]["num_rows"] == 60 and info["val"]["num_rows"] == 20
    for split in ("train", "val"):
        _same_store(out / split, one_process_store / split)
    assert not list(out.rglob("*.done.json")) and not list(out.rglob("build-samples.parquet"))


def test_extract_rank_killed_then_resumed_with_another_world_size(images, one_process_store, tmp_path):
    out = tmp_path / "f"
    # the rank that finishes train shard 3 (of 8) dies; torchrun stops the job
    r = run([*EXTRACT, "--images", str(images), "--out", str(out), "--split", "train"], nproc=2, fault="extract:3")
    assert r.returncode != 0
    done = sorted(p.name for p in (out / "train").glob("*.done.json"))
    assert "shard-00003.done.json" in done and len(done) < 8
    assert not json.loads((out / "train" / "meta.json").read_text())["complete"]
    stamps = {
        p.name: p.stat().st_mtime_ns
        for p in (out / "train").glob("shard-*.npy")
        if p.name.replace(".npy", ".done.json") in done
    }
    # resumed by ONE process: only the missing shards are computed
    r = run([*EXTRACT, "--images", str(images), "--out", str(out), "--split", "train"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming, {len(done)} of 8 shards already done" in r.stderr
    assert {p: (out / "train" / p).stat().st_mtime_ns for p in stamps} == stamps
    _same_store(out / "train", one_process_store / "train")
    # a resumed run for another image list is refused in one line
    r = run(
        [*EXTRACT, "--images", str(images), "--out", str(tmp_path / "g"), "--split", "train"],
        nproc=2,
        fault="extract:0",
    )
    r = run(
        [*EXTRACT, "--images", str(images), "--out", str(tmp_path / "g"), "--split", "train", "--shard-rows", "9"],
        nproc=2,
    )
    assert r.returncode != 0
    assert "error: extract: resuming" in r.stderr and "needs the same shard_rows" in r.stderr


def test_knn_two_processes_match_one_process_and_resume(one_process_store, tmp_path):
    feats = str(one_process_store)
    args = ["knn", "--features", feats, "--k", "5", "--chunk-rows", "7", "--device", "cpu"]
    r = run([*args, "--out", str(tmp_path / "one.npy")])
    assert r.returncode == 0, r.stderr[-2000:]
    r = run([*args, "--out", str(tmp_path / "two.npy"), "--json"], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["processes"] == 2
    one, two = np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy")
    assert one.shape == (60, 5)
    np.testing.assert_array_equal(one, two)
    # killed after chunk 4 of 9 under 2 processes, resumed with 2
    r = run([*args, "--out", str(tmp_path / "k.npy")], nproc=2, fault="knn:4")
    assert (
        r.returncode != 0
        and (tmp_path / "k.npy.parts" / "chunk-00004.npy").is_file()
        and not (tmp_path / "k.npy").exists()
    )
    r = run([*args, "--out", str(tmp_path / "k.npy")], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming" in r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "k.npy"), one)
    assert not (tmp_path / "k.npy.parts").exists()
    # a one-process run in progress is not continued by torchrun: one-line refusal saying what to do
    (tmp_path / "m.npy.progress.json").write_text("{}")
    r = run([*args, "--out", str(tmp_path / "m.npy")], nproc=2)
    assert r.returncode != 0 and "resume it with one process" in r.stderr


def _hzr_root(tmp_path_factory):
    from in21k_bench.features.digits import write_digit_images
    from in21k_bench.registry.taxonomy import load_taxonomy

    tax = load_taxonomy()
    root = tmp_path_factory.mktemp("hzr") / "img"
    wnids = [tax.wnids[c] for c in (1731, 1732, 1733, 1735)]  # grasshopper subtree (see test_hzr)
    write_digit_images(root, 6, classes=wnids, val_per_class=2)
    return root


def test_relabel_two_processes_match_one_and_resume(tmp_path_factory, tmp_path):
    root = _hzr_root(tmp_path_factory)
    base = [
        "relabel",
        "--mode",
        "leaf-hzr",
        "--root",
        str(root),
        "--model",
        "in21k-test-tiny",
        "--device",
        "cpu",
        "--num-workers",
        "0",
        "--batch-size",
        "4",
        "--chunk-rows",
        "5",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    r = run([*base, "--out", str(tmp_path / "one.parquet")])
    assert r.returncode == 0, r.stderr[-2000:]
    r = run([*base, "--out", str(tmp_path / "two.parquet")], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("manifest:") == 1  # rank 0 reports
    one, two = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet")
    assert len(one) == 32
    pd.testing.assert_frame_equal(one, two)  # same chunks, same batches: identical
    assert pq.read_schema(tmp_path / "two.parquet").metadata == pq.read_schema(tmp_path / "one.parquet").metadata
    # a rank dies after embedding chunk 2 (of 7); both ranks resume
    r = run([*base, "--out", str(tmp_path / "k.parquet"), "--resume"], nproc=2, fault="embed:2")
    assert r.returncode != 0 and not (tmp_path / "k.parquet").exists()
    done = len(list((tmp_path / "k.parquet.work" / "emb").glob("chunk-*.npy")))
    assert 1 <= done < 7
    r = run([*base, "--out", str(tmp_path / "k.parquet"), "--resume"], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "k.parquet"), one)


def test_zeroshot_two_processes_match_one(tmp_path_factory, tmp_path):
    root = _hzr_root(tmp_path_factory)
    base = [
        "zeroshot",
        "--root",
        str(root),
        "--model",
        "in21k-test-tiny",
        "--device",
        "cpu",
        "--classes",
        "present",
        "--lemma-choice",
        "first",
        "--num-workers",
        "0",
        "--batch-size",
        "4",
        "--chunk-rows",
        "3",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    r1 = run([*base, "--out", str(tmp_path / "one")])
    r2 = run([*base, "--out", str(tmp_path / "two")], nproc=2)
    assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr[-1500:], r2.stderr[-1500:])
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "one" / "predictions.parquet"),
        pd.read_parquet(tmp_path / "two" / "predictions.parquet"),
    )
