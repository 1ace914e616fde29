"""Every registered benchmark: counts from independent recomputation, rules, label sets, inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import in21k_bench
from in21k_bench.errors import InvalidInputError, NeedsInputError, UnknownBenchmarkError
from in21k_bench.registry.catalog import list_definitions
from in21k_bench.registry.taxonomy import load_taxonomy

DOCUMENTED_NAMES = (
    ["in21k", "tiny", "small", "base", "large", "huge", "imbalanced-2k", "centered-2k"]
    + [f"coarse-d{d}" for d in range(1, 10)]
    + [
        "wordnet-leaf",
        "in21k-leaf",
        "leaf-hzr",
        "p-hzr",
        "clip-1k",
        "dinov2-1k",
        "sup-1k",
        "union-1k",
        "random-1k",
        "imagenet-1k",
        "imagenet-1k-odd",
        "real1k",
    ]
)
NEEDS_INPUT = {"leaf-hzr", "p-hzr", "clip-1k", "dinov2-1k", "sup-1k", "union-1k"}


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def test_registry_has_every_documented_benchmark():
    assert sorted(in21k_bench.list_benchmarks()) == sorted(DOCUMENTED_NAMES)
    assert {d.name for d in list_definitions() if d.status == "needs-input"} == NEEDS_INPUT


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("name", sorted(set(DOCUMENTED_NAMES) - NEEDS_INPUT))
def test_ready_benchmarks_load_consistently(name, version):
    b = in21k_bench.load(name, version)
    assert b.status == "ready" and b.version == version
    labels = b.val_labels()
    assert labels.shape == (b.num_val,) and labels.min() == 0 and labels.max() == b.num_classes - 1
    assert len(np.unique(labels)) == b.num_classes  # every label has val samples
    assert (b.classes["label"].to_numpy() == np.arange(b.num_classes)).all()
    sets = b.label_sets()
    assert sets.shape == (b.num_val, b.num_classes)
    if name != "real1k":
        assert sets[np.arange(b.num_val), labels].all()  # the label is always in its own set


@pytest.mark.parametrize("name", sorted(NEEDS_INPUT))
def test_needs_input_benchmarks_explain(name, tmp_path, monkeypatch):
    monkeypatch.setenv("IN21K_BENCH_INPUTS", str(tmp_path))
    with pytest.raises(NeedsInputError) as e:
        in21k_bench.load(name)
    msg = str(e.value)
    assert name in msg and "in21k-bench" in msg and "missing" in msg and "\n" not in msg


def _percentile_set(counts, lo, hi):
    a, b = np.percentile(counts, [lo, hi])
    return set(np.flatnonzero((counts >= a) & (counts <= b)).tolist())


@pytest.mark.parametrize("name,s", [("tiny", 5), ("small", 15), ("base", 25), ("large", 35), ("huge", 45)])
def test_frequency_family(name, s, tax):
    b = in21k_bench.load(name)
    expected = _percentile_set(tax.train_count, 50 - s, 50 + s)
    assert set(b.source_classes["class_index"]) == expected
    assert b.num_val == 50 * len(expected)
    assert b.num_train == int(tax.train_count[sorted(expected)].sum())


def test_frequency_nesting_and_sizes():
    sizes = [in21k_bench.load(n).num_classes for n in ("tiny", "small", "base", "large", "huge")]
    assert sizes == sorted(sizes) and sizes[-1] < 10450
    tiny = set(in21k_bench.load("tiny").source_classes["class_index"])
    assert tiny <= set(in21k_bench.load("small").source_classes["class_index"])


def test_imbalanced_and_centered(tax):
    imb = in21k_bench.load("imbalanced-2k", "v1")
    cen = in21k_bench.load("centered-2k", "v1")
    band = _percentile_set(tax.train_count, 45, 55)
    top = set(np.flatnonzero(tax.train_count >= np.percentile(tax.train_count, 90)).tolist())
    assert not band & top
    assert set(imb.source_classes["class_index"]) == band | top
    assert cen.num_classes == imb.num_classes
    ci = cen.source_classes["class_index"].to_numpy()
    c = tax.train_count
    # centred: everything outside the window is not closer to the median rank than the window's edges
    assert c[ci].min() <= np.median(c) <= c[ci].max()
    outside = np.setdiff1d(np.arange(len(c)), ci)
    assert ((c[outside] <= c[ci].min()) | (c[outside] >= c[ci].max())).all()
    assert imb.info()["imbalance_ratio"] > 2 * cen.info()["imbalance_ratio"]


@pytest.mark.parametrize("d", range(1, 10))
def test_coarse(d, tax):
    b = in21k_bench.load(f"coarse-d{d}", "v1")
    assert b.num_val == 522500 and b.num_train == int(tax.train_count.sum())
    sc = b.source_classes
    lab_wnid = b.classes["wnid"].to_numpy()[sc["label"].to_numpy()]
    for i, w in zip(sc["class_index"].to_numpy()[::37], lab_wnid[::37]):
        path = tax.path(i)
        expect = i if len(path) <= d else path[len(path) - d]
        assert tax.wnids[expect] == w
    assert b.num_classes == len(
        {(i if tax.level[i] <= d else tax.path(i)[len(tax.path(i)) - d]) for i in range(tax.num_classes)}
    )
    assert (b.classes["wnid"].map(lambda w: tax.level[tax.index(w)]) <= d).all()
    if d == 1:
        assert b.num_classes == int((tax.parent < 0).sum())


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_coarse_sizes_increase(version):
    sizes = [in21k_bench.load(f"coarse-d{d}", version).num_classes for d in range(1, 10)]
    assert sizes == sorted(sizes) and sizes[-1] < 10450


def test_leaf_sets(tax):
    assert set(in21k_bench.load("wordnet-leaf", "v1").source_classes["class_index"]) == set(
        np.flatnonzero(tax.is_wordnet_leaf).tolist()
    )
    assert set(in21k_bench.load("in21k-leaf").source_classes["class_index"]) == set(
        np.flatnonzero(tax.is_miil_leaf).tolist()
    )


def test_random_1k_is_seeded():
    b = in21k_bench.load("random-1k")
    expected = np.sort(np.random.default_rng(0).choice(10450, 1000, replace=False))
    assert (b.source_classes["class_index"].to_numpy() == expected).all()
    assert b.rule["seed"] == 0


def test_label_sets_are_ancestors(tax):
    b = in21k_bench.load("in21k")
    sets = b.label_sets()
    for i in (0, 5000, 300_000, 522_499):
        cls = i // 50
        assert sorted(sets[i].indices.tolist()) == sorted(tax.path(cls))
    tiny = in21k_bench.load("tiny")
    s = tiny.label_sets()
    lab_cls = tax.indices(tiny.classes["wnid"])
    for i in range(0, tiny.num_val, 5003):
        got = {int(lab_cls[j]) for j in s[i].indices}
        own = int(lab_cls[tiny.val_labels()[i]])
        assert got == {a for a in tax.path(own) if a in set(lab_cls.tolist())}


def test_imagenet1k_family(sources_dir):
    b = in21k_bench.load("imagenet-1k")
    assert (b.num_classes, b.num_train, b.num_val) == (1000, 1_281_167, 50_000)
    assert b.val_sample_ids()[0] == "val/ILSVRC2012_val_00000001.JPEG"
    odd = in21k_bench.load("imagenet-1k-odd")
    assert odd.num_val == 50_000 and odd.num_train is None and odd.rule["odd_keep"] == "even-positions"
    real = in21k_bench.load("real1k")
    assert real.num_val == 46_837
    rows = real.val_source_rows()
    assert len(rows) == 46_837 and rows[0] == 1  # image 1 (index 0) has an empty ReaL set
    assert (real.val_labels() == b.val_labels()[rows]).all()
    s = real.label_sets()
    assert s.shape == (46_837, 1000) and (np.diff(s.indptr) > 0).all()
    orig_in = s[np.arange(46_837), real.val_labels()].A1
    assert abs(orig_in.mean() - 0.900) < 0.001  # SOURCES.md: 90.0% keep the original label


def test_unknown_name_and_version():
    with pytest.raises(UnknownBenchmarkError, match="did you mean imbalanced-2k"):
        in21k_bench.load("imbalance-2k")
    with pytest.raises(UnknownBenchmarkError, match="expected a version"):
        in21k_bench.load("tiny", version="v9")


def _write_scores(path, tax, seed):
    rng = np.random.default_rng(seed)
    pd.DataFrame(
        {"wnid": tax.wnids, "score": rng.random(tax.num_classes), "class_index": np.arange(tax.num_classes)}
    ).to_parquet(path)


def test_model_based_from_score_files(tmp_path, tax):
    for i, m in enumerate(("clip", "dinov2", "sup")):
        _write_scores(tmp_path / f"scores-{m}.parquet", tax, i)
    b = in21k_bench.load("clip-1k", inputs=tmp_path / "scores-clip.parquet")
    scores = pd.read_parquet(tmp_path / "scores-clip.parquet")["score"].to_numpy()
    assert b.num_classes == 1000 and b.status == "needs-input"
    assert set(b.source_classes["class_index"]) == set(np.argsort(-scores)[:1000].tolist())
    u = in21k_bench.load("union-1k", inputs={m: tmp_path / f"scores-{m}.parquet" for m in ("clip", "dinov2", "sup")})
    assert 1000 < u.num_classes <= 3000
    bad = tmp_path / "bad.csv"
    bad.write_text("wnid,score\nn00000000,0.5\n")
    with pytest.raises(InvalidInputError, match="unknown wnid"):
        in21k_bench.load("sup-1k", inputs=bad)


def test_hzr_from_relabel_file(tmp_path, tax):
    dog = tax.index("n02084071")
    kid = int(tax.children(dog)[0])
    leaf = int(np.flatnonzero(tax.is_miil_leaf)[0])
    rows = []
    for split, n in (("train", 4), ("val", 3)):
        for j in range(n):
            rows.append(
                (
                    f"{split}/{tax.wnids[dog]}/{tax.wnids[dog]}_{j}.JPEG",
                    tax.wnids[dog],
                    tax.wnids[kid] if j % 2 else tax.wnids[dog],
                )
            )
            rows.append((f"{split}/{tax.wnids[leaf]}/{tax.wnids[leaf]}_{j}.JPEG", tax.wnids[leaf], tax.wnids[leaf]))
    df = pd.DataFrame(rows, columns=["sample_id", "original_wnid", "refined_wnid"])
    df["path"] = [[a, b] for a, b in zip(df.original_wnid, df.refined_wnid)]
    df["margin"] = 0.1
    f = tmp_path / "p-hzr.parquet"
    df.sample(frac=1, random_state=0).to_parquet(f)
    b = in21k_bench.load("p-hzr", inputs=f)
    assert b.num_classes == 3 and b.num_val == 6 and b.num_train == 8
    ids = b.val_sample_ids()
    assert list(ids) == sorted(ids, key=lambda s: (tax.index(s.split("/")[1]), s))
    lab = b.val_labels()
    wn = b.classes["wnid"].to_numpy()
    expected = df.set_index("sample_id").loc[ids, "refined_wnid"].to_numpy()
    assert (wn[lab] == expected).all()
    s = b.label_sets()
    kid_label = int(np.flatnonzero(wn == tax.wnids[kid])[0])
    dog_label = int(np.flatnonzero(wn == tax.wnids[dog])[0])
    assert set(s[int(np.flatnonzero(lab == kid_label)[0])].indices) == {kid_label, dog_label}
    df.loc[0, "refined_wnid"] = "nXXXX"
    df.to_parquet(f)
    with pytest.raises(InvalidInputError, match="refined_wnid"):
        in21k_bench.load("p-hzr", inputs=f)


def test_materialize_scans_local_copy(tmp_path):
    b = in21k_bench.load("imagenet-1k-odd")
    root = tmp_path / "in1k"
    wn = b.classes["wnid"].tolist()
    for lab in (0, 1):
        d = root / "train" / wn[lab]
        d.mkdir(parents=True)
        for j in range(5):
            (d / f"{wn[lab]}_{j:03d}.JPEG").write_bytes(b"x")
    train, val = b.materialize(root)
    # class 0 keeps all 5, class 1 (odd) keeps positions 0, 2, 4
    assert list(train["label"]) == [0] * 5 + [1] * 3
    assert list(train["sample_id"][5:]) == [f"train/{wn[1]}/{wn[1]}_{j:03d}.JPEG" for j in (0, 2, 4)]
    assert len(val) == 50_000 and val.attrs["mismatches"]["missing_files"] == 50_000


def test_materialize_in21k_reports_count_differences(tmp_path):
    b = in21k_bench.load("tiny")
    sc = b.source_classes
    root = tmp_path / "in21k"
    chosen = sc.iloc[[0, 1]]
    for _, row in chosen.iterrows():
        for split, n in (("train", 3), ("val", 50)):
            d = root / split / row.wnid
            d.mkdir(parents=True)
            for j in reversed(range(n)):
                (d / f"{row.wnid}_{j:04d}.JPEG").write_bytes(b"x")
    (root / "train" / "n99999999").mkdir()  # not a class of the benchmark: ignored
    train, val = b.materialize(root)
    assert len(val) == 100 and list(val["label"]) == [0] * 50 + [1] * 50
    assert val["sample_id"][0] == f"val/{chosen.wnid.iloc[0]}/{chosen.wnid.iloc[0]}_0000.JPEG"
    assert len(train) == 6 and train.attrs["mismatches"]["classes_with_other_count"] == b.num_classes
    assert val.attrs["mismatches"]["classes_with_other_count"] == b.num_classes - 2


def test_materialize_imagenet1k_val_in_class_folders(tmp_path):
    b = in21k_bench.load("imagenet-1k")
    ids = b.val_sample_ids()[:3]
    labels = b.val_labels()[:3]
    for sid, lab in zip(ids, labels):
        d = tmp_path / "val" / b.classes["wnid"][lab]
        d.mkdir(parents=True, exist_ok=True)
        (d / sid.split("/")[-1]).write_bytes(b"x")
    _, val = b.materialize(tmp_path)
    assert val.attrs["mismatches"]["missing_files"] == 50_000 - 3
    assert val["path"][0] == f"val/{b.classes['wnid'][labels[0]]}/ILSVRC2012_val_00000001.JPEG"
