"""HZR tree walk (leaf-HZR, p-HZR) on real subtrees of the MIIL tree, the relabel manifest, and
kill-and-resume of the relabel pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from in21k_bench.errors import In21kError
from in21k_bench.zeroshot.hzr import FAULT_ENV, MANIFEST_SCHEMA, Tree, read_manifest_metadata, walk

REPO = Path(__file__).resolve().parents[1]

# A real 4-level subtree of the MIIL tree (winter21 class indices):
# 1731 grasshopper
# |- 1732 short-horned grasshopper -- 1733 locust -- 1734 migratory locust   (single-child chain)
# |- 1735 katydid   (leaf)
# `- 1736 sand cricket   (leaf)
GRASSHOPPER, SHORT_HORNED, LOCUST, MIGRATORY, KATYDID, SAND_CRICKET = 1731, 1732, 1733, 1734, 1735, 1736


@lru_cache(maxsize=1)
def taxonomy():
    """The committed taxonomy."""
    from in21k_bench.registry.taxonomy import load_taxonomy

    return load_taxonomy()


@lru_cache(maxsize=1)
def tree() -> Tree:
    return Tree.from_taxonomy(taxonomy())


def test_subtree_is_what_the_tests_assume():
    tax = taxonomy()
    assert tax.wnids[GRASSHOPPER] == "n02226429" and tax.names[GRASSHOPPER] == "grasshopper"
    t = tree()
    assert t.children(GRASSHOPPER).tolist() == [SHORT_HORNED, KATYDID, SAND_CRICKET]
    assert t.children(SHORT_HORNED).tolist() == [LOCUST]
    assert t.children(LOCUST).tolist() == [MIGRATORY]
    assert t.is_leaf[[MIGRATORY, KATYDID, SAND_CRICKET]].all()
    assert not t.is_leaf[[GRASSHOPPER, SHORT_HORNED, LOCUST]].any()
    # Tree agrees with the taxonomy object everywhere
    for i in (0, GRASSHOPPER, 2177, tax.num_classes - 1):
        assert t.children(i).tolist() == sorted(tax.children(i).tolist())
    assert (t.is_leaf == tax.is_miil_leaf).all()


class TableScorer:
    """Scores from a (sample, class) table; records every call to check batching by node."""

    def __init__(self, table: dict[tuple[int, int], float], default: float = 0.0):
        self.table = table
        self.default = default
        self.calls: list[tuple[int, tuple[int, ...], tuple[int, ...]]] = []

    def __call__(self, rows, node, cands):
        self.calls.append((node, tuple(int(r) for r in rows), tuple(int(c) for c in cands)))
        return np.array([[self.table.get((int(r), int(c)), self.default) for c in cands] for r in rows])


def test_leaf_hzr_controlled_scores_ties_and_forced_moves():
    start = np.array([GRASSHOPPER, GRASSHOPPER, GRASSHOPPER, KATYDID, LOCUST, SHORT_HORNED])
    sc = TableScorer(
        {
            # sample 0: short-horned best (0.9 vs 0.5) -> forced locust -> forced migratory locust
            (0, SHORT_HORNED): 0.9,
            (0, KATYDID): 0.5,
            (0, SAND_CRICKET): 0.1,
            # sample 1: tie between katydid and sand cricket -> lowest class index (katydid), margin 0
            (1, KATYDID): 0.7,
            (1, SAND_CRICKET): 0.7,
            (1, SHORT_HORNED): 0.2,
            # sample 2: all equal -> lowest index child = short-horned, then forced down
            # sample 3: a leaf: never scored
            # sample 4: locust has a single child: forced move, no decision -> NaN margin
            # sample 5: forced chain short-horned -> locust -> migratory locust
            (0, GRASSHOPPER): 99.0,  # the current class is NOT a candidate in leaf-HZR
        }
    )
    res = walk(start, tree(), sc, "leaf-hzr")
    assert res.refined.tolist() == [MIGRATORY, KATYDID, MIGRATORY, KATYDID, MIGRATORY, MIGRATORY]
    assert res.paths[0] == [GRASSHOPPER, SHORT_HORNED, LOCUST, MIGRATORY]
    assert res.paths[1] == [GRASSHOPPER, KATYDID]
    assert res.paths[2] == [GRASSHOPPER, SHORT_HORNED, LOCUST, MIGRATORY]
    assert res.paths[3] == [KATYDID]
    assert res.paths[4] == [LOCUST, MIGRATORY]
    assert res.paths[5] == [SHORT_HORNED, LOCUST, MIGRATORY]
    np.testing.assert_allclose(res.margin[:3], [0.4, 0.0, 0.0])
    assert np.isnan(res.margin[3:]).all()
    # the leaf sample was never scored; grasshopper samples were scored together in one call
    assert all(3 not in rows for _, rows, _ in sc.calls)
    first = [c for c in sc.calls if c[0] == GRASSHOPPER]
    assert first == [(GRASSHOPPER, (0, 1, 2), (SHORT_HORNED, KATYDID, SAND_CRICKET))]
    # one call per (round, node): sample 5 starts at short-horned (round 1), samples 0 and 2 arrive in round 2
    at_sh = [c for c in sc.calls if c[0] == SHORT_HORNED]
    assert at_sh == [(SHORT_HORNED, (5,), (LOCUST,)), (SHORT_HORNED, (0, 2), (LOCUST,))]
    assert (
        len(sc.calls) == 1 + 2 + 2 + 1
    )  # round 1: grasshopper, locust, short-horned; round 2: short-horned, locust; round 3: locust


def test_p_hzr_controlled_scores_current_class_wins_ties():
    start = np.array([GRASSHOPPER, GRASSHOPPER, GRASSHOPPER, GRASSHOPPER, SAND_CRICKET, LOCUST])
    sc = TableScorer(
        {
            # sample 0: current class ties with the best child -> stays (current class wins ties)
            (0, GRASSHOPPER): 0.6,
            (0, KATYDID): 0.6,
            (0, SHORT_HORNED): 0.3,
            # sample 1: child strictly better -> katydid (a leaf) -> stop
            (1, GRASSHOPPER): 0.5,
            (1, KATYDID): 0.8,
            (1, SAND_CRICKET): 0.1,
            # sample 2: -> short-horned; at short-horned [self, locust]: locust wins; at locust [self, migratory]:
            # locust wins
            (2, GRASSHOPPER): 0.1,
            (2, SHORT_HORNED): 0.9,
            (2, LOCUST): 0.95,
            (2, MIGRATORY): 0.4,
            # sample 3: all scores equal -> stays at grasshopper
            # sample 4: leaf -> unchanged
            # sample 5: locust vs migratory locust: migratory strictly better -> moves (a leaf) -> stop
            (5, LOCUST): 0.2,
            (5, MIGRATORY): 0.25,
        }
    )
    res = walk(start, tree(), sc, "p-hzr")
    assert res.refined.tolist() == [GRASSHOPPER, KATYDID, LOCUST, GRASSHOPPER, SAND_CRICKET, MIGRATORY]
    assert res.paths == [
        [GRASSHOPPER],
        [GRASSHOPPER, KATYDID],
        [GRASSHOPPER, SHORT_HORNED, LOCUST],
        [GRASSHOPPER],
        [SAND_CRICKET],
        [LOCUST, MIGRATORY],
    ]
    np.testing.assert_allclose(res.margin[[0, 1, 2, 3, 5]], [0.0, 0.3, 0.55, 0.0, 0.05])
    assert np.isnan(res.margin[4])
    # p-HZR candidate order is [current] + children by class index
    assert (GRASSHOPPER, (0, 1, 2, 3), (GRASSHOPPER, SHORT_HORNED, KATYDID, SAND_CRICKET)) in sc.calls
    assert (SHORT_HORNED, (2,), (SHORT_HORNED, LOCUST)) in sc.calls


def _reference(c, t: Tree, s, mode):
    """Naive per-sample implementation of the rule (docs/zeroshot.md: the rule and its tie rule)."""
    path, margin = [c], np.nan
    while not t.is_leaf[c]:
        cands = ([c] if mode == "p-hzr" else []) + sorted(t.children(c).tolist())
        vals = [s(x) for x in cands]
        best = max(range(len(cands)), key=lambda i: (vals[i], -i))
        if len(cands) >= 2:
            srt = sorted(vals, reverse=True)
            margin = srt[0] - srt[1]
        if cands[best] == c:
            break
        c = cands[best]
        path.append(c)
    return c, path, margin


@pytest.mark.parametrize("mode", ["leaf-hzr", "p-hzr"])
def test_walk_matches_naive_reference_on_real_subtrees_with_many_ties(mode):
    tax, t = taxonomy(), tree()
    classes = []
    for top in (
        GRASSHOPPER,
        1348,
        1029,
        183,
        2583,
    ):  # grasshopper, toothed whale, marsupial, microorganism, automatic firearm
        classes += [top, *tax.descendants(top).tolist()]
    rng = np.random.default_rng(0)
    n = 300
    start = rng.choice(classes, size=n)
    values = rng.integers(0, 3, size=(n, tax.num_classes)).astype(float)  # 3 levels -> frequent ties

    res = walk(start, t, lambda rows, node, cands: values[np.ix_(rows, cands)], mode)
    for i in range(n):
        c, path, margin = _reference(int(start[i]), t, lambda x, i=i: values[i, x], mode)
        assert res.refined[i] == c and res.paths[i] == path
        assert (np.isnan(margin) and np.isnan(res.margin[i])) or margin == res.margin[i]
    if mode == "leaf-hzr":
        assert t.is_leaf[res.refined].all()


def test_walk_rejects_bad_mode_and_bad_scores():
    with pytest.raises(In21kError, match="expected mode"):
        walk(np.array([GRASSHOPPER]), tree(), lambda r, n, c: np.zeros((len(r), len(c))), "hzr")
    with pytest.raises(In21kError, match="expected scores of shape"):
        walk(np.array([GRASSHOPPER]), tree(), lambda r, n, c: np.zeros((len(r), 1)), "leaf-hzr")


# --------------------------------------------------------------------------------------------------
# The relabel pipeline: manifest format, builder compatibility, kill and resume
# --------------------------------------------------------------------------------------------------

CLASSES = (GRASSHOPPER, SHORT_HORNED, LOCUST, KATYDID)


def make_root(root: Path, per_class: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    tax = taxonomy()
    for split in ("train", "val"):
        for c in CLASSES:
            d = root / split / tax.wnids[c]
            d.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                Image.fromarray(rng.integers(0, 255, (36, 44, 3), dtype=np.uint8)).save(d / f"{tax.wnids[c]}_{k}.JPEG")
    return root


def _run_relabel(root, out, mode, cache, **kw):
    from in21k_bench.zeroshot.clip import TEST_ARCH
    from in21k_bench.zeroshot.hzr import relabel

    return relabel(
        root,
        mode,
        out,
        model=TEST_ARCH,
        pretrained=None,
        device="cpu",
        num_workers=0,
        cache_dir=cache,
        taxonomy=taxonomy(),
        **kw,
    )


@pytest.mark.parametrize("mode", ["leaf-hzr", "p-hzr"])
def test_relabel_manifest_columns_metadata_and_builder(tmp_path, mode):
    from in21k_bench.registry.families.hzr import build_hzr

    root = make_root(tmp_path / "root")
    out = tmp_path / f"{mode}.parquet"
    summary = _run_relabel(root, out, mode, tmp_path / "cache", chunk_rows=7)
    tab = pq.read_table(out)
    assert tab.schema.names == ["sample_id", "original_wnid", "refined_wnid", "path", "margin"]
    assert tab.schema.remove_metadata() == MANIFEST_SCHEMA
    meta = read_manifest_metadata(out)
    assert meta["mode"] == mode and meta["model"] == "in21k-test-tiny" and meta["pretrained"] is None
    df = tab.to_pandas()
    tax, t = taxonomy(), tree()
    assert len(df) == 2 * 3 * len(CLASSES) and df["sample_id"].is_unique
    assert df["sample_id"].tolist() == sorted(df["sample_id"].tolist(), key=lambda s: (s.split("/")[0] != "train", s))
    for _, r in df.iterrows():
        o, f = tax.index(r.original_wnid), tax.index(r.refined_wnid)
        assert r.sample_id.split("/")[1] == r.original_wnid
        assert r.path[0] == r.original_wnid and r.path[-1] == r.refined_wnid
        for a, b in zip(r.path[:-1], r.path[1:]):
            assert tax.parent[tax.index(b)] == tax.index(a)
        if t.is_leaf[o]:
            assert r.refined_wnid == r.original_wnid and list(r.path) == [r.original_wnid] and np.isnan(r.margin)
        else:
            visited = [tax.index(w) for w in r.path[:-1]] if mode == "leaf-hzr" else [tax.index(w) for w in r.path]
            decided = any(len(t.children(v)) + (mode == "p-hzr") >= 2 for v in visited if not t.is_leaf[v])
            assert (r.margin >= 0) if decided else np.isnan(r.margin)
        if mode == "leaf-hzr":
            assert t.is_leaf[f]
    # summary agrees with the manifest
    moved = int((df.original_wnid != df.refined_wnid).sum())
    assert summary["samples_moved"] == moved and summary["num_samples"] == len(df)
    assert summary["class_counts_after"] == df.refined_wnid.value_counts().sort_index().to_dict()
    assert summary["classes_vanished"] == sorted(set(df.original_wnid) - set(df.refined_wnid))
    on_disk = json.loads((tmp_path / f"{mode}.summary.json").read_text())
    assert on_disk["samples_moved"] == moved
    if mode == "leaf-hzr":  # every non-leaf class empties
        assert set(summary["classes_vanished"]) == {tax.wnids[c] for c in (GRASSHOPPER, SHORT_HORNED, LOCUST)}
    # the lead's builder reads it
    built = build_hzr(tax, inputs={"relabels": out}, mode=mode)
    assert built["labels"].num_rows == df.refined_wnid.nunique()
    assert built["train"].num_rows + built["val"].num_rows == len(df)


KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_hzr import _run_relabel
    _run_relabel({root!r}, {out!r}, "leaf-hzr", {cache!r}, chunk_rows=5, resume=True)
    print("finished")
    """
)


@pytest.mark.slow
def test_relabel_resumes_after_a_real_kill(tmp_path):
    root = make_root(tmp_path / "root")
    cache = str(tmp_path / "cache")
    out = tmp_path / "killed" / "leaf.parquet"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), root=str(root), out=str(out), cache=cache)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    work = out.with_name(out.name + ".work")

    # 1) SIGKILL right after embedding chunk 1 is committed (24 samples / 5 per chunk = 5 chunks)
    p = subprocess.run(
        [sys.executable, "-c", script], env={**env, FAULT_ENV: "embed:1"}, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == -9, p.stderr[-2000:]
    assert sorted(x.name for x in (work / "emb").glob("chunk-*.npy")) == ["chunk-00000.npy", "chunk-00001.npy"]
    assert not out.exists()
    stamps = {x.name: x.stat().st_mtime_ns for x in (work / "emb").glob("chunk-*.npy")}

    # 2) resume; SIGKILL again right after walk chunk 2
    p = subprocess.run(
        [sys.executable, "-c", script], env={**env, FAULT_ENV: "walk:2"}, capture_output=True, text=True, timeout=300
    )
    assert p.returncode == -9, p.stderr[-2000:]
    assert len(list((work / "emb").glob("chunk-*.npy"))) == 5
    assert {x.name: x.stat().st_mtime_ns for x in (work / "emb").glob("chunk-0000[01].npy")} == stamps  # not recomputed
    assert sorted(x.name for x in (work / "walk-leaf-hzr").glob("chunk-*.parquet")) == [
        f"chunk-{k:05d}.parquet" for k in range(3)
    ]
    assert not out.exists()

    # 3) resume to the end in-process; compare with an uninterrupted run
    _run_relabel(root, out, "leaf-hzr", cache, chunk_rows=5, resume=True)
    clean = tmp_path / "clean" / "leaf.parquet"
    _run_relabel(root, clean, "leaf-hzr", cache, chunk_rows=5)
    a, b = pd.read_parquet(out), pd.read_parquet(clean)
    pd.testing.assert_frame_equal(a, b)


def test_relabel_refuses_to_silently_reuse_or_mix_work_areas(tmp_path):
    root = make_root(tmp_path / "root", per_class=1)
    out = tmp_path / "o.parquet"
    _run_relabel(root, out, "p-hzr", tmp_path / "cache", chunk_rows=4)
    with pytest.raises(In21kError, match="--resume"):
        _run_relabel(root, out, "p-hzr", tmp_path / "cache", chunk_rows=4)
    with pytest.raises(In21kError, match="chunk_rows"):
        _run_relabel(root, out, "p-hzr", tmp_path / "cache", chunk_rows=3, resume=True)
    with pytest.raises(In21kError, match="expected --mode"):
        _run_relabel(root, tmp_path / "x.parquet", "hzr", tmp_path / "cache")
    with pytest.raises(In21kError, match=r"\.parquet"):
        _run_relabel(root, tmp_path / "x.csv", "p-hzr", tmp_path / "cache")


def test_relabel_from_a_feature_store_matches_image_encoding(tmp_path):
    from in21k_bench.features.store import write_store
    from in21k_bench.zeroshot.clip import TEST_ARCH, embed_images, load_clip
    from in21k_bench.zeroshot.hzr import scan_samples

    root = make_root(tmp_path / "root", per_class=2)
    cache = tmp_path / "cache"
    a = _run_relabel(root, tmp_path / "img.parquet", "p-hzr", cache, chunk_rows=5)
    clip = load_clip(TEST_ARCH, None, device="cpu", seed=0)
    samples = scan_samples(root, ["train", "val"], taxonomy())
    for split, part in samples.groupby("split", sort=False):
        x = np.concatenate([e for _, e in embed_images(clip, part["path"].tolist())])
        write_store(tmp_path / "feats" / split, x, part["sample_id"].tolist(), backbone=TEST_ARCH)
    b = _run_relabel(root, tmp_path / "feat.parquet", "p-hzr", cache, chunk_rows=5, features=str(tmp_path / "feats"))
    da, db = pd.read_parquet(tmp_path / "img.parquet"), pd.read_parquet(tmp_path / "feat.parquet")
    assert da.sample_id.tolist() == db.sample_id.tolist()
    np.testing.assert_allclose(da.margin, db.margin, atol=5e-3)  # float16 storage rounds twice on one side
    clear = da.margin.isna() | (da.margin > 1e-2)
    assert (da.refined_wnid[clear] == db.refined_wnid[clear]).all()
    assert a["num_samples"] == b["num_samples"]
    with pytest.raises(In21kError, match="canonical order"):
        write_store(tmp_path / "bad" / "train", np.zeros((1, 64), np.float32), ["train/x/y.JPEG"], backbone=TEST_ARCH)
        write_store(tmp_path / "bad" / "val", np.zeros((1, 64), np.float32), ["val/x/y.JPEG"], backbone=TEST_ARCH)
        _run_relabel(root, tmp_path / "bad.parquet", "p-hzr", cache, chunk_rows=5, features=str(tmp_path / "bad"))
