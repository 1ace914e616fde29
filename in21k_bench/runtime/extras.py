"""Optional dependency groups ("extras") and the one-line error for a missing one.

The core install (numpy, scipy, pandas, pyarrow, pydantic, typer, tqdm, huggingface_hub) loads manifests,
evaluates, downloads and runs the leaderboard. Model code needs an extra (pyproject.toml
``[project.optional-dependencies]``; the table is in docs/index.md). :func:`require` is called at every
entry point that needs one, so that a missing extra fails with one line that names it instead of an
``ImportError`` traceback; the CLI also maps any stray ``ModuleNotFoundError`` of these modules to the
same message (:func:`missing_extra_error`).
"""

from __future__ import annotations

import importlib.util

from ..errors import MissingExtraError

# top-level import name -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "torch": "methods",
    "faiss": "methods",
    "sklearn": "methods",
    "torchvision": "extract",
    "timm": "extract",
    "open_clip": "extract",
    "PIL": "extract",
    "matplotlib": "plots",
}


def message(what: str, extra: str) -> str:
    return f'{what} needs the {extra!r} extra: pip install "in21k-bench[{extra}]"'


def require(*modules: str, what: str, extra: str | None = None) -> None:
    """Raise :class:`MissingExtraError` naming the extra when any of ``modules`` is not importable.

    Only looks the modules up (``importlib.util.find_spec``); nothing is imported, so this is cheap.
    ``extra`` defaults to the extra that installs the first missing module.
    """
    for name in modules:
        if importlib.util.find_spec(name) is None:
            raise MissingExtraError(message(what, extra or EXTRA_OF.get(name, "all")))


def missing_extra_error(exc: ModuleNotFoundError, what: str) -> MissingExtraError | None:
    """The one-line error for a ``ModuleNotFoundError`` of an optional module, or None for any other module."""
    root = (exc.name or "").split(".")[0]
    if root not in EXTRA_OF:
        return None
    return MissingExtraError(message(what, EXTRA_OF[root]))
