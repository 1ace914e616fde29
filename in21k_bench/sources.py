"""The raw source files the manifests are built from (``../shared/in21k-sources``).

Only the manifest *build* reads these (``in21k-bench build-manifests``); installed users load the
committed, built artifacts and never need the raw files. Every file is checked against the sha256
recorded in the folder's ``SOURCES.md`` before it is parsed.
"""

from __future__ import annotations

import json
import lzma
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import SourcesError
from .fileio import sha256_file

ENV_VAR = "IN21K_SOURCES"

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
    """Locate the raw sources: explicit path, ``$IN21K_SOURCES``, or ``../shared/in21k-sources``
    next to the project checkout (or the current directory)."""
    candidates: list[Path] = []
    if path is not None:
        candidates.append(Path(path))
    elif os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    else:
        repo_root = Path(__file__).resolve().parents[1]
        candidates += [
            repo_root.parent / "shared" / "in21k-sources",
            Path.cwd().parent / "shared" / "in21k-sources",
            Path.cwd() / "shared" / "in21k-sources",
        ]
    for c in candidates:
        if (c / "SOURCES.md").is_file():
            return c
    tried = ", ".join(str(c) for c in candidates)
    raise SourcesError(
        f"raw sources: expected a folder with SOURCES.md (set ${ENV_VAR} or pass --sources), found none at {tried}"
    )


def recorded_checksums(sources_dir: Path) -> dict[str, str]:
    """Parse the ``| `file` | ... | sha256 |`` rows of SOURCES.md."""
    sums: dict[str, str] = {}
    for line in (sources_dir / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|.*\|\s*([0-9a-f]{64})\s*\|\s*$", line)
        if m:
            sums[m.group(1)] = m.group(2)
    return sums


def verify_sources(sources_dir: Path, files: tuple[str, ...] = REQUIRED_FILES) -> dict[str, str]:
    """Check each required file against SOURCES.md; returns ``{file: sha256}``."""
    recorded = recorded_checksums(sources_dir)
    out: dict[str, str] = {}
    for rel in files:
        if rel not in recorded:
            raise SourcesError(f"raw sources: expected a sha256 for {rel} in SOURCES.md, found none")
        p = sources_dir / rel
        if not p.is_file():
            raise SourcesError(f"raw sources: expected file {p}, found none")
        got = sha256_file(p)
        if got != recorded[rel]:
            raise SourcesError(
                f"raw sources: {rel} has sha256 {got[:12]}..., SOURCES.md records {recorded[rel][:12]}...; "
                "the file was altered"
            )
        out[rel] = got
    return out


def _read_lines(p: Path) -> list[str]:
    return [ln.rstrip("\n") for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _read_tsv_map(p: Path) -> dict[str, str]:
    out = {}
    for ln in _read_lines(p):
        key, _, val = ln.partition("\t")
        out[key.strip()] = val.strip()
    return out


@dataclass
class Sources:
    """Parsed raw sources (verified on construction)."""

    root: Path

    def __post_init__(self) -> None:
        self.checksums = verify_sources(self.root)

    @classmethod
    def locate(cls, path: str | os.PathLike | None = None) -> "Sources":
        return cls(find_sources_dir(path))

    @cached_property
    def winter21_wnids(self) -> list[str]:
        wnids = _read_lines(self.root / "timm/imagenet21k_miil_w21_synsets.txt")
        if wnids != sorted(wnids) or len(set(wnids)) != len(wnids):
            raise SourcesError("raw sources: expected the winter21 wnid list sorted and unique, found otherwise")
        return wnids

    @cached_property
    def lemmas(self) -> dict[str, list[str]]:
        return {
            k: [s.strip() for s in v.split(", ") if s.strip()]
            for k, v in _read_tsv_map(self.root / "timm/imagenet_synset_to_lemma.txt").items()
        }

    @cached_property
    def definitions(self) -> dict[str, str]:
        return _read_tsv_map(self.root / "timm/imagenet_synset_to_definition.txt")

    @cached_property
    def miil_tree(self) -> dict:
        with lzma.open(self.root / "datadings/ImageNet21k_synsets.json.xz", "rt", encoding="utf-8") as f:
            return json.load(f)

    @cached_property
    def is_a_edges(self) -> list[tuple[str, str]]:
        """(parent, child) pairs in file order."""
        edges = []
        for ln in _read_lines(self.root / "imagenet-fall11/wordnet.is_a.txt"):
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
        return {k: [s.strip() for s in v.split(", ") if s.strip()] for k, v in _read_tsv_map(self.root / "imagenet-fall11/words.txt").items()}

    @cached_property
    def instance_synsets(self) -> frozenset[str]:
        """The WordNet 3.0 noun synsets that are instances (``@i`` pointer), e.g. n09450163 'sun'."""
        return frozenset(_read_lines(self.root / "wordnet/instance-synsets.txt"))

    @cached_property
    def num_images_fall11(self) -> dict[str, int]:
        text = (self.root / "imagenet-fall11/ReleaseStatus.xml").read_text(encoding="utf-8")
        out: dict[str, int] = {}
        for m in re.finditer(r"<synset\b([^>]*)/?>", text):
            attrs = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if "wnid" in attrs and "numImages" in attrs:
                out[attrs["wnid"]] = int(attrs["numImages"])
        return out

    @cached_property
    def imagenet1k_wnids(self) -> list[str]:
        return _read_lines(self.root / "timm/imagenet_synsets.txt")

    @cached_property
    def imagenet1k_val_wnids(self) -> list[str]:
        return _read_lines(self.root / "imagenet-1k/imagenet_2012_validation_synset_labels.txt")

    @cached_property
    def real_sets(self) -> list[list[int]]:
        with open(self.root / "imagenet-1k/real.json", encoding="utf-8") as f:
            return json.load(f)


def miil_parents_from_is_a(wnids: list[str], edges: list[tuple[str, str]]) -> np.ndarray:
    """Rebuild the MIIL tree from WordNet edges : a child listed under several parents
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
