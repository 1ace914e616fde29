"""The built taxonomy against the raw sources, read independently here."""

from __future__ import annotations

import json
import lzma
import re

import numpy as np
import pytest

from in21k_bench.errors import In21kError
from in21k_bench.registry.taxonomy import load_imagenet1k, load_taxonomy


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def test_classes_match_release(tax, sources_dir):
    wnids = (sources_dir / "timm/imagenet21k_miil_w21_synsets.txt").read_text().split()
    assert tax.num_classes == len(wnids) == 10450
    assert list(tax.wnids) == wnids
    tree = json.load(lzma.open(sources_dir / "datadings/ImageNet21k_synsets.json.xz"))
    for i in (0, 9, 1386, 5000, 10449):
        assert tax.path(i) == tree["class_tree_list"][i]
    assert list(tax.names) == list(tree["class_description"].values())
    assert all(tax.path(i) == p for i, p in enumerate(tree["class_tree_list"]))


def test_counts_are_fall11_minus_50(tax, sources_dir):
    xml = (sources_dir / "imagenet-fall11/ReleaseStatus.xml").read_text()
    n = {m.group(1): int(m.group(2)) for m in re.finditer(r'wnid="(n\d+)"[^>]*numImages="(\d+)"', xml)}
    expected = np.array([n[w] - 50 for w in tax.wnids])
    assert (tax.train_count == expected).all()
    assert tax.train_count.sum() == 11_060_272  # SOURCES.md: within 33 of the 11,060,239 archive count
    assert (tax.val_count == 50).all()


def test_leaf_flags(tax, sources_dir):
    parents = {
        ln.split()[0]
        for ln in (sources_dir / "imagenet-fall11/wordnet.is_a.txt").read_text().splitlines()
        if ln.strip()
    }
    assert all(tax.is_wordnet_leaf[i] == (w not in parents) for i, w in enumerate(tax.wnids))
    has_child = set(tax.parent[tax.parent >= 0].tolist())
    assert all(tax.is_miil_leaf[i] == (i not in has_child) for i in range(tax.num_classes))


def test_tree_queries(tax):
    dog = tax.index("n02084071")
    assert tax.names[dog] == "dog"
    path = tax.path(dog)
    assert path[0] == dog and tax.parent[dog] == path[1] and tax.parent[path[-1]] == -1
    assert tax.ancestors(dog) == path[1:]
    assert tax.level[dog] == len(path)
    kids = tax.children(dog)
    assert len(kids) > 0 and all(tax.parent[k] == dog for k in kids)
    desc = set(tax.descendants(dog).tolist())
    assert set(kids.tolist()) <= desc and dog not in desc
    assert all(dog in tax.path(d) for d in desc)
    # every class whose path contains dog is a descendant
    assert desc == {i for i in range(tax.num_classes) if i != dog and dog in tax.path(i)}
    sib = tax.siblings(kids[0])
    assert kids[0] not in sib and set(sib.tolist()) == set(kids.tolist()) - {kids[0]}
    assert tax.ancestor_at_level(dog, 1) == path[-1]
    assert tax.ancestor_at_level(dog, 20) == dog
    lvl2 = tax.ancestor_at_level_all(2)
    assert all(lvl2[i] == (i if tax.level[i] <= 2 else tax.path(i)[-2]) for i in range(0, tax.num_classes, 97))
    with pytest.raises(In21kError):
        tax.index("n99999999")
    with pytest.raises(In21kError):
        tax.ancestor_at_level(dog, 0)


def test_imagenet1k(sources_dir):
    in1k = load_imagenet1k()
    assert len(in1k.wnids) == 1000
    assert (in1k.in21k_index >= 0).sum() == 991
    missing = sorted(in1k.wnids[in1k.in21k_index < 0])
    assert missing == [
        "n02085782",
        "n02089078",
        "n02089867",
        "n02089973",
        "n02091635",
        "n02108000",
        "n02112706",
        "n02113978",
        "n04399382",
    ]
    val = (sources_dir / "imagenet-1k/imagenet_2012_validation_synset_labels.txt").read_text().split()
    assert [in1k.wnids[i] for i in in1k.val_labels[:100]] == val[:100]
    assert len(in1k.val_labels) == 50000
    real = json.load(open(sources_dir / "imagenet-1k/real.json"))
    assert in1k.real_sets.shape == (50000, 1000)
    nonempty = np.diff(in1k.real_sets.indptr) > 0
    assert nonempty.sum() == 46837 == sum(1 for r in real if r)
    assert sorted(in1k.real_sets[1].indices.tolist()) == sorted(real[1])
