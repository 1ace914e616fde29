"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: The paper's preprocessing record (resize 256, centre crop 224, bicubic, ImageNet mean / std), as a
#: feature store's meta.json and the provenance record carry it.
PAPER_PREPROCESSING = {
    "mode": "paper",
    "resize": 256,
    "crop": 224,
    "interpolation": "bicubic",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
}


@pytest.fixture(scope="session")
def sources_dir(tmp_path_factory) -> Path:
    """A verified, uncompressed copy of the raw sources, so tests can read every file as text.

    Default: the vendored copy in ``splits/sources/`` (part of every clone); ``$IN21K_SOURCES``
    overrides it. Missing or altered sources fail here, they never skip a test."""
    from in21k_bench.authoring.sources import find_sources_dir, materialize_sources

    return materialize_sources(find_sources_dir(), tmp_path_factory.mktemp("sources"))


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
