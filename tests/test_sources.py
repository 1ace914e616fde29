"""The vendored raw sources in splits/sources/: complete, verified, the default, refreshable."""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import pytest

from in21k_bench.authoring.sources import (
    COMPRESS_ABOVE,
    ENV_VAR,
    REQUIRED_FILES,
    Sources,
    find_sources_dir,
    read_source,
    recorded_checksums,
    vendor_sources,
    verify_sources,
)
from in21k_bench.errors import SourcesError
from in21k_bench.paths import SPLITS_DIR, VENDORED_SOURCES_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "in21k-sources"


def test_vendored_copy_is_top_level_complete_and_verified():
    assert VENDORED_SOURCES_DIR == SPLITS_DIR / "sources"
    assert SPLITS_DIR.resolve() in (REPO / "splits", REPO / "in21k_bench" / "splits")
    recorded = recorded_checksums(VENDORED_SOURCES_DIR)
    assert set(REQUIRED_FILES) <= set(recorded)
    assert "wordnet/instance-synsets.txt" in recorded
    assert verify_sources(VENDORED_SOURCES_DIR, tuple(recorded)) == recorded
    assert (VENDORED_SOURCES_DIR / "WORDNET-LICENSE.txt").read_text().count("WordNet 3.0 Copyright 2006") == 1
    # the large ones are stored compressed, and the sha256 is of the decompressed content
    packed = VENDORED_SOURCES_DIR / "imagenet-fall11/ReleaseStatus.xml.xz"
    assert packed.is_file() and not packed.with_suffix("").exists()
    data = lzma.decompress(packed.read_bytes())
    assert hashlib.sha256(data).hexdigest() == recorded["imagenet-fall11/ReleaseStatus.xml"]
    assert read_source(VENDORED_SOURCES_DIR, "imagenet-fall11/ReleaseStatus.xml") == data


def test_vendored_copy_is_the_default(monkeypatch, tmp_path):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert find_sources_dir() == VENDORED_SOURCES_DIR
    s = Sources.locate()
    assert len(s.winter21_wnids) == 10450 and len(s.real_sets) == 50000
    # the environment variable and an explicit path still override it
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere"))
    with pytest.raises(SourcesError, match=r"\$IN21K_SOURCES"):
        find_sources_dir()
    assert find_sources_dir(VENDORED_SOURCES_DIR) == VENDORED_SOURCES_DIR


def test_vendored_copy_agrees_with_the_shared_folder_when_present():
    """../shared/in21k-sources is where new facts arrive; the vendored copy must carry the same
    table (no skip when the folder is absent: the vendored copy is then the only one, checked above)."""
    if (SHARED / "SOURCES.md").is_file():
        assert recorded_checksums(SHARED) == recorded_checksums(VENDORED_SOURCES_DIR), (
            "the vendored sources are stale: refresh them (see splits/sources/README.md)"
        )


def test_altered_or_corrupt_compressed_file_is_rejected(sources_dir, tmp_path):
    dest = tmp_path / "vendored"
    vendor_sources(sources_dir, dest)
    p = dest / "imagenet-1k/real.json.xz"
    original = lzma.decompress(p.read_bytes())
    p.write_bytes(lzma.compress(original.replace(b"[", b"[1, ", 1)))
    with pytest.raises(SourcesError, match="real.json has sha256 .* altered"):
        Sources(dest)
    p.write_bytes(b"not xz at all")
    with pytest.raises(SourcesError, match="expected .*real.json.xz to be xz-compressed"):
        Sources(dest)
    p.unlink()
    with pytest.raises(SourcesError, match="expected file .*real.json .or real.json.xz., found none"):
        Sources(dest)


def test_vendor_sources_reproduces_the_committed_layout(sources_dir, tmp_path):
    dest = tmp_path / "vendored"
    (dest / "stale").mkdir(parents=True)
    (dest / "stale/old.txt").write_text("a file the table no longer lists")
    sums = vendor_sources(sources_dir, dest)
    assert sums == recorded_checksums(VENDORED_SOURCES_DIR)
    assert not (dest / "stale/old.txt").exists()

    def layout(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != "README.md")

    assert layout(dest) == layout(VENDORED_SOURCES_DIR)
    for rel in sums:
        stored = dest / rel
        if not stored.is_file():
            assert len(read_source(dest, rel)) > COMPRESS_ABOVE
    with pytest.raises(SourcesError, match="other than the destination"):
        vendor_sources(dest, dest)
