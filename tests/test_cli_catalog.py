"""CLI: list / info / build-manifests; one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import run_cli

run = run_cli


def test_list_json(capsys):
    code, out, _ = run(["list", "--json"], capsys)
    assert code == 0
    rows = json.loads(out)
    names = {r["name"]: r for r in rows}
    assert names["tiny"]["num_val"] == names["tiny"]["num_classes"] * 50
    assert names["p-hzr"]["status"] == "needs-input"


@pytest.mark.parametrize("name", ["imbalanced-2k", "real1k", "coarse-d4", "clip-1k"])
def test_info_json(name, capsys):
    code, out, _ = run(["info", name, "--json"], capsys)
    assert code == 0
    info = json.loads(out)
    for key in ("name", "version", "family", "status", "num_classes", "num_train", "num_val"):
        assert key in info
    assert info["name"] == name


def test_unknown_benchmark_one_line_error(capsys):
    code, out, err = run(["info", "imbalanced2k"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "did you mean imbalanced-2k" in err and "Traceback" not in err


def test_console_script_runs():
    r = subprocess.run(
        [sys.executable, "-c", "from in21k_bench.cli import main; main(['info','tiny','--json'])"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["num_classes"] > 1000
