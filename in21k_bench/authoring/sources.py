"""The raw source files the manifests are built from.

The repository vendors them in ``splits/sources/`` (installed with the package), with their
provenance table ``SOURCES.md`` and licence notices; that copy is the default for
``in21k-bench build-manifests`` and for the tests. ``--sources DIR`` or ``$IN21K_SOURCES`` point
elsewhere (e.g. a folder where new raw facts arrive; :func:`vendor_sources` refreshes the copy).
Installed users load the committed, built manifests and never need the raw files.

A file listed in ``SOURCES.md`` as ``name`` may be stored as ``name`` or, compressed, as
``name.xz``; either way its *decompressed* content is checked against the sha256 that ``SOURCES.md``
records for the original file before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import SourcesError
from ..fileio import atomic_write
from ..paths import VENDORED_SOURCES_DIR

ENV_VAR = "IN21K_SOURCES"
#: Suffix of a vendored file stored compressed (the sha256 in SOURCES.md is of the original).
COMPRESSED_SUFFIX = ".xz"
#: :func:`vendor_sources` compresses files larger than this (bytes).
COMPRESS_ABOVE = 200_000
#: Files copied unchanged beside the data files (provenance and licence notices).
NOTICE_FILES = ("SOURCES.md", "WORDNET-LICENSE.txt")

#: Files this package reads, relative to the sources folder.
REQUIRED_FILES = (
    "timm/imagenet21k_miil_w21_synsets.txt",
    "timm/imagenet_synset_to_lemma.txt",
    "timm/imagenet_synset_to_definition.txt",
    "timm/imagenet_synsets.txt",
    "datadings/ImageNet21k_synsets.json.xz",
    "imagenet-fall11/ReleaseStatus.xml",
    "imagenet-fall11/wordnet.is_a.txt",
    "imagenet-fall11/words.txt",
    "wordnet/instance-synsets.txt",
    "imagenet-1k/imagenet_2012_validation_synset_labels.txt",
    "imagenet-1k/real.json",
)


def find_sources_dir(path: str | os.PathLike | None = None) -> Path:
    """Locate the raw sources: explicit path, else ``$IN21K_SOURCES``, else the vendored copy
    ``splits/sources/``."""
    if path is not None:
        c, how = Path(path), "--sources"
    elif os.environ.get(ENV_VAR):
        c, how = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        c, how = VENDORED_SOURCES_DIR, "the vendored copy"
    if (c / "SOURCES.md").is_file():
        return c
    raise SourcesError(
        f"raw sources: expected a folder with SOURCES.md at {c} ({how}; set ${ENV_VAR} or pass --sources), found none"
    )


def recorded_checksums(sources_dir: Path) -> dict[str, str]:
    """Parse the ``| `file` | ... | sha256 |`` rows of SOURCES.md."""
    sums: dict[str, str] = {}
    for line in (Path(sources_dir) / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|.*\|\s*([0-9a-f]{64})\s*\|\s*$", line)
        if m:
            sums[m.group(1)] = m.group(2)
    return sums


def stored_path(sources_dir: Path, rel: str) -> Path:
    """The file holding ``rel``: ``rel`` itself, or its compressed copy ``rel.xz``."""
    p = Path(sources_dir) / rel
    if p.is_file():
        return p
    packed = p.with_name(p.name + COMPRESSED_SUFFIX)
    if packed.is_file():
        return packed
    raise SourcesError(f"raw sources: expected file {p} (or {packed.name}), found none")


def read_source(sources_dir: Path, rel: str) -> bytes:
    """The original bytes of ``rel`` (decompressed when stored as ``rel.xz``), unverified."""
    p = stored_path(sources_dir, rel)
    if p.name == Path(rel).name:
        return p.read_bytes()
    try:
        return lzma.decompress(p.read_bytes())
    except lzma.LZMAError as exc:
        raise SourcesError(f"raw sources: expected {p} to be xz-compressed, found a corrupt file ({exc})") from None


def verify_sources(sources_dir: Path, files: tuple[str, ...] = REQUIRED_FILES) -> dict[str, str]:
    """Check each file (its original content) against SOURCES.md; returns ``{file: sha256}``."""
    recorded = recorded_checksums(sources_dir)
    out: dict[str, str] = {}
    for rel in files:
        if rel not in recorded:
            raise SourcesError(f"raw sources: expected a sha256 for {rel} in SOURCES.md, found none")
        got = hashlib.sha256(read_source(sources_dir, rel)).hexdigest()
        if got != recorded[rel]:
            raise SourcesError(
                f"raw sources: {rel} has sha256 {got[:12]}..., SOURCES.md records {recorded[rel][:12]}...; "
                "the file was altered"
            )
        out[rel] = got
    return out


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def vendor_sources(src: str | os.PathLike, dest: str | os.PathLike = VENDORED_SOURCES_DIR) -> dict[str, str]:
    """Copy every file that ``src/SOURCES.md`` lists (plus SOURCES.md and the licence notices) into
    ``dest``, compressing files above :data:`COMPRESS_ABOVE` bytes as ``.xz``; each file is verified
    against SOURCES.md first and the copy is verified again. Files in ``dest`` that the new table no
    longer lists are removed. Returns ``{file: sha256}``."""
    src, dest = Path(src), Path(dest)
    if src.resolve() == dest.resolve():
        raise SourcesError(f"vendor sources: expected a source folder other than the destination, found {src} twice")
    sums = verify_sources(src, tuple(recorded_checksums(src)))
    keep: set[Path] = set()
    for name in NOTICE_FILES:
        if (src / name).is_file():
            _write_bytes(dest / name, (src / name).read_bytes())
            keep.add(dest / name)
    for rel in sums:
        data = read_source(src, rel)
        if len(data) > COMPRESS_ABOVE and not rel.endswith(COMPRESSED_SUFFIX):
            target = dest / (rel + COMPRESSED_SUFFIX)
            _write_bytes(target, lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        else:
            target = dest / rel
            _write_bytes(target, data)
        keep.add(target)
    for p in sorted(dest.rglob("*")):
        if p.is_file() and p not in keep and p.name != "README.md":
            p.unlink()
    verify_sources(dest, tuple(sums))
    return sums


def materialize_sources(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Write a verified, uncompressed copy of a sources folder (every file SOURCES.md lists, plus the
    notices) to ``dest``, e.g. to read the vendored files with ordinary tools."""
    src, dest = Path(src), Path(dest)
    sums = verify_sources(src, tuple(recorded_checksums(src)))
    for name in NOTICE_FILES:
        if (src / name).is_file():
            _write_bytes(dest / name, (src / name).read_bytes())
    for rel in sums:
        _write_bytes(dest / rel, read_source(src, rel))
    return dest


def _lines(text: str) -> list[str]:
    return [ln.rstrip("\n") for ln in text.splitlines() if ln.strip()]


def _tsv_map(text: str) -> dict[str, str]:
    out = {}
    for ln in _lines(text):
        key, _, val = ln.partition("\t")
        out[key.strip()] = val.strip()
    return out


@dataclass
class Sources:
    """Parsed raw sources (verified on construction)."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.checksums = verify_sources(self.root)

    @classmethod
    def locate(cls, path: str | os.PathLike | None = None) -> "Sources":
        return cls(find_sources_dir(path))

    def read_bytes(self, rel: str) -> bytes:
        """Original content of a source file (decompressed if vendored as ``.xz``)."""
        return read_source(self.root, rel)

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    @cached_property
    def winter21_wnids(self) -> list[str]:
        wnids = _lines(self.read_text("timm/imagenet21k_miil_w21_synsets.txt"))
        if wnids != sorted(wnids) or len(set(wnids)) != len(wnids):
            raise SourcesError("raw sources: expected the winter21 wnid list sorted and unique, found otherwise")
        return wnids

    @cached_property
    def lemmas(self) -> dict[str, list[str]]:
        return {
            k: [s.strip() for s in v.split(", ") if s.strip()]
            for k, v in _tsv_map(self.read_text("timm/imagenet_synset_to_lemma.txt")).items()
        }

    @cached_property
    def definitions(self) -> dict[str, str]:
        return _tsv_map(self.read_text("timm/imagenet_synset_to_definition.txt"))

    @cached_property
    def miil_tree(self) -> dict:
        return json.loads(lzma.decompress(self.read_bytes("datadings/ImageNet21k_synsets.json.xz")).decode("utf-8"))

    @cached_property
    def is_a_edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs in file order."""
        edges = []
        for ln in _lines(self.read_text("imagenet-fall11/wordnet.is_a.txt")):
            parent, child = ln.split()
            edges.append((parent, child))
        return edges

    @cached_property
    def last_hypernym(self) -> dict[str, str]:
        """child wnid -> its direct hypernym from the LAST line of ``wordnet.is_a.txt`` naming it
        (the parent choice that rebuilds the MIIL tree)."""
        out: dict[str, str] = {}
        for parent, child in self.is_a_edges:
            out[child] = parent
        return out

    @cached_property
    def words(self) -> dict[str, list[str]]:
        """wnid -> WordNet lemmas for the 82,115 noun synsets of ``words.txt``."""
        return {
            k: [s.strip() for s in v.split(", ") if s.strip()]
            for k, v in _tsv_map(self.read_text("imagenet-fall11/words.txt")).items()
        }

    @cached_property
    def instance_synsets(self) -> frozenset[str]:
        """The WordNet 3.0 noun synsets that are instances (``@i`` pointer), e.g. n09450163 'sun'."""
        return frozenset(_lines(self.read_text("wordnet/instance-synsets.txt")))

    @cached_property
    def num_images_fall11(self) -> dict[str, int]:
        text = self.read_text("imagenet-fall11/ReleaseStatus.xml")
        out: dict[str, int] = {}
        for m in re.finditer(r"<synset\b([^>]*)/?>", text):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if "wnid" in attrs and "numImages" in attrs:
                out[attrs["wnid"]] = int(attrs["numImages"])
        return out

    @cached_property
    def imagenet1k_wnids(self) -> list[str]:
        return _lines(self.read_text("timm/imagenet_synsets.txt"))

    @cached_property
    def imagenet1k_val_wnids(self) -> list[str]:
        return _lines(self.read_text("imagenet-1k/imagenet_2012_validation_synset_labels.txt"))

    @cached_property
    def real_sets(self) -> list[list[int]]:
        return json.loads(self.read_text("imagenet-1k/real.json"))


def miil_parents_from_is_a(wnids: list[str], edges: list[tuple[str, str]]) -> np.ndarray:
    """Rebuild the MIIL tree from WordNet edges (docs/benchmarks.md, "The data"): a child listed under several parents
    takes the parent of its LAST line; follow to the top, keep only dataset classes.
    Returns the parent class index of every class (-1 for roots)."""
    last_parent = dict((child, parent) for parent, child in edges)  # later lines win
    index = {w: i for i, w in enumerate(wnids)}
    parents = np.full(len(wnids), -1, dtype=np.int32)
    for i, w in enumerate(wnids):
        seen = {w}
        p = last_parent.get(w)
        while p is not None and p not in index:
            if p in seen:  # defensive: WordNet has no cycles
                p = None
                break
            seen.add(p)
            p = last_parent.get(p)
        if p is not None:
            parents[i] = index[p]
    return parents
