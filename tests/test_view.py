"""Benchmarks as views of one feature store: a store made for in21k serves tiny and coarse-d4 with the
right rows and labels and the same results as stores made for those benchmarks; sample-level
selection; one-line errors when the store lacks what the benchmark needs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli
from in21k_bench.benchmark import load
from in21k_bench.errors import InvalidInputError
from in21k_bench.features.simulate import simulate_features
from in21k_bench.features.store import write_store
from in21k_bench.features.view import StoreView, benchmark_view, open_benchmark_features, select_rows

SIM = dict(scale=0.001, val_scale=0.02, dim=16, seed=3, progress=False)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    simulate_features("in21k", root / "in21k", **SIM)
    simulate_features("tiny", root / "tiny", **SIM)
    simulate_features("coarse-d4", root / "coarse-d4", **SIM)
    return root


@pytest.mark.parametrize("name", ["tiny", "coarse-d4"])
def test_view_equals_a_store_made_for_the_benchmark(stores, name):
    from in21k_bench.features.store import open_features

    bench = load(name)
    train, val = open_benchmark_features(stores / "in21k", bench)
    own_train, own_val = open_features(stores / name)
    for view, own in ((train, own_train), (val, own_val)):
        assert isinstance(view, StoreView) and view.path == (stores / "in21k" / view.view_of["split"])
        assert list(view.sample_ids) == list(own.sample_ids)
        np.testing.assert_array_equal(view.labels, own.labels)
        np.testing.assert_array_equal(view.to_array(), own.to_array())
        np.testing.assert_array_equal(view.take([5, 0, 3]), own.take([5, 0, 3]))
        starts, parts = zip(*view.iter_chunks(chunk_rows=777))
        np.testing.assert_array_equal(np.concatenate(parts), own.to_array())
        # no feature bytes were copied: the view reads the parent's memory-mapped shards
        assert view._shards is view.parent._shards
    if name == "coarse-d4":  # relabelled: every in21k image is kept, labels are the class or a node above it
        assert train.num_rows == train.parent.num_rows
        tax = bench.taxonomy
        label_wnid = bench.classes.set_index("label")["wnid"]
        for sid, lab in list(zip(train.sample_ids, train.labels))[::997]:
            c = tax.index(sid.split("/")[1])
            # v1: an MIIL ancestor; v2: the direct WordNet hypernym, which may be a synset outside the classes
            assert label_wnid[lab] in {tax.node_wnids[a] for a in tax.node_path(c)}


@pytest.mark.parametrize("name", ["tiny", "coarse-d4"])
def test_fit_kmeans_on_a_view_matches_the_benchmark_store(stores, tmp_path, capsys, name):
    code, out, err = run_cli(
        [
            "fit",
            "kmeans",
            "--features",
            str(stores / "in21k"),
            "--benchmark",
            name,
            "--out",
            str(tmp_path / "view"),
            "--device",
            "cpu",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    a = json.loads(out)
    code, out, err = run_cli(
        [
            "fit",
            "kmeans",
            "--features",
            str(stores / name),
            "--benchmark",
            name,
            "--out",
            str(tmp_path / "own"),
            "--device",
            "cpu",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    b = json.loads(out)
    assert a["num_clusters"] == b["num_clusters"] == load(name).num_classes
    assert a["objective"] == pytest.approx(b["objective"], rel=1e-6)
    for f in ("top1.npy", "top5.npy", "centroids.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "view" / f), np.load(tmp_path / "own" / f))


def test_knn_and_probe_on_a_view(stores, tmp_path, capsys):
    code, out, err = run_cli(
        [
            "knn",
            "--features",
            str(stores / "in21k"),
            "--benchmark",
            "tiny",
            "--k",
            "3",
            "--device",
            "cpu",
            "--json",
            "--chunk-rows",
            "500",
        ],
        capsys,
    )
    assert code == 0, err
    info = json.loads(out)
    assert info["out"].endswith("knn-k3-tiny.npy") and info["benchmark"] == "tiny"
    code, out, err = run_cli(
        ["knn", "--features", str(stores / "tiny"), "--k", "3", "--device", "cpu", "--json"], capsys
    )
    assert code == 0, err
    np.testing.assert_array_equal(np.load(info["out"]), np.load(json.loads(out)["out"]))
    code, out, err = run_cli(
        [
            "probe",
            "--features",
            str(stores / "in21k"),
            "--benchmark",
            "tiny",
            "--out",
            str(tmp_path / "p"),
            "--epochs",
            "2",
            "--no-diagnostics",
            "--device",
            "cpu",
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["num_classes"] == load("tiny").num_classes


def test_store_lacking_the_benchmark_is_a_one_line_error(stores, capsys):
    code, out, err = run_cli(
        [
            "fit",
            "kmeans",
            "--features",
            str(stores / "tiny"),
            "--benchmark",
            "small",
            "--out",
            str(stores / "x"),
            "--device",
            "cpu",
        ],
        capsys,
    )
    assert code == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert "benchmark small train: expected rows of all 3,146 classes" in line and "found none for" in line
    assert "use features extracted with --benchmark in21k" in line
    # a val split short of the manifest's 50 images per class (a real, not simulated, store)
    bench = load("tiny")
    sc = bench.source_classes
    ids = [f"val/{w}/x_{i}.JPEG" for w in sc["wnid"] for i in range(3)]
    real = write_store(stores / "short" / "val", np.ones((len(ids), 4), np.float32), ids, backbone="t", split="val")
    with pytest.raises(InvalidInputError, match=r"expected 50 val rows of class .* found 3"):
        select_rows(real, bench, "val")


def test_sample_level_benchmark_by_id_and_by_file_name(tmp_path):
    bench = load("imagenet-1k")
    table = bench.sample_table("val")
    assert table is not None and len(table) == 50_000
    wnid = bench.classes.set_index("label")["wnid"]
    # the same images extracted from a copy with val in class folders, in another order
    ids = np.array(
        [f"val/{wnid[lab]}/{sid.rsplit('/', 1)[-1]}" for sid, lab in zip(table["sample_id"], table["label"])],
        dtype=object,
    )
    perm = np.random.default_rng(0).permutation(len(ids))
    x = np.arange(len(ids), dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    store = write_store(tmp_path / "val", x[perm], ids[perm], backbone="t", split="val")
    view = benchmark_view(store, bench, "val")
    np.testing.assert_array_equal(view.labels, bench.val_labels())
    np.testing.assert_array_equal(
        view.to_array(normalize=False)[:, 0], np.arange(len(ids), dtype=np.float16).astype(np.float32)
    )
    with pytest.raises(InvalidInputError, match="missing"):
        select_rows(write_store(tmp_path / "v2", x[:10], ids[:10], backbone="t"), bench, "val")


def test_class_rule_agrees_with_materialize_including_odd_keep(tmp_path):
    """The view's class-level rule and Benchmark.materialize give the same samples, order and labels."""
    bench = load("imagenet-1k-odd")
    root = tmp_path / "in1k"
    wnids = bench.source_classes["wnid"].tolist()
    for w in wnids[:6]:
        d = root / "train" / w
        d.mkdir(parents=True)
        for i in range(5):
            (d / f"{w}_{i:04d}.JPEG").touch()
    want = bench.materialize_split(root, "train")
    full = load("imagenet-1k").materialize_split(root, "train")  # the image set's own listing
    store = write_store(
        tmp_path / "s", np.ones((len(full), 2), np.float32), full["sample_id"].tolist(), backbone="t", split="train"
    )
    sc = bench.source_classes
    sub = sc[sc["wnid"].isin(wnids[:6])]
    bench.source_classes = sub  # the folder holds 6 classes: compare on those
    rows, labels = select_rows(store, bench, "train")
    assert list(store.sample_ids[rows]) == want["sample_id"].tolist()
    np.testing.assert_array_equal(labels, want["label"].to_numpy())
    assert (labels % 2 == 1).any() and len(rows) < len(full)
