"""Seed entries: the paper's published numbers as ``reported`` submissions.

The numbers live in a data file, ``in21k_bench/leaderboard/assets/paper_reported.csv``: one row per published
number (``benchmark, version, backbone, method, metric, value_pct, source``), in % as printed,
``source`` naming the table it comes from. :func:`paper_seed_submissions` builds one entry per
benchmark, version, backbone and method from it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ..errors import In21kError, InvalidSubmissionError
from .schema import METRICS, MetricStat, Submission, slugify
from .store import default_root, load_submission, submission_path, write_submission

PAPER_URL = "https://arxiv.org/abs/2406.01203"
PAPER_AUTHORS = ["Nikolas Adaloglou", "Felix Michels", "Kaspar Senft", "Diana Petrusheva", "Markus Kollmann"]
PAPER_CITATION = (
    "Adaloglou, Michels, Senft, Petrusheva, Kollmann (2024), 'Scaling Up Deep Clustering Methods Beyond "
    "ImageNet-1K', arXiv:2406.01203"
)
PAPER_DATE = _dt.date(2024, 6, 3)  # arXiv v1
REPORTED_CSV = "paper_reported.csv"
CSV_COLUMNS = ("benchmark", "version", "backbone", "method", "metric", "value_pct", "source")
SUPERVISED_METHODS = ("Linear probe",)


@dataclass(frozen=True)
class ReportedNumber:
    """One published number (in %, as printed) and the table it comes from."""

    benchmark: str
    version: str
    backbone: str
    method: str
    metric: str
    value_pct: float
    source: str
    decimals: int


def read_reported(text: str | None = None) -> list[ReportedNumber]:
    """Rows of the reported-numbers CSV (the packaged file unless ``text`` is given), validated."""
    if text is None:
        text = files("in21k_bench.leaderboard").joinpath("assets", REPORTED_CSV).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise In21kError(
            f"{REPORTED_CSV}: expected columns {','.join(CSV_COLUMNS)}, found {','.join(reader.fieldnames or [])}"
        )
    out = []
    for i, row in enumerate(reader, start=2):
        raw = (row["value_pct"] or "").strip()
        try:
            value = float(raw)
        except ValueError:
            raise In21kError(f"{REPORTED_CSV} line {i}: expected a number in value_pct, found {raw!r}") from None
        if row["metric"] not in METRICS or not row["source"].strip():
            raise In21kError(
                f"{REPORTED_CSV} line {i}: expected a metric in {list(METRICS)} and a source, found {row['metric']!r} "
                f"/ {row['source']!r}"
            )
        decimals = len(raw.split(".", 1)[1]) if "." in raw else 0
        out.append(
            ReportedNumber(
                row["benchmark"],
                row["version"],
                row["backbone"],
                row["method"],
                row["metric"],
                value,
                row["source"].strip(),
                decimals,
            )
        )
    return out


def _pct(x: float) -> float:
    return round(x / 100.0, 6)


#: How the paper aggregates its numbers (Adaloglou et al. 2024, section 4 and appendix C.3).
CLUSTERING_AGGREGATE = "clustering results are the mean of 3 independent runs"
PROBE_AGGREGATE = (
    "linear-probe accuracy is the best value over a learning-rate x weight-decay grid (appendix C.3), "
    "one value, not a mean of runs"
)


def _describe_sources(per_metric: dict[str, ReportedNumber]) -> str:
    """'Table 3' for one table; 'Table 5 (appendix C.4) for acc; Table 4 for top1_L, ...' when an entry
    combines numbers from several tables."""
    tables: dict[str, list[str]] = {}
    for metric, r in per_metric.items():
        tables.setdefault(r.source, []).append(metric)
    if len(tables) == 1:
        return next(iter(tables))
    return "; ".join(f"{t} for {', '.join(ms)}" for t, ms in tables.items())


def paper_seed_submissions() -> list[Submission]:
    """The paper's published results as ``reported`` entries (accuracies converted from % to fractions).

    ``source`` names the table of every number (and which metric comes from which table when an entry
    combines two) and how the paper aggregated it. Where two tables give the same metric of one entry
    (top-1->1 of ``in21k`` in Tables 4 and 5), ``acc`` takes the more precise value; a disagreement
    beyond rounding is recorded in ``notes``.
    """
    entries: dict[tuple[str, str, str, str], dict[str, list[ReportedNumber]]] = {}
    for r in read_reported():
        entries.setdefault((r.benchmark, r.version, r.backbone, r.method), {}).setdefault(r.metric, []).append(r)
    subs = []
    for (bench, version, backbone, method), per_metric in entries.items():
        chosen: dict[str, ReportedNumber] = {}
        notes = None
        for metric, rows in per_metric.items():
            best = max(rows, key=lambda r: r.decimals)
            chosen[metric] = best
            for other in rows:
                if other is not best and abs(other.value_pct - best.value_pct) > 0.5 * 10**-other.decimals + 1e-9:
                    notes = (
                        f"{other.source} gives {metric} = {other.value_pct:.{other.decimals}f}% for this entry; "
                        f"the value here is {best.value_pct:.{best.decimals}f}% from {best.source}."
                    )
        supervised = method in SUPERVISED_METHODS
        source = (
            f"{PAPER_CITATION}, {_describe_sources(chosen)}; {PROBE_AGGREGATE if supervised else CLUSTERING_AGGREGATE}"
        )
        subs.append(
            Submission(
                method=method,
                slug=slugify(f"{method}-{backbone}"),
                authors=list(PAPER_AUTHORS),
                paper_url=PAPER_URL,
                backbone=backbone,
                benchmark=bench,
                benchmark_version=version,
                package_version=None,
                num_runs=1 if supervised else 3,
                metrics={k: MetricStat(mean=_pct(r.value_pct)) for k, r in chosen.items()},
                status="reported",
                supervised=supervised,
                source=source,
                date=PAPER_DATE,
                notes=notes,
            )
        )
    return subs


def write_seed_submissions(root: str | os.PathLike | None = None) -> list[Path]:
    """Write (or refresh) the paper's seed entries under ``<root>/submissions``."""
    root = Path(root) if root is not None else default_root()
    out = []
    for sub in paper_seed_submissions():
        path = submission_path(root, sub.benchmark, sub.slug)
        if path.exists():
            try:
                if load_submission(path) == sub:
                    out.append(path)
                    continue
            except InvalidSubmissionError:
                pass
        out.append(write_submission(sub, root, overwrite=True))
    return out
