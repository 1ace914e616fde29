"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = Path(os.environ.get("IN21K_SOURCES", REPO.parent / "shared" / "in21k-sources"))


@pytest.fixture(scope="session")
def sources_dir() -> Path:
    if not (SOURCES / "SOURCES.md").is_file():
        pytest.skip(f"raw sources not found at {SOURCES}")
    return SOURCES


def run_cli(argv, capsys):
    """Run ``in21k-bench ARGV`` in process; returns (exit code, stdout, stderr)."""
    from in21k_bench.cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err
