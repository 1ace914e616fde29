"""Manifests: rebuild reproduces the committed files; tampering is detected; released versions are frozen."""

from __future__ import annotations

import json
import shutil

import pyarrow
import pyarrow.parquet as pq
import pytest

import in21k_bench
from in21k_bench.authoring.build import build_all
from in21k_bench.errors import ChecksumError, In21kError
from in21k_bench.manifests.files import SPLITS_DIR, content_sha256, read_index


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_committed_files_match_index(version):
    idx = read_index()
    files = idx["versions"][version]["files"]
    assert len(files) > 30
    for rel, e in files.items():
        p = SPLITS_DIR / rel
        assert p.stat().st_size == e["size"]
        assert content_sha256(pq.read_table(p)) == e["content_sha256"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_rebuild_reproduces_committed(tmp_path, monkeypatch, version):
    """The default sources (the vendored, partly xz-compressed splits/sources/) rebuild each version exactly."""
    monkeypatch.delenv("IN21K_SOURCES", raising=False)
    out = tmp_path / "splits"
    idx = build_all(out_root=out, version=version)
    new = idx.version_entry(version)
    old = read_index()["versions"][version]
    assert {k: v["content_sha256"] for k, v in new["files"].items()} == {
        k: v["content_sha256"] for k, v in old["files"].items()
    }
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
    b = in21k_bench.load("tiny", root=out)
    assert b.num_classes > 0
    p = out / f"{b.version}/tiny/classes.parquet"
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


def test_manifest_index_api(tmp_path):
    from in21k_bench.manifests.index import ManifestIndex
    from in21k_bench.manifests.versions import sort_versions, version_key

    assert sort_versions(["v10", "v2", "v1", "dev"]) == ["v1", "v2", "v10", "dev"] and version_key("v3") < version_key(
        "v12"
    )
    idx = ManifestIndex.load()
    assert idx.versions()[:2] == ["v1", "v2"] and idx.latest() == idx.versions()[-1]
    assert idx.benchmark_files("tiny", "v1") == ["v1/tiny/classes.parquet", "v1/tiny/labels.parquet"]
    assert (
        idx.benchmark_files("clip-1k", "v2") == [] and idx.benchmark_entry("clip-1k", "v2")["status"] == "needs-input"
    )
    assert "v2/taxonomy/synsets.parquet" in idx.taxonomy_files("v2") and idx.file_entry("v9/x.parquet") is None
    assert idx.hub.repo_id and idx.pinned_revision("v1") is None
    # writes go to a copy, then save atomically; the shared cached index is not changed
    out = tmp_path / "s"
    out.mkdir()
    idx2 = ManifestIndex.load()
    assert idx2.record_release(idx2.hub.repo_id, "v1", "a" * 40, {"sha256": "0" * 64, "size": 3})
    assert ManifestIndex.load().pinned_revision("v1") is None
    idx2.save(out)
    again = ManifestIndex.load(out)
    assert again.pinned_revision("v1") == "a" * 40 and again.checksums_pin("v1")["size"] == 3
    assert not again.record_release("other/repo", "v2", "b" * 40, {})  # another repository: refused
    with pytest.raises(In21kError, match="40-hex"):
        again.record_release(again.hub.repo_id, "v2", "nothex", {})
    (out / "index.json").write_text("{")
    with pytest.raises(ChecksumError, match="valid JSON"):
        ManifestIndex.load(out)
