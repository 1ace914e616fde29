"""The main job (`in21k-bench demo`) end to end on a small configuration."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_cli


_run = run_cli


def test_demo_runs_all_methods_and_reports_hierarchy_metrics(tmp_path, capsys):
    argv = ["demo", "--out", str(tmp_path), "--subtree", "n02121808", "--scale", "0.05", "--val-scale", "0.2",
            "--dim", "16", "--epochs", "1", "--heads", "2", "--knn", "3", "--json"]  # domestic_cat: 16 classes
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    res = json.loads(out)["results"]
    assert [r["method"] for r in res] == ["kmeans", "temi", "scanv2"]
    for r in res:
        for k in ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari"):
            assert 0.0 <= r[k] <= 1.0
        assert r["top1_L"] >= r["acc"] and r["top5_L"] >= r["top5_1"] >= r["acc"]
    # completed steps are reused on a second run (features are not rebuilt)
    shard = next((tmp_path / "features" / "train").glob("shard-*.npy"))
    before = shard.stat().st_mtime_ns
    code, out, _ = _run(argv[:-1] + ["--methods", "kmeans"], capsys)
    assert code == 0 and "kmeans" in out and "SIMULATED" in out
    assert shard.stat().st_mtime_ns == before


def test_demo_rejects_unknown_method(tmp_path, capsys):
    code, out, err = _run(["demo", "--out", str(tmp_path), "--methods", "kmeans,dbscan"], capsys)
    assert code == 2 and err.count("\n") == 1 and "dbscan" in err


def test_simulate_subtree_keeps_only_descendants(tmp_path):
    from in21k_bench.features.simulate import simulate_features
    from in21k_bench.taxonomy import load_taxonomy

    tax = load_taxonomy()
    tr, va = simulate_features("in21k", tmp_path, scale=0.01, val_scale=0.1, dim=8, subtree="n02121808", progress=False)
    wn = tr.meta["label_wnids"]
    root = tax.index("n02121808")
    assert wn[0] == "n02121808" and len(wn) == 1 + len(tax.descendants(root))
    assert all(root in tax.path(tax.index(w)) for w in wn)
    assert set(np.unique(va.labels)) == set(range(len(wn)))
