"""Small file helpers shared by every module: atomic writes and sha256.

Every file the package writes goes through :func:`atomic_write` (temp file in the same
folder + ``os.replace``), so an interrupted run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

_CHUNK = 1 << 20


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(path: str | os.PathLike, what: str = "output") -> Path:
    """Check, without creating anything, that ``path`` is (or can be created as) a writable folder.

    Raises :class:`~in21k_bench.errors.InvalidInputError` naming the offending path: a regular file
    where a folder is needed, or a folder that is not writable. Call it before long computations.
    """
    from .errors import InvalidInputError

    path = Path(path)
    base = _first_existing(path)
    if base.exists() and not base.is_dir():
        found = "a regular file" if base.is_file() else "a non-folder"
        raise InvalidInputError(
            f"{what}: expected a folder (or a path that can be created) at {path}, found {found} at {base}"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise InvalidInputError(f"{what}: expected a writable folder at {path}, found {base} not writable")
    return path


def ensure_dir(path: str | os.PathLike, what: str = "output") -> Path:
    """``mkdir -p path``; a file in the way or a permission problem is an
    :class:`~in21k_bench.errors.InvalidInputError` (one line, expected vs found), not a traceback."""
    from .errors import InvalidInputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        check_output_dir(path, what)
        raise InvalidInputError(f"{what}: expected a folder at {path}, found something else in the way") from None
    except OSError as exc:
        raise InvalidInputError(
            f"{what}: expected to create the folder {path}, found {exc.strerror or exc.__class__.__name__}"
        ) from None
    return path


def _default_mode() -> int:
    """0666 minus the process umask: what ``open()`` would give (mkstemp creates files as 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temp file next to ``path``; on success rename it over ``path``.

    On any exception the temp file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    ensure_dir(path.parent)
    if path.is_dir():
        from .errors import InvalidInputError

        raise InvalidInputError(f"output: expected a file path at {path}, found a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, _default_mode())
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path next to ``path`` for writers that want a file name
    (``pyarrow.parquet.write_table``, ``np.save``, ``matplotlib.savefig``); renamed on success."""
    path = Path(path)
    ensure_dir(path.parent)
    if path.is_dir():
        from .errors import InvalidInputError

        raise InvalidInputError(f"output: expected a file path at {path}, found a folder")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _default_mode())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npy(path: str | os.PathLike, array: Any) -> None:
    """``np.save`` through a temp file (never pickles)."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)
