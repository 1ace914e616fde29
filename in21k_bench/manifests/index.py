"""The typed version index of a splits folder (``splits/index.json``).

The index records, for every released manifest version, the sha256 / size / content hash of each
file, the benchmarks built in it (status, files, counts), and the hub repository with the commit
each version is pinned to. :class:`ManifestIndex` is the only code that reads or writes that JSON;
everything else asks it questions::

    idx = ManifestIndex.load()                 # the package's index (cached per file state)
    idx.versions(), idx.latest()               # ["v1", "v2"], "v2"
    idx.files("v2")                            # {relpath: FileEntry}
    idx.benchmark_files("coarse-d1", "v2")     # ["v2/coarse-d1/classes.parquet", ...]
    idx.hub.repo_id, idx.pinned_revision("v1")

Writes go through :meth:`ManifestIndex.set_version` / :meth:`record_release` and then
:meth:`save` (atomic). An index object read with :meth:`load` is shared through a cache; the
mutating methods copy its data first, so other readers never see unsaved changes.

File layout (``format`` 1)::

    {"format": 1,
     "hub": {"repo_id": ..., "repo_type": "dataset", "revisions": {version: commit},
             "checksums": {version: {"sha256": ..., "size": ...}}},
     "versions": {version: {"files": {relpath: {"sha256", "size", "content_sha256"}},
                            "benchmarks": {name: {"family", "status", "files", "num_classes", ...}},
                            "writer": "pyarrow X.Y.Z", ...}}}
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from ..errors import ChecksumError, InvalidInputError
from ..fileio import write_json
from ..paths import index_path, splits_root
from .versions import latest as latest_of
from .versions import sort_versions

INDEX_FORMAT = 1
DEFAULT_HUB_REPO = "in21k-bench/in21k-bench"
HUB_REPO_TYPE = "dataset"
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class FileEntry:
    """What the index records about one manifest file."""

    relpath: str  # path relative to the splits folder, e.g. "v1/tiny/classes.parquet"
    sha256: str  # of the file's bytes
    size: int  # bytes
    content_sha256: str | None  # of the table's content (schema + values), independent of the parquet writer

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"sha256": self.sha256, "size": self.size}
        if self.content_sha256 is not None:
            out["content_sha256"] = self.content_sha256
        return out


@dataclass(frozen=True)
class HubConfig:
    """The ``hub`` block: the dataset repository and the commit each released version is pinned to."""

    repo_id: str
    repo_type: str
    revisions: Mapping[str, str]  # version -> 40-hex commit
    checksums: Mapping[str, dict]  # version -> {"sha256", "size"} of that release's checksums.json


@lru_cache(maxsize=16)
def _parse(path: str, mtime_ns: int, size: int) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _empty() -> dict:
    return {
        "format": INDEX_FORMAT,
        "versions": {},
        "hub": {"repo_id": DEFAULT_HUB_REPO, "repo_type": HUB_REPO_TYPE, "revisions": {}},
    }


class ManifestIndex:
    """The version index of one splits folder (see the module docstring)."""

    def __init__(self, data: Mapping, root: str | os.PathLike | None = None):
        self.root = splits_root(root)
        self._data = data
        self._owned = False  # True once _data is a private copy (safe to mutate)

    # --- reading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str | os.PathLike | None = None) -> "ManifestIndex":
        """The index of ``root`` (default: the package's splits folder); an empty index when the
        folder has none. Raises :class:`ChecksumError` when the file is not valid JSON."""
        p = index_path(root)
        if not p.is_file():
            idx = cls(_empty(), root)
            idx._owned = True
            return idx
        st = p.stat()
        try:
            data = _parse(str(p), st.st_mtime_ns, st.st_size)
        except json.JSONDecodeError as exc:
            raise ChecksumError(
                f"manifest index: expected valid JSON at {p}, found a parse error ({exc.msg} at line {exc.lineno})"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("versions", {}), dict):
            raise ChecksumError(
                f"manifest index: expected a JSON object with a 'versions' mapping at {p}, found {type(data).__name__}"
            )
        return cls(data, root)

    @property
    def path(self) -> Path:
        """Where this index lives (``<root>/index.json``)."""
        return index_path(self.root)

    def to_dict(self) -> dict:
        """A deep copy of the raw index (for writing elsewhere, e.g. the hub)."""
        return copy.deepcopy(dict(self._data))

    def versions(self) -> list[str]:
        """Every version the index records, oldest first."""
        return sort_versions(self._data.get("versions", {}))

    def latest(self) -> str | None:
        """The newest recorded version (None for an empty index)."""
        return latest_of(self._data.get("versions", {}))

    def has_version(self, version: str) -> bool:
        return version in self._data.get("versions", {})

    def version_entry(self, version: str) -> dict:
        """A copy of a version's raw entry ({} when the version is not recorded)."""
        return copy.deepcopy(self._data.get("versions", {}).get(version, {}))

    def writer(self, version: str) -> str | None:
        """The parquet writer that produced a version's files (``"pyarrow X.Y.Z"``)."""
        return self._data.get("versions", {}).get(version, {}).get("writer")

    def files(self, version: str) -> dict[str, FileEntry]:
        """``{relpath: FileEntry}`` of every file of ``version`` ({} when not recorded), sorted by path."""
        raw = self._data.get("versions", {}).get(version, {}).get("files", {})
        return {
            rel: FileEntry(rel, e["sha256"], int(e["size"]), e.get("content_sha256")) for rel, e in sorted(raw.items())
        }

    def file_entry(self, relpath: str) -> FileEntry | None:
        """The entry of one file (its version is the first path component), or None."""
        version = relpath.split("/", 1)[0]
        e = self._data.get("versions", {}).get(version, {}).get("files", {}).get(relpath)
        return None if e is None else FileEntry(relpath, e["sha256"], int(e["size"]), e.get("content_sha256"))

    def benchmarks(self, version: str) -> dict[str, dict]:
        """``{name: entry}`` of the benchmarks built in ``version`` (copies; {} when not recorded)."""
        return copy.deepcopy(self._data.get("versions", {}).get(version, {}).get("benchmarks", {}))

    def benchmark_entry(self, name: str, version: str) -> dict | None:
        """A benchmark's entry in ``version`` (family, status, files, counts), or None."""
        e = self._data.get("versions", {}).get(version, {}).get("benchmarks", {}).get(name)
        return copy.deepcopy(e) if e is not None else None

    def benchmark_files(self, name: str, version: str) -> list[str]:
        """Relative paths of a benchmark's manifest files in ``version`` ([] for needs-input or unknown)."""
        e = self._data.get("versions", {}).get(version, {}).get("benchmarks", {}).get(name) or {}
        return list(e.get("files", []))

    def taxonomy_files(self, version: str) -> list[str]:
        """Relative paths of a version's taxonomy tables (``<version>/taxonomy/*.parquet``)."""
        return [rel for rel in self.files(version) if rel.startswith(f"{version}/taxonomy/")]

    @property
    def hub(self) -> HubConfig:
        """The hub block, with defaults filled in."""
        h = self._data.get("hub") or {}
        return HubConfig(
            repo_id=h.get("repo_id") or DEFAULT_HUB_REPO,
            repo_type=h.get("repo_type") or HUB_REPO_TYPE,
            revisions=dict(h.get("revisions") or {}),
            checksums=copy.deepcopy(dict(h.get("checksums") or {})),
        )

    def pinned_revision(self, version: str) -> str | None:
        """The hub commit ``version`` is pinned to, or None before its release is recorded."""
        return self.hub.revisions.get(version)

    def checksums_pin(self, version: str) -> dict | None:
        """``{"sha256", "size"}`` of the released ``checksums.json`` of ``version``, or None."""
        return self.hub.checksums.get(version)

    # --- writing ---------------------------------------------------------------------------------
    def _own(self) -> dict:
        if not self._owned:
            self._data = copy.deepcopy(dict(self._data))
            self._owned = True
        self._data.setdefault("format", INDEX_FORMAT)
        self._data.setdefault("versions", {})
        return self._data

    def set_version(
        self, version: str, files: Mapping[str, FileEntry | Mapping], benchmarks: Mapping[str, dict], writer: str
    ) -> None:
        """Record (or replace) a version's files, benchmark entries and writer. Other keys others
        record per version (e.g. ``hub_files``) are kept."""
        data = self._own()
        entry = dict(data["versions"].get(version, {}))
        entry["files"] = {
            rel: (e.as_dict() if isinstance(e, FileEntry) else dict(e)) for rel, e in sorted(files.items())
        }
        entry["benchmarks"] = copy.deepcopy(dict(benchmarks))
        entry["writer"] = writer
        data["versions"][version] = entry

    def record_release(self, repo_id: str, version: str, commit: str, checksums_entry: Mapping) -> bool:
        """Pin ``version`` to the hub ``commit`` and record the sha256/size of its ``checksums.json``.

        Only for the index's own repository -- or when no version is pinned yet, which adopts
        ``repo_id``. Returns False (and changes nothing) for another repository. Call :meth:`save`
        afterwards. Raises :class:`InvalidInputError` on a commit id that is not 40 hex digits."""
        if not _COMMIT_RE.match(commit or ""):
            raise InvalidInputError(f"record_release: expected a 40-hex commit id, found {commit!r}")
        current = self.hub
        if current.repo_id != repo_id and any(current.revisions.values()):
            return False
        data = self._own()
        hub = data.setdefault("hub", {"repo_id": repo_id, "repo_type": HUB_REPO_TYPE, "revisions": {}})
        hub["repo_id"] = repo_id
        hub.setdefault("repo_type", HUB_REPO_TYPE)
        hub.setdefault("revisions", {})[version] = commit
        hub.setdefault("checksums", {})[version] = dict(checksums_entry)
        return True

    def save(self, root: str | os.PathLike | None = None) -> Path:
        """Write the index atomically to ``root`` (default: where it was read). Returns the path."""
        if root is not None:
            self.root = splits_root(root)
        p = self.path
        write_json(p, dict(self._data))
        _parse.cache_clear()
        return p


def clear_cache() -> None:
    """Forget every parsed index (after writing an index by other means)."""
    _parse.cache_clear()
