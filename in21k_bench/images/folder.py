"""Listing a local image folder in the canonical sample order (docs/benchmarks.md, "The data").

Layout: ``<root>/<split>/<class_dir>/<file>`` (ImageNet-21K-P, ImageNet-1K train, or any
``root/<class>/<file>`` folder when ``split`` is None). Canonical order: class folders in the
order given by ``classes`` (class-index order) -- or sorted by name when not given -- and files
within a class sorted by name. A sample id is the path relative to ``root`` with ``/`` separators.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInputError

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def scan_split(
    root: str | os.PathLike,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    missing_ok: bool = True,
) -> pd.DataFrame:
    """Return a DataFrame (``sample_id``, ``class_dir``, ``path``) in canonical order.

    ``classes``: the class folder names in class-index order; folders not listed are ignored,
    listed folders that are absent are skipped when ``missing_ok`` (the caller reports them).
    """
    root = Path(root)
    base = root / split if split else root
    if not base.is_dir():
        raise InvalidInputError(f"image folder: expected a directory at {base}, found none")
    if classes is None:
        classes = sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
    ids: list[str] = []
    dirs: list[str] = []
    prefix = f"{split}/" if split else ""
    for cls in classes:
        d = base / cls
        if not d.is_dir():
            if missing_ok:
                continue
            raise InvalidInputError(f"image folder: expected class folder {d}, found none")
        files = sorted(e.name for e in os.scandir(d) if e.is_file() and _is_image(e.name))
        ids.extend(f"{prefix}{cls}/{f}" for f in files)
        dirs.extend([cls] * len(files))
    sample_ids = np.asarray(ids, dtype=object)
    return pd.DataFrame(
        {
            "sample_id": sample_ids,
            "class_dir": np.asarray(dirs, dtype=object),
            "path": [str(root / s) for s in ids],
        }
    )
