"""Downloads: manifests (checked against the package index), relabel / score files, feature stores,
and the inputs of "needs-input" benchmarks.

The package index is the authority: the files of a benchmark and their sha256 come from it, and
the hub's copy of ``splits/index.json`` is accepted only when it agrees with it on the whole
version (see :func:`~in21k_bench.hub.verify.index_disagreement`); any disagreement is a
:class:`~in21k_bench.errors.ChecksumError` naming the benchmark.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Iterable

from ..errors import ChecksumError, HubError, HubOfflineError, In21kError, InvalidInputError, UnknownBenchmarkError
from ..fileio import atomic_write, sha256_file
from ..paths import inputs_dir
from ..registry.catalog import get_definition
from .config import (
    CHECKSUMS_NAME,
    FEATURE_SPLITS,
    NAME_RE,
    RELABEL_MODES,
    SCORE_MODELS,
    SPLITS_PREFIX,
    benchmark_entry,
    hub_config,
    offline,
    resolve_repo_and_revision,
    resolve_version,
    taxonomy_files,
    version_entry,
)
from .fetch import Source, fetch_verified
from .verify import check_file, check_hub_index, git_blob_sha1, sha256_memo, shard_entries

# --------------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------------


def download_files(
    relpaths: Iterable[str],
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    fetch_hint: str | None = None,
    endpoint: str | None = None,
    benchmark: str | None = None,
) -> Path:
    """Download manifest files (paths relative to ``splits/``, e.g. ``v1/tiny/classes.parquet``) plus the
    index, verify each against the package index, and return the local splits root that holds them.

    The hub's ``splits/index.json`` must agree with the package index on every benchmark and file of
    ``version`` (``benchmark`` is the one named first in an error)."""
    version = resolve_version(version)
    ours = version_entry(version)
    files = ours.get("files", {})
    rels = sorted(dict.fromkeys(relpaths))
    for rel in rels:
        if rel not in files:
            raise UnknownBenchmarkError(
                f"hub: expected a manifest file of version {version} in the package index, found {rel!r}"
            )
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = Source(repo, rev, cache_dir, fetch_hint or f"in21k-bench download in21k --version {version}", endpoint)

    index_local = fetch_verified(
        src,
        f"{SPLITS_PREFIX}/index.json",
        None,
        "the package index is the authority",
        verify=lambda p: check_hub_index(p, ours, version, benchmark),
    )
    root = index_local.parent
    missing: list[HubOfflineError] = []
    for rel in rels:
        try:
            local = fetch_verified(src, f"{SPLITS_PREFIX}/{rel}", files[rel], "sha256 from the package index")
        except HubOfflineError as exc:
            missing.append(exc)
            if not offline():  # unreachable hub: every further attempt would wait for the network again
                break
            continue
        if os.path.abspath(local) != os.path.abspath(root / rel):
            raise HubError(
                f"hub: expected {rel} in the snapshot {root}, found it in another one (the revision {rev!r} moved "
                "during the download); run again"
            )
    if missing:
        extra = f" (and {len(missing) - 1} more missing file(s) of the same revision)" if len(missing) > 1 else ""
        raise HubOfflineError(f"{missing[0]}{extra}")
    return root


def download_manifest(
    name: str,
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Download a benchmark's manifest files (and the taxonomy they refer to) at the pinned revision,
    verified against the package index. Returns a local directory usable as a splits root
    (``in21k_bench.load(name, root=...)``)."""
    version = resolve_version(version)
    entry = benchmark_entry(name, version)
    rels = list(entry.get("files", [])) + taxonomy_files(version)
    hint = f"in21k-bench download {name} --version {version}"
    if repo_id:
        hint += f" --repo {repo_id}"
    if revision:
        hint += f" --revision {revision}"
    return download_files(rels, version, repo_id, revision, cache_dir, fetch_hint=hint, benchmark=name)


# --------------------------------------------------------------------------------------------------
# extra files: relabels, scores, features
# --------------------------------------------------------------------------------------------------


def hub_checksums(src: Source, version: str) -> dict[str, dict]:
    """The hub's ``checksums.json`` at the source revision, verified by the package pin when it has one."""
    hub = hub_config()
    pin = (hub.get("checksums") or {}).get(version) if src.repo_id == hub["repo_id"] else None

    def verify(p: Path) -> str | None:
        if pin:
            return check_file(p, pin)
        # No pin: the blob name the client stored is the git blob id the server announced; check it.
        target = os.path.realpath(p)
        etag = os.path.basename(target)
        if os.path.islink(p) and re.fullmatch(r"[0-9a-f]{40}", etag):
            got = git_blob_sha1(Path(target))
            if got != etag:
                return f"expected git blob {etag[:16]}..., found {got[:16]}..."
        try:
            with open(p, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data.get("files"), dict):
                return "expected a 'files' mapping, found none"
        except (OSError, ValueError, AttributeError) as exc:
            return f"expected JSON, found {type(exc).__name__}"
        return None

    trusted = "sha256 pinned in the package index" if pin else "git blob id announced by the hub"
    local = fetch_verified(src, CHECKSUMS_NAME, None, trusted, verify=verify)
    with open(local, encoding="utf-8") as f:
        return json.load(f)["files"]


def _expected_extra(src: Source, version: str, path: str, cache: dict) -> tuple[dict, str]:
    known = (version_entry(version).get("hub_files") or {}).get(path)
    if known:
        return known, "sha256 from the package index"
    if "files" not in cache:
        cache["files"] = hub_checksums(src, version)
    entry = cache["files"].get(path)
    if entry is None:
        raise HubError(
            f"hub: expected {path} in {CHECKSUMS_NAME} of {src.where()}, found no entry (not published at this "
            "revision)"
        )
    return entry, f"sha256 from {CHECKSUMS_NAME} at {src.revision}"


def _download_extras(
    paths: list[str], version: str | None, repo_id, revision, cache_dir, fetch_hint: str
) -> dict[str, Path]:
    version = resolve_version(version)
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = Source(repo, rev, cache_dir, fetch_hint)
    cache: dict = {}
    out = {}
    for path in paths:
        expected, trusted = _expected_extra(src, version, path, cache)
        out[path] = fetch_verified(src, path, expected, trusted)
    return out


def download_relabels(
    mode: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None
) -> Path:
    """The sample-level relabel file of ``mode`` (``p-hzr`` or ``leaf-hzr``), verified."""
    if mode not in RELABEL_MODES:
        raise InvalidInputError(f"hub relabels: expected a mode in {RELABEL_MODES}, found {mode!r}")
    version = resolve_version(version)
    path = f"relabels/{version}/{mode}.parquet"
    return _download_extras(
        [path], version, repo_id, revision, cache_dir, f"in21k-bench download {mode} --relabels --version {version}"
    )[path]


def download_scores(
    model: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None
) -> Path:
    """The per-class probe-score file of ``model`` (``clip``, ``dinov2`` or ``sup``), verified."""
    if model not in SCORE_MODELS:
        raise InvalidInputError(f"hub scores: expected a model in {SCORE_MODELS}, found {model!r}")
    version = resolve_version(version)
    path = f"scores/{version}/{model}.parquet"
    return _download_extras(
        [path], version, repo_id, revision, cache_dir, f"in21k-bench download {model}-1k --scores --version {version}"
    )[path]


def download_features(
    backbone: str,
    split: str,
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir=None,
) -> Path:
    """A precomputed feature store (``features/<backbone>/<split>/``): ``meta.json`` and ``index.parquet``
    verified against the checksums, every shard against the sha256 in ``meta.json``. Returns the store dir."""
    if not NAME_RE.match(backbone or ""):
        raise InvalidInputError(f"hub features: expected a backbone name (letters, digits, . _ -), found {backbone!r}")
    if split not in FEATURE_SPLITS:
        raise InvalidInputError(f"hub features: expected a split in {FEATURE_SPLITS}, found {split!r}")
    version = resolve_version(version)
    base = f"features/{backbone}/{split}"
    hint = f"in21k-bench download in21k --features {backbone} --version {version}"
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = Source(repo, rev, cache_dir, hint)
    cache: dict = {}
    got = {}
    for name in ("meta.json", "index.parquet"):
        expected, trusted = _expected_extra(src, version, f"{base}/{name}", cache)
        got[name] = fetch_verified(src, f"{base}/{name}", expected, trusted)
    try:
        meta = json.loads(got["meta.json"].read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ChecksumError(f"hub {src.where()} {base}/meta.json: expected JSON, found a parse error ({exc})") from None
    shards = shard_entries(meta)
    if not shards:
        raise HubError(f"hub {src.where()} {base}/meta.json: expected a list of shards with sha256, found none")
    from tqdm.auto import tqdm

    it = (
        shards
        if len(shards) < 2
        else tqdm(shards, desc=f"{backbone}/{split} shards", unit="shard", disable=None, file=sys.stderr)
    )
    for fname, expected in it:
        fetch_verified(src, f"{base}/{fname}", expected, f"sha256 from {base}/meta.json")
    return got["meta.json"].parent


def download_feature_splits(
    backbone: str,
    splits: Iterable[str] = FEATURE_SPLITS,
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir=None,
) -> dict[str, Path]:
    """Every published split among ``splits`` of a backbone's features: ``{split: store dir}``.
    A split that the revision does not hold is skipped; none at all is an error."""
    version = resolve_version(version)
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = Source(repo, rev, cache_dir, f"in21k-bench download in21k --features {backbone} --version {version}")
    pinned = version_entry(version).get("hub_files") or {}
    published = set(pinned)
    splits = list(splits)
    if not all(f"features/{backbone}/{s}/meta.json" in published for s in splits):
        published |= set(hub_checksums(src, version))
    present = [s for s in splits if f"features/{backbone}/{s}/meta.json" in published]
    if not present:
        raise HubError(
            f"hub: expected features/{backbone}/<{'|'.join(splits)}>/ at {src.where()}, found none published"
        )
    return {s: download_features(backbone, s, version, repo_id, revision, cache_dir) for s in present}


# --------------------------------------------------------------------------------------------------
# needs-input benchmarks: fetch their inputs and put them where load() looks
# --------------------------------------------------------------------------------------------------


def input_hub_path(definition, spec) -> str:
    """Hub path of one input of a "needs-input" benchmark."""
    if spec.key == "relabels":
        return f"relabels/{definition.version}/{definition.rule['mode']}.parquet"
    if spec.key in SCORE_MODELS:
        return f"scores/{definition.version}/{spec.key}.parquet"
    raise InvalidInputError(f"hub: expected an input kind relabels/{'/'.join(SCORE_MODELS)}, found {spec.key!r}")


def install_input(src: Path, dest: Path, force: bool = False) -> Path:
    """Copy a verified download to ``dest`` (atomic). An existing different file is kept unless ``force``."""
    if dest.is_file():
        if sha256_file(dest) == sha256_memo(src):
            return dest
        if not force:
            raise In21kError(
                f"hub: expected no file or the same file at {dest}, found a different one; remove it or pass --force"
            )
    with open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dest


def download_inputs(
    name: str,
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir=None,
    *,
    install: bool = True,
    force: bool = False,
) -> dict[str, Path]:
    """Download every input of a "needs-input" benchmark (relabels or probe scores) and, with ``install``,
    copy them to the inputs folder that ``load()`` reads (``$IN21K_BENCH_INPUTS/<version>/``)."""

    d = get_definition(name, version)
    out = {}
    for spec in d.inputs:
        if spec.key == "relabels":
            local = download_relabels(d.rule["mode"], d.version, repo_id, revision, cache_dir)
        else:
            local = download_scores(spec.key, d.version, repo_id, revision, cache_dir)
        out[spec.key] = install_input(local, inputs_dir() / d.version / spec.filename, force) if install else local
    return out


def download_all_inputs(
    kind: str,
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir=None,
    *,
    force: bool = False,
) -> dict[str, Path]:
    """Every relabel file (``kind="relabels"``: ``{mode: path}``) or every probe-score file (``kind="scores"``:
    ``{model: path}``) of a version, downloaded, verified and installed in the inputs folder."""
    version = resolve_version(version)
    if kind == "relabels":
        return {
            m: install_input(
                download_relabels(m, version, repo_id, revision, cache_dir),
                inputs_dir() / version / f"{m}.parquet",
                force,
            )
            for m in RELABEL_MODES
        }
    if kind == "scores":
        return {
            m: install_input(
                download_scores(m, version, repo_id, revision, cache_dir),
                inputs_dir() / version / f"scores-{m}.parquet",
                force,
            )
            for m in SCORE_MODELS
        }
    raise InvalidInputError(f"hub: expected an input kind 'relabels' or 'scores', found {kind!r}")
