"""Where the package's data files live: the top-level ``splits/`` folder.

In the repository the versioned manifests, their checksummed index and the vendored raw sources are
in ``splits/`` at the root (beside ``in21k_bench/``). A wheel installs the same folder as package data
at ``in21k_bench/splits/`` (setuptools maps the package ``in21k_bench.splits`` to ``splits/``). An
editable install or a plain source tree on ``sys.path`` has no ``in21k_bench/splits/``, so the lookup
falls back to the ``splits/`` beside the package folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INDEX_NAME = "index.json"


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
