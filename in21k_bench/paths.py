"""Where the package keeps and looks for its files.

In the repository the versioned manifests, their checksummed index and the vendored raw sources are
in ``splits/`` at the root (beside ``in21k_bench/``). A wheel installs the same folder as package data
at ``in21k_bench/splits/`` (setuptools maps the package ``in21k_bench.splits`` to ``splits/``). An
editable install or a plain source tree on ``sys.path`` has no ``in21k_bench/splits/``, so the lookup
falls back to the ``splits/`` beside the package folder.

- :data:`SPLITS_DIR`: the committed manifests: ``index.json`` plus one folder per version.
- :data:`VENDORED_SOURCES_DIR`: the vendored raw sources the manifests are built from.
- :func:`index_path`: the version index of a splits folder.
- :func:`inputs_dir`: where "needs-input" benchmarks look for their input files by default.

This module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: File name of the version index inside a splits folder.
INDEX_NAME = "index.json"
#: Environment variable that overrides :func:`inputs_dir`.
INPUTS_ENV = "IN21K_BENCH_INPUTS"


def find_splits_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """``in21k_bench/splits`` when installed from a wheel, else the repository's top-level ``splits/``."""
    installed = package_dir / "splits"
    if (installed / INDEX_NAME).is_file():
        return installed
    checkout = package_dir.parent / "splits"
    if checkout.is_dir() and (package_dir.parent / "pyproject.toml").is_file():
        return checkout
    return installed


#: The package's splits folder (manifests, ``index.json``, ``sources/``).
SPLITS_DIR = find_splits_dir()
#: The vendored raw sources the manifests are built from (see ``splits/sources/README.md``).
VENDORED_SOURCES_DIR = SPLITS_DIR / "sources"


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
