"""Manifest files on disk: deterministic parquet writes, sha256-checked reads.

Layout (the repository's top-level ``splits/``, installed as package data ``in21k_bench/splits/``
so installed users have it; :mod:`in21k_bench.paths` finds it)::

    splits/index.json                 # the version index (:class:`~in21k_bench.manifests.index.ManifestIndex`)
    splits/v1/taxonomy/*.parquet      # the built taxonomy and ImageNet-1K labels of a version
    splits/v1/<benchmark>/*.parquet   # one folder per benchmark
    splits/sources/                   # the vendored raw sources the manifests are built from

Reading a file checks its size and sha256 against the index (:func:`verify_file`). Building a version
is :mod:`in21k_bench.authoring.build`, one layer above this module.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ChecksumError
from ..fileio import atomic_path, sha256_file
from ..paths import INDEX_NAME, SPLITS_DIR, index_path, splits_root
from .index import DEFAULT_HUB_REPO, INDEX_FORMAT, ManifestIndex

__all__ = [
    "DEFAULT_HUB_REPO",
    "INDEX_FORMAT",
    "INDEX_NAME",
    "SPLITS_DIR",
    "content_sha256",
    "index_path",
    "read_arrow",
    "read_index",
    "read_table",
    "verify_file",
    "write_table",
]


# --------------------------------------------------------------------------------------------------
# the raw index as a dict (a copy), e.g. to write an edited index elsewhere; code reads ManifestIndex
# --------------------------------------------------------------------------------------------------


def read_index(root: Path | None = None) -> dict:
    """A copy of the raw index dict of ``root``. Code that reads the index uses :class:`ManifestIndex`."""
    return ManifestIndex.load(root).to_dict()


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
    root = splits_root(root)
    entry = ManifestIndex.load(root).file_entry(relpath)
    path = root / relpath
    if entry is None:
        raise ChecksumError(f"manifest {relpath}: expected an entry in {index_path(root)}, found none")
    if not path.is_file():
        raise ChecksumError(
            f"manifest {relpath}: expected the file at {path}, found none (reinstall the package or run `in21k-bench "
            "download`)"
        )
    size = path.stat().st_size
    if size != entry.size:
        raise ChecksumError(
            f"manifest {relpath}: expected {entry.size} bytes (index), found {size}; the file was altered"
        )
    got = sha256_file(path)
    if got != entry.sha256:
        raise ChecksumError(
            f"manifest {relpath}: expected sha256 {entry.sha256[:16]}... (index), found {got[:16]}...; the file was "
            "altered"
        )
    return path


def read_arrow(relpath: str, root: Path | None = None) -> pa.Table:
    path = verify_file(relpath, root)
    return pq.read_table(path)


def read_table(relpath: str, root: Path | None = None) -> pd.DataFrame:
    """Read a checksummed manifest table as a DataFrame."""
    return read_arrow(relpath, root).to_pandas()
