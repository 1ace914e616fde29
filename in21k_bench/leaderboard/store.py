"""Submission files: where they live, reading (validated, one-line errors) and atomic writing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from ..errors import InvalidSubmissionError
from ..fileio import write_json
from .schema import Submission, validation_message

LEADERBOARD_ENV = "IN21K_LEADERBOARD"


def default_root() -> Path:
    """The leaderboard folder: ``$IN21K_LEADERBOARD``, else ``./leaderboard`` when it exists, else the
    checkout's ``leaderboard/`` next to the package."""
    env = os.environ.get(LEADERBOARD_ENV)
    if env:
        return Path(env)
    cwd = Path.cwd() / "leaderboard"
    if (cwd / "submissions").is_dir():
        return cwd
    return Path(__file__).resolve().parents[2] / "leaderboard"


def submission_path(root: str | os.PathLike, benchmark: str, slug: str) -> Path:
    return Path(root) / "submissions" / benchmark / f"{slug}.json"


def load_submission(path: str | os.PathLike) -> Submission:
    """Read and validate one submission file; any problem raises :class:`InvalidSubmissionError` (one line)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSubmissionError(
            f"{path}: expected a readable submission file, found {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise InvalidSubmissionError(f"{path}: expected UTF-8 JSON text, found binary or non-UTF-8 bytes") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidSubmissionError(
            f"{path}: expected JSON, found a syntax error at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidSubmissionError(f"{path}: expected a JSON object, found {type(data).__name__}")
    try:
        return Submission.model_validate(data)
    except ValidationError as exc:
        raise InvalidSubmissionError(f"{path}: {validation_message(exc)}") from None


def submission_files(root: str | os.PathLike) -> list[Path]:
    base = Path(root) / "submissions"
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("*/*.json") if not p.name.startswith("."))


def load_submissions(root: str | os.PathLike | None = None) -> list[Submission]:
    """Every submission under ``<root>/submissions`` (validated; the first bad file raises)."""
    root = Path(root) if root is not None else default_root()
    return [load_submission(p) for p in submission_files(root)]


def write_submission(sub: Submission, root: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``sub`` atomically to ``<root>/submissions/<benchmark>/<slug>.json``.

    Refuses to replace an existing file unless ``overwrite``, and refuses an entry that duplicates
    another file's method + backbone on the same benchmark version.
    """
    path = submission_path(root, sub.benchmark, sub.slug)
    if path.exists() and not overwrite:
        raise InvalidSubmissionError(
            f"submission {path}: expected a new slug, found an existing file (use --overwrite or --slug)"
        )
    for other_path in submission_files(root):
        if other_path.resolve() == path.resolve():
            continue
        try:
            other = load_submission(other_path)
        except InvalidSubmissionError:
            continue
        if other.key == sub.key:
            raise InvalidSubmissionError(
                f"submission {sub.slug}: expected a new method/backbone on {sub.benchmark} {sub.benchmark_version}, "
                f"found the same in {other_path.name}"
            )
    write_json(path, sub.to_json_dict())
    return path
