"""Hub distribution against a real HTTP server (tests/hubserver.py) with the real huggingface_hub client."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hubserver import HubServer
from in21k_bench import hub
from in21k_bench.errors import ChecksumError, In21kError, UnknownBenchmarkError
from in21k_bench.fileio import sha256_file
from in21k_bench.manifests.files import SPLITS_DIR, read_index
from in21k_bench.manifests.index import ManifestIndex

REPO_ID = read_index()["hub"]["repo_id"]
VERSION = "v1"
ALL_VERSIONS = ManifestIndex.load().versions()
LATEST = ALL_VERSIONS[-1]


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)


def _build_repo(folder: Path, benchmarks=("tiny",)) -> Path:
    """A hub repository folder: a few real manifests, relabels, scores, a feature store, checksums."""
    index = read_index()
    rels = []
    for version in ALL_VERSIONS:  # every version, so downloads of the latest (default) version work too
        v = index["versions"][version]
        rels += [r for r in v["files"] if r.startswith(f"{version}/taxonomy/")]
        for b in benchmarks:
            rels += v["benchmarks"][b]["files"]
    for rel in rels:
        dst = folder / "splits" / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SPLITS_DIR / rel, dst)
    shutil.copyfile(SPLITS_DIR / "index.json", folder / "splits" / "index.json")
    for version in ALL_VERSIONS:
        _write_parquet(
            folder / "relabels" / version / "p-hzr.parquet",
            pd.DataFrame(
                {
                    "sample_id": ["train/n00004475/a.JPEG", "val/n00004475/b.JPEG"],
                    "original_wnid": ["n00004475"] * 2,
                    "refined_wnid": ["n00006484"] * 2,
                }
            ),
        )
        _write_parquet(
            folder / "scores" / version / "clip.parquet",
            pd.DataFrame({"wnid": ["n00004475", "n00005787"], "score": [0.5, 0.25]}),
        )
    store = folder / "features" / "clip" / "val"
    store.mkdir(parents=True)
    shards = []
    rng = np.random.default_rng(0)
    for i in range(2):
        p = store / f"shard-{i:05d}.npy"
        np.save(p, rng.standard_normal((3, 4)).astype(np.float16), allow_pickle=False)
        shards.append({"file": p.name, "rows": 3, "sha256": sha256_file(p)})
    (store / "meta.json").write_text(
        json.dumps({"backbone": "clip", "dim": 4, "split": "val", "dtype": "float16", "shards": shards})
    )
    _write_parquet(
        store / "index.parquet",
        pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)], "shard": [0] * 3 + [1] * 3, "row": [0, 1, 2] * 2}),
    )
    files = {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
    (folder / "checksums.json").write_text(json.dumps({"format": 1, "files": files}))
    return folder


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """The real client pointed at a local server; hub cache, token path and inputs folder in tmp."""
    from huggingface_hub import constants

    server = HubServer().start()
    home = tmp_path / "hf"
    for name, value in {
        "ENDPOINT": server.url,
        "HUGGINGFACE_CO_URL_TEMPLATE": server.url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {"127.0.0.1"}),
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_PROGRESS_BARS": True,
    }.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("IN21K_BENCH_INPUTS", str(tmp_path / "inputs"))
    hub.clear_verified()
    repo = _build_repo(tmp_path / "repo")
    commit = server.add_commit(REPO_ID, repo, tags=ALL_VERSIONS, repo_type="dataset")
    server.commit = commit
    server.folder = repo
    server.cache = home / "hub"
    yield server
    server.stop()


def _offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


# --------------------------------------------------------------------------------------------------
# manifests
# --------------------------------------------------------------------------------------------------


def test_clean_download_is_a_verified_splits_root(hub_env):
    root = hub.download_manifest("tiny", VERSION)
    assert root.name == "splits" and hub_env.commit in root.parts
    for rel in read_index()["versions"][VERSION]["benchmarks"]["tiny"]["files"]:
        assert sha256_file(root / rel) == sha256_file(SPLITS_DIR / rel)
    # the loader reads it like the package copy
    import in21k_bench

    a, b = in21k_bench.load("tiny", VERSION, root=root), in21k_bench.load("tiny", VERSION)
    assert a.num_classes == b.num_classes and (a.val_labels() == b.val_labels()).all()
    gets = [p for m, p, _ in hub_env.requests if m == "GET"]
    assert any(p.endswith("/resolve/v1/splits/v1/tiny/labels.parquet") for p in gets)


def test_load_source_hub(hub_env):
    import in21k_bench

    b = in21k_bench.load("tiny", source="hub")
    assert b.num_classes == in21k_bench.load("tiny").num_classes


def test_second_call_served_from_cache_with_server_stopped(hub_env):
    first = hub.download_manifest("tiny", VERSION)
    hub_env.stop()
    hub.clear_verified()  # re-hash from disk
    assert hub.download_manifest("tiny", VERSION) == first
    # pinned to the commit: no network call at all
    assert hub.download_manifest("tiny", VERSION, revision=hub_env.commit) == first


def test_corrupt_file_on_server_is_rejected_and_removed(hub_env):
    hub_env.corrupt("splits/v1/tiny/labels.parquet")
    with pytest.raises(ChecksumError, match=r"splits/v1/tiny/labels.parquet: expected sha256 .* removed"):
        hub.download_manifest("tiny", VERSION)
    # downloaded twice (one automatic retry), and no copy left in the cache: neither link nor blob
    assert len(hub_env.gets("splits/v1/tiny/labels.parquet")) == 2
    storage = hub_env.cache / f"datasets--{REPO_ID.replace('/', '--')}"
    assert not (storage / "snapshots" / hub_env.commit / "splits/v1/tiny/labels.parquet").exists()
    good_sha = sha256_file(SPLITS_DIR / "v1/tiny/labels.parquet")
    assert not (storage / "blobs" / good_sha).exists()  # the blob is named by the (lying) etag
    assert [p.name for p in (storage / "blobs").iterdir() if p.name.endswith(".incomplete")] == []
    # once the server is fixed, the same call works
    hub_env.heal("splits/v1/tiny/labels.parquet")
    root = hub.download_manifest("tiny", VERSION)
    assert sha256_file(root / "v1/tiny/labels.parquet") == good_sha


def test_corrupted_cache_copy_is_replaced(hub_env):
    root = hub.download_manifest("tiny", VERSION)
    blob = Path(os.path.realpath(root / "v1/tiny/classes.parquet"))
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    hub.clear_verified()
    root2 = hub.download_manifest("tiny", VERSION)
    assert sha256_file(root2 / "v1/tiny/classes.parquet") == sha256_file(SPLITS_DIR / "v1/tiny/classes.parquet")


def test_corrupted_cache_copy_without_symlinks(hub_env, monkeypatch):
    """With symlinks off the snapshot file is a copy of the blob: both copies are removed."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_SYMLINKS", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_SYMLINKS_WARNING", True)
    root = hub.download_manifest("tiny", VERSION)
    f = root / "v1/tiny/classes.parquet"
    assert not f.is_symlink()
    # corrupt the snapshot copy and the (still present or absent) blob the same way
    storage = hub_env.cache / f"datasets--{REPO_ID.replace('/', '--')}"
    for p in [f, *[b for b in (storage / "blobs").iterdir() if b.stat().st_size == f.stat().st_size]]:
        data = bytearray(p.read_bytes())
        data[10] ^= 0xFF
        os.chmod(p, 0o644)
        p.write_bytes(bytes(data))
    hub.clear_verified()
    root2 = hub.download_manifest("tiny", VERSION)
    assert sha256_file(root2 / "v1/tiny/classes.parquet") == sha256_file(SPLITS_DIR / "v1/tiny/classes.parquet")


def test_interrupted_transfer_is_resumed(hub_env, monkeypatch):
    from huggingface_hub import constants

    chunk = 1 << 16  # the client writes whole chunks; small ones so that the cut lands after some of them
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk)
    path = "splits/v1/taxonomy/classes.parquet"
    size = (hub_env.folder / path).stat().st_size
    cut = size // 3
    hub_env.drop_once(path, after_bytes=cut)
    root = hub.download_manifest("tiny", VERSION)
    assert sha256_file(root / "v1/taxonomy/classes.parquet") == sha256_file(SPLITS_DIR / "v1/taxonomy/classes.parquet")
    # the retry asked only for the bytes after the last complete chunk (served as 206 + Content-Range)
    assert hub_env.gets(path) == [None, f"bytes={cut // chunk * chunk}-"]


def test_offline_with_cache_hit(hub_env, monkeypatch):
    first = hub.download_manifest("tiny", VERSION)
    _offline(monkeypatch)
    n = len(hub_env.requests)
    assert hub.download_manifest("tiny", VERSION) == first
    assert len(hub_env.requests) == n  # no request at all


def test_offline_without_cache_one_clear_message(hub_env, monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(hub.HubOfflineError) as err:
        hub.download_manifest("tiny", VERSION)
    msg = str(err.value)
    assert "\n" not in msg
    assert "splits/index.json" in msg and "HF_HUB_OFFLINE" in msg
    assert "`in21k-bench download tiny --version v1`" in msg
    assert hub_env.requests == []


def test_offline_partial_cache_names_the_missing_file(hub_env, monkeypatch):
    hub.download_manifest("tiny", VERSION)
    _offline(monkeypatch)
    with pytest.raises(
        hub.HubOfflineError, match=r"splits/v1/small/classes.parquet .* `in21k-bench download small --version v1`"
    ):
        hub.download_manifest("small", VERSION)


def test_unknown_version_and_name(hub_env):
    with pytest.raises(
        UnknownBenchmarkError, match=rf"expected a version the package knows \({', '.join(ALL_VERSIONS)}\), found 'v9'"
    ):
        hub.download_manifest("tiny", "v9")
    with pytest.raises(UnknownBenchmarkError, match="did you mean tiny"):
        hub.download_manifest("tinyy", VERSION)
    assert hub_env.requests == []


def test_unknown_revision_on_hub(hub_env):
    with pytest.raises(hub.HubError, match="expected revision 'v7' in"):
        hub.download_manifest("tiny", VERSION, revision="v7")


def test_hub_index_disagreeing_with_package_is_rejected(hub_env, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(hub_env.folder, bad)
    idx = json.loads((bad / "splits/index.json").read_text())
    idx["versions"]["v1"]["files"]["v1/tiny/labels.parquet"]["sha256"] = "0" * 64
    (bad / "splits/index.json").write_text(json.dumps(idx))
    commit = hub_env.add_commit(REPO_ID, bad, branch="", repo_type="dataset")
    with pytest.raises(
        ChecksumError, match=r"splits/index.json: benchmark .tiny. \(v1\): expected v1/tiny/labels.parquet with sha256"
    ):
        hub.download_manifest("tiny", VERSION, revision=commit)


def test_pinned_revision_from_index(hub_env, tmp_path, monkeypatch):
    root = tmp_path / "pkg"
    root.mkdir()
    idx = json.loads((SPLITS_DIR / "index.json").read_text())
    idx["hub"]["revisions"]["v1"] = hub_env.commit
    (root / "index.json").write_text(json.dumps(idx))
    monkeypatch.setattr(hub.config, "SPLITS_INDEX_ROOT", root)
    assert hub.resolve_repo_and_revision("v1") == (REPO_ID, hub_env.commit)
    assert hub.resolve_repo_and_revision("v1", repo_id="other/repo") == ("other/repo", "v1")
    hub.download_manifest("tiny", VERSION)
    assert any(f"/resolve/{hub_env.commit}/splits/v1/tiny/classes.parquet" in p for _, p, _ in hub_env.requests)


# --------------------------------------------------------------------------------------------------
# relabels, scores, features
# --------------------------------------------------------------------------------------------------


def test_relabels_scores_and_inputs_installed(hub_env, tmp_path):
    p = hub.download_relabels("p-hzr", VERSION)
    assert pd.read_parquet(p)["refined_wnid"].tolist() == ["n00006484"] * 2
    s = hub.download_scores("clip", VERSION)
    assert pd.read_parquet(s)["score"].tolist() == [0.5, 0.25]
    got = hub.download_inputs("p-hzr", VERSION)
    assert got["relabels"] == tmp_path / "inputs" / "v1" / "p-hzr.parquet"
    assert sha256_file(got["relabels"]) == sha256_file(p)
    with pytest.raises(hub.HubError, match="leaf-hzr.parquet in checksums.json"):
        hub.download_relabels("leaf-hzr", VERSION)
    with pytest.raises(In21kError, match="expected a mode"):
        hub.download_relabels("hzr")


def test_corrupt_extra_file_rejected(hub_env):
    hub_env.corrupt("scores/v1/clip.parquet")
    with pytest.raises(ChecksumError, match="scores/v1/clip.parquet: expected sha256 .*checksums.json"):
        hub.download_scores("clip", VERSION)


def test_corrupt_checksums_file_rejected(hub_env):
    hub_env.corrupt("checksums.json")
    with pytest.raises(ChecksumError, match="checksums.json: expected git blob"):
        hub.download_scores("clip")


def test_features_shards_verified_by_meta(hub_env):
    d = hub.download_features("clip", "val")
    assert sorted(p.name for p in d.iterdir()) == ["index.parquet", "meta.json", "shard-00000.npy", "shard-00001.npy"]
    x = np.load(d / "shard-00001.npy", allow_pickle=False)
    assert x.shape == (3, 4) and x.dtype == np.float16
    hub_env.corrupt("features/clip/val/shard-00000.npy")
    hub.clear_verified()
    # cached copies are fine: still served from the cache
    assert hub.download_features("clip", "val") == d


def test_features_corrupt_shard_rejected(hub_env):
    hub_env.corrupt("features/clip/val/shard-00001.npy")
    with pytest.raises(ChecksumError, match="shard-00001.npy: .*meta.json"):
        hub.download_features("clip", "val")


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def test_cli_download(hub_env, capsys):
    from in21k_bench.cli import main

    with pytest.raises(SystemExit) as e:
        main(["download", "tiny", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["name"] == "tiny" and out["revision"] == LATEST and Path(out["root"]).is_dir()
    with pytest.raises(SystemExit) as e:
        main(["download", "clip-1k", "--features", "clip", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["inputs"]["clip"]).is_file() and Path(out["features"]["val"]).is_dir()
    with pytest.raises(SystemExit) as e:
        main(["download", "tiny", "--version", "v9"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_publish_dry_run(hub_env, tmp_path, capsys):
    from in21k_bench.cli import main

    root = _pkg_root(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["publish", "--repo", "org/new", "--version", "v1", "--splits", str(root), "--dry-run", "--json"])
    assert e.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] and out["commit"] is None and "splits/v1/tiny/labels.parquet" in out["files"]
    assert not any(m == "POST" for m, _, _ in hub_env.requests)  # nothing written
    with pytest.raises(SystemExit) as e:  # the package's repo has v1 tagged on the server
        main(["publish", "--repo", REPO_ID, "--version", "v1", "--splits", str(root), "--dry-run"])
    assert e.value.code == 2
    assert "found tag v1" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# publish: refusal logic, card
# --------------------------------------------------------------------------------------------------


class _FakeApi:
    """Records what publish would send; a stand-in for HfApi's upload API."""

    def __init__(self, tags=None):
        self.tags = dict(tags or {})
        self.commits = []
        self.created_tags = []

    def list_repo_refs(self, repo_id, repo_type=None):
        from types import SimpleNamespace

        return SimpleNamespace(
            tags=[SimpleNamespace(name=k, target_commit=v) for k, v in self.tags.items()], branches=[]
        )

    def repo_exists(self, repo_id, repo_type=None):
        return bool(self.commits)

    def hf_hub_download(self, *a, **k):
        from huggingface_hub.errors import EntryNotFoundError

        raise EntryNotFoundError("none")

    def create_repo(self, repo_id, **k):
        pass

    def create_commit(self, repo_id, operations, **k):
        from types import SimpleNamespace

        self.commits.append({op.path_in_repo: op for op in operations})
        return SimpleNamespace(oid=f"{len(self.commits):040x}")

    def create_tag(self, repo_id, *, tag, revision, **k):
        self.created_tags.append((tag, revision))
        self.tags[tag] = revision


def _pkg_root(tmp_path, version: str = VERSION, benchmark: str = "tiny") -> Path:
    root = tmp_path / "splits"
    idx = read_index()
    keep = [
        r
        for r in idx["versions"][version]["files"]
        if r.startswith(f"{version}/taxonomy/") or r.startswith(f"{version}/{benchmark}/")
    ]
    idx = json.loads(json.dumps(idx))
    idx["versions"][version]["files"] = {r: idx["versions"][version]["files"][r] for r in keep}
    for r in keep:
        (root / r).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SPLITS_DIR / r, root / r)
    (root / "index.json").write_text(json.dumps(idx))
    return root


def test_publish_uploads_tags_records_and_refuses_rerelease(tmp_path, hub_env):
    root = _pkg_root(tmp_path)
    api = _FakeApi()
    plan = hub.publish(
        REPO_ID,
        VERSION,
        splits_root=root,
        relabels_dir=hub_env.folder / "relabels/v1",
        scores_dir=hub_env.folder / "scores/v1",
        features_dir=hub_env.folder / "features",
        api=api,
    )
    sent = api.commits[0]
    assert {
        "README.md",
        "checksums.json",
        "splits/index.json",
        "splits/v1/tiny/labels.parquet",
        "relabels/v1/p-hzr.parquet",
        "scores/v1/clip.parquet",
        "features/clip/val/shard-00001.npy",
    } <= set(sent)
    checks = json.loads(sent["checksums.json"].path_or_fileobj)["files"]
    assert checks["splits/v1/tiny/labels.parquet"]["sha256"] == sha256_file(SPLITS_DIR / "v1/tiny/labels.parquet")
    assert api.created_tags == [(VERSION, plan.commit)]
    idx = json.loads((root / "index.json").read_text())
    assert idx["hub"]["revisions"][VERSION] == plan.commit and plan.recorded
    assert (
        idx["hub"]["checksums"][VERSION]["sha256"]
        == __import__("hashlib").sha256(sent["checksums.json"].path_or_fileobj).hexdigest()
    )
    # a released version is never overwritten
    with pytest.raises(hub.ReleasedVersionError, match="pinned"):
        hub.publish(REPO_ID, VERSION, splits_root=root, api=api)
    with pytest.raises(hub.ReleasedVersionError, match="found tag v1 at 00"):
        hub.publish(REPO_ID, VERSION, splits_root=_pkg_root(tmp_path / "fresh"), api=api, dry_run=True)
    assert len(api.commits) == 1


def test_publish_refuses_corrupt_input(tmp_path, hub_env):
    root = _pkg_root(tmp_path)
    feats = tmp_path / "feats"
    shutil.copytree(hub_env.folder / "features", feats)
    with open(feats / "clip/val/shard-00000.npy", "r+b") as f:
        f.seek(-1, 2)
        f.write(b"\x00" if f.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ChecksumError, match="refusing to upload"):
        hub.publish(REPO_ID, VERSION, splits_root=root, features_dir=feats, api=_FakeApi(), dry_run=True)
    (root / "v1/tiny/labels.parquet").write_bytes(b"x")
    with pytest.raises(ChecksumError):
        hub.publish(REPO_ID, VERSION, splits_root=root, api=_FakeApi(), dry_run=True)
    with pytest.raises(UnknownBenchmarkError):
        hub.publish(REPO_ID, "v5", splits_root=root, api=_FakeApi(), dry_run=True)


def test_card_generation():
    import yaml

    defs = [
        {"name": "tiny", "family": "frequency", "version": "v1", "status": "ready", "description": "middle | band"},
        {
            "name": "p-hzr",
            "family": "hzr",
            "version": "v1",
            "status": "needs-input",
            "description": "relabelled",
            "rule": {"mode": "p-hzr"},
        },
        {
            "name": "clip-1k",
            "family": "model-based",
            "version": "v1",
            "status": "needs-input",
            "description": "top",
            "rule": {"models": ["clip"]},
        },
        {"name": "small", "family": "frequency", "version": "v1", "status": "ready", "description": "not uploaded"},
    ]
    iv = read_index()["versions"][VERSION]
    paths = [
        "splits/v1/tiny/classes.parquet",
        "splits/v1/tiny/labels.parquet",
        "splits/v1/taxonomy/classes.parquet",
        "relabels/v1/p-hzr.parquet",
        "scores/v1/clip.parquet",
    ]
    card = hub.render_card(defs, repo_id=REPO_ID, version=VERSION, index_version=iv, hub_paths=paths)
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    configs = {c["config_name"]: c["data_files"] for c in meta["configs"]}
    assert configs["tiny"] == [
        {"split": "classes", "path": "splits/v1/tiny/classes.parquet"},
        {"split": "labels", "path": "splits/v1/tiny/labels.parquet"},
    ]
    assert configs["p-hzr"] == [{"split": "relabels", "path": "relabels/v1/p-hzr.parquet"}]
    assert configs["clip-1k"] == [{"split": "scores_clip", "path": "scores/v1/clip.parquet"}]
    assert configs["taxonomy"] == [{"split": "classes", "path": "splits/v1/taxonomy/classes.parquet"}]
    assert "small" not in configs
    assert "| `tiny` | frequency | v1 | ready | middle \\| band |" in card
    from huggingface_hub import DatasetCard

    assert DatasetCard(card).data.to_dict()["configs"] == meta["configs"]


def test_card_from_registry():
    from in21k_bench.registry.catalog import list_definitions

    iv = read_index()["versions"][VERSION]
    paths = [f"splits/{r}" for r in iv["files"]]
    card = hub.render_card(
        list_definitions(VERSION), repo_id=REPO_ID, version=VERSION, index_version=iv, hub_paths=paths
    )
    import yaml

    names = {c["config_name"] for c in yaml.safe_load(card.split("---\n")[1])["configs"]}
    ready = {n for n, b in iv["benchmarks"].items() if b["status"] == "ready"}
    assert names == ready | {"taxonomy"}


def test_publish_round_trip_through_the_server(tmp_path, hub_env, monkeypatch):
    """publish with the real HfApi against the local server, then download what it pinned."""
    root = _pkg_root(tmp_path)
    repo = "org/release-test"
    plan = hub.publish(
        repo,
        VERSION,
        splits_root=root,
        scores_dir=hub_env.folder / "scores/v1",
        features_dir=hub_env.folder / "features",
    )
    assert plan.recorded and len(plan.commit) == 40
    idx = json.loads((root / "index.json").read_text())
    assert idx["hub"]["repo_id"] == repo and idx["hub"]["revisions"][VERSION] == plan.commit
    assert any(m == "POST" and p.endswith(f"/tag/{plan.commit}") for m, p, _ in hub_env.requests)
    # the package now trusts this repo and commit: downloads go to the pinned commit, extras via pinned checksums
    monkeypatch.setattr(hub.config, "SPLITS_INDEX_ROOT", root)
    got = hub.download_manifest("tiny", VERSION)
    assert hub_env.gets("splits/v1/tiny/labels.parquet") and plan.commit in got.parts
    assert pd.read_parquet(hub.download_scores("clip", VERSION))["score"].tolist() == [0.5, 0.25]
    assert (hub.download_features("clip", "val", VERSION) / "shard-00000.npy").is_file()
    from huggingface_hub import hf_hub_download

    card = Path(hf_hub_download(repo, "README.md", repo_type="dataset", revision=VERSION)).read_text()
    import yaml

    configs = {c["config_name"] for c in yaml.safe_load(card.split("---\n")[1])["configs"]}
    assert {"tiny", "taxonomy", "clip-1k"} <= configs
    # a second release of the same version is refused: pinned in the index, and tagged on the hub
    with pytest.raises(hub.ReleasedVersionError, match="pinned"):
        hub.publish(repo, VERSION, splits_root=root)
    idx["hub"]["revisions"] = {}
    (root / "index.json").write_text(json.dumps(idx))
    with pytest.raises(hub.ReleasedVersionError, match="found tag v1"):
        hub.publish(repo, VERSION, splits_root=root)


def test_feature_store_published_and_downloaded_opens(tmp_path, hub_env, monkeypatch):
    """A store written by the package's FeatureStore writer goes through publish + download intact."""
    store_mod = pytest.importorskip("in21k_bench.features.store")
    x = np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32)
    feats = tmp_path / "feats"
    for split in ("train", "val"):
        store_mod.write_store(
            feats / "tiny-backbone" / split,
            x,
            [f"{split}/{i}" for i in range(10)],
            backbone="tiny-backbone",
            shard_rows=4,
        )
    root = _pkg_root(tmp_path)
    plan = hub.publish("org/feats", VERSION, splits_root=root, features_dir=feats)
    monkeypatch.setattr(hub.config, "SPLITS_INDEX_ROOT", root)
    got = hub.download_feature_splits("tiny-backbone", version=VERSION)
    assert plan.commit in got["val"].parts
    train, val = store_mod.open_features(got["val"].parent)
    assert val.num_rows == 10 and np.allclose(val.to_array(normalize=False), x, atol=1e-2)


def test_publish_and_download_v2_coarse(tmp_path, hub_env, monkeypatch):
    """A v2 release (extra-synset taxonomy, one-step coarse labels) goes through publish + download + load."""
    import in21k_bench

    root = _pkg_root(tmp_path, "v2", "coarse-d1")
    plan = hub.publish("org/v2-release", "v2", splits_root=root)
    assert plan.recorded and "splits/v2/taxonomy/synsets.parquet" in plan.files
    monkeypatch.setattr(hub.config, "SPLITS_INDEX_ROOT", root)
    got = hub.download_manifest("coarse-d1")  # latest version = v2
    assert plan.commit in got.parts and (got / "v2/taxonomy/synsets.parquet").is_file()
    b = in21k_bench.load("coarse-d1", root=got)
    assert (b.version, b.num_classes) == ("v2", 3987)
    assert (b.label_matrix() != in21k_bench.load("coarse-d1").label_matrix()).nnz == 0


def test_download_all_inputs_installs_or_names_the_missing_file(hub_env, tmp_path, capsys):
    from conftest import run_cli

    # the test repository publishes p-hzr relabels and clip scores only
    with pytest.raises(hub.HubError, match="leaf-hzr.parquet in checksums.json"):
        hub.download_all_inputs("relabels", VERSION)
    assert (tmp_path / "inputs" / VERSION / "p-hzr.parquet").is_file()
    with pytest.raises(In21kError, match="expected an input kind 'relabels' or 'scores'"):
        hub.download_all_inputs("features", VERSION)
    code, out, err = run_cli(["download", "tiny", "--version", VERSION, "--scores"], capsys)
    assert code == 2 and "scores/v1/dinov2.parquet in checksums.json" in err and err.count("\n") == 1
