"""Provenance end to end: store meta.json -> fit.json / run.json -> evaluate --json -> submit -> check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import PAPER_PREPROCESSING, run_cli
from in21k_bench.evaluation.provenance import missing_fields, provenance_record
from in21k_bench.features.digits import digits_split, write_digits
from in21k_bench.features.store import FeatureStore, write_store
from in21k_bench.manifests.index import ManifestIndex
from in21k_bench.version import __version__

BACKBONE = {
    "name": "digits-pixels",
    "spec": "timm:vit_tiny_patch16_224.augreg_in21k",
    "loader": "timm",
    "weights": "vit_tiny_patch16_224.augreg_in21k",
    "checkpoint_sha256": None,
    "pretrained": True,
    "dim": 64,
}
PREP = PAPER_PREPROCESSING


def _recorded_digits(root):
    """The digits features written with a full backbone record and preprocessing in meta.json."""
    for split, (x, y, idx) in digits_split().items():
        ids = np.array([f"digits/{split}/{i:04d}" for i in idx], dtype=object)
        write_store(root / split, x, ids, y, backbone=BACKBONE, preprocessing=PREP, split=split, num_classes=10)
    return root


def test_manifest_sha256_comes_from_the_index():
    rec = provenance_record(benchmark="tiny", version="v1")
    index = ManifestIndex.load()
    files = index.benchmark_files("tiny", "v1")
    assert sorted(rec["manifest_files"]) == sorted(files)
    assert all(rec["manifest_files"][f] == index.file_entry(f).sha256 for f in files)
    import hashlib

    listing = "".join(f"{index.file_entry(f).sha256}  {f}\n" for f in sorted(files))
    assert rec["manifest_sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert rec["package_version"] == __version__ and rec["backbone"] is None
    # an unknown benchmark / labels file: nothing invented
    assert provenance_record()["manifest_sha256"] is None
    assert set(missing_fields(provenance_record())) >= {"manifest_sha256", "backbone", "preprocessing"}


def test_kmeans_run_json_and_evaluate_json_carry_the_store_record(tmp_path, capsys):
    pytest.importorskip("faiss")
    feats = _recorded_digits(tmp_path / "feats")
    out = tmp_path / "km"
    code, _, err = run_cli(
        ["fit", "kmeans", "--features", str(feats), "--num-clusters", "10", "--out", str(out)], capsys
    )
    assert code == 0, err
    prov = json.loads((out / "run.json").read_text())["provenance"]
    assert prov["backbone"] == BACKBONE and prov["preprocessing"] == PREP
    assert prov["package_version"] == __version__ and prov["features"] == str(feats / "train")
    code, js, err = run_cli(["evaluate", str(out), "--features", str(feats), "--json"], capsys)
    assert code == 0, err
    ev = json.loads(js)["provenance"]
    assert ev["backbone"] == BACKBONE and ev["preprocessing"] == PREP and ev["package_version"] == __version__
    assert ev["manifest_version"] is None and ev["manifest_sha256"] is None  # scored against a store, no manifest
    # a single file of the folder whose record lists it with that sha256: the same provenance
    code, js, _ = run_cli(["evaluate", str(out / "top5.npy"), "--features", str(feats), "--json"], capsys)
    assert code == 0 and json.loads(js)["provenance"]["backbone"] == BACKBONE
    # the same file copied elsewhere (no record beside it): unknown, not invented
    lone = tmp_path / "lone.npy"
    lone.write_bytes((out / "top5.npy").read_bytes())
    code, js, _ = run_cli(["evaluate", str(lone), "--features", str(feats), "--json"], capsys)
    assert code == 0
    assert json.loads(js)["provenance"]["backbone"] is None and json.loads(js)["provenance"]["preprocessing"] is None


def test_older_store_gives_name_only_and_no_preprocessing(tmp_path, capsys):
    pytest.importorskip("faiss")
    write_digits(tmp_path / "feats")
    out = tmp_path / "km"
    code, _, err = run_cli(
        ["fit", "kmeans", "--features", str(tmp_path / "feats"), "--num-clusters", "10", "--out", str(out)], capsys
    )
    assert code == 0, err
    code, js, _ = run_cli(["evaluate", str(out), "--features", str(tmp_path / "feats"), "--json"], capsys)
    ev = json.loads(js)["provenance"]
    assert ev["backbone"] == {"name": "pixels:sklearn-digits"} and ev["preprocessing"] is None
    assert "backbone.weights" in missing_fields(ev) and "preprocessing" in missing_fields(ev)


def test_fit_temi_fit_json_carries_the_store_record(tmp_path, capsys):
    pytest.importorskip("torch")
    from in21k_bench.methods.fit import fit_features

    feats = _recorded_digits(tmp_path / "feats")
    fit_features(
        "temi", feats, tmp_path / "run", num_clusters=10, device="cpu", progress=False, epochs=1, num_heads=1, knn=5
    )
    rec = json.loads((tmp_path / "run" / "fit.json").read_text())
    assert rec["provenance"]["backbone"] == BACKBONE and rec["provenance"]["preprocessing"] == PREP
    assert rec["prediction_files"] and rec["method"] == "temi"  # the record written by train.fit is kept
    code, js, err = run_cli(["evaluate", str(tmp_path / "run"), "--features", str(feats), "--json"], capsys)
    assert code == 0, err
    assert json.loads(js)["provenance"]["preprocessing"] == PREP


def _imagenet1k_folders(tmp_path, store: FeatureStore, n_runs=2):
    """Prediction folders on imagenet-1k (a noisy relabelling of the val labels) with a run record
    whose provenance is the store's, as `fit` writes it."""
    import in21k_bench
    from in21k_bench.evaluation.predictions import write_predictions

    b = in21k_bench.load("imagenet-1k")
    labels = b.val_labels()
    rng = np.random.default_rng(3)
    perm = rng.permutation(b.num_classes)
    prov = provenance_record(store=store, benchmark=b.name, version=b.version)
    folders = []
    for i in range(n_runs):
        top1 = perm[labels].copy()
        noisy = rng.random(len(labels)) < 0.3 + 0.1 * i
        top1[noisy] = rng.integers(0, b.num_classes, noisy.sum())
        d = tmp_path / f"run-{i}"
        write_predictions(d, top1, record={"method": "kmeans", "provenance": prov}, record_name="run.json")
        folders.append(d)
    return folders, b


def test_submit_carries_provenance_and_check_refuses_incomplete(tmp_path, capsys, monkeypatch):
    from in21k_bench import leaderboard as lb

    monkeypatch.chdir(tmp_path)
    store = write_store(tmp_path / "store", np.eye(4, 64), backbone=BACKBONE, preprocessing=PREP)
    folders, b = _imagenet1k_folders(tmp_path, store)
    root = tmp_path / "lb"
    code, out, err = run_cli(
        ["submit", *map(str, folders), "-b", "imagenet-1k", "-m", "KM", "--root", str(root), "--copy-predictions"]
        + ["--json"],
        capsys,
    )
    assert code == 0, err
    assert "provenance incomplete" not in err
    prov = json.loads(out)["provenance"]
    want = provenance_record(benchmark=b.name, version=b.version)
    assert prov["backbone"]["weights"] == BACKBONE["weights"] and prov["preprocessing"]["crop"] == 224
    assert prov["manifest_sha256"] == want["manifest_sha256"] and prov["manifest_version"] == b.version
    code, js, _ = run_cli(["evaluate", str(folders[0]), "-b", "imagenet-1k", "--json"], capsys)
    ev = json.loads(js)["provenance"]
    assert {k: ev[k] for k in ("manifest_sha256", "package_version")} == {
        k: prov[k] for k in ("manifest_sha256", "package_version")
    }
    assert lb.check_leaderboard(root, check_rendered=False) == []
    # remove the preprocessing and a backbone field: refused, one line naming the entry and the fields
    path = root / "submissions" / "imagenet-1k" / "km-unspecified.json"
    d = json.loads(path.read_text())
    d["provenance"]["preprocessing"] = None
    d["provenance"]["backbone"]["weights"] = None
    path.write_text(json.dumps(d))
    (problem,) = lb.check_leaderboard(root, check_rendered=False)
    assert "km-unspecified" in problem and "backbone.weights, preprocessing" in problem and "\n" not in problem
    code, _, err = run_cli(["leaderboard", "check", "--root", str(root)], capsys)
    assert code != 0 and "backbone.weights, preprocessing" in err
    # a reported entry needs none
    d.update(status="reported", source="Table 1", predictions=[], predictions_sha256=[], package_version=None)
    d["metrics"] = {k: {"mean": v["mean"], "std": None, "runs": []} for k, v in d["metrics"].items()}
    path.write_text(json.dumps(d))
    assert lb.check_leaderboard(root, check_rendered=False) == []


def test_submit_refuses_runs_with_different_backbones(tmp_path, capsys, monkeypatch):
    from in21k_bench.fileio import write_json

    monkeypatch.chdir(tmp_path)
    store = write_store(tmp_path / "store", np.eye(4, 64), backbone=BACKBONE, preprocessing=PREP)
    folders, _ = _imagenet1k_folders(tmp_path, store)
    rec = json.loads((folders[1] / "run.json").read_text())
    rec["provenance"]["backbone"] = dict(BACKBONE, weights="other")
    write_json(folders[1] / "run.json", rec)
    code, _, err = run_cli(["submit", *map(str, folders), "-b", "imagenet-1k", "-m", "KM", "--root", "lb"], capsys)
    assert code == 2 and "expected every run with the same backbone" in err and err.count("\n") == 1
