"""Where the package keeps and looks for its files.

- :data:`SPLITS_DIR`: the committed manifests (package data): ``index.json`` plus one folder per version.
- :func:`index_path`: the version index of a splits folder.
- :func:`inputs_dir`: where "needs-input" benchmarks look for their input files by default.

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The package's splits folder (``index.json`` + ``<version>/...``).
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
#: File name of the version index inside a splits folder.
INDEX_NAME = "index.json"
#: Environment variable that overrides :func:`inputs_dir`.
INPUTS_ENV = "IN21K_BENCH_INPUTS"


def splits_root(root: str | os.PathLike | None = None) -> Path:
    """``root`` as a :class:`~pathlib.Path`, or the package's :data:`SPLITS_DIR` when None."""
    return Path(root) if root is not None else SPLITS_DIR


def index_path(root: str | os.PathLike | None = None) -> Path:
    """The ``index.json`` of a splits folder (default: the package's)."""
    return splits_root(root) / INDEX_NAME


def inputs_dir() -> Path:
    """Where "needs-input" benchmarks look for their input files by default:
    ``$IN21K_BENCH_INPUTS`` or ``~/.cache/in21k-bench/inputs`` (then ``<version>/<file>``)."""
    env = os.environ.get(INPUTS_ENV)
    return Path(env) if env else Path.home() / ".cache" / "in21k-bench" / "inputs"
