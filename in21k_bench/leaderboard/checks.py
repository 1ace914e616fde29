"""Leaderboard checks (``in21k-bench leaderboard check``, run in CI): schema, location, registry,
duplicates, sizes, re-scoring of verified entries from their prediction files, rendering up to date.

A ``verified`` entry must carry, for every run, a prediction file that the check can re-score: a
committed file, or a URL / hub path (with the run's sha256) that ``check --fetch`` downloads. An
entry without them is refused; :func:`downgrade_unverifiable` turns it into an ``unchecked`` entry,
which the README and the page show apart.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import In21kError, InvalidSubmissionError, UnknownBenchmarkError
from ..fileio import write_json
from ..registry.catalog import get_definition
from . import scores
from .render import render_html, render_markdown
from .run_files import fetch_remote, is_remote, resolve_local
from .schema import MAX_PREDICTION_BYTES, MAX_SUBMISSION_BYTES, Submission
from .store import default_root, load_submission, submission_files

resolve_prediction = resolve_local  # where a recorded prediction file is today (see predictions.resolve_local)


@dataclass
class CheckReport:
    """What :func:`run_checks` found: problems (one line each) and what was re-scored."""

    problems: list[str] = field(default_factory=list)
    submissions: int = 0
    verified: int = 0  # verified entries
    rescored: int = 0  # verified entries whose every run was re-scored and matched
    rescored_runs: int = 0
    remote_not_fetched: int = 0  # verified entries with remote predictions, not fetched (no --fetch)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        text = (
            f"{self.submissions} submissions; re-scored {self.rescored} of {self.verified} verified entries "
            f"({self.rescored_runs} runs)"
        )
        if self.remote_not_fetched:
            text += f"; {self.remote_not_fetched} with remote predictions not fetched (run with --fetch)"
        return text


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _missing_runs(sub: Submission, path: Path, root: Path) -> list[int]:
    """Runs (0-based) of a verified entry with neither a local prediction file nor a remote location."""
    locs = list(sub.predictions) or [""] * sub.num_runs
    return [
        i for i, loc in enumerate(locs) if not loc or (not is_remote(loc) and resolve_local(loc, path, root) is None)
    ]


def _rescore_run(sub, i, found, rel, max_prediction_bytes) -> list[str]:
    size = _size(found)
    if size > max_prediction_bytes:
        return [f"{rel}: run {i + 1} prediction file {found} expected <= {max_prediction_bytes} bytes, found {size}"]
    try:
        result = scores.evaluate_predictions(found, sub.benchmark, sub.benchmark_version)
    except In21kError as exc:
        return [f"{rel}: run {i + 1} re-evaluation failed: {exc}"]
    sha = str(getattr(result, "predictions_sha256", ""))
    if sha != sub.predictions_sha256[i]:
        return [
            f"{rel}: run {i + 1} prediction file {found} expected sha256 {sub.predictions_sha256[i][:12]}..., found "
            f"{sha[:12]}..."
        ]
    fresh = scores.result_metrics(result)
    problems = []
    for name, stat in sub.metrics.items():
        if name not in fresh:
            problems.append(f"{rel}: run {i + 1} metric {name} expected from the evaluator, found none")
        elif not math.isclose(stat.runs[i], fresh[name], rel_tol=1e-9, abs_tol=1e-9):
            problems.append(
                f"{rel}: run {i + 1} metric {name} expected {fresh[name]:.6g} (re-evaluated), found {stat.runs[i]:.6g}"
            )
    return problems


def _check_entry(
    sub, path, root, report: CheckReport | None, *, reevaluate, fetch_dir, max_prediction_bytes
) -> list[str]:
    problems: list[str] = []
    rel = path
    # location: submissions/<benchmark>/<slug>.json
    if path.parent.name != sub.benchmark:
        problems.append(
            f"{rel}: expected to be in submissions/{sub.benchmark}/ (its benchmark), found in {path.parent.name}/"
        )
    if path.stem != sub.slug:
        problems.append(f"{rel}: expected file name {sub.slug}.json (its slug), found {path.name}")
    # benchmark and version registered
    try:
        get_definition(sub.benchmark, sub.benchmark_version)
    except UnknownBenchmarkError as exc:
        problems.append(f"{rel}: {exc}")
        return problems
    if sub.status != "verified":
        return problems
    if report is not None:
        report.verified += 1
    from ..evaluation.provenance import missing_fields

    lacking = missing_fields(sub.provenance.model_dump() if sub.provenance is not None else None)
    if lacking:
        problems.append(
            f"{rel}: verified entry {sub.slug}: expected complete provenance, found none for {', '.join(lacking)} "
            "(re-submit prediction folders written by `fit` on a store with a recorded backbone and preprocessing)"
        )
    missing = _missing_runs(sub, path, root)
    if missing:
        where = ", ".join(
            f"run {i + 1} ({sub.predictions[i] if sub.predictions else 'no location recorded'})" for i in missing
        )
        problems.append(
            f"{rel}: verified entry: expected a prediction file per run that check can re-score (committed in "
            f"submissions/{sub.benchmark}/{sub.slug}/, or a URL / hf:// path with its sha256), found none for {where}; "
            "commit the files, record their URLs, or mark it unchecked (`in21k-bench leaderboard check --downgrade`)"
        )
        return problems
    if not reevaluate:
        return problems
    runs_done = 0
    remote_skipped = False
    for i, loc in enumerate(sub.predictions):
        if is_remote(loc):
            if fetch_dir is None:
                remote_skipped = True
                continue
            try:
                found = fetch_remote(loc, sub.predictions_sha256[i], fetch_dir, max_prediction_bytes)
            except InvalidSubmissionError as exc:
                problems.append(f"{rel}: run {i + 1} {exc}")
                continue
        else:
            found = resolve_local(loc, path, root)
        run_problems = _rescore_run(sub, i, found, rel, max_prediction_bytes)
        problems.extend(run_problems)
        runs_done += not run_problems
    if report is not None:
        report.rescored_runs += runs_done
        report.remote_not_fetched += remote_skipped
        report.rescored += runs_done == sub.num_runs
    return problems


def check_submission(
    sub: Submission,
    path: Path,
    root: Path,
    *,
    reevaluate: bool = True,
    fetch_dir: Path | None = None,
    max_prediction_bytes: int = MAX_PREDICTION_BYTES,
) -> list[str]:
    """Rule checks of one validated record (schema already passed). Returns one-line problems.

    A verified entry must have, for every run, a prediction file found on disk (see
    :func:`~in21k_bench.leaderboard.run_files.resolve_local`) or a remote location. Each is
    re-scored: the evaluator's sha256 of the file must equal the recorded one and every recorded
    per-run metric must equal the fresh value. Remote files are fetched into ``fetch_dir`` (and
    checked against their sha256 first); with ``fetch_dir=None`` they are not re-scored.
    """
    return _check_entry(
        sub, path, root, None, reevaluate=reevaluate, fetch_dir=fetch_dir, max_prediction_bytes=max_prediction_bytes
    )


def run_checks(
    root: str | os.PathLike | None = None,
    *,
    reevaluate: bool = True,
    check_rendered: bool = True,
    fetch: bool = False,
    max_submission_bytes: int = MAX_SUBMISSION_BYTES,
    max_prediction_bytes: int = MAX_PREDICTION_BYTES,
) -> CheckReport:
    """All leaderboard checks, with counts of what was re-scored (see :func:`check_leaderboard`)."""
    root = Path(root) if root is not None else default_root()
    report = CheckReport()
    base = root / "submissions"
    if not base.is_dir():
        report.problems.append(f"{root}: expected a submissions/ folder, found none")
        return report
    for stray in sorted(base.iterdir()):
        if stray.is_file() and not stray.name.startswith("."):
            report.problems.append(
                f"{stray}: expected submissions/<benchmark>/<slug>.json, found a file at the top level"
            )
    seen: dict[tuple, Path] = {}
    valid: list[Submission] = []
    with tempfile.TemporaryDirectory(prefix="in21k-lb-fetch-") as tmp:
        fetch_dir = Path(tmp) if fetch else None
        for path in submission_files(root):
            report.submissions += 1
            size = path.stat().st_size
            if size > max_submission_bytes:
                report.problems.append(f"{path}: expected <= {max_submission_bytes} bytes, found {size}")
                continue
            try:
                sub = load_submission(path)
            except InvalidSubmissionError as exc:
                report.problems.append(str(exc))
                continue
            if sub.key in seen:
                report.problems.append(
                    f"{path}: expected one entry per method/backbone on {sub.benchmark} {sub.benchmark_version}, "
                    f"found a duplicate of {seen[sub.key].name}"
                )
            else:
                seen[sub.key] = path
            report.problems.extend(
                _check_entry(
                    sub,
                    path,
                    root,
                    report,
                    reevaluate=reevaluate,
                    fetch_dir=fetch_dir,
                    max_prediction_bytes=max_prediction_bytes,
                )
            )
            valid.append(sub)
    if check_rendered and not report.problems:
        for target, text in (
            (root / "README.md", render_markdown(valid)),
            (root / "site" / "index.html", render_html(valid)),
        ):
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                report.problems.append(
                    f"{target}: expected the rendering of the submissions, found it out of date (run `in21k-bench "
                    "leaderboard build`)"
                )
    return report


def check_leaderboard(
    root: str | os.PathLike | None = None,
    *,
    reevaluate: bool = True,
    check_rendered: bool = True,
    fetch: bool = False,
    max_submission_bytes: int = MAX_SUBMISSION_BYTES,
    max_prediction_bytes: int = MAX_PREDICTION_BYTES,
) -> list[str]:
    """All leaderboard checks; returns one line per problem (empty list: all good).

    Schema (pydantic, unknown keys rejected), file location matches benchmark/slug, benchmark and
    version registered, no duplicate method + backbone per benchmark version, submission files under
    ``max_submission_bytes``, every verified entry has a prediction file per run (committed, or remote
    with ``fetch``) that is re-scored (sha256 and every per-run metric must match), and -- with
    ``check_rendered`` -- README and page up to date.
    """
    return run_checks(
        root,
        reevaluate=reevaluate,
        check_rendered=check_rendered,
        fetch=fetch,
        max_submission_bytes=max_submission_bytes,
        max_prediction_bytes=max_prediction_bytes,
    ).problems


def downgrade_unverifiable(root: str | os.PathLike | None = None) -> list[Path]:
    """Mark ``unchecked`` every verified entry that has a run without a prediction file or remote
    location (see :func:`check_submission`); returns the rewritten files. Invalid files are left alone."""
    root = Path(root) if root is not None else default_root()
    changed = []
    for path in submission_files(root):
        try:
            sub = load_submission(path)
        except InvalidSubmissionError:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not (isinstance(data, dict) and data.get("status") == "verified" and not data.get("predictions")):
                continue
            data["status"] = "unchecked"
            try:
                sub = Submission.model_validate(data)
            except ValueError:
                continue
            write_json(path, sub.to_json_dict())
            changed.append(path)
            continue
        if sub.status == "verified" and _missing_runs(sub, path, root):
            write_json(path, sub.model_copy(update={"status": "unchecked"}).to_json_dict())
            changed.append(path)
    return changed
