"""Which package index, repository and revision a hub operation uses, and the repository's layout names."""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from ..errors import UnknownBenchmarkError
from ..manifests.index import ManifestIndex

REPO_TYPE = "dataset"
CHECKSUMS_NAME = "checksums.json"
CARD_NAME = "README.md"
SPLITS_PREFIX = "splits"
RELABEL_MODES = ("p-hzr", "leaf-hzr")
SCORE_MODELS = ("clip", "dinov2", "sup")
FEATURE_SPLITS = ("train", "val")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")

# Which package index to trust. ``None`` = the package's own ``splits/`` (tests point it elsewhere).
SPLITS_INDEX_ROOT: Path | None = None


def package_index() -> ManifestIndex:
    """The package index every hub download is checked against (the authority, never the hub's copy)."""
    return ManifestIndex.load(SPLITS_INDEX_ROOT)


def hub_config() -> dict:
    """The ``hub`` block of the package index (``repo_id``, ``repo_type``, ``revisions``, ``checksums``)."""
    hub = package_index().hub
    return {
        "repo_id": hub.repo_id,
        "repo_type": hub.repo_type,
        "revisions": dict(hub.revisions),
        "checksums": dict(hub.checksums),
    }


def resolve_version(version: str | None) -> str:
    """``version`` checked against the package index; None -> the latest version it knows."""
    known = package_index().versions()
    if version is None:
        if not known:
            raise UnknownBenchmarkError("hub: expected at least one version in the package index, found none")
        return known[-1]
    if version not in known:
        raise UnknownBenchmarkError(
            f"hub: expected a version the package knows ({', '.join(known) or 'none'}), found {version!r}; "
            "a newer version needs a newer in21k-bench (its index holds the sha256 of every file)"
        )
    return version


def resolve_repo_and_revision(version: str, repo_id: str | None = None, revision: str | None = None) -> tuple[str, str]:
    """``(repo_id, revision)`` to download ``version`` from.

    An explicit ``revision`` wins; otherwise the commit the package index pins for ``version`` (only
    for the index's own repository); otherwise the tag named like the version."""
    hub = hub_config()
    repo = repo_id or hub["repo_id"]
    if revision:
        return repo, revision
    pinned = hub["revisions"].get(version) if repo == hub["repo_id"] else None
    return repo, pinned or version


def version_entry(version: str) -> dict:
    """The package index's raw entry of ``version`` (files, benchmarks; a copy)."""
    return package_index().version_entry(version)


def benchmark_entry(name: str, version: str) -> dict:
    """The package index's entry of benchmark ``name`` in ``version`` (files, counts)."""
    benches = package_index().benchmarks(version)
    if name not in benches:
        close = difflib.get_close_matches(name, list(benches), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownBenchmarkError(f"hub: expected a benchmark of version {version}, found {name!r}{hint}")
    return benches[name]


def taxonomy_files(version: str) -> list[str]:
    return sorted(package_index().taxonomy_files(version))


def cache_dir_display(cache_dir: str | os.PathLike | None) -> str:
    if cache_dir is not None:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def offline() -> bool:
    """True when the hub client's offline mode (``HF_HUB_OFFLINE``) is on."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())
