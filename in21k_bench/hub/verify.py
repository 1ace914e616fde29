"""Verification of hub files: sha256 against the package index, cache eviction, the hub index's agreement.

Every downloaded file is checked by sha256 (the hub client itself only checks sizes). A mismatch
deletes the bad cached copy -- the snapshot link and the blob(s) it points to -- so that the next
attempt downloads it again instead of trusting the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..fileio import sha256_file

# realpath, size, mtime_ns, inode -> sha256 (so one process hashes a large file once)
_VERIFIED: dict[tuple, str] = {}


def clear_verified() -> None:
    """Forget which files this process already hashed (the next check reads them from disk again)."""
    _VERIFIED.clear()


def _stat_key(path: Path) -> tuple:
    real = os.path.realpath(path)
    st = os.stat(real)
    return (real, st.st_size, st.st_mtime_ns, st.st_ino)


def sha256_memo(path: Path) -> str:
    """sha256 of ``path``, hashed once per process for an unchanged file."""
    key = _stat_key(path)
    got = _VERIFIED.get(key)
    if got is None:
        got = sha256_file(path)
        _VERIFIED[key] = got
    return got


def check_file(path: Path, expected: Mapping[str, Any]) -> str | None:
    """None when ``path`` matches ``expected`` (sha256, optional size), else a description of the mismatch."""
    size = os.path.getsize(path)
    if expected.get("size") is not None and size != int(expected["size"]):
        return f"expected {int(expected['size'])} bytes, found {size}"
    got = sha256_memo(path)
    if got != expected["sha256"]:
        return f"expected sha256 {expected['sha256'][:16]}..., found {got[:16]}..."
    return None


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what the hub announces as the ETag of a small file)."""
    h = hashlib.sha1()
    h.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def evict(path: Path) -> list[str]:
    """Delete a cached file: the snapshot link, the blob(s) it points to. Returns what was removed."""
    chain: list[str] = []
    cur = str(path)
    seen: set[str] = set()
    while os.path.islink(cur) and cur not in seen:
        seen.add(cur)
        chain.append(cur)
        cur = os.path.normpath(os.path.join(os.path.dirname(cur), os.readlink(cur)))
    chain.append(cur)
    if len(chain) == 1:
        # no symlinks (e.g. Windows without developer mode): the blob is a separate copy with the same bytes
        chain += _same_blobs(Path(cur))
    removed = []
    for p in chain:
        try:
            os.unlink(p)
            removed.append(p)
        except FileNotFoundError:
            pass
    for k in [k for k in _VERIFIED if k[0] in chain or k[0] == os.path.realpath(cur)]:
        _VERIFIED.pop(k, None)
    return removed


def _same_blobs(path: Path) -> list[str]:
    """Blobs of the hub cache repository folder holding ``path`` with the same bytes as ``path``."""
    parts = path.parts
    if "snapshots" not in parts or not path.is_file():
        return []
    storage = Path(*parts[: len(parts) - parts[::-1].index("snapshots") - 1])
    size, sha = path.stat().st_size, sha256_file(path)
    out = []
    for blob in (storage / "blobs").glob("*"):
        if (
            blob.is_file()
            and not blob.name.endswith(".incomplete")
            and blob.stat().st_size == size
            and sha256_file(blob) == sha
        ):
            out.append(str(blob))
    return out


def shard_entries(meta: dict) -> list[tuple[str, dict]]:
    """(file name, {"sha256", "size"?}) of every shard a feature store's meta.json lists."""
    shards = meta.get("shards")
    out = []
    items = shards.items() if isinstance(shards, dict) else enumerate(shards or [])
    for key, s in items:
        if not isinstance(s, dict):
            continue
        fname = s.get("file") or s.get("name") or s.get("path") or (key if isinstance(key, str) else None)
        if not fname or "sha256" not in s:
            continue
        fname = Path(fname).name
        out.append((fname, {"sha256": s["sha256"], **({"size": s["size"]} if "size" in s else {})}))
    return out


def _short(files: Iterable[str]) -> str:
    files = list(files)
    return "[" + ", ".join(files[:4]) + (f", ... {len(files) - 4} more" if len(files) > 4 else "") + "]"


def index_disagreement(hub_index: Any, ours: Mapping[str, Any], version: str, name: str | None) -> str | None:
    """Where the hub's ``splits/index.json`` disagrees with the package index on ``version``; None if nowhere.

    The package index is the authority: for ``version``, every benchmark must list the same files on
    both sides and every file must have the same sha256 and size. A loader reading the hub snapshot
    (``load(name, root=...)``) then reads exactly what the package would. Versions the package does
    not know are never read and are not compared. The text names the benchmark (``name`` first)."""
    label = f"benchmark {name!r} ({version})" if name else f"version {version}"
    try:
        theirs = hub_index["versions"][version]
        their_benches, their_files = theirs["benchmarks"], theirs["files"]
        if not isinstance(their_benches, dict) or not isinstance(their_files, dict):
            raise TypeError
    except (KeyError, TypeError):
        found = (
            sorted(hub_index.get("versions", {}))
            if isinstance(hub_index, dict) and isinstance(hub_index.get("versions"), dict)
            else []
        )
        return f"{label}: expected version {version} in the hub's index, found versions {found or 'none'}"
    our_benches, our_files = ours.get("benchmarks", {}), ours.get("files", {})
    names = sorted(set(our_benches) | set(their_benches), key=lambda n: (n != name, n))
    for bench in names:
        mine = list((our_benches.get(bench) or {}).get("files", []))
        other = their_benches.get(bench)
        other_files = list(other.get("files", [])) if isinstance(other, dict) else None
        if other_files != mine:
            which = f"benchmark {bench!r} ({version})" + (f", read for {name!r}" if name and bench != name else "")
            if bench not in our_benches:
                return (
                    f"{which}: expected no such benchmark (the package index does not list it), found it in the "
                    "hub's index"
                )
            if other_files is None:
                return f"{which}: expected files {_short(mine)}, found no entry in the hub's index"
            return f"{which}: expected files {_short(mine)}, found {_short(other_files)} in the hub's index"
    for rel in sorted(set(our_files) | set(their_files)):
        a, b = our_files.get(rel), their_files.get(rel)
        if a is None or not isinstance(b, dict) or a.get("sha256") != b.get("sha256") or a.get("size") != b.get("size"):
            owner = next((n for n in names if rel in (our_benches.get(n) or {}).get("files", [])), None) or name
            which = f"benchmark {owner!r} ({version})" if owner else label
            if a is None:
                return (
                    f"{which}: expected no file {rel} (the package index does not list it), found one in the hub's "
                    "index"
                )
            found = str(b.get("sha256"))[:16] + "..." if isinstance(b, dict) else "no entry"
            return f"{which}: expected {rel} with sha256 {a['sha256'][:16]}..., found {found} in the hub's index"
    return None


def check_hub_index(path: Path, ours: Mapping[str, Any], version: str, name: str | None) -> str | None:
    """:func:`index_disagreement` of the hub index file at ``path`` (None: it agrees)."""
    try:
        with open(path, encoding="utf-8") as f:
            hub_index = json.load(f)
    except (OSError, ValueError) as exc:
        label = f"benchmark {name!r} ({version})" if name else f"version {version}"
        return f"{label}: expected the hub's index as JSON, found {type(exc).__name__}"
    return index_disagreement(hub_index, ours, version, name)
