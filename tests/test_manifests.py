"""Manifests: rebuild reproduces the committed files; tampering is detected; released versions are frozen."""

from __future__ import annotations

import json
import shutil

import pyarrow
import pytest

import in21k_bench
from in21k_bench.errors import ChecksumError, In21kError
from in21k_bench.manifest_build import build_all
from in21k_bench.manifests import SPLITS_DIR, content_sha256, read_index
import pyarrow.parquet as pq


def test_committed_files_match_index():
    idx = read_index()
    files = idx["versions"]["v1"]["files"]
    assert len(files) > 30
    for rel, e in files.items():
        p = SPLITS_DIR / rel
        assert p.stat().st_size == e["size"]
        assert content_sha256(pq.read_table(p)) == e["content_sha256"]


def test_rebuild_reproduces_committed(tmp_path, sources_dir):
    out = tmp_path / "splits"
    idx = build_all(out_root=out, sources_dir=sources_dir, version="v1")
    new = idx.version_entry("v1")
    old = read_index()["versions"]["v1"]
    assert {k: v["content_sha256"] for k, v in new["files"].items()} == {k: v["content_sha256"] for k, v in old["files"].items()}
    assert new["benchmarks"] == old["benchmarks"]
    if old["writer"] == f"pyarrow {pyarrow.__version__}":  # same writer: byte-for-byte
        assert {k: v["sha256"] for k, v in new["files"].items()} == {k: v["sha256"] for k, v in old["files"].items()}


def test_released_version_is_frozen(tmp_path, sources_dir):
    out = tmp_path / "splits"
    shutil.copytree(SPLITS_DIR, out)
    # same content: accepted, nothing rewritten
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    build_all(out_root=out, sources_dir=sources_dir, version="v1")
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")}
    # pretend the released content differs: the build must refuse
    idx = json.loads((out / "index.json").read_text())
    idx["versions"]["v1"]["files"]["v1/tiny/classes.parquet"]["content_sha256"] = "0" * 64
    (out / "index.json").write_text(json.dumps(idx))
    with pytest.raises(In21kError, match="released and must not change"):
        build_all(out_root=out, sources_dir=sources_dir, version="v1")


def test_tampered_manifest_fails_to_load(tmp_path):
    out = tmp_path / "splits"
    shutil.copytree(SPLITS_DIR, out)
    assert in21k_bench.load("tiny", root=out).num_classes > 0
    p = out / "v1/tiny/classes.parquet"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256"):
        in21k_bench.load("tiny", root=out)


def test_altered_source_is_rejected(tmp_path, sources_dir):
    src = tmp_path / "src"
    shutil.copytree(sources_dir, src)
    f = src / "timm/imagenet21k_miil_w21_synsets.txt"
    f.chmod(0o644)
    f.write_text(f.read_text().replace("n00005787", "n00005788", 1))
    from in21k_bench.errors import SourcesError

    with pytest.raises(SourcesError, match="altered"):
        build_all(out_root=tmp_path / "o", sources_dir=src)
