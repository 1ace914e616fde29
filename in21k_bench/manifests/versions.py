"""The one ordering of manifest versions (``v1 < v2 < ... < v10``).

Versions are named ``v<N>``; they sort by ``N``. A name that does not follow the pattern sorts after
every numbered version (then by name), so an unexpected entry never hides the latest numbered one.
"""

from __future__ import annotations

from typing import Iterable


def version_key(version: str) -> tuple[int, str]:
    """Sort key: ``("v2") -> (2, "v2")``; names not of the form ``v<N>`` sort last."""
    tail = version[1:] if version.startswith("v") else ""
    return (int(tail) if tail.isdigit() else 10**9, version)


def sort_versions(versions: Iterable[str]) -> list[str]:
    """``versions`` oldest first (duplicates removed)."""
    return sorted(set(versions), key=version_key)


def latest(versions: Iterable[str]) -> str | None:
    """The newest of ``versions`` (None when empty)."""
    vs = sort_versions(versions)
    return vs[-1] if vs else None


def next_version(version: str) -> str:
    """The version after ``version`` (``v1 -> v2``); for a name not of the form ``v<N>``, ``v2``."""
    n, _ = version_key(version)
    return f"v{n + 1}" if n < 10**9 else "v2"
