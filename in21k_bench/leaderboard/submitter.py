"""Submitting: score each run's prediction file with the evaluator and write a verified entry."""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

from pydantic import ValidationError

from ..errors import InvalidSubmissionError
from ..fileio import atomic_write
from ..registry.catalog import get_definition
from . import scores
from .run_files import is_remote, remote_problem
from .schema import MAX_PREDICTION_BYTES, METRICS, RANK_METRIC, MetricStat, Submission, slugify, validation_message
from .store import default_root, submission_path, write_submission


def make_submission(
    results: Sequence[Any],
    *,
    method: str,
    backbone: str = "unspecified",
    slug: str | None = None,
    authors: Sequence[str] = (),
    paper_url: str | None = None,
    code_url: str | None = None,
    predictions: Sequence[str] = (),
    notes: str | None = None,
    supervised: bool = False,
    date: _dt.date | None = None,
) -> Submission:
    """Build a verified :class:`Submission` from one evaluator result per run."""
    if not results:
        raise InvalidSubmissionError("submit: expected at least one prediction file, found none")
    first = results[0]
    for r in results[1:]:
        if (r.benchmark, r.version) != (first.benchmark, first.version):
            raise InvalidSubmissionError(
                f"submit: expected every run on {first.benchmark} {first.version}, found {r.benchmark} {r.version}"
            )
        if getattr(r, "n", None) != getattr(first, "n", None):
            raise InvalidSubmissionError(f"submit: expected every run to score {first.n} samples, found {r.n}")
    per_run = [scores.result_metrics(r) for r in results]
    names = [m for m in METRICS if all(m in pr for pr in per_run)]
    if RANK_METRIC not in names:
        raise InvalidSubmissionError(
            f"submit: expected the evaluator to report {RANK_METRIC!r}, found {sorted(per_run[0])}"
        )
    metrics = {m: MetricStat.from_runs([pr[m] for pr in per_run]) for m in names}
    shas = [str(r.predictions_sha256) for r in results]
    if len(set(shas)) != len(shas):
        raise InvalidSubmissionError("submit: expected one distinct prediction file per run, found the same file twice")
    from .. import __version__

    prov = combined_provenance(results)
    try:
        return Submission(
            method=method,
            slug=slug or slugify(f"{method}-{backbone}"),
            authors=list(authors),
            paper_url=paper_url,
            code_url=code_url,
            backbone=backbone,
            benchmark=first.benchmark,
            benchmark_version=first.version,
            package_version=str(getattr(first, "package_version", None) or __version__),
            num_runs=len(results),
            predictions_sha256=shas,
            predictions=list(predictions),
            metrics=metrics,
            status="verified",
            supervised=supervised,
            date=date or _dt.date.today(),
            num_clusters=getattr(first, "num_clusters", None),
            num_samples=getattr(first, "n", None),
            notes=notes,
            provenance=prov,
        )
    except ValidationError as exc:
        raise InvalidSubmissionError(f"submit: {validation_message(exc)}") from None


def combined_provenance(results: Sequence[Any]) -> dict | None:
    """The provenance shared by every run (each result's ``provenance``, see
    :mod:`in21k_bench.evaluation.provenance`); None when no result carries one. Runs that disagree on the
    backbone or preprocessing are refused; ``features`` is kept only when every run names the same."""
    provs = [getattr(r, "provenance", None) for r in results]
    if all(p is None for p in provs):
        return None
    provs = [dict(p or {}) for p in provs]
    first = provs[0]
    for i, p in enumerate(provs[1:], start=2):
        for key in ("backbone", "preprocessing", "manifest_sha256"):
            if p.get(key) != first.get(key):
                raise InvalidSubmissionError(
                    f"submit: expected every run with the same {key} ({first.get(key)}), found {p.get(key)} in run {i}"
                )
    out = dict(first)
    if any(p.get("features") != first.get("features") for p in provs):
        out["features"] = None
    return out


def display_path(p: Path) -> str:
    try:
        return Path(os.path.relpath(p.resolve(), Path.cwd())).as_posix()
    except ValueError:  # another drive
        return p.resolve().as_posix()


def submit(
    preds: Sequence[str | os.PathLike],
    *,
    benchmark: str,
    method: str,
    version: str | None = None,
    backbone: str = "unspecified",
    slug: str | None = None,
    authors: Sequence[str] = (),
    paper_url: str | None = None,
    code_url: str | None = None,
    notes: str | None = None,
    supervised: bool = False,
    root: str | os.PathLike | None = None,
    overwrite: bool = False,
    dry_run: bool = False,
    progress: bool | None = None,
    copy_predictions: bool = False,
    prediction_urls: Sequence[str] = (),
) -> tuple[Submission, Path]:
    """Evaluate each run's prediction file and write a verified submission atomically.

    Where ``leaderboard check`` finds each run's file to re-score it: with ``copy_predictions`` the
    files are copied beside the entry (``submissions/<benchmark>/<slug>/``, committed with it); with
    ``prediction_urls`` (one per run: ``https://...`` or ``hf://datasets/ORG/NAME@REV/PATH``, each
    holding the same bytes) ``check --fetch`` downloads them; otherwise the paths as given are recorded
    (they must then be inside the repository for the check to find them).

    Returns the record and the path it was (or, with ``dry_run``, would be) written to.
    """
    from tqdm import tqdm

    d = get_definition(benchmark, version)
    paths = [Path(p) for p in preds]
    for p in paths:
        if not p.exists():
            raise InvalidSubmissionError(f"submit: expected a prediction file, found no file at {p}")
    urls = list(prediction_urls)
    if urls and len(urls) != len(paths):
        raise InvalidSubmissionError(f"submit: expected one prediction URL per run ({len(paths)}), found {len(urls)}")
    if urls and copy_predictions:
        raise InvalidSubmissionError("submit: expected either copied prediction files or prediction URLs, found both")
    for u in urls:
        problem = remote_problem(u) if is_remote(u) else f"expected an http(s) URL or hf:// path, found {u!r}"
        if problem:
            raise InvalidSubmissionError(f"submit: {problem}")
    results = []
    for p in tqdm(paths, desc="evaluating runs", unit="run", disable=None if progress is None else not progress):
        results.append(scores.evaluate_predictions(p, d.name, d.version))
    sub = make_submission(
        results,
        method=method,
        backbone=backbone,
        slug=slug,
        authors=authors,
        paper_url=paper_url,
        code_url=code_url,
        predictions=urls or [display_path(p) for p in paths],
        notes=notes,
        supervised=supervised,
    )
    root = Path(root) if root is not None else default_root()
    target = submission_path(root, sub.benchmark, sub.slug)
    if copy_predictions:
        names = [f"run-{i + 1}{''.join(p.suffixes) if p.is_file() else ''}" for i, p in enumerate(paths)]
        sub = sub.model_copy(update={"predictions": [f"{sub.slug}/{n}" for n in names]})
    if dry_run:
        return sub, target
    if not copy_predictions:
        return sub, write_submission(sub, root, overwrite=overwrite)
    for p in paths:
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        if size > MAX_PREDICTION_BYTES:
            raise InvalidSubmissionError(
                f"submit --copy-predictions: expected prediction files of at most {MAX_PREDICTION_BYTES} bytes, found "
                f"{size} in {p} (give the top5.npy of a folder, or publish the file and pass --predictions-url)"
            )
    side = target.parent / sub.slug
    copied = _copy_runs(paths, [side / n for n in names])
    try:
        return sub, write_submission(sub, root, overwrite=overwrite)
    except BaseException:
        for c in copied:
            shutil.rmtree(c) if c.is_dir() else c.unlink(missing_ok=True)
        raise


def _copy_runs(paths: Sequence[Path], dests: Sequence[Path]) -> list[Path]:
    """Copy prediction files (or folders) into the sidecar folder; returns what was written."""
    done = []
    for src, dst in zip(paths, dests):
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            with open(src, "rb") as fin, atomic_write(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        done.append(dst)
    return done
