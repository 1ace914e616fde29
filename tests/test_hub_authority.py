"""The package index is the authority for hub downloads: a hub whose ``splits/index.json`` disagrees
with it is refused with a ChecksumError naming the benchmark (real client, local server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from in21k_bench import hub
from in21k_bench.errors import ChecksumError, UnknownBenchmarkError
from in21k_bench.manifests.files import SPLITS_DIR, read_index
from test_hub import REPO_ID, VERSION, _build_repo, hub_env  # noqa: F401 -- the fixture

SWAPPED = "small"


def _attack_repo(hub_env, tmp_path, edit) -> str:
    """A new commit, tagged v1, of a repository holding tiny's and small's files, whose index is edited by ``edit``."""
    folder = _build_repo(tmp_path / "attack", benchmarks=("tiny", SWAPPED))
    idx = json.loads((folder / "splits/index.json").read_text())
    edit(idx, folder)
    (folder / "splits/index.json").write_text(json.dumps(idx))
    return hub_env.add_commit(REPO_ID, folder, tags=[VERSION], repo_type="dataset")


def _swap(idx, folder):
    v = idx["versions"][VERSION]
    v["benchmarks"]["tiny"] = json.loads(json.dumps(v["benchmarks"][SWAPPED]))


def _rename(idx, folder):
    """tiny's labels file under another name (the file exists on the hub, its entry carries the right sha256)."""
    v = idx["versions"][VERSION]
    old, new = f"{VERSION}/tiny/labels.parquet", f"{VERSION}/tiny/labels-renamed.parquet"
    src = folder / "splits" / f"{VERSION}/{SWAPPED}/labels.parquet"
    shutil.copyfile(src, folder / "splits" / new)
    v["files"][new] = v["files"][f"{VERSION}/{SWAPPED}/labels.parquet"]
    v["benchmarks"]["tiny"]["files"] = [new if f == old else f for f in v["benchmarks"]["tiny"]["files"]]
    del v["files"][old]


def _extra_file(idx, folder):
    """tiny lists one more (well-formed, present, correctly hashed) file than the package says."""
    v = idx["versions"][VERSION]
    extra = f"{VERSION}/{SWAPPED}/labels.parquet"
    v["benchmarks"]["tiny"]["files"] = [*v["benchmarks"]["tiny"]["files"], extra]


def _unknown_version(idx, folder):
    """The hub's index moves v1 to a version the package does not know (v9)."""
    idx["versions"]["v9"] = idx["versions"].pop(VERSION)


def _extra_benchmark(idx, folder):
    """A benchmark the package does not list, added to the version."""
    v = idx["versions"][VERSION]
    v["benchmarks"]["tiny-2"] = json.loads(json.dumps(v["benchmarks"][SWAPPED]))


ATTACKS = {
    "swap-tiny-for-small": (
        _swap,
        r"benchmark 'tiny' \(v1\): expected files \[v1/tiny/classes.parquet, v1/tiny/labels.parquet\], found "
        r"\[v1/small/",
    ),
    "renamed-file": (_rename, r"benchmark 'tiny' \(v1\): expected files .*labels-renamed.parquet"),
    "extra-file": (
        _extra_file,
        r"benchmark 'tiny' \(v1\): expected files \[v1/tiny/classes.parquet, v1/tiny/labels.parquet\], found "
        r".*v1/small/labels.parquet",
    ),
    "unknown-version": (
        _unknown_version,
        r"benchmark 'tiny' \(v1\): expected version v1 in the hub's index, found versions \[.*'v9'\]",
    ),
    "extra-benchmark": (_extra_benchmark, r"benchmark 'tiny-2' \(v1\), read for 'tiny': expected no such benchmark"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hub_index_attack_is_refused(hub_env, tmp_path, attack):
    import in21k_bench

    edit, message = ATTACKS[attack]
    _attack_repo(hub_env, tmp_path, edit)
    with pytest.raises(ChecksumError, match=message):
        hub.download_manifest("tiny", VERSION)
    with pytest.raises(ChecksumError, match=message):
        in21k_bench.load("tiny", VERSION, source="hub")
    # nothing of the attack is left in the cache for a later `load(root=...)` to read
    assert not list(Path(hub_env.cache).rglob("snapshots/*/splits/index.json"))


@pytest.mark.parametrize("attack", ["swap-tiny-for-small", "unknown-version"])
def test_cli_download_refuses_swapped_index(hub_env, tmp_path, capsys, attack):
    _attack_repo(hub_env, tmp_path, ATTACKS[attack][0])
    code, out, err = run_cli(["download", "tiny", "--version", VERSION], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 3  # two "removed the cached copy" notices (one retry), then the one-line error
    assert lines[-1].startswith("error: ") and "ChecksumError" not in lines[-1]
    assert "benchmark 'tiny' (v1)" in lines[-1] and "the package index is the authority" in lines[-1]


def test_swapped_index_would_have_loaded_small(hub_env, tmp_path):
    """The attack is real: reading the hub snapshot through its own index gives small's 3,146 classes."""
    import in21k_bench

    commit = _attack_repo(hub_env, tmp_path, _swap)
    folder = hub_env.repos[("dataset", REPO_ID)].commits[commit]
    assert (
        in21k_bench.load("tiny", VERSION, root=folder / "splits").num_classes == in21k_bench.load(SWAPPED).num_classes
    )
    assert in21k_bench.load(SWAPPED).num_classes != in21k_bench.load("tiny").num_classes


def test_untouched_index_with_extra_repository_files_is_accepted(hub_env, tmp_path):
    """Files on the hub that the index does not list are never downloaded and do not matter."""
    import in21k_bench

    def add_stray(idx, folder):
        (folder / "splits" / VERSION / "tiny" / "stray.parquet").write_bytes(b"not a parquet file")

    _attack_repo(hub_env, tmp_path, add_stray)
    root = hub.download_manifest("tiny", VERSION)
    assert not (root / VERSION / "tiny" / "stray.parquet").exists()
    assert in21k_bench.load("tiny", VERSION, source="hub").num_classes == in21k_bench.load("tiny").num_classes


def test_version_the_package_does_not_know_is_refused(hub_env):
    with pytest.raises(UnknownBenchmarkError, match="expected a version the package knows"):
        hub.download_manifest("tiny", "v9")
    assert hub_env.requests == []


def test_index_disagreement_is_pure():
    """The comparison itself, without a server: identical -> None; the package index is not modified."""
    ours = read_index()["versions"][VERSION]
    before = json.dumps(ours, sort_keys=True)
    hub_index = json.loads((SPLITS_DIR / "index.json").read_text())
    assert hub.index_disagreement(hub_index, ours, VERSION, "tiny") is None
    hub_index["versions"][VERSION]["files"][f"{VERSION}/tiny/labels.parquet"]["size"] += 1
    assert "benchmark 'tiny' (v1)" in hub.index_disagreement(hub_index, ours, VERSION, "tiny")
    assert json.dumps(ours, sort_keys=True) == before


# --------------------------------------------------------------------------------------------------
# offline fails fast: an unreachable endpoint is detected by one probe, not by the client's retries
# --------------------------------------------------------------------------------------------------


def _dead_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    return port


class _Silent:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self):
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self._stop = True
        self.sock.close()
        for c in self.conns:
            c.close()


def _point_at(monkeypatch, url: str) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def test_unreachable_endpoint_fails_at_once(hub_env, monkeypatch, capsys):
    import time

    _point_at(monkeypatch, f"http://127.0.0.1:{_dead_port()}")
    t0 = time.perf_counter()
    code, out, err = run_cli(["download", "tiny", "--version", VERSION], capsys)
    elapsed = time.perf_counter() - t0
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Retrying" not in err
    assert "is unreachable (ConnectError" in err and "HF_ENDPOINT" in err and "HF_HUB_OFFLINE=1" in err
    assert elapsed < 5.0, elapsed  # was ~25 s of client retries


def test_endpoint_that_accepts_and_hangs_fails_in_seconds(hub_env, monkeypatch):
    import time

    from in21k_bench.errors import HubOfflineError

    silent = _Silent()
    try:
        _point_at(monkeypatch, f"http://127.0.0.1:{silent.port}")
        t0 = time.perf_counter()
        with pytest.raises(HubOfflineError, match=r"is unreachable \(ReadTimeout"):
            hub.download_manifest("tiny", VERSION)
        assert time.perf_counter() - t0 < hub.fetch.PROBE_TIMEOUT + 4.0
    finally:
        silent.close()


def test_unreachable_endpoint_serves_a_warm_cache(hub_env, monkeypatch):
    import time

    first = hub.download_manifest("tiny", VERSION)
    hub_env.stop()
    t0 = time.perf_counter()
    assert hub.download_manifest("tiny", VERSION) == first  # tag revision resolved from the cache
    assert time.perf_counter() - t0 < 5.0


def test_cli_offline_subprocess_is_fast(tmp_path):
    """The real console script, nothing monkeypatched: HF_ENDPOINT on a port where nothing listens."""
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{_dead_port()}", "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", "from in21k_bench.cli import main; main()", "download", "tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - t0
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "unreachable" in p.stderr, p.stderr
    assert elapsed < 15.0, elapsed  # interpreter start-up included; the client's retries alone took ~25 s
