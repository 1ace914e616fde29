"""Building a manifest version from the raw sources (``in21k-bench build-manifests``).

One layer above loading: it runs every registered builder of a version on the taxonomy built from
the raw sources, checks the result by loading it as a :class:`~in21k_bench.benchmark.Benchmark`,
and writes the parquet files plus their index entries. A released version is never edited:
:func:`build_all` refuses to write a version that the index already records with different content.
"""

from __future__ import annotations

import os

import pyarrow as pa

from ..benchmark import Benchmark
from ..errors import In21kError
from ..fileio import sha256_file
from ..manifests.files import content_sha256, write_table
from ..manifests.index import FileEntry, ManifestIndex
from ..manifests.versions import next_version
from ..paths import splits_root
from ..registry.catalog import check_version, list_definitions
from ..registry.taxonomy import imagenet1k_from_tables, taxonomy_from_tables
from .sources import Sources
from .taxonomy_tables import build_taxonomy_tables


def build_tables(
    sources_dir: str | os.PathLike | None = None, version: str = "v1"
) -> tuple[dict[str, pa.Table], dict[str, dict]]:
    """Build every table of a version in memory: ``({relpath: table}, {benchmark: info})``.

    Benchmarks whose status is "needs-input" contribute no files (their builders run on user input).
    """
    check_version(version, "build-manifests")  # also keeps a version like '../x' out of the paths
    sources = Sources.locate(sources_dir)
    built_taxonomy = build_taxonomy_tables(sources, version)
    tables: dict[str, pa.Table] = {f"{version}/{rel}.parquet": t for rel, t in built_taxonomy.items()}
    short = {rel.split("/", 1)[1]: t for rel, t in built_taxonomy.items()}
    taxonomy = taxonomy_from_tables(short, version)
    in1k = imagenet1k_from_tables(short)
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
            entry.update(num_classes=bench.num_classes, num_train=bench.num_train, num_val=bench.num_val)
        info[d.name] = entry
    return tables, info


def build_all(
    out_root: str | os.PathLike | None = None,
    sources_dir: str | os.PathLike | None = None,
    version: str = "v1",
    force: bool = False,
) -> ManifestIndex:
    """Build a version's manifests into ``out_root`` (default: the package's splits folder) and update
    the index there; returns the updated :class:`ManifestIndex`. Refuses to change a version the index
    already records, unless ``force``. Files whose content is unchanged keep their released bytes."""
    out_root = splits_root(out_root)
    tables, info = build_tables(sources_dir, version)
    index = ManifestIndex.load(out_root)
    old = index.files(version) if index.has_version(version) else None
    if old is not None and not force:
        old_content = {k: v.content_sha256 for k, v in old.items()}
        new_content = {k: content_sha256(t) for k, t in tables.items()}
        if old_content != new_content:
            changed = sorted(k for k in set(old_content) | set(new_content) if old_content.get(k) != new_content.get(k))
            raise In21kError(
                f"build-manifests: version {version} is released and must not change, but the build differs in "
                f"{len(changed)} file(s) (first: {changed[0]}); build a new version with --version "
                f"{next_version(version)}"
            )
    files: dict[str, FileEntry] = {}
    for rel, t in tables.items():
        path = out_root / rel
        # keep the released bytes when the content is identical (parquet bytes depend on the writer version)
        if not (old is not None and rel in old and path.is_file() and not force):
            write_table(t, path)
        files[rel] = FileEntry(rel, sha256_file(path), path.stat().st_size, content_sha256(t))
    writer = index.writer(version) if old is not None and not force else f"pyarrow {pa.__version__}"
    index.set_version(version, files, info, writer or f"pyarrow {pa.__version__}")
    index.save(out_root)
    return index
