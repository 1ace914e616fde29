"""Versioned manifest files and their checksummed index.

Layout (the repository's top-level ``splits/``, installed as package data ``in21k_bench/splits/``
so installed users have it; :mod:`in21k_bench.paths` finds it)::

    splits/index.json                 # sha256 + size (+ content hash) of every file
    splits/v1/taxonomy/*.parquet      # the built taxonomy and ImageNet-1K labels
    splits/v1/<benchmark>/*.parquet   # one folder per benchmark
    splits/sources/                   # the vendored raw sources the manifests are built from

A released version is never edited: :func:`build_all` refuses to write a version that the index
already records with different content. Reading a file checks its sha256 against the index.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import ChecksumError, In21kError
from .fileio import atomic_path, sha256_file, write_json
from .paths import INDEX_NAME, SPLITS_DIR  # re-exported: callers import them from here

INDEX_FORMAT = 1
DEFAULT_HUB_REPO = "in21k-bench/in21k-bench"


# --------------------------------------------------------------------------------------------------
# index
# --------------------------------------------------------------------------------------------------


def index_path(root: Path | None = None) -> Path:
    return (root or SPLITS_DIR) / INDEX_NAME


def _empty_index() -> dict:
    return {
        "format": INDEX_FORMAT,
        "versions": {},
        "hub": {"repo_id": DEFAULT_HUB_REPO, "repo_type": "dataset", "revisions": {}},
    }


@lru_cache(maxsize=8)
def _read_index_cached(path: str, mtime_ns: int) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_index(root: Path | None = None) -> dict:
    p = index_path(root)
    if not p.is_file():
        return _empty_index()
    try:
        return _read_index_cached(str(p), p.stat().st_mtime_ns)
    except json.JSONDecodeError as exc:
        raise ChecksumError(f"manifest index: expected valid JSON at {p}, found a parse error ({exc.msg} at line {exc.lineno})") from None


def versions(root: Path | None = None) -> list[str]:
    return sorted(read_index(root)["versions"], key=_version_key)


def _version_key(v: str) -> tuple:
    return (int(v[1:]) if v[1:].isdigit() else 10**9, v)


def latest_version(root: Path | None = None) -> str | None:
    vs = versions(root)
    return vs[-1] if vs else None


# --------------------------------------------------------------------------------------------------
# reading and writing tables
# --------------------------------------------------------------------------------------------------


def _type_name(t: pa.DataType) -> str:
    """Type name without the list item's field name (parquet reads ``list<element: ...>``)."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{_type_name(t.value_type)}>"
    return str(t)


def content_sha256(table: pa.Table) -> str:
    """A hash of a table's content -- schema (names, types, metadata) and values -- independent of the
    parquet writer's version and of Arrow's in-memory buffer layout."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    meta = table.schema.metadata or {}
    h.update(json.dumps(sorted((k.decode(), v.decode()) for k, v in meta.items())).encode())
    for name, col in zip(table.column_names, table.columns):
        h.update(f"|{name}:{_type_name(col.type)}:{col.null_count}|".encode())
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
            h.update(np.ascontiguousarray(col.to_numpy()).tobytes())
        else:
            h.update(json.dumps(col.to_pylist(), ensure_ascii=False).encode())
    return h.hexdigest()


def write_table(table: pa.Table, path: Path) -> None:
    """Deterministic parquet write (fixed options, one row group), atomic."""
    with atomic_path(path) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            compression_level=9,
            row_group_size=max(1, table.num_rows),
            write_statistics=False,
            store_schema=True,
        )


def verify_file(relpath: str, root: Path | None = None) -> Path:
    """Check one file against the index; returns its path."""
    root = root or SPLITS_DIR
    entry = None
    version = relpath.split("/", 1)[0]
    entry = read_index(root)["versions"].get(version, {}).get("files", {}).get(relpath)
    path = root / relpath
    if entry is None:
        raise ChecksumError(f"manifest {relpath}: expected an entry in {index_path(root)}, found none")
    if not path.is_file():
        raise ChecksumError(f"manifest {relpath}: expected the file at {path}, found none (reinstall the package or run `in21k-bench download`)")
    size = path.stat().st_size
    if size != entry["size"]:
        raise ChecksumError(f"manifest {relpath}: expected {entry['size']} bytes (index), found {size}; the file was altered")
    got = sha256_file(path)
    if got != entry["sha256"]:
        raise ChecksumError(
            f"manifest {relpath}: expected sha256 {entry['sha256'][:16]}... (index), found {got[:16]}...; the file was altered"
        )
    return path


def read_arrow(relpath: str, root: Path | None = None) -> pa.Table:
    path = verify_file(relpath, root)
    return pq.read_table(path)


def read_table(relpath: str, root: Path | None = None) -> pd.DataFrame:
    """Read a checksummed manifest table as a DataFrame."""
    return read_arrow(relpath, root).to_pandas()


# --------------------------------------------------------------------------------------------------
# building a version
# --------------------------------------------------------------------------------------------------


def build_tables(sources_dir: str | os.PathLike | None = None, version: str = "v1") -> tuple[dict[str, pa.Table], dict[str, dict]]:
    """Build every table of a version in memory: ``({relpath: table}, {benchmark: info})``.

    Benchmarks whose status is "needs-input" contribute no files (their builders run on user input).
    """
    from .benchmark import Benchmark
    from .catalog import check_version, list_definitions
    from .sources import Sources
    from .taxonomy import Taxonomy, build_taxonomy_tables

    check_version(version, "build-manifests")  # also keeps a version like '../x' out of the paths
    sources = Sources.locate(sources_dir)
    tables: dict[str, pa.Table] = {}
    for rel, t in build_taxonomy_tables(sources).items():
        tables[f"{version}/{rel}.parquet"] = t
    taxonomy = Taxonomy(tables[f"{version}/taxonomy/classes.parquet"].to_pandas(), version=version)
    from .taxonomy import ImageNet1k

    in1k = ImageNet1k(
        tables[f"{version}/taxonomy/imagenet1k_classes.parquet"].to_pandas(),
        tables[f"{version}/taxonomy/imagenet1k_val.parquet"].to_pandas(),
    )
    info: dict[str, dict] = {}
    for d in list_definitions(version=version):
        entry = {"family": d.family, "status": d.status, "files": []}
        if d.status == "ready":
            built = d.build(taxonomy=taxonomy, imagenet1k=in1k)
            for fname, t in built.items():
                rel = f"{version}/{d.name}/{fname}.parquet"
                tables[rel] = t
                entry["files"].append(rel)
            bench = Benchmark.from_tables(d, built, taxonomy=taxonomy, imagenet1k=in1k)
            entry.update(
                num_classes=bench.num_classes,
                num_train=bench.num_train,
                num_val=bench.num_val,
            )
        info[d.name] = entry
    return tables, info


def build_all(
    out_root: Path | None = None,
    sources_dir: str | os.PathLike | None = None,
    version: str = "v1",
    force: bool = False,
) -> dict:
    """Build a version's manifests into ``out_root`` (default: the package's ``splits/``) and update
    the index there. Refuses to change a version the index already records, unless ``force``."""
    import pyarrow

    out_root = Path(out_root) if out_root else SPLITS_DIR
    tables, info = build_tables(sources_dir, version)
    new_files = {}
    for rel, t in tables.items():
        new_files[rel] = {"content_sha256": content_sha256(t)}
    index = json.loads(json.dumps(read_index(out_root)))  # deep copy
    old = index["versions"].get(version)
    if old is not None and not force:
        old_content = {k: v.get("content_sha256") for k, v in old["files"].items()}
        new_content = {k: v["content_sha256"] for k, v in new_files.items()}
        if old_content != new_content:
            changed = sorted(k for k in set(old_content) | set(new_content) if old_content.get(k) != new_content.get(k))
            raise In21kError(
                f"build-manifests: version {version} is released and must not change, but the build differs in "
                f"{len(changed)} file(s) (first: {changed[0]}); build a new version with --version v{int(version[1:]) + 1}"
            )
    for rel, t in tables.items():
        path = out_root / rel
        # keep the released bytes when the content is identical (parquet bytes depend on the writer version)
        if old is not None and rel in old["files"] and path.is_file() and not force:
            continue
        write_table(t, path)
    for rel in tables:
        path = out_root / rel
        new_files[rel].update(sha256=sha256_file(path), size=path.stat().st_size)
    entry = dict(old) if old is not None else {}  # keeps what others record per version (e.g. hub_files)
    entry.update(
        files=dict(sorted(new_files.items())),
        benchmarks=info,
        writer=old["writer"] if old is not None and not force else f"pyarrow {pyarrow.__version__}",
    )
    index["versions"][version] = entry
    write_json(index_path(out_root), index)
    _read_index_cached.cache_clear()
    return index


def iter_files(version: str, root: Path | None = None) -> Iterable[tuple[str, dict]]:
    return read_index(root)["versions"].get(version, {}).get("files", {}).items()
