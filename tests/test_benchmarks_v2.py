"""Manifest version v2: every benchmark recomputed independently from the raw files; v1 kept as released;
version selection through load(), the CLI, the evaluator, materialize and the docs generator."""

from __future__ import annotations

import hashlib
import json
import lzma
import re

import numpy as np
import pytest

import in21k_bench
from conftest import run_cli
from in21k_bench.manifests.files import SPLITS_DIR, content_sha256
from in21k_bench.manifests.index import ManifestIndex
from in21k_bench.registry.catalog import get_definition, list_definitions
from in21k_bench.registry.taxonomy import load_taxonomy
from in21k_bench.zeroshot.prompts import class_lemmas, fill_prompts

PAPER_COARSE = {1: 3987, 2: 5086, 3: 6772, 4: 8386, 5: 9429, 6: 9997, 7: 10241, 8: 10351, 9: 10424}
CHANGED = {f"coarse-d{d}" for d in range(1, 10)} | {"wordnet-leaf", "centered-2k"}
# sha256 over the sorted "relpath sha256" lines of the released v1 files: v1 must never change
V1_DIGEST = "b2a1df4a9bdaaea3d880d47f220af9aadb3b31544fcbb60475b35f096e07572c"


@pytest.fixture(scope="module")
def raw(sources_dir):
    """The raw facts, parsed here without the package's parsers."""
    wnids = (sources_dir / "timm/imagenet21k_miil_w21_synsets.txt").read_text().split()
    tree = json.load(lzma.open(sources_dir / "datadings/ImageNet21k_synsets.json.xz"))
    last, has_child = {}, set()
    for ln in (sources_dir / "imagenet-fall11/wordnet.is_a.txt").read_text().splitlines():
        if ln.strip():
            p, c = ln.split()
            last[c] = p  # the last line naming c wins
            has_child.add(p)
    xml = (sources_dir / "imagenet-fall11/ReleaseStatus.xml").read_text()
    n = {m.group(1): int(m.group(2)) for m in re.finditer(r'wnid="(n\d+)"[^>]*numImages="(\d+)"', xml)}
    words = {}
    for ln in (sources_dir / "imagenet-fall11/words.txt").read_text().splitlines():
        k, _, v = ln.partition("\t")
        words[k] = v.split(", ")
    return {
        "wnids": wnids,
        "depth": [len(p) - 1 for p in tree["class_tree_list"]],
        "last": last,
        "has_child": has_child,
        "counts": np.array([n[w] - 50 for w in wnids]),
        "instances": set((sources_dir / "wordnet/instance-synsets.txt").read_text().split()),
        "words": words,
    }


def test_latest_is_v2_and_v1_stays_loadable():
    assert in21k_bench.load("coarse-d1").version == "v2"
    assert in21k_bench.load("coarse-d1", version="v1").num_classes == 302
    assert {d.name for d in list_definitions("v2")} == {d.name for d in list_definitions("v1")}
    for d in list_definitions("v2"):
        assert d.status == get_definition(d.name, "v1").status  # needs-input stays needs-input
        assert d.notes  # every v2 definition says how it relates to v1


def test_v1_files_untouched():
    idx = ManifestIndex.load()
    lines = "".join(f"{rel} {e.sha256}\n" for rel, e in sorted(idx.files("v1").items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == V1_DIGEST
    for rel, e in idx.files("v1").items():
        assert hashlib.sha256((SPLITS_DIR / rel).read_bytes()).hexdigest() == e.sha256


@pytest.mark.parametrize("d", range(1, 10))
def test_coarse_v2_one_step_rule(d, raw):
    b = in21k_bench.load(f"coarse-d{d}")
    wn, depth, last = raw["wnids"], raw["depth"], raw["last"]
    expected = [last[w] if depth[i] > d else w for i, w in enumerate(wn)]
    assert b.num_classes == len(set(expected)) == PAPER_COARSE[d]
    assert b.num_train == 11_060_272 == int(raw["counts"].sum()) and b.num_val == 522_500
    sc = b.source_classes
    assert (sc["class_index"].to_numpy() == np.arange(len(wn))).all()
    got = b.classes["wnid"].to_numpy()[sc["label"].to_numpy()]
    assert list(got) == expected
    assert list(b.classes["wnid"]) == sorted(set(expected))  # labels in wnid order
    extra = set(expected) - set(wn)
    if d == 1:
        assert len(extra) == 677
    names = dict(zip(b.classes["wnid"], b.classes["name"]))
    for w in sorted(extra)[:50]:
        assert names[w] == raw["words"][w][0].replace(" ", "_")


@pytest.mark.parametrize("d", [1, 3])
def test_coarse_v2_label_sets_follow_hypernym_chain(d, raw):
    """S_L of a label = the label + every label of the benchmark on its hypernym chain (last line each step)."""
    b = in21k_bench.load(f"coarse-d{d}")
    labels = list(b.classes["wnid"])
    pos = {w: i for i, w in enumerate(labels)}
    m = b.label_matrix()
    for lab in range(0, len(labels), 7):
        chain, w = [labels[lab]], raw["last"].get(labels[lab])
        while w is not None:
            chain.append(w)
            w = raw["last"].get(w)
        assert set(m[lab].indices.tolist()) == {pos[x] for x in chain if x in pos}
    sets = b.label_sets()
    vl = b.val_labels()
    assert sets.shape == (522_500, b.num_classes) and sets[np.arange(len(vl)), vl].all()


def test_extra_synsets_have_names_lemmas_and_prompts(raw):
    tax = load_taxonomy("v2")
    assert tax.num_synsets == 1217 and tax.num_nodes == 10450 + 1217
    b = in21k_bench.load("coarse-d1")
    wn = list(b.classes["wnid"])
    lemmas = class_lemmas(wn, tax.lemmas_of(wn), list(b.classes["name"]))
    assert all(lemmas) and all(len(fill_prompts(lst[0])) == 7 for lst in lemmas)
    extra = [w for w in wn if tax.lookup(w) < 0]
    for w in extra[:40]:
        assert tax.lemmas_of([w])[0] == raw["words"][w]
    assert tax.node_path(tax.node_index(extra[0]))[0] == tax.node_index(extra[0])


def test_wordnet_leaf_v2_excludes_instances(raw):
    b = in21k_bench.load("wordnet-leaf")
    expect = {i for i, w in enumerate(raw["wnids"]) if w not in raw["has_child"] and w not in raw["instances"]}
    assert set(b.source_classes["class_index"]) == expect and len(expect) == 7353
    v1 = set(in21k_bench.load("wordnet-leaf", version="v1").source_classes["class_index"])
    assert v1 - expect == {raw["wnids"].index("n09450163")}  # the sun


def test_centered_2k_v2(raw):
    b = in21k_bench.load("centered-2k")
    c = raw["counts"]
    order = sorted(range(len(c)), key=lambda i: (c[i], i))
    start = (len(c) - 2113) // 2
    assert set(b.source_classes["class_index"]) == set(order[start : start + 2113])
    assert b.num_classes == 2113 and round(b.num_train / 1e6, 2) == 2.34
    imb = in21k_bench.load("imbalanced-2k")
    assert imb.num_classes == 2106 and "2.85M" in imb.definition.notes


def test_unchanged_benchmarks_have_v1_content():
    idx = ManifestIndex.load()
    v1, v2 = idx.files("v1"), idx.files("v2")
    for d in list_definitions("v2"):
        if d.name in CHANGED or d.status != "ready":
            continue
        for rel in idx.benchmark_files(d.name, "v2"):
            assert v2[rel].content_sha256 == v1["v1" + rel[2:]].content_sha256, rel


def test_v2_rules_recorded_in_info(capsys):
    code, out, _ = run_cli(["info", "coarse-d4", "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["version"] == "v2" and info["num_classes"] == 8386 and info["num_train"] == 11_060_272
    assert info["rule"]["depth_threshold"] == 4 and "once" in info["rule"]["applied"] and "recursive" in info["notes"]
    code, out, _ = run_cli(["info", "coarse-d1", "--version", "v1", "--json"], capsys)
    assert json.loads(out)["num_classes"] == 302
    code, out, _ = run_cli(["info", "wordnet-leaf", "--json"], capsys)
    assert json.loads(out)["rule"]["exclude_instances"] is True
    code, out, _ = run_cli(["info", "clip-1k", "--json"], capsys)
    assert json.loads(out)["status"] == "needs-input" and json.loads(out)["version"] == "v2"


def test_evaluator_version_option(tmp_path, capsys):
    b1 = in21k_bench.load("coarse-d1", version="v1")
    b2 = in21k_bench.load("coarse-d1")
    for b in (b1, b2):
        p = tmp_path / f"{b.version}.npy"
        np.save(p, b.val_labels())  # perfect predictions of that version
        code, out, err = run_cli(
            ["evaluate", str(p), "--benchmark", "coarse-d1", "--version", b.version, "--json"], capsys
        )
        assert code == 0, err
        res = json.loads(out)
        assert res["version"] == b.version and res["num_classes"] == b.num_classes and abs(res["acc"] - 1.0) < 1e-9
    code, out, _ = run_cli(["evaluate", str(tmp_path / "v1.npy"), "--benchmark", "coarse-d1", "--json"], capsys)
    assert code == 0 and json.loads(out)["version"] == "v2" and json.loads(out)["acc"] < 0.5  # v1 labels scored on v2


def test_materialize_v2_coarse(tmp_path):
    b = in21k_bench.load("coarse-d1")
    sc = b.source_classes
    deep = sc[sc["wnid"].map(lambda w: b.classes["wnid"][int(sc.set_index("wnid").loc[w, "label"])] != w)].iloc[0]
    d = tmp_path / "val" / deep.wnid
    d.mkdir(parents=True)
    (d / "a.JPEG").write_bytes(b"x")
    _, val = b.materialize(tmp_path)
    assert list(val["label"]) == [int(deep.label)]
    assert b.classes["wnid"][int(deep.label)] != deep.wnid


def test_benchmark_docs_version(tmp_path, capsys):
    code, out, err = run_cli(["benchmark-docs", "--out", str(tmp_path / "v1docs"), "--version", "v1"], capsys)
    assert code == 0, err
    text = (tmp_path / "v1docs" / "benchmarks.md").read_text()
    assert "## Version v1" in text and "| `coarse-d1` | coarse | v1 | ready |" in text
    code, _, err = run_cli(["benchmark-docs", "--out", str(tmp_path / "v2docs")], capsys)
    text = (tmp_path / "v2docs" / "benchmarks.md").read_text()
    assert code == 0 and "## Changes from v1 to v2" in text and "| `coarse-d1` | 302 | 3,987 |" in text
    assert "recursively" in text
    code, _, err = run_cli(["benchmark-docs", "--out", str(tmp_path / "x"), "--version", "v7"], capsys)
    assert code == 2 and "v7" in err


def test_taxonomy_v2_extends_v1(sources_dir):
    t1, t2 = load_taxonomy("v1"), load_taxonomy("v2")
    for col in t1.classes.columns:
        a, b = t1.classes[col], t2.classes[col]
        assert a.map(repr).equals(b.map(repr)), col
    assert int(t2.is_wordnet_instance.sum()) == 1 and t2.wnids[t2.is_wordnet_instance][0] == "n09450163"
    assert t1.num_synsets == 0 and t1.is_wordnet_instance is None
    m1 = in21k_bench.load("in21k", version="v1").label_matrix()
    m2 = in21k_bench.load("in21k").label_matrix()
    assert (m1 != m2).nnz == 0  # every label a class: the node tree gives the MIIL label sets
    assert content_sha256 is not None
