"""Publishing a release: upload a version's files, ``checksums.json`` and the card in one commit, tag
it, and pin the commit in the package index. A released (tagged or pinned) version is never replaced."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import ChecksumError, HubError, InvalidInputError, ReleasedVersionError, UnknownBenchmarkError
from ..fileio import sha256_file
from ..manifests.files import verify_file
from ..manifests.index import ManifestIndex
from ..paths import SPLITS_DIR
from ..registry.catalog import list_definitions
from .card import render_card
from .config import (
    CARD_NAME,
    CHECKSUMS_NAME,
    COMMIT_RE,
    FEATURE_SPLITS,
    NAME_RE,
    RELABEL_MODES,
    REPO_TYPE,
    SCORE_MODELS,
    SPLITS_PREFIX,
    offline,
)
from .fetch import transport_errors
from .verify import check_file, shard_entries


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
        raise InvalidInputError(
            f"publish: expected feature stores at {features_dir}/<backbone>/<train|val>/meta.json, found none"
        )
    for meta_path in metas:
        store = meta_path.parent
        backbone, split = store.parent.name, store.name
        if split not in FEATURE_SPLITS or not NAME_RE.match(backbone):
            raise InvalidInputError(
                f"publish: expected <backbone>/<train|val>/ under {features_dir}, found {backbone}/{split}"
            )
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        shards = shard_entries(meta)
        if not shards:
            raise InvalidInputError(f"publish: expected shards with sha256 in {meta_path}, found none")
        base = f"features/{backbone}/{split}"
        for fname, expected in shards:
            p = store / fname
            if not p.is_file():
                raise InvalidInputError(f"publish: expected shard {p} listed in {meta_path}, found none")
            problem = check_file(p, expected)
            if problem:
                raise ChecksumError(f"publish: shard {p}: {problem} (meta.json); refusing to upload a corrupt store")
            out[f"{base}/{fname}"] = p
        out[f"{base}/meta.json"] = meta_path
        if (store / "index.parquet").is_file():
            out[f"{base}/index.parquet"] = store / "index.parquet"
    return out


def collect_publish_files(
    version: str,
    *,
    splits_root: Path | None = None,
    relabels_dir: Path | None = None,
    scores_dir: Path | None = None,
    features_dir: Path | None = None,
) -> dict[str, Path]:
    """Hub path -> local file for everything a release of ``version`` uploads (card and checksums excluded)."""
    root = Path(splits_root) if splits_root else SPLITS_DIR
    index = ManifestIndex.load(root)
    if not index.has_version(version):
        raise UnknownBenchmarkError(
            f"publish: expected a version built in {index.path} ({', '.join(index.versions()) or 'none'}), found "
            f"{version!r}"
        )
    files: dict[str, Path] = {f"{SPLITS_PREFIX}/index.json": index.path}
    for rel in index.files(version):
        files[f"{SPLITS_PREFIX}/{rel}"] = verify_file(rel, root)
    if relabels_dir is not None:
        found = False
        for mode in RELABEL_MODES:
            p = Path(relabels_dir) / f"{mode}.parquet"
            if p.is_file():
                files[f"relabels/{version}/{mode}.parquet"] = p
                found = True
        if not found:
            raise InvalidInputError(
                f"publish: expected {' or '.join(m + '.parquet' for m in RELABEL_MODES)} in {relabels_dir}, found "
                "neither"
            )
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
            raise InvalidInputError(
                f"publish: expected <model>.parquet or scores-<model>.parquet ({', '.join(SCORE_MODELS)}) in "
                f"{scores_dir}, found none"
            )
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
            f"publish: expected version {version} to be unreleased on {repo_id}, found tag {version} at "
            f"{tags[version]}; a released version never changes -- build and publish a new version"
        )


def _previous_checksums(api, repo_id: str, revision: str | None) -> dict[str, dict]:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if revision is None:
        return {}
    try:
        p = api.hf_hub_download(repo_id, CHECKSUMS_NAME, repo_type=REPO_TYPE, revision=revision)
        with open(p, encoding="utf-8") as f:
            return dict(json.load(f).get("files", {}))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return {}
    except (HfHubHTTPError, ValueError) as exc:
        raise HubError(
            f"publish: expected a readable {CHECKSUMS_NAME} at {repo_id}@{revision}, found {type(exc).__name__}"
        ) from None


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
    from huggingface_hub import HfApi

    if "/" not in repo_id or not all(NAME_RE.match(p) for p in repo_id.split("/", 1)):
        raise InvalidInputError(f"publish: expected a repository id ORG/NAME, found {repo_id!r}")
    root = Path(splits_root) if splits_root else SPLITS_DIR
    files = collect_publish_files(
        version,
        splits_root=root,
        relabels_dir=Path(relabels_dir) if relabels_dir else None,
        scores_dir=Path(scores_dir) if scores_dir else None,
        features_dir=Path(features_dir) if features_dir else None,
    )
    idx_hub = ManifestIndex.load(root).hub
    pinned = idx_hub.revisions.get(version)
    if pinned and idx_hub.repo_id == repo_id:
        raise ReleasedVersionError(
            f"publish: expected version {version} to be unreleased, found it pinned to {repo_id}@{pinned} in the "
            "index; a released version never changes"
        )
    if offline() and not dry_run:
        raise HubError(
            "publish: expected network access to the hub, found offline mode on (HF_HUB_OFFLINE=1); use --dry-run to "
            "check"
        )
    api = api or HfApi(token=token)
    tags = {} if dry_run and offline() else _unreleased_tags(api, repo_id, version)

    checksums = (
        {} if dry_run else _previous_checksums(api, repo_id, branch if tags or _repo_exists(api, repo_id) else None)
    )
    for hub_path, local in files.items():
        checksums[hub_path] = _entry(local)
    checksums = dict(sorted(checksums.items()))
    if definitions is None:
        definitions = list_definitions(version=version)
    index = ManifestIndex.load(root)
    card = render_card(
        definitions,
        repo_id=repo_id,
        version=version,
        index_version=index.version_entry(version),
        hub_paths=list(checksums),
        revisions={**{t: c for t, c in tags.items()}, version: None},
    )
    plan = PublishPlan(repo_id, version, files, checksums, card)
    if dry_run:
        return plan

    checksums_bytes = (json.dumps({"format": 1, "files": checksums}, indent=2, sort_keys=True) + "\n").encode()
    commit = _upload(api, plan, checksums_bytes, branch=branch, private=private)
    plan.commit = commit
    if record:
        plan.recorded = record_release(
            root,
            repo_id,
            version,
            commit,
            {"sha256": hashlib.sha256(checksums_bytes).hexdigest(), "size": len(checksums_bytes)},
        )
        if not plan.recorded:
            print(
                f"publish: {repo_id} is not the index's repository ({ManifestIndex.load(root).hub.repo_id}); "
                f"pin it by hand: hub.revisions.{version} = {commit}",
                file=sys.stderr,
            )
    return plan


def _unreleased_tags(api, repo_id: str, version: str) -> dict[str, str]:
    """The repository's release tags (tag -> commit); refuses when ``version`` is one of them."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        tags = released_tags(api, repo_id)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise HubError(f"publish: expected to list the tags of {repo_id}, found HTTP {status}") from None
    except transport_errors() as exc:
        raise HubError(
            f"publish: expected to reach the hub to list the tags of {repo_id}, found {type(exc).__name__}"
        ) from None
    check_not_released(tags, repo_id, version)
    return tags


def _upload(api, plan: PublishPlan, checksums_bytes: bytes, *, branch: str, private: bool | None) -> str:
    """One commit with the plan's files, ``checksums.json`` and the card on ``branch``, tagged with the
    version; returns the commit id. Hub errors become one-line :class:`HubError` messages."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    repo_id, version, files, card = plan.repo_id, plan.version, plan.files, plan.card
    ops = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in sorted(files.items())]
    ops.append(CommitOperationAdd(path_in_repo=CHECKSUMS_NAME, path_or_fileobj=checksums_bytes))
    ops.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card.encode()))
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, exist_ok=True, private=private)
        info = api.create_commit(
            repo_id, ops, commit_message=f"in21k-bench {version}", repo_type=REPO_TYPE, revision=branch
        )
        commit = info.oid
        tags_now = released_tags(api, repo_id)
        check_not_released(tags_now, repo_id, version)  # someone else tagged meanwhile
        api.create_tag(repo_id, tag=version, revision=commit, repo_type=REPO_TYPE, tag_message=f"in21k-bench {version}")
    except transport_errors() as exc:
        if not isinstance(exc, HfHubHTTPError):
            raise HubError(
                f"publish: expected to reach the hub to upload to {repo_id}, found {type(exc).__name__}"
            ) from None
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        if status == 409:
            raise ReleasedVersionError(
                f"publish: expected to create tag {version} on {repo_id}, found it exists (HTTP 409)"
            ) from None
        raise HubError(
            f"publish: expected the hub to accept the upload to {repo_id}, found HTTP {status}: "
            f"{str(exc).splitlines()[0][:160]}"
        ) from None
    return commit


def _repo_exists(api, repo_id: str) -> bool:
    try:
        return bool(api.repo_exists(repo_id, repo_type=REPO_TYPE))
    except Exception:  # noqa: BLE001 -- best effort: merging old checksums is optional
        return False


def record_release(root: Path, repo_id: str, version: str, commit: str, checksums_entry: dict) -> bool:
    """Write the released commit (and the sha256 of its checksums.json) into the index at ``root``.

    Only for the index's own repository -- or when it has no pinned revision yet, which adopts ``repo_id``."""
    if not COMMIT_RE.match(commit or ""):
        raise HubError(f"publish: expected a 40-hex commit id from the hub, found {commit!r}")
    index = ManifestIndex.load(root)
    if not index.record_release(repo_id, version, commit, checksums_entry):
        return False
    index.save()
    return True
