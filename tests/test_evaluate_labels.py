"""``evaluate --labels LABELS.npy`` / ``--features DIR`` (no benchmark): metrics, JSON, one-line errors."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment

import in21k_bench
from conftest import run_cli
from in21k_bench.errors import InvalidInputError
from in21k_bench.evaluation.predictions import write_predictions
from in21k_bench.features.store import write_store

N, C = 600, 6


def _data(K=C, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, N)
    perm = rng.permutation(K)
    top1 = np.where(rng.random(N) < 0.7, perm[labels % K], rng.integers(0, K, N))
    others = np.stack([(top1 + j) % K for j in range(1, 5)], axis=1)
    return labels, np.concatenate([top1[:, None], others], axis=1)


def _dense_acc(labels, top1, K):
    d = np.zeros((int(labels.max()) + 1, K))
    np.add.at(d, (labels, top1), 1)
    ri, ci = linear_sum_assignment(d, maximize=True)
    return d[ri, ci].sum() / len(labels)


def _one_line_error(capsys, *argv, contains=None):
    code, out, err = run_cli(["evaluate", *map(str, argv)], capsys)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert "expected" in lines[0] and "found" in lines[0], lines[0]
    if contains:
        assert contains in lines[0], lines[0]
    return lines[0]


def test_labels_file_json_matches_direct_computation(tmp_path, capsys):
    labels, top5 = _data()
    np.save(tmp_path / "y.npy", labels.astype(np.int32))
    write_predictions(tmp_path / "run", top5[:, 0], top5)
    code, out, err = run_cli(["evaluate", str(tmp_path / "run"), "--labels", str(tmp_path / "y.npy"), "--json"], capsys)
    assert code == 0, err
    js = json.loads(out)
    assert js["benchmark"] == "custom" and js["version"] is None and js["n"] == N and js["num_classes"] == C
    assert js["acc"] == pytest.approx(_dense_acc(labels, top5[:, 0], C))
    assert js["top5_1"] >= js["acc"] and js["k"] == 5
    # no benchmark, no label sets: the -> L metrics are not reported
    assert js["top1_L"] is None and js["top5_L"] is None
    assert js["acc_temi_overcluster"] is None  # K = C
    assert js["labels_sha256"] == hashlib.sha256((tmp_path / "y.npy").read_bytes()).hexdigest()
    assert js["labels_source"].endswith("y.npy")
    r = in21k_bench.evaluate(top5, labels=labels)  # Python: arrays in memory
    assert r.acc == js["acc"] and r.top5_1 == js["top5_1"]
    code, out, _ = run_cli(["evaluate", str(tmp_path / "run"), "--labels", str(tmp_path / "y.npy")], capsys)
    assert code == 0 and "ACC (top-1 -> 1, Hungarian)" in out and "top-1 -> L" in out
    assert "over-clustering" not in out  # K = C: the TEMI number is not shown


def test_over_clustering_reports_three_accuracies(tmp_path, capsys):
    K = 15
    labels, top5 = _data(K=K, seed=1)
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "p.npy", top5[:, 0])
    code, out, err = run_cli(
        ["evaluate", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "--num-clusters", str(K), "--json"],
        capsys,
    )
    assert code == 0, err
    js = json.loads(out)
    t = np.zeros((C, K), dtype=int)
    np.add.at(t, (labels, top5[:, 0]), 1)
    assert js["num_clusters"] == K and js["acc"] == pytest.approx(_dense_acc(labels, top5[:, 0], K))
    assert js["majority_acc"] == pytest.approx(t.max(axis=0).sum() / N)
    # this table has no ties between maximum matchings: TEMI's number = matched counts + majority of the rest
    ri, ci = linear_sum_assignment(t, maximize=True)
    rest = np.setdiff1d(np.arange(K), ci)
    assert js["acc_temi_overcluster"] == pytest.approx((t[ri, ci].sum() + t[:, rest].max(axis=0).sum()) / N)
    assert js["acc"] < js["acc_temi_overcluster"] <= js["majority_acc"]
    code, out, _ = run_cli(
        ["evaluate", str(tmp_path / "p.npy"), "--labels", str(tmp_path / "y.npy"), "-k", str(K)], capsys
    )
    assert "over-clustering ACC (TEMI eval)" in out and "majority-vote ACC" in out


def test_features_store_labels_and_id_keyed_tables(tmp_path, capsys):
    labels, top5 = _data(seed=2)
    ids = np.array([f"val/img_{i:05d}.png" for i in range(N)], dtype=object)
    x = np.random.default_rng(0).normal(size=(N, 8)).astype(np.float32)
    write_store(tmp_path / "feats" / "val", x, ids, labels=labels, backbone="test")
    write_store(tmp_path / "feats" / "train", x[:50], ids[:50], labels=labels[:50], backbone="test")
    np.save(tmp_path / "top5.npy", top5)
    np.save(tmp_path / "y.npy", labels)
    ref = in21k_bench.evaluate(tmp_path / "top5.npy", labels=tmp_path / "y.npy")
    code, out, err = run_cli(
        ["evaluate", str(tmp_path / "top5.npy"), "--features", str(tmp_path / "feats"), "--json"], capsys
    )
    assert code == 0, err
    js = json.loads(out)
    assert js["acc"] == ref.acc and js["top5_1"] == ref.top5_1 and js["nmi"] == ref.nmi and js["top1_L"] is None
    assert "features" in js["labels_source"]
    # a single store directory works too, and a table is put in the store's sample order by id
    order = np.random.default_rng(3).permutation(N)
    pd.DataFrame({"sample_id": ids[order], "cluster": top5[order, 0]}).to_csv(tmp_path / "p.csv", index=False)
    r = in21k_bench.evaluate(tmp_path / "p.csv", features=tmp_path / "feats" / "val")
    assert r.acc == ref.acc and r.n == N
    # a table with --labels needs the ids of the label rows
    with pytest.raises(InvalidInputError, match="expected sample ids"):
        in21k_bench.evaluate(tmp_path / "p.csv", labels=labels)
    pd.DataFrame({"sample_id": ids}).to_parquet(tmp_path / "ids.parquet")
    assert in21k_bench.evaluate(tmp_path / "p.csv", labels=labels, sample_ids=tmp_path / "ids.parquet").acc == ref.acc


def test_store_without_labels_is_a_one_line_error(tmp_path, capsys):
    x = np.zeros((10, 4), dtype=np.float32)
    ids = np.array([f"s{i}" for i in range(10)], dtype=object)
    write_store(tmp_path / "f" / "val", x, ids, backbone="test")
    np.save(tmp_path / "p.npy", np.zeros(10, dtype=np.int64))
    _one_line_error(capsys, tmp_path / "p.npy", "--features", tmp_path / "f", contains="written without labels")
    _one_line_error(capsys, tmp_path / "p.npy", "--features", tmp_path / "nothing", contains="features directory")


def test_bad_labels_are_one_line_errors(tmp_path, capsys):
    labels, top5 = _data()
    np.save(tmp_path / "p.npy", top5[:, 0])
    cases = {
        "short.npy": (labels[:-1], f"expected {N - 1} rows (one per label in"),
        "float.npy": (labels.astype(np.float64), "expected integer class labels, found float64"),
        "neg.npy": (np.where(np.arange(N) == 7, -1, labels), "expected class labels >= 0, found -1 (row 7)"),
        "twod.npy": (labels.reshape(-1, 2), "expected labels of shape (N,)"),
        "bool.npy": (labels > 2, "expected integer class labels, found bool"),
    }
    for name, (arr, msg) in cases.items():
        np.save(tmp_path / name, arr)
        _one_line_error(capsys, tmp_path / "p.npy", "--labels", tmp_path / name, contains=msg)
    (tmp_path / "pickled.npy").write_bytes(pickle.dumps(labels))
    _one_line_error(capsys, tmp_path / "p.npy", "--labels", tmp_path / "pickled.npy", contains="never unpickled")
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    _one_line_error(capsys, tmp_path / "p.npy", "--labels", tmp_path / "obj.npy", contains="object dtype")
    _one_line_error(capsys, tmp_path / "p.npy", "--labels", tmp_path / "missing.npy", contains="found nothing")
    _one_line_error(
        capsys,
        tmp_path / "p.npy",
        "--labels",
        tmp_path / "p.csv",
        contains="expected a .npy file of integer class labels",
    )
    # predictions are checked against the labels as against a benchmark
    np.save(tmp_path / "y.npy", labels)
    np.save(tmp_path / "bad.npy", np.where(np.arange(N) == 3, -2, top5[:, 0]))
    _one_line_error(
        capsys,
        tmp_path / "bad.npy",
        "--labels",
        tmp_path / "y.npy",
        contains="expected cluster ids >= 0 in top1, found -2 (row 3)",
    )


def test_exactly_one_label_source(tmp_path, capsys):
    labels, top5 = _data()
    np.save(tmp_path / "p.npy", top5[:, 0])
    np.save(tmp_path / "y.npy", labels)
    _one_line_error(
        capsys, tmp_path / "p.npy", contains="expected exactly one of --benchmark / --labels / --features, found none"
    )
    _one_line_error(
        capsys,
        tmp_path / "p.npy",
        "--labels",
        tmp_path / "y.npy",
        "--benchmark",
        "imagenet-1k",
        contains="found benchmark and labels",
    )
    _one_line_error(
        capsys,
        tmp_path / "p.npy",
        "--labels",
        tmp_path / "y.npy",
        "--version",
        "v1",
        contains="--version only with --benchmark",
    )
