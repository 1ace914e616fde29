"""The main job (`in21k-bench demo`) end to end on a small configuration."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_cli

_run = run_cli


def test_demo_runs_all_methods_and_reports_hierarchy_metrics(tmp_path, capsys):
    argv = [
        "demo",
        "--out",
        str(tmp_path),
        "--subtree",
        "n02121808",
        "--scale",
        "0.05",
        "--val-scale",
        "0.2",
        "--dim",
        "16",
        "--steps",
        "10",
        "--heads",
        "2",
        "--knn",
        "3",
        "--json",
    ]  # domestic_cat: 16 classes
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    info = json.loads(out)
    assert (
        info["synthetic"] is True
        and info["preset"] == "fine"
        and info["shape"] == {"rank": 1, "separation": 4.0, "curve": 1.5}
    )
    res = info["results"]
    assert [r["method"] for r in res] == ["kmeans", "temi", "scanv2"]
    temi, scan = res[1]["settings"], res[2]["settings"]
    assert temi["steps"] >= 10 and temi["peak_lr"] == 1e-3 and temi["regime"] == "adapted" and temi["k"] == 3
    assert "knn" in temi["from_demo"] and "num_heads" in temi["from_demo"] and "peak_lr" not in temi["from_demo"]
    assert scan["batch"] == min(512, scan["batch"])
    for r in res:
        for k in ("acc", "top1_L", "top5_1", "top5_L", "nmi", "ari"):
            assert 0.0 <= r[k] <= 1.0
        assert r["top1_L"] >= r["acc"] and r["top5_L"] >= r["top5_1"] >= r["acc"]
    # completed steps are reused on a second run (features are not rebuilt)
    shard = next((tmp_path / "features" / "train").glob("shard-*.npy"))
    before = shard.stat().st_mtime_ns
    code, out, _ = _run(argv[:-1] + ["--methods", "kmeans"], capsys)
    assert code == 0 and "kmeans" in out and "SIMULATED" in out and "SYNTHETIC" in out
    assert shard.stat().st_mtime_ns == before
    from in21k_bench.scoring.metric_spec import metric

    assert metric("acc").short in out and metric("top5_L").short in out  # headers from metric_spec


def test_demo_coarse_preset_uses_the_same_rows_with_coarser_labels(tmp_path, capsys):
    base = ["--scale", "0.01", "--val-scale", "0.1", "--dim", "8", "--methods", "kmeans", "--json"]
    code, out, err = _run(["demo", "--out", str(tmp_path / "f")] + base, capsys)
    assert code == 0, err
    code, out2, err = _run(["demo", "--preset", "coarse", "--out", str(tmp_path / "c")] + base, capsys)
    assert code == 0, err
    assert json.loads(out2)["benchmark"] == "coarse-d2" and "SYNTHETIC" in json.loads(out2)["note"]
    from in21k_bench.features.store import open_features

    fine, coarse = open_features(tmp_path / "f" / "features")[0], open_features(tmp_path / "c" / "features")[0]
    assert len(fine.meta["label_wnids"]) == 155 and len(coarse.meta["label_wnids"]) == 35
    # the class distribution depends only on (seed, wnid): the coarse preset relabels the same points
    xf, xc = fine.to_array(normalize=False), coarse.to_array(normalize=False)
    key = lambda ids: np.argsort(np.asarray(ids, dtype=str), kind="stable")  # noqa: E731
    np.testing.assert_array_equal(xf[key(fine.sample_ids)], xc[key(coarse.sample_ids)])
    yc = np.asarray(coarse.labels)[key(coarse.sample_ids)]
    yf = np.asarray(fine.labels)[key(fine.sample_ids)]
    assert all(len(np.unique(yc[yf == c])) == 1 for c in np.unique(yf))  # every fine class inside one coarse label


def test_demo_settings_are_fits_defaults_except_heads_steps_and_scanv2_batch():
    from in21k_bench.demo import DemoConfig
    from in21k_bench.methods.recipe import default_config

    cfg = DemoConfig()
    n, c = 20_119, 155  # the fine preset's training rows and labels
    temi, scan = cfg.recipe("temi", n, c).config, cfg.recipe("scanv2", n, c).config
    fit_temi = default_config("temi", n, c).config
    assert temi.knn == fit_temi.knn == 43 and scan.knn == 43  # fit's k = clamp(N / 3C, 5, 50)
    for key in ("batch_size", "lr", "lr_schedule", "teacher_momentum", "freeze_last_layer_epochs", "input_norm"):
        assert getattr(temi, key) == getattr(fit_temi, key), key
    assert temi.num_heads == scan.num_heads == 2 and fit_temi.num_heads == 8
    temi_steps = temi.epochs * (n // temi.batch_size)
    scan_steps = scan.epochs * (n // scan.batch_size)
    assert temi_steps >= 2000 and temi_steps - 2000 < n // temi.batch_size  # the fewest epochs giving >= 2,000
    assert scan.batch_size == 512 and scan.lr == temi.lr
    assert abs(scan_steps * 512 - temi_steps * temi.batch_size) <= (n // 512) * 512  # about the same pairs
    assert DemoConfig(knn=7).recipe("scanv2", n, c).config.knn == 7


def test_demo_retrains_a_method_whose_settings_changed(tmp_path, capsys):
    base = ["demo", "--out", str(tmp_path), "--subtree", "n02121808", "--scale", "0.05", "--val-scale", "0.2"]
    base += ["--dim", "16", "--heads", "1", "--knn", "3", "--methods", "temi", "--json"]
    code, out, err = _run(base + ["--steps", "6"], capsys)
    assert code == 0, err
    first = json.loads(out)["results"][0]["settings"]["steps"]
    code, out, err = _run(base + ["--steps", "40"], capsys)  # the old checkpoint has other epochs
    assert code == 0, err
    assert "training from scratch" in err and json.loads(out)["results"][0]["settings"]["steps"] > first
    fit_json = json.loads((tmp_path / "temi" / "fit.json").read_text())
    assert fit_json["total_steps"] >= 40
    # simulated store: its backbone name only, no preprocessing (nothing invented)
    assert (
        fit_json["provenance"]["backbone"]
        == {"name": json.loads((tmp_path / "features" / "train" / "meta.json").read_text())["backbone"]}
        and fit_json["provenance"]["preprocessing"] is None
    )


def test_demo_rejects_unknown_preset(tmp_path, capsys):
    code, out, err = _run(["demo", "--out", str(tmp_path), "--preset", "medium"], capsys)
    assert code == 2 and err.count("\n") == 1 and "medium" in err


def test_demo_rejects_unknown_method(tmp_path, capsys):
    code, out, err = _run(["demo", "--out", str(tmp_path), "--methods", "kmeans,dbscan"], capsys)
    assert code == 2 and err.count("\n") == 1 and "dbscan" in err


def test_simulate_subtree_keeps_only_descendants(tmp_path):
    from in21k_bench.features.simulate import simulate_features
    from in21k_bench.registry.taxonomy import load_taxonomy

    tax = load_taxonomy()
    tr, va = simulate_features("in21k", tmp_path, scale=0.01, val_scale=0.1, dim=8, subtree="n02121808", progress=False)
    wn = tr.meta["label_wnids"]
    root = tax.index("n02121808")
    assert wn[0] == "n02121808" and len(wn) == 1 + len(tax.descendants(root))
    assert all(root in tax.path(tax.index(w)) for w in wn)
    assert set(np.unique(va.labels)) == set(range(len(wn)))
