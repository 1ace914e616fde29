"""The provenance record of a result: what produced it, end to end.

One record shape, carried by ``fit.json`` / ``run.json`` (under ``provenance``), by
``in21k-bench evaluate --json`` and by leaderboard submissions::

    {"package_version": "0.1.0",
     "benchmark": "in21k", "manifest_version": "v1",
     "manifest_sha256": "...",           # digest of the benchmark's manifest files (see below)
     "manifest_files": {"v1/in21k/labels.parquet": "<sha256>", ...},
     "backbone": {"name", "spec", "loader", "weights", "checkpoint_sha256", "pretrained", "dim"},
     "preprocessing": {"mode", "resize", "crop", "interpolation", "mean", "std"},
     "features": "path/to/train/store"}

A field that is not known is ``None`` (an older or simulated store records only a backbone name and
no preprocessing; a labels file has no manifest); nothing is guessed.

``manifest_sha256`` is computed from the checksummed index (``splits/index.json``), not by hashing
the files again: it is the sha256 of the ``sha256sum``-style listing ``"<sha256>  <relpath>\\n"`` of
the benchmark's manifest files sorted by path, so ``sha256sum`` of the listed files, sorted and
hashed, gives the same value. Torch-free; imports only the index reader.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from ..version import __version__

__all__ = [
    "BACKBONE_FIELDS",
    "PREPROCESSING_FIELDS",
    "manifest_record",
    "missing_fields",
    "provenance_from_record",
    "provenance_record",
    "store_provenance",
]

#: Fields a verified leaderboard entry must carry (non-null) in ``provenance.backbone``.
BACKBONE_FIELDS: tuple[str, ...] = ("name", "spec", "loader", "weights", "dim")
#: Fields a verified leaderboard entry must carry (non-null) in ``provenance.preprocessing``.
PREPROCESSING_FIELDS: tuple[str, ...] = ("resize", "crop", "interpolation", "mean", "std")


def manifest_record(benchmark: str | None, version: str | None, root=None) -> dict:
    """``{"manifest_version", "manifest_sha256", "manifest_files"}`` of a registered benchmark from the
    index at ``root`` (default: the package's ``splits/``); Nones when the benchmark is not in the index
    (a custom labels file, a benchmark that needs user input)."""
    out: dict[str, Any] = {"manifest_version": version, "manifest_sha256": None, "manifest_files": None}
    if not benchmark or not version:
        return out
    from ..manifests.index import ManifestIndex

    index = ManifestIndex.load(root)
    files = {}
    for rel in index.benchmark_files(benchmark, version):
        entry = index.file_entry(rel)
        if entry is None:
            return out
        files[rel] = entry.sha256
    if not files:
        return out
    listing = "".join(f"{sha}  {rel}\n" for rel, sha in sorted(files.items()))
    out["manifest_sha256"] = hashlib.sha256(listing.encode("utf-8")).hexdigest()
    out["manifest_files"] = files
    return out


def _backbone_of(store: Any) -> dict | None:
    rec = getattr(store, "backbone_record", None)
    if isinstance(rec, Mapping):
        return dict(rec)
    name = getattr(store, "backbone", None)
    return {"name": str(name)} if name else None


def store_provenance(store: Any) -> dict:
    """``{"backbone", "preprocessing", "features"}`` of a feature store (a
    :class:`~in21k_bench.features.store.FeatureStore` or a view of one); unknown parts are None."""
    prep = getattr(store, "preprocessing", None)
    path = getattr(store, "path", None)
    return {
        "backbone": _backbone_of(store),
        "preprocessing": dict(prep) if isinstance(prep, Mapping) else None,
        "features": str(path) if path is not None else None,
    }


def provenance_record(
    *,
    store: Any = None,
    benchmark: str | None = None,
    version: str | None = None,
    backbone: Mapping | None = None,
    preprocessing: Mapping | None = None,
    features: str | None = None,
    package_version: str | None = None,
    root=None,
) -> dict:
    """The full record. ``store`` supplies backbone / preprocessing / features unless they are given;
    ``benchmark`` + ``version`` the manifest fields (from the index)."""
    base = store_provenance(store) if store is not None else {"backbone": None, "preprocessing": None, "features": None}
    if backbone is not None:
        base["backbone"] = dict(backbone)
    if preprocessing is not None:
        base["preprocessing"] = dict(preprocessing)
    if features is not None:
        base["features"] = str(features)
    return {
        "package_version": package_version or __version__,
        "benchmark": benchmark,
        **manifest_record(benchmark, version, root),
        **base,
    }


def provenance_from_record(run_record: Mapping | None) -> dict:
    """``{"backbone", "preprocessing", "features"}`` found in a predictions folder's run record
    (``fit.json`` / ``run.json``): its ``provenance`` block, else (older k-means records) a bare
    ``backbone`` name; Nones for whatever the record does not say."""
    out: dict[str, Any] = {"backbone": None, "preprocessing": None, "features": None}
    if not isinstance(run_record, Mapping):
        return out
    prov = run_record.get("provenance")
    if isinstance(prov, Mapping):
        b, p = prov.get("backbone"), prov.get("preprocessing")
        out["backbone"] = dict(b) if isinstance(b, Mapping) else None
        out["preprocessing"] = dict(p) if isinstance(p, Mapping) else None
        out["features"] = prov.get("features")
        return out
    name = run_record.get("backbone")
    if isinstance(name, str) and name:
        out["backbone"] = {"name": name}
    out["features"] = run_record.get("train_features")
    return out


def missing_fields(prov: Mapping | None) -> list[str]:
    """Dotted names of the fields a verified entry needs that ``prov`` lacks (empty: complete):
    package_version, manifest_version, manifest_sha256, backbone.{name, spec, loader, weights, dim}
    and preprocessing.{resize, crop, interpolation, mean, std}."""
    if not isinstance(prov, Mapping):
        return ["provenance"]
    missing = [k for k in ("package_version", "manifest_version", "manifest_sha256") if not prov.get(k)]
    for block, fields in (("backbone", BACKBONE_FIELDS), ("preprocessing", PREPROCESSING_FIELDS)):
        rec = prov.get(block)
        if not isinstance(rec, Mapping):
            missing.append(block)
            continue
        missing += [f"{block}.{f}" for f in fields if rec.get(f) is None or rec.get(f) == ""]
    return missing
