"""Distribution through the Hugging Face hub: download (sha256-verified, offline-friendly) and publish.

Layout of the dataset repository (see ``docs/hub.md``)::

    splits/index.json                           # the package index (sha256 + size of every manifest)
    splits/<version>/<benchmark>/*.parquet      # the same files as the package's ``splits/``
    relabels/<version>/<p-hzr|leaf-hzr>.parquet # sample-level relabel files
    scores/<version>/<clip|dinov2|sup>.parquet  # per-class probe-score files
    features/<backbone>/<train|val>/...         # feature stores (meta.json, index.parquet, shard-*.npy)
    checksums.json                              # sha256 + size of every file above
    README.md                                   # dataset card, YAML ``configs:`` from the registry

Versions are git tags (``v1``, ...). The package index pins each version to a commit
(``index["hub"]["revisions"][version]``); until a version is pinned the tag itself is used.
Every downloaded file is checked against a sha256 (the hub client itself only checks sizes):
manifests against the package index, other files against the package index where it records
them, else against ``checksums.json`` at the same revision (itself pinned by the package index
where recorded), feature shards against their store's ``meta.json``. A mismatch deletes the bad
cached copy (snapshot link and blob) and raises :class:`~in21k_bench.errors.ChecksumError`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from .errors import ChecksumError, In21kError, InvalidInputError, UnknownBenchmarkError
from .fileio import atomic_write, sha256_file, write_json

REPO_TYPE = "dataset"
CHECKSUMS_NAME = "checksums.json"
CARD_NAME = "README.md"
SPLITS_PREFIX = "splits"
RELABEL_MODES = ("p-hzr", "leaf-hzr")
SCORE_MODELS = ("clip", "dinov2", "sup")
FEATURE_SPLITS = ("train", "val")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")

# Which package index to trust. ``None`` = the package's own ``splits/`` (tests point it elsewhere).
SPLITS_INDEX_ROOT: Path | None = None


class HubError(In21kError):
    """The hub could not serve what was asked (unknown repo / revision / file, HTTP error)."""


class HubOfflineError(In21kError):
    """A file is needed, it is not in the hub cache, and the hub cannot be reached (or offline mode is on)."""


class ReleasedVersionError(In21kError):
    """``publish`` was asked to overwrite a version that is already tagged on the hub."""


# --------------------------------------------------------------------------------------------------
# configuration: index, repo, revision
# --------------------------------------------------------------------------------------------------


def _index() -> dict:
    from .manifests import read_index

    return read_index(SPLITS_INDEX_ROOT)


def hub_config() -> dict:
    """The ``hub`` block of the package index (``repo_id``, ``repo_type``, ``revisions``)."""
    from .manifests import DEFAULT_HUB_REPO

    hub = dict(_index().get("hub") or {})
    hub.setdefault("repo_id", DEFAULT_HUB_REPO)
    hub.setdefault("repo_type", REPO_TYPE)
    hub["revisions"] = dict(hub.get("revisions") or {})
    return hub


def _resolve_version(version: str | None) -> str:
    from .manifests import _version_key

    known = sorted(_index().get("versions", {}), key=_version_key)
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


def _cache_dir_display(cache_dir: str | os.PathLike | None) -> str:
    if cache_dir is not None:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


# --------------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------------

# realpath, size, mtime_ns, inode -> sha256 (so one process hashes a large file once)
_VERIFIED: dict[tuple, str] = {}


def _stat_key(path: Path) -> tuple:
    real = os.path.realpath(path)
    st = os.stat(real)
    return (real, st.st_size, st.st_mtime_ns, st.st_ino)


def _sha256_memo(path: Path) -> str:
    key = _stat_key(path)
    got = _VERIFIED.get(key)
    if got is None:
        got = sha256_file(path)
        _VERIFIED[key] = got
    return got


def _evict(path: Path) -> list[str]:
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
        if blob.is_file() and not blob.name.endswith(".incomplete") and blob.stat().st_size == size and sha256_file(blob) == sha:
            out.append(str(blob))
    return out


def _check(path: Path, expected: Mapping[str, Any]) -> str | None:
    """None when ``path`` matches ``expected`` (sha256, optional size), else a description of the mismatch."""
    size = os.path.getsize(path)
    if expected.get("size") is not None and size != int(expected["size"]):
        return f"expected {int(expected['size'])} bytes, found {size}"
    got = _sha256_memo(path)
    if got != expected["sha256"]:
        return f"expected sha256 {expected['sha256'][:16]}..., found {got[:16]}..."
    return None


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1()
    h.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# one file
# --------------------------------------------------------------------------------------------------


@dataclass
class _Source:
    repo_id: str
    revision: str
    cache_dir: str | os.PathLike | None
    fetch_hint: str  # the command that fetches this on a connected machine
    endpoint: str | None = None
    fetched: list[str] = field(default_factory=list)

    def where(self) -> str:
        return f"{self.repo_id}@{self.revision}"


def _fetch_raw(src: _Source, path: str) -> Path:
    """``hf_hub_download`` one file; hub errors become one-line :class:`In21kError` s."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        local = hf_hub_download(
            src.repo_id,
            path,
            repo_type=REPO_TYPE,
            revision=src.revision,
            cache_dir=src.cache_dir,
            endpoint=src.endpoint,
            library_name="in21k-bench",
        )
    except RevisionNotFoundError:
        raise HubError(
            f"hub: expected revision {src.revision!r} in {src.repo_id}, found none (is the version released? "
            "pass --revision for an unreleased commit)"
        ) from None
    except RemoteEntryNotFoundError:
        raise HubError(f"hub: expected {path} in {src.where()}, found no such file") from None
    except RepositoryNotFoundError:
        raise HubError(f"hub: expected the dataset repository {src.repo_id}, found none (or it is private: set HF_TOKEN)") from None
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if _offline() else f"the hub is unreachable ({type(exc.__cause__ or exc).__name__})"
        raise HubOfflineError(
            f"hub: expected {path} of {src.where()} in the hub cache {_cache_dir_display(src.cache_dir)}, found none and {why}; "
            f"on a connected machine run `{src.fetch_hint}` and copy its hub cache here (or point HF_HUB_CACHE at a copy)"
        ) from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubError(f"hub: expected {path} from {src.where()}, found HTTP {status}") from None
    except ValueError as exc:  # bad repo id / filename
        raise InvalidInputError(f"hub: expected a valid repository and path, found {src.repo_id!r} / {path!r} ({exc})") from None
    except _transport_errors() as exc:  # the transfer failed after the client's own retries
        first = (str(exc).splitlines() or [""])[0][:160]
        raise HubError(f"hub: expected to download {path} from {src.where()}, found {type(exc).__name__}: {first}; run the command again to resume") from None
    src.fetched.append(path)
    return Path(local)


def _fetch_verified(src: _Source, path: str, expected: Mapping[str, Any] | None, trusted_by: str, verify=None) -> Path:
    """Download one file and check it; a bad copy is evicted and downloaded again once, then rejected.

    ``expected`` = ``{"sha256", "size"}``; ``verify`` (alternative) = a callable returning None or a mismatch text."""
    for attempt in (0, 1):
        local = _fetch_raw(src, path)
        problem = _check(local, expected) if expected is not None else verify(local)
        if problem is None:
            return local
        removed = _evict(local)
        print(f"hub: {path} from {src.where()} failed verification ({problem}); removed the cached copy", file=sys.stderr)
        if attempt == 1 or _offline():
            raise ChecksumError(
                f"hub {src.where()} {path}: {problem} ({trusted_by}); the bad copy was removed from the cache "
                f"({len(removed)} file(s)); the file on the hub or in transit is corrupt"
            )
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------------


def _version_entry(version: str) -> dict:
    return _index()["versions"][version]


def _benchmark_entry(name: str, version: str) -> dict:
    benches = _version_entry(version).get("benchmarks", {})
    if name not in benches:
        close = difflib.get_close_matches(name, list(benches), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownBenchmarkError(f"hub: expected a benchmark of version {version}, found {name!r}{hint}")
    return benches[name]


def _taxonomy_files(version: str) -> list[str]:
    return sorted(rel for rel in _version_entry(version).get("files", {}) if rel.startswith(f"{version}/taxonomy/"))


def download_files(
    relpaths: Iterable[str],
    version: str | None = None,
    repo_id: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    fetch_hint: str | None = None,
    endpoint: str | None = None,
) -> Path:
    """Download manifest files (paths relative to ``splits/``, e.g. ``v1/tiny/classes.parquet``) plus the
    index, verify each against the package index, and return the local splits root that holds them."""
    version = _resolve_version(version)
    files = _version_entry(version).get("files", {})
    rels = sorted(dict.fromkeys(relpaths))
    for rel in rels:
        if rel not in files:
            raise UnknownBenchmarkError(f"hub: expected a manifest file of version {version} in the package index, found {rel!r}")
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = _Source(repo, rev, cache_dir, fetch_hint or f"in21k-bench download in21k --version {version}", endpoint)

    index_local = _fetch_verified(src, f"{SPLITS_PREFIX}/index.json", None, "package index", verify=lambda p: _check_hub_index(p, version, rels))
    root = index_local.parent
    missing: list[HubOfflineError] = []
    for rel in rels:
        try:
            local = _fetch_verified(src, f"{SPLITS_PREFIX}/{rel}", files[rel], "sha256 from the package index")
        except HubOfflineError as exc:
            missing.append(exc)
            if not _offline():  # unreachable hub: every further attempt would wait for the network again
                break
            continue
        if os.path.abspath(local) != os.path.abspath(root / rel):
            raise HubError(f"hub: expected {rel} in the snapshot {root}, found it in another one (the revision {rev!r} moved during the download); run again")
    if missing:
        extra = f" (and {len(missing) - 1} more missing file(s) of the same revision)" if len(missing) > 1 else ""
        raise HubOfflineError(f"{missing[0]}{extra}")
    return root


def _check_hub_index(path: Path, version: str, rels: list[str]) -> str | None:
    """The hub's copy of the index must agree with the package index on every file we read through it."""
    try:
        with open(path, encoding="utf-8") as f:
            hub_index = json.load(f)
        hub_files = hub_index["versions"][version]["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"expected an index with version {version}, found {type(exc).__name__}"
    ours = _version_entry(version)["files"]
    for rel in rels:
        theirs = hub_files.get(rel) or {}
        if theirs.get("sha256") != ours[rel]["sha256"] or theirs.get("size") != ours[rel]["size"]:
            return f"expected the entry of {rel} to match the package index, found {str(theirs.get('sha256'))[:16]}..."
    return None


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
    version = _resolve_version(version)
    entry = _benchmark_entry(name, version)
    rels = list(entry.get("files", [])) + _taxonomy_files(version)
    hint = f"in21k-bench download {name} --version {version}"
    if repo_id:
        hint += f" --repo {repo_id}"
    if revision:
        hint += f" --revision {revision}"
    return download_files(rels, version, repo_id, revision, cache_dir, fetch_hint=hint)


# --------------------------------------------------------------------------------------------------
# extra files: relabels, scores, features
# --------------------------------------------------------------------------------------------------


def _checksums(src: _Source, version: str) -> dict[str, dict]:
    """The hub's ``checksums.json`` at the source revision, verified by the package pin when it has one."""
    hub = hub_config()
    pin = (hub.get("checksums") or {}).get(version) if src.repo_id == hub["repo_id"] else None

    def verify(p: Path) -> str | None:
        if pin:
            return _check(p, pin)
        # No pin: the blob name the client stored is the git blob id the server announced; check it.
        target = os.path.realpath(p)
        etag = os.path.basename(target)
        if os.path.islink(p) and re.fullmatch(r"[0-9a-f]{40}", etag):
            got = _git_blob_sha1(Path(target))
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
    local = _fetch_verified(src, CHECKSUMS_NAME, None, trusted, verify=verify)
    with open(local, encoding="utf-8") as f:
        return json.load(f)["files"]


def _expected_extra(src: _Source, version: str, path: str, cache: dict) -> tuple[dict, str]:
    known = (_version_entry(version).get("hub_files") or {}).get(path)
    if known:
        return known, "sha256 from the package index"
    if "files" not in cache:
        cache["files"] = _checksums(src, version)
    entry = cache["files"].get(path)
    if entry is None:
        raise HubError(f"hub: expected {path} in {CHECKSUMS_NAME} of {src.where()}, found no entry (not published at this revision)")
    return entry, f"sha256 from {CHECKSUMS_NAME} at {src.revision}"


def _download_extras(paths: list[str], version: str | None, repo_id, revision, cache_dir, fetch_hint: str) -> dict[str, Path]:
    version = _resolve_version(version)
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = _Source(repo, rev, cache_dir, fetch_hint)
    cache: dict = {}
    out = {}
    for path in paths:
        expected, trusted = _expected_extra(src, version, path, cache)
        out[path] = _fetch_verified(src, path, expected, trusted)
    return out


def download_relabels(mode: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None) -> Path:
    """The sample-level relabel file of ``mode`` (``p-hzr`` or ``leaf-hzr``), verified."""
    if mode not in RELABEL_MODES:
        raise InvalidInputError(f"hub relabels: expected a mode in {RELABEL_MODES}, found {mode!r}")
    version = _resolve_version(version)
    path = f"relabels/{version}/{mode}.parquet"
    return _download_extras([path], version, repo_id, revision, cache_dir, f"in21k-bench download {mode} --relabels --version {version}")[path]


def download_scores(model: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None) -> Path:
    """The per-class probe-score file of ``model`` (``clip``, ``dinov2`` or ``sup``), verified."""
    if model not in SCORE_MODELS:
        raise InvalidInputError(f"hub scores: expected a model in {SCORE_MODELS}, found {model!r}")
    version = _resolve_version(version)
    path = f"scores/{version}/{model}.parquet"
    return _download_extras([path], version, repo_id, revision, cache_dir, f"in21k-bench download {model}-1k --scores --version {version}")[path]


def _shard_entries(meta: dict) -> list[tuple[str, dict]]:
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


def download_features(backbone: str, split: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None) -> Path:
    """A precomputed feature store (``features/<backbone>/<split>/``): ``meta.json`` and ``index.parquet``
    verified against the checksums, every shard against the sha256 in ``meta.json``. Returns the store dir."""
    if not _NAME_RE.match(backbone or ""):
        raise InvalidInputError(f"hub features: expected a backbone name (letters, digits, . _ -), found {backbone!r}")
    if split not in FEATURE_SPLITS:
        raise InvalidInputError(f"hub features: expected a split in {FEATURE_SPLITS}, found {split!r}")
    version = _resolve_version(version)
    base = f"features/{backbone}/{split}"
    hint = f"in21k-bench download in21k --features {backbone} --version {version}"
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = _Source(repo, rev, cache_dir, hint)
    cache: dict = {}
    got = {}
    for name in ("meta.json", "index.parquet"):
        expected, trusted = _expected_extra(src, version, f"{base}/{name}", cache)
        got[name] = _fetch_verified(src, f"{base}/{name}", expected, trusted)
    try:
        meta = json.loads(got["meta.json"].read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ChecksumError(f"hub {src.where()} {base}/meta.json: expected JSON, found a parse error ({exc})") from None
    shards = _shard_entries(meta)
    if not shards:
        raise HubError(f"hub {src.where()} {base}/meta.json: expected a list of shards with sha256, found none")
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    it = shards if tqdm is None or len(shards) < 2 else tqdm(shards, desc=f"{backbone}/{split} shards", unit="shard", disable=None, file=sys.stderr)
    for fname, expected in it:
        _fetch_verified(src, f"{base}/{fname}", expected, f"sha256 from {base}/meta.json")
    return got["meta.json"].parent


def download_feature_splits(backbone: str, splits: Iterable[str] = FEATURE_SPLITS, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None) -> dict[str, Path]:
    """Every published split among ``splits`` of a backbone's features: ``{split: store dir}``.
    A split that the revision does not hold is skipped; none at all is an error."""
    version = _resolve_version(version)
    repo, rev = resolve_repo_and_revision(version, repo_id, revision)
    src = _Source(repo, rev, cache_dir, f"in21k-bench download in21k --features {backbone} --version {version}")
    pinned = _version_entry(version).get("hub_files") or {}
    published = set(pinned)
    splits = list(splits)
    if not all(f"features/{backbone}/{s}/meta.json" in published for s in splits):
        published |= set(_checksums(src, version))
    present = [s for s in splits if f"features/{backbone}/{s}/meta.json" in published]
    if not present:
        raise HubError(f"hub: expected features/{backbone}/<{'|'.join(splits)}>/ at {src.where()}, found none published")
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
        if sha256_file(dest) == _sha256_memo(src):
            return dest
        if not force:
            raise In21kError(f"hub: expected no file or the same file at {dest}, found a different one; remove it or pass --force")
    with open(src, "rb") as fin, atomic_write(dest, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return dest


def download_inputs(name: str, version: str | None = None, repo_id: str | None = None, revision: str | None = None, cache_dir=None, *, install: bool = True, force: bool = False) -> dict[str, Path]:
    """Download every input of a "needs-input" benchmark (relabels or probe scores) and, with ``install``,
    copy them to the inputs folder that ``load()`` reads (``$IN21K_BENCH_INPUTS/<version>/``)."""
    from .benchmark import inputs_dir
    from .catalog import get_definition

    d = get_definition(name, version)
    out = {}
    for spec in d.inputs:
        if spec.key == "relabels":
            local = download_relabels(d.rule["mode"], d.version, repo_id, revision, cache_dir)
        else:
            local = download_scores(spec.key, d.version, repo_id, revision, cache_dir)
        out[spec.key] = install_input(local, inputs_dir() / d.version / spec.filename, force) if install else local
    return out


# --------------------------------------------------------------------------------------------------
# dataset card
# --------------------------------------------------------------------------------------------------


def _as_dict(d) -> dict:
    return d.as_dict() if hasattr(d, "as_dict") else dict(d)


def card_configs(definitions: Iterable, version: str, index_version: Mapping, hub_paths: Iterable[str]) -> list[dict]:
    """YAML ``configs:`` entries: one per benchmark whose files are in the repository, plus the taxonomy."""
    present = set(hub_paths)
    configs = []
    tax = [r for r in sorted(index_version.get("files", {})) if r.startswith(f"{version}/taxonomy/")]
    tax_files = [{"split": Path(r).stem, "path": f"{SPLITS_PREFIX}/{r}"} for r in tax if f"{SPLITS_PREFIX}/{r}" in present]
    if tax_files:
        configs.append({"config_name": "taxonomy", "data_files": tax_files})
    benches = index_version.get("benchmarks", {})
    for d in definitions:
        d = _as_dict(d)
        name = d["name"]
        files = []
        for rel in (benches.get(name) or {}).get("files", []):
            if f"{SPLITS_PREFIX}/{rel}" in present:
                files.append({"split": Path(rel).stem, "path": f"{SPLITS_PREFIX}/{rel}"})
        mode = (d.get("rule") or {}).get("mode")
        if d.get("family") == "hzr" and mode and f"relabels/{version}/{mode}.parquet" in present:
            files.append({"split": "relabels", "path": f"relabels/{version}/{mode}.parquet"})
        if d.get("family") == "model-based":
            for m in (d.get("rule") or {}).get("models", []):
                if f"scores/{version}/{m}.parquet" in present:
                    files.append({"split": f"scores_{m}", "path": f"scores/{version}/{m}.parquet"})
        if files:
            configs.append({"config_name": name, "data_files": files})
    return configs


def render_card(definitions: Iterable, *, repo_id: str, version: str, index_version: Mapping, hub_paths: Iterable[str], revisions: Mapping[str, str | None] | None = None) -> str:
    """The dataset card (``README.md``): YAML front matter with ``configs:`` and a readable body.

    ``definitions``: registry entries (``BenchmarkDefinition`` or dicts with name, family, version,
    status, description[, rule])."""
    import yaml

    defs = sorted((_as_dict(d) for d in definitions), key=lambda d: d["name"])
    hub_paths = sorted(set(hub_paths))
    meta = {
        "license": "other",
        "pretty_name": "in21k-bench",
        "task_categories": ["image-classification"],
        "tags": ["image-clustering", "imagenet-21k", "benchmark"],
        "configs": card_configs(defs, version, index_version, hub_paths),
    }
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", ""]
    lines += [
        "# in21k-bench",
        "",
        "Manifests, relabel files, probe scores and precomputed features of the in21k-bench image-clustering "
        "benchmarks on ImageNet-21K. Generated by `in21k-bench publish`; do not edit by hand.",
        "",
        f"Version **{version}** is the git tag `{version}` of this repository.",
        "",
        "```python",
        "import in21k_bench",
        'b = in21k_bench.load("tiny", source="hub")   # downloads and checks the sha256 of every file',
        "```",
        "",
        "```",
        "in21k-bench download tiny",
        "in21k-bench download p-hzr --relabels",
        "in21k-bench download in21k --features clip",
        "```",
        "",
        "## Benchmarks",
        "",
        "| name | family | version | status | description |",
        "|---|---|---|---|---|",
    ]
    for d in defs:
        desc = str(d.get("description", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{d['name']}` | {d.get('family', '')} | {d.get('version', '')} | {d.get('status', '')} | {desc} |")
    lines += [
        "",
        "## Layout",
        "",
        "- `splits/index.json`, `splits/<version>/<benchmark>/*.parquet`: the manifests (same files as the package)",
        "- `relabels/<version>/<p-hzr|leaf-hzr>.parquet`: sample-level relabel files (sample_id, original_wnid, refined_wnid)",
        "- `scores/<version>/<clip|dinov2|sup>.parquet`: per-class linear-probe scores (wnid, score)",
        "- `features/<backbone>/<train|val>/`: feature stores (`meta.json`, `index.parquet`, `shard-*.npy`, float16)",
        f"- `{CHECKSUMS_NAME}`: sha256 and size of every file; the package verifies each download against it",
        "",
        "## Files in this revision",
        "",
        f"{len(hub_paths)} files; see `{CHECKSUMS_NAME}`.",
        "",
    ]
    if revisions:
        lines += ["## Released versions", ""]
        for v, rev in sorted(revisions.items()):
            lines.append(f"- `{v}`: {rev or '(this commit)'}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# publish
# --------------------------------------------------------------------------------------------------


@dataclass
class PublishPlan:
    repo_id: str
    version: str
    files: dict[str, Path]  # hub path -> local file
    checksums: dict[str, dict]  # hub path -> {"sha256", "size"}
    card: str
    commit: str | None = None
    recorded: bool = False

    def as_dict(self) -> dict:
        return {
            "repo_id": self.repo_id,
            "version": self.version,
            "tag": self.version,
            "commit": self.commit,
            "recorded_in_index": self.recorded,
            "num_files": len(self.files),
            "total_bytes": sum(c["size"] for c in self.checksums.values()),
            "files": sorted(self.files),
        }


def _entry(path: Path) -> dict:
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def _collect_features(features_dir: Path) -> dict[str, Path]:
    """``features_dir/<backbone>/<split>/`` stores -> hub paths; every shard checked against its meta.json."""
    out: dict[str, Path] = {}
    metas = sorted(features_dir.glob("*/*/meta.json"))
    if not metas:
        raise InvalidInputError(f"publish: expected feature stores at {features_dir}/<backbone>/<train|val>/meta.json, found none")
    for meta_path in metas:
        store = meta_path.parent
        backbone, split = store.parent.name, store.name
        if split not in FEATURE_SPLITS or not _NAME_RE.match(backbone):
            raise InvalidInputError(f"publish: expected <backbone>/<train|val>/ under {features_dir}, found {backbone}/{split}")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        shards = _shard_entries(meta)
        if not shards:
            raise InvalidInputError(f"publish: expected shards with sha256 in {meta_path}, found none")
        base = f"features/{backbone}/{split}"
        for fname, expected in shards:
            p = store / fname
            if not p.is_file():
                raise InvalidInputError(f"publish: expected shard {p} listed in {meta_path}, found none")
            problem = _check(p, expected)
            if problem:
                raise ChecksumError(f"publish: shard {p}: {problem} (meta.json); refusing to upload a corrupt store")
            out[f"{base}/{fname}"] = p
        out[f"{base}/meta.json"] = meta_path
        if (store / "index.parquet").is_file():
            out[f"{base}/index.parquet"] = store / "index.parquet"
    return out


def collect_publish_files(version: str, *, splits_root: Path | None = None, relabels_dir: Path | None = None, scores_dir: Path | None = None, features_dir: Path | None = None) -> dict[str, Path]:
    """Hub path -> local file for everything a release of ``version`` uploads (card and checksums excluded)."""
    from .manifests import SPLITS_DIR, index_path, read_index, verify_file

    root = Path(splits_root) if splits_root else SPLITS_DIR
    index = read_index(root)
    if version not in index.get("versions", {}):
        raise UnknownBenchmarkError(f"publish: expected a version built in {index_path(root)} ({', '.join(index.get('versions', {})) or 'none'}), found {version!r}")
    files: dict[str, Path] = {f"{SPLITS_PREFIX}/index.json": index_path(root)}
    for rel in sorted(index["versions"][version]["files"]):
        files[f"{SPLITS_PREFIX}/{rel}"] = verify_file(rel, root)
    if relabels_dir is not None:
        found = False
        for mode in RELABEL_MODES:
            p = Path(relabels_dir) / f"{mode}.parquet"
            if p.is_file():
                files[f"relabels/{version}/{mode}.parquet"] = p
                found = True
        if not found:
            raise InvalidInputError(f"publish: expected {' or '.join(m + '.parquet' for m in RELABEL_MODES)} in {relabels_dir}, found neither")
    if scores_dir is not None:
        found = False
        for m in SCORE_MODELS:
            for cand in (f"{m}.parquet", f"scores-{m}.parquet"):
                p = Path(scores_dir) / cand
                if p.is_file():
                    files[f"scores/{version}/{m}.parquet"] = p
                    found = True
                    break
        if not found:
            raise InvalidInputError(f"publish: expected <model>.parquet or scores-<model>.parquet ({', '.join(SCORE_MODELS)}) in {scores_dir}, found none")
    if features_dir is not None:
        files.update(_collect_features(Path(features_dir)))
    return files


def released_tags(api, repo_id: str) -> dict[str, str]:
    """Tag name -> commit of the hub repository ({} when the repository does not exist yet)."""
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        refs = api.list_repo_refs(repo_id, repo_type=REPO_TYPE)
    except RepositoryNotFoundError:
        return {}
    return {t.name: t.target_commit for t in refs.tags}


def check_not_released(tags: Mapping[str, str], repo_id: str, version: str) -> None:
    if version in tags:
        raise ReleasedVersionError(
            f"publish: expected version {version} to be unreleased on {repo_id}, found tag {version} at {tags[version]}; "
            "a released version never changes -- build and publish a new version"
        )


def _previous_checksums(api, repo_id: str, revision: str | None) -> dict[str, dict]:
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if revision is None:
        return {}
    try:
        p = api.hf_hub_download(repo_id, CHECKSUMS_NAME, repo_type=REPO_TYPE, revision=revision)
        with open(p, encoding="utf-8") as f:
            return dict(json.load(f).get("files", {}))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return {}
    except (HfHubHTTPError, ValueError) as exc:
        raise HubError(f"publish: expected a readable {CHECKSUMS_NAME} at {repo_id}@{revision}, found {type(exc).__name__}") from None


def publish(
    repo_id: str,
    version: str,
    *,
    relabels_dir: str | os.PathLike | None = None,
    scores_dir: str | os.PathLike | None = None,
    features_dir: str | os.PathLike | None = None,
    splits_root: str | os.PathLike | None = None,
    definitions: Iterable | None = None,
    dry_run: bool = False,
    record: bool = True,
    api=None,
    token: str | bool | None = None,
    branch: str = "main",
    private: bool | None = None,
) -> PublishPlan:
    """Upload a release: the version's manifests (+ index), relabel / score files and feature stores
    when given, ``checksums.json`` and the generated card, in one commit on ``branch``; then tag it
    ``version`` and record the commit in the package index (``hub.revisions``, ``hub.checksums``).

    Refuses when the tag already exists. ``dry_run`` checks and plans but writes nothing."""
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from .manifests import SPLITS_DIR, read_index

    if "/" not in repo_id or not all(_NAME_RE.match(p) for p in repo_id.split("/", 1)):
        raise InvalidInputError(f"publish: expected a repository id ORG/NAME, found {repo_id!r}")
    root = Path(splits_root) if splits_root else SPLITS_DIR
    files = collect_publish_files(
        version,
        splits_root=root,
        relabels_dir=Path(relabels_dir) if relabels_dir else None,
        scores_dir=Path(scores_dir) if scores_dir else None,
        features_dir=Path(features_dir) if features_dir else None,
    )
    idx_hub = read_index(root).get("hub") or {}
    pinned = (idx_hub.get("revisions") or {}).get(version)
    if pinned and idx_hub.get("repo_id") == repo_id:
        raise ReleasedVersionError(f"publish: expected version {version} to be unreleased, found it pinned to {repo_id}@{pinned} in the index; a released version never changes")
    if _offline() and not dry_run:
        raise HubError("publish: expected network access to the hub, found offline mode on (HF_HUB_OFFLINE=1); use --dry-run to check")
    api = api or HfApi(token=token)
    tags: dict[str, str] = {}
    if not (dry_run and _offline()):
        try:
            tags = released_tags(api, repo_id)
        except HfHubHTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", "?")
            raise HubError(f"publish: expected to list the tags of {repo_id}, found HTTP {status}") from None
        except _transport_errors() as exc:
            raise HubError(f"publish: expected to reach the hub to list the tags of {repo_id}, found {type(exc).__name__}") from None
        check_not_released(tags, repo_id, version)

    checksums = {} if dry_run else _previous_checksums(api, repo_id, branch if tags or _repo_exists(api, repo_id) else None)
    for hub_path, local in files.items():
        checksums[hub_path] = _entry(local)
    checksums = dict(sorted(checksums.items()))
    if definitions is None:
        from .catalog import list_definitions

        definitions = list_definitions(version=version)
    index = read_index(root)
    card = render_card(
        definitions,
        repo_id=repo_id,
        version=version,
        index_version=index["versions"][version],
        hub_paths=list(checksums),
        revisions={**{t: c for t, c in tags.items()}, version: None},
    )
    plan = PublishPlan(repo_id, version, files, checksums, card)
    if dry_run:
        return plan

    checksums_bytes = (json.dumps({"format": 1, "files": checksums}, indent=2, sort_keys=True) + "\n").encode()
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in sorted(files.items())]
    ops.append(CommitOperationAdd(path_in_repo=CHECKSUMS_NAME, path_or_fileobj=checksums_bytes))
    ops.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card.encode()))
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, exist_ok=True, private=private)
        info = api.create_commit(repo_id, ops, commit_message=f"in21k-bench {version}", repo_type=REPO_TYPE, revision=branch)
        commit = info.oid
        tags_now = released_tags(api, repo_id)
        check_not_released(tags_now, repo_id, version)  # someone else tagged meanwhile
        api.create_tag(repo_id, tag=version, revision=commit, repo_type=REPO_TYPE, tag_message=f"in21k-bench {version}")
    except _transport_errors() as exc:
        if not isinstance(exc, HfHubHTTPError):
            raise HubError(f"publish: expected to reach the hub to upload to {repo_id}, found {type(exc).__name__}") from None
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        if status == 409:
            raise ReleasedVersionError(f"publish: expected to create tag {version} on {repo_id}, found it exists (HTTP 409)") from None
        raise HubError(f"publish: expected the hub to accept the upload to {repo_id}, found HTTP {status}: {str(exc).splitlines()[0][:160]}") from None
    plan.commit = commit
    if record:
        plan.recorded = record_release(root, repo_id, version, commit, {"sha256": hashlib.sha256(checksums_bytes).hexdigest(), "size": len(checksums_bytes)})
        if not plan.recorded:
            print(
                f"publish: {repo_id} is not the index's repository ({read_index(root)['hub'].get('repo_id')}); "
                f"pin it by hand: hub.revisions.{version} = {commit}",
                file=sys.stderr,
            )
    return plan


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Exception types of a failed connection in the hub client (its HTTP library's base error + OSError)."""
    try:
        import httpx2

        return (httpx2.HTTPError, OSError)
    except ImportError:  # pragma: no cover -- other client versions
        return (OSError,)


def _repo_exists(api, repo_id: str) -> bool:
    try:
        return bool(api.repo_exists(repo_id, repo_type=REPO_TYPE))
    except Exception:  # noqa: BLE001 -- best effort: merging old checksums is optional
        return False


def record_release(root: Path, repo_id: str, version: str, commit: str, checksums_entry: dict) -> bool:
    """Write the released commit (and the sha256 of its checksums.json) into the index at ``root``.

    Only for the index's own repository -- or when it has no pinned revision yet, which adopts ``repo_id``."""
    from .manifests import _read_index_cached, index_path, read_index

    if not _COMMIT_RE.match(commit or ""):
        raise HubError(f"publish: expected a 40-hex commit id from the hub, found {commit!r}")
    index = json.loads(json.dumps(read_index(root)))
    hub = index.setdefault("hub", {"repo_id": repo_id, "repo_type": REPO_TYPE, "revisions": {}})
    revisions = hub.setdefault("revisions", {})
    if hub.get("repo_id") != repo_id:
        if any(revisions.values()):
            return False
        hub["repo_id"] = repo_id
    revisions[version] = commit
    hub.setdefault("checksums", {})[version] = checksums_entry
    write_json(index_path(root), index)
    _read_index_cached.cache_clear()
    return True
