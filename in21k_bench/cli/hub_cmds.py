"""``in21k-bench download | publish``: hub distribution (see ``docs/hub.md``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ._apps import app


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@app.command("download")
def download_cmd(
    name: str = typer.Argument(..., help="Benchmark name, e.g. tiny, p-hzr, clip-1k."),
    version: Optional[str] = typer.Option(
        None, "--version", help="Manifest version (default: the latest the package knows)."
    ),
    relabels: bool = typer.Option(
        False, "--relabels", help="Also fetch the sample-level relabel files (automatic for p-hzr / leaf-hzr)."
    ),
    scores: bool = typer.Option(
        False, "--scores", help="Also fetch the per-class probe-score files (automatic for the model-based sets)."
    ),
    features: Optional[str] = typer.Option(
        None, "--features", metavar="MODEL", help="Also fetch the precomputed feature store of this backbone."
    ),
    feature_split: str = typer.Option("both", "--feature-split", help="train, val or both."),
    repo: Optional[str] = typer.Option(
        None, "--repo", metavar="ORG/NAME", help="Dataset repository (default: the package's)."
    ),
    revision: Optional[str] = typer.Option(
        None, "--revision", help="Commit, tag or branch (default: the commit the package pins)."
    ),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Hub cache (default: HF_HUB_CACHE)."),
    force: bool = typer.Option(False, "--force", help="Replace a different input file already in the inputs folder."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Download a benchmark's files from the hub, sha256-verified, into the hub cache.

    Manifests for ready benchmarks; relabel / score inputs for the needs-input ones (copied to the
    inputs folder that ``load()`` reads); feature stores with --features. Works offline from a warm cache."""
    from .. import hub
    from ..registry.catalog import get_definition

    d = get_definition(name, version)
    if feature_split not in ("train", "val", "both"):
        from ..errors import InvalidInputError

        raise InvalidInputError(f"download: expected --feature-split train, val or both, found {feature_split!r}")
    v = d.version
    repo_id, rev = hub.resolve_repo_and_revision(v, repo, revision)
    out: dict = {
        "name": d.name,
        "version": v,
        "repo_id": repo_id,
        "revision": rev,
        "root": None,
        "inputs": {},
        "features": {},
    }
    if d.status == "ready":
        out["root"] = str(hub.download_manifest(d.name, v, repo, revision, cache_dir))
    else:
        out["inputs"].update(
            {k: str(p) for k, p in hub.download_inputs(d.name, v, repo, revision, cache_dir, force=force).items()}
        )
    if relabels and d.family != "hzr":
        out["inputs"].update(
            {
                k: str(p)
                for k, p in hub.download_all_inputs("relabels", v, repo, revision, cache_dir, force=force).items()
            }
        )
    if scores and d.family != "model-based":
        out["inputs"].update(
            {k: str(p) for k, p in hub.download_all_inputs("scores", v, repo, revision, cache_dir, force=force).items()}
        )
    if features:
        if feature_split == "both":
            got = hub.download_feature_splits(features, hub.FEATURE_SPLITS, v, repo, revision, cache_dir)
        else:
            got = {feature_split: hub.download_features(features, feature_split, v, repo, revision, cache_dir)}
        out["features"].update({k: str(p) for k, p in got.items()})
    if json_out:
        _print_json(out)
        return
    if out["root"]:
        print(f"manifests: {out['root']}")
    for k, p in out["inputs"].items():
        print(f"input {k}: {p}")
    for k, p in out["features"].items():
        print(f"features {k}: {p}")


@app.command("publish")
def publish_cmd(
    repo: str = typer.Option(..., "--repo", metavar="ORG/NAME", help="Dataset repository to publish to."),
    version: str = typer.Option(..., "--version", help="Version to release (must be built; its tag must not exist)."),
    relabels: Optional[Path] = typer.Option(None, "--relabels", help="Folder with p-hzr.parquet / leaf-hzr.parquet."),
    scores: Optional[Path] = typer.Option(
        None, "--scores", help="Folder with <model>.parquet or scores-<model>.parquet."
    ),
    features: Optional[Path] = typer.Option(
        None, "--features", help="Folder with <backbone>/<train|val>/ feature stores."
    ),
    splits_root: Optional[Path] = typer.Option(
        None, "--splits", help="Splits folder with index.json (default: the package's)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and list what would be uploaded; write nothing."),
    no_record: bool = typer.Option(False, "--no-record", help="Do not write the released commit into the index."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """For maintainers: upload a version (manifests, relabels, scores, features, checksums, card), tag it,
    and pin the commit in the package index. Refuses to overwrite a released version. Token: HF_TOKEN."""
    from .. import hub

    plan = hub.publish(
        repo,
        version,
        relabels_dir=relabels,
        scores_dir=scores,
        features_dir=features,
        splits_root=splits_root,
        dry_run=dry_run,
        record=not no_record,
    )
    info = plan.as_dict()
    info["dry_run"] = dry_run
    if json_out:
        _print_json(info)
        return
    verb = "would upload" if dry_run else "uploaded"
    print(f"{verb} {info['num_files']} files ({info['total_bytes']:,} bytes) to {repo}, tag {version}")
    if plan.commit:
        print(f"commit {plan.commit}" + (" (recorded in the index)" if plan.recorded else ""))
    for f in info["files"]:
        print(f"  {f}")
