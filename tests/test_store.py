"""Feature store: round trip, chunking across shards, take, memory mapping, resume, checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from in21k_bench.errors import ChecksumError, InvalidInputError
from in21k_bench.features.store import FeatureStore, FeatureStoreWriter, l2_normalize, open_features, write_store


def _data(n=103, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    ids = np.array([f"s/{i:05d}" for i in range(n)], dtype=object)
    return x, ids, rng.integers(0, 7, n)


def test_round_trip_chunks_take(tmp_path):
    x, ids, y = _data()
    s = write_store(tmp_path / "s", x, ids, y, backbone="test", shard_rows=20, split="train")
    assert (s.num_rows, s.dim, s.backbone) == (103, 12, "test")
    assert len(s.meta["shards"]) == 6 and [sh["rows"] for sh in s.meta["shards"]][-1] == 3
    ref = x.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(s.to_array(normalize=False), ref)
    np.testing.assert_allclose(s.to_array(), l2_normalize(ref), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(s.to_array(), axis=1), 1.0, rtol=1e-5)
    # chunks of 7 cross shard boundaries; starts are contiguous
    starts, parts = zip(*s.iter_chunks(chunk_rows=7, normalize=False))
    assert list(starts) == list(range(0, 103, 7))
    assert all(p.dtype == np.float32 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), ref)
    idx = np.array([102, 0, 45, 45, 19, 20, 61])
    np.testing.assert_array_equal(s.take(idx, normalize=False), ref[idx])
    assert list(s.sample_ids) == list(ids)
    np.testing.assert_array_equal(s.labels, y)
    assert list(s.index.columns) == ["sample_id", "shard", "row", "label"]
    assert s.index["shard"].iloc[45] == 2 and s.index["row"].iloc[45] == 5


def test_shards_are_memory_mapped_fp16(tmp_path):
    x, ids, _ = _data()
    s = write_store(tmp_path / "s", x, ids, backbone="test", shard_rows=50)
    assert s.labels is None
    assert all(isinstance(a, np.memmap) and a.dtype == np.float16 for a in s._shards)
    raw = np.load(tmp_path / "s" / "shard-00000.npy", allow_pickle=False)
    assert raw.shape == (50, 12)


def test_verify_detects_tampering(tmp_path):
    x, ids, _ = _data()
    write_store(tmp_path / "s", x, ids, backbone="test", shard_rows=50)
    FeatureStore.open(tmp_path / "s", verify=True)
    f = tmp_path / "s" / "shard-00001.npy"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    FeatureStore.open(tmp_path / "s")  # cheap open does not hash
    with pytest.raises(ChecksumError):
        FeatureStore.open(tmp_path / "s", verify=True)


def test_writer_resumes_after_last_complete_shard(tmp_path):
    x, ids, y = _data(n=95)
    p = tmp_path / "s"
    w = FeatureStoreWriter(p, 12, "test", shard_rows=20)
    w.append(x[:30], ids[:30], y[:30])
    w.append(x[30:47], ids[30:47], y[30:47])  # 2 complete shards (40 rows), 7 buffered
    del w  # killed: buffered rows are lost, complete shards stay
    with pytest.raises(InvalidInputError, match="partial"):
        FeatureStore.open(p)
    # a shard file written but not recorded in meta.json (kill between the two writes) is dropped
    np.save(p / "shard-00002.npy", np.zeros((20, 12), np.float16))
    w = FeatureStoreWriter(p, 12, "test", shard_rows=20)
    assert not (p / "shard-00002.npy").exists()
    assert w.num_rows == 40
    assert list(w.stored_sample_ids()) == list(ids[:40])
    for a in range(w.num_rows, 95, 13):
        w.append(x[a : a + 13], ids[a : a + 13], y[a : a + 13])
    s = w.close()
    assert s.num_rows == 95
    assert list(s.sample_ids) == list(ids)
    np.testing.assert_array_equal(s.labels, y)
    np.testing.assert_array_equal(s.to_array(normalize=False), x.astype(np.float16).astype(np.float32))
    assert not list(p.glob("*.ids.parquet"))
    meta = json.loads((p / "meta.json").read_text())
    assert meta["complete"] and meta["num_rows"] == 95


def test_writer_rejects_bad_input(tmp_path):
    w = FeatureStoreWriter(tmp_path / "s", 4, "test", shard_rows=10)
    with pytest.raises(InvalidInputError, match=r"shape \(n, 4\)"):
        w.append(np.zeros((3, 5)), ["a", "b", "c"])
    with pytest.raises(InvalidInputError, match="sample ids"):
        w.append(np.zeros((3, 4)), ["a", "b"])
    with pytest.raises(InvalidInputError, match="finite"):
        w.append(np.full((1, 4), np.nan), ["a"])
    w.append(np.zeros((2, 4)), ["a", "b"], [0, 1])
    with pytest.raises(InvalidInputError, match="labels"):
        w.append(np.zeros((2, 4)), ["c", "d"])
    with pytest.raises(InvalidInputError, match="same dim"):
        FeatureStoreWriter(tmp_path / "s", 8, "test", shard_rows=10)


def test_open_features_and_errors(tmp_path):
    x, ids, y = _data()
    write_store(tmp_path / "f" / "train", x, ids, y, backbone="t")
    with pytest.raises(InvalidInputError, match="val"):
        open_features(tmp_path / "f")
    write_store(tmp_path / "f" / "val", x[:10], ids[:10], y[:10], backbone="t")
    tr, va = open_features(tmp_path / "f")
    assert (tr.num_rows, va.num_rows) == (103, 10)
    with pytest.raises(InvalidInputError, match="meta.json"):
        FeatureStore.open(tmp_path)
    with pytest.raises(InvalidInputError, match="row indices"):
        tr.take([103])


def test_cli_info(tmp_path, capsys):
    from in21k_bench.cli import main

    x, ids, y = _data()
    write_store(tmp_path / "f" / "train", x, ids, y, backbone="t")
    write_store(tmp_path / "f" / "val", x[:9], ids[:9], y[:9], backbone="t")
    with pytest.raises(SystemExit) as e:
        main(["features", "info", str(tmp_path / "f"), "--json", "--verify"])
    assert e.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["train"]["num_rows"] == 103 and info["val"]["num_rows"] == 9 and info["train"]["has_labels"]
    with pytest.raises(SystemExit) as e:
        main(["features", "info", str(tmp_path)])
    assert e.value.code == 2


def test_backbone_record_and_preprocessing_in_meta(tmp_path):
    """meta.json may hold the backbone as a record (name + weights); the name, record and preprocessing
    read back, and a record without a name is refused with one line."""
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    s = write_store(tmp_path / "s", x, [f"train/n0/{i}.jpg" for i in range(10)], backbone="plain", shard_rows=5)
    assert (s.backbone, s.backbone_record, s.preprocessing) == ("plain", {"name": "plain"}, None)
    meta_file = tmp_path / "s" / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["backbone"] = {"name": "dinov2-vitg14", "weights": "lvd142m", "checkpoint_sha256": None}
    meta["preprocessing"] = {"resize": 256, "crop": 224, "interpolation": "bicubic"}
    meta_file.write_text(json.dumps(meta))
    s = FeatureStore.open(tmp_path / "s")
    assert s.backbone == "dinov2-vitg14" and s.backbone_record["weights"] == "lvd142m"
    assert s.preprocessing["crop"] == 224 and s.info()["preprocessing"]["resize"] == 256
    meta["backbone"] = {"weights": "x"}
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="'backbone' a name or an object"):
        FeatureStore.open(tmp_path / "s")
