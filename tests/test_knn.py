"""Exact kNN: against brute force, self excluded by index (also with duplicates), chunked / blocked,
resumable after an interruption, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from in21k_bench.errors import InvalidInputError
from in21k_bench.features.store import l2_normalize, write_store
from in21k_bench.methods import knn as knn_mod
from in21k_bench.methods.knn import exact_knn, mine_knn


def _brute(xn, k):
    s = xn.astype(np.float64) @ xn.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def _x(n=600, d=16, seed=0):
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


@pytest.mark.parametrize("chunk_rows,db_rows", [(10_000, None), (97, 150), (64, 599)])
def test_exact_knn_matches_brute_force(chunk_rows, db_rows):
    x = _x()
    got = exact_knn(x, 10, chunk_rows=chunk_rows, db_rows=db_rows)
    assert got.dtype == np.int32 and got.shape == (600, 10)
    np.testing.assert_array_equal(got, _brute(x, 10))
    assert not (got == np.arange(600)[:, None]).any()


def test_self_excluded_by_index_with_duplicates():
    # rows 0..3 are identical: they tie with themselves, so "drop the first column" would leak self-pairs
    x = _x(n=50)
    x[1:4] = x[0]
    got = exact_knn(x, 5)
    for i in range(50):
        assert i not in got[i], (i, got[i])
        assert len(set(got[i].tolist())) == 5
    for i in range(4):
        assert set(got[i][:3].tolist()) == {0, 1, 2, 3} - {i}
    # more duplicates than k + 1: self may not even be in the k + 1 list -> last one dropped
    y = np.repeat(_x(n=2), 8, axis=0)
    got = exact_knn(y, 3)
    assert not (got == np.arange(16)[:, None]).any()


def test_k_must_be_smaller_than_rows():
    with pytest.raises(InvalidInputError, match="k < number of rows"):
        exact_knn(_x(n=5), 5)
    with pytest.raises(InvalidInputError, match="2-D"):
        exact_knn(np.zeros(5, np.float32), 1)


def test_mine_knn_resumes_after_interruption(tmp_path, monkeypatch):
    raw = np.random.default_rng(1).normal(size=(700, 16)).astype(np.float32)
    store = write_store(tmp_path / "s", raw, backbone="t", shard_rows=128)
    ref = _brute(store.to_array(), 7)
    out = tmp_path / "knn.npy"

    calls = {"n": 0}
    real = knn_mod._search_chunk

    def dying(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # killed during the 4th chunk
        return real(*a, **kw)

    monkeypatch.setattr(knn_mod, "_search_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        mine_knn(store, 7, out, chunk_rows=100, db_rows=250, device="cpu", progress=False)
    prog = json.loads((tmp_path / "knn.npy.progress.json").read_text())
    assert prog["done"] == [0, 1, 2] and not out.exists()
    # poison an unfinished chunk in the partial file: it must be recomputed, finished ones kept
    part = np.load(tmp_path / "knn.npy.partial.npy", mmap_mode="r+")
    part[300:400] = -5
    part.flush()
    del part

    seen = []

    def counting(q, first_row, *a, **kw):
        seen.append(first_row)
        return real(q, first_row, *a, **kw)

    monkeypatch.setattr(knn_mod, "_search_chunk", counting)
    res = mine_knn(store, 7, out, chunk_rows=100, db_rows=250, device="cpu", progress=False)
    assert seen == [300, 400, 500, 600]  # nothing redone, nothing skipped
    assert res.dtype == np.int32 and res.shape == (700, 7)
    np.testing.assert_array_equal(np.asarray(res), ref)
    assert not (tmp_path / "knn.npy.partial.npy").exists() and not (tmp_path / "knn.npy.progress.json").exists()
    meta = json.loads((tmp_path / "knn.json").read_text())
    assert meta["k"] == 7 and meta["self_excluded"] == "by index"
    # a completed file is not recomputed
    seen.clear()
    mine_knn(store, 7, out, chunk_rows=100, device="cpu", progress=False)
    assert seen == []


def test_mine_knn_resume_needs_same_arguments(tmp_path, monkeypatch):
    store = write_store(tmp_path / "s", _x(n=300), backbone="t")
    monkeypatch.setattr(knn_mod, "_search_chunk", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        mine_knn(store, 5, tmp_path / "k.npy", chunk_rows=100, progress=False)
    with pytest.raises(InvalidInputError, match="chunk_rows"):
        mine_knn(store, 5, tmp_path / "k.npy", chunk_rows=50, progress=False)
    with pytest.raises(InvalidInputError, match=".npy"):
        mine_knn(store, 5, tmp_path / "k.bin", progress=False)


def test_cli_knn(tmp_path, capsys):
    from in21k_bench.cli import main

    x = _x(n=200)
    write_store(tmp_path / "f" / "train", x, backbone="t")
    with pytest.raises(SystemExit) as e:
        main(["knn", "--features", str(tmp_path / "f"), "--k", "4", "--device", "cpu", "--json"])
    assert e.value.code == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [200, 4]
    got = np.load(tmp_path / "f" / "train" / "knn-k4.npy")
    np.testing.assert_array_equal(got, _brute(l2_normalize(x.astype(np.float16)), 4))
