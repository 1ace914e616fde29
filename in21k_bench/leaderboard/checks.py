"""Leaderboard checks (``in21k-bench leaderboard check``, run in CI): schema, location, registry,
duplicates, sizes, re-scoring of verified entries from their prediction files, rendering up to date."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..catalog import get_definition
from ..errors import In21kError, InvalidSubmissionError, UnknownBenchmarkError
from . import scoring
from .render import render_html, render_markdown
from .schema import MAX_PREDICTION_BYTES, MAX_SUBMISSION_BYTES, Submission
from .store import default_root, load_submission, submission_files


def resolve_prediction(recorded: str, sub_file: Path, root: Path) -> Path | None:
    """Where a recorded prediction file (or prediction folder) is today: as given (absolute, or
    relative to the current folder), relative to the repository (the leaderboard's parent) or to the
    submission's folder, or by name in the sidecar folder ``submissions/<benchmark>/<slug>/``.
    None when absent."""
    rec = Path(recorded)
    candidates = [rec] if rec.is_absolute() else [Path.cwd() / rec, root.parent / rec, sub_file.parent / rec]
    candidates.append(sub_file.parent / sub_file.stem / rec.name)
    for c in candidates:
        if c.is_file() or c.is_dir():
            return c
    return None


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def check_submission(
    sub: Submission,
    path: Path,
    root: Path,
    *,
    reevaluate: bool = True,
    max_prediction_bytes: int = MAX_PREDICTION_BYTES,
) -> list[str]:
    """Rule checks of one validated record (schema already passed). Returns one-line problems.

    For a verified entry, each run's prediction file that can be found (see
    :func:`resolve_prediction`) is re-evaluated: the evaluator's sha256 of the file must equal the
    recorded one and every recorded per-run metric must equal the fresh value.
    """
    problems: list[str] = []
    rel = path
    # location: submissions/<benchmark>/<slug>.json
    if path.parent.name != sub.benchmark:
        problems.append(f"{rel}: expected to be in submissions/{sub.benchmark}/ (its benchmark), found in {path.parent.name}/")
    if path.stem != sub.slug:
        problems.append(f"{rel}: expected file name {sub.slug}.json (its slug), found {path.name}")
    # benchmark and version registered
    try:
        get_definition(sub.benchmark, sub.benchmark_version)
    except UnknownBenchmarkError as exc:
        problems.append(f"{rel}: {exc}")
        return problems
    if sub.status != "verified" or not reevaluate:
        return problems
    # re-evaluation where prediction files are present
    for i, recorded in enumerate(sub.predictions):
        found = resolve_prediction(recorded, path, root)
        if found is None:
            continue
        size = _size(found)
        if size > max_prediction_bytes:
            problems.append(f"{rel}: run {i + 1} prediction file {found} expected <= {max_prediction_bytes} bytes, found {size}")
            continue
        try:
            result = scoring.evaluate_predictions(found, sub.benchmark, sub.benchmark_version)
        except In21kError as exc:
            problems.append(f"{rel}: run {i + 1} re-evaluation failed: {exc}")
            continue
        sha = str(getattr(result, "predictions_sha256", ""))
        if sha != sub.predictions_sha256[i]:
            problems.append(f"{rel}: run {i + 1} prediction file {found} expected sha256 {sub.predictions_sha256[i][:12]}..., found {sha[:12]}...")
            continue
        fresh = scoring.result_metrics(result)
        for name, stat in sub.metrics.items():
            if name not in fresh:
                problems.append(f"{rel}: run {i + 1} metric {name} expected from the evaluator, found none")
            elif not math.isclose(stat.runs[i], fresh[name], rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{rel}: run {i + 1} metric {name} expected {fresh[name]:.6g} (re-evaluated), found {stat.runs[i]:.6g}")
    return problems


def check_leaderboard(
    root: str | os.PathLike | None = None,
    *,
    reevaluate: bool = True,
    check_rendered: bool = True,
    max_submission_bytes: int = MAX_SUBMISSION_BYTES,
    max_prediction_bytes: int = MAX_PREDICTION_BYTES,
) -> list[str]:
    """All leaderboard checks; returns one line per problem (empty list: all good).

    Schema (pydantic, unknown keys rejected), file location matches benchmark/slug, benchmark and
    version registered, no duplicate method + backbone per benchmark version, submission files under
    ``max_submission_bytes``, prediction files present in the repository re-evaluated (sha256 and
    every per-run metric must match), and -- with ``check_rendered`` -- README and page up to date.
    """
    root = Path(root) if root is not None else default_root()
    problems: list[str] = []
    base = root / "submissions"
    if not base.is_dir():
        return [f"{root}: expected a submissions/ folder, found none"]
    for stray in sorted(base.iterdir()):
        if stray.is_file() and not stray.name.startswith("."):
            problems.append(f"{stray}: expected submissions/<benchmark>/<slug>.json, found a file at the top level")
    seen: dict[tuple, Path] = {}
    valid: list[Submission] = []
    for path in submission_files(root):
        size = path.stat().st_size
        if size > max_submission_bytes:
            problems.append(f"{path}: expected <= {max_submission_bytes} bytes, found {size}")
            continue
        try:
            sub = load_submission(path)
        except InvalidSubmissionError as exc:
            problems.append(str(exc))
            continue
        if sub.key in seen:
            problems.append(
                f"{path}: expected one entry per method/backbone on {sub.benchmark} {sub.benchmark_version}, "
                f"found a duplicate of {seen[sub.key].name}"
            )
        else:
            seen[sub.key] = path
        problems.extend(check_submission(sub, path, root, reevaluate=reevaluate, max_prediction_bytes=max_prediction_bytes))
        valid.append(sub)
    if check_rendered and not problems:
        for target, text in ((root / "README.md", render_markdown(valid)), (root / "site" / "index.html", render_html(valid))):
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                problems.append(f"{target}: expected the rendering of the submissions, found it out of date (run `in21k-bench leaderboard build`)")
    return problems

