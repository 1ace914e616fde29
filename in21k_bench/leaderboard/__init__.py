"""Leaderboard: validated submission records, submission from prediction files, checks, rendering.

A submission is one JSON file ``leaderboard/submissions/<benchmark>/<slug>.json`` validated by
:class:`Submission` (pydantic, unknown keys rejected). Two kinds exist:

``verified``
    produced by :func:`submit` (``in21k-bench submit PREDS...``): every run's prediction file is
    scored by :func:`in21k_bench.evaluation.evaluator.evaluate`, its sha256 is recorded, and each metric is
    stored as the per-run values plus their mean and sample standard deviation (``ddof=1``).
    Metrics are never typed by hand.
``reported``
    published numbers without prediction files (e.g. the paper's tables, see
    :func:`paper_seed_submissions`); ``source`` must cite where they come from.

Units: every accuracy (``acc``, ``top1_L``, ``top5_1``, ``top5_L``, ``majority_acc``) and ``ece`` is
stored as a **fraction in [0, 1]**, exactly as the evaluator reports it; NMI is in [0, 1] and ARI
in [-1, 1]. Published numbers given in % are divided by 100 when recorded. The README and the web
page display accuracies in %.

Modules, by capability: :mod:`.schema` (records, metric names), :mod:`.store` (files),
:mod:`.scores` and :mod:`.submitter` (submit), :mod:`.checks` (with :mod:`.run_files`: where prediction files are,
fetching remote ones), :mod:`.render` (README and page),
:mod:`.seed` (the paper's numbers, from ``in21k_bench/leaderboard/assets/paper_reported.csv``).
"""

from __future__ import annotations

from ..errors import InvalidSubmissionError, LeaderboardCheckError
from . import scores
from .checks import (
    CheckReport,
    check_leaderboard,
    check_submission,
    downgrade_unverifiable,
    resolve_prediction,
    run_checks,
)
from .render import benchmark_order, build, page_data, render_html, render_markdown
from .schema import (
    MAX_PREDICTION_BYTES,
    MAX_SUBMISSION_BYTES,
    METRIC_TOL,
    METRICS,
    PERCENT_METRICS,
    RANK_METRIC,
    SCHEMA_VERSION,
    MetricStat,
    Submission,
    slugify,
)
from .seed import (
    PAPER_AUTHORS,
    PAPER_CITATION,
    PAPER_DATE,
    PAPER_URL,
    paper_seed_submissions,
    read_reported,
    write_seed_submissions,
)
from .store import (
    LEADERBOARD_ENV,
    default_root,
    load_submission,
    load_submissions,
    submission_files,
    submission_path,
    write_submission,
)
from .submitter import make_submission, submit

__all__ = [
    "METRICS",
    "MetricStat",
    "Submission",
    "InvalidSubmissionError",
    "LeaderboardCheckError",
    "default_root",
    "slugify",
    "submission_path",
    "submission_files",
    "load_submission",
    "load_submissions",
    "make_submission",
    "submit",
    "write_submission",
    "check_submission",
    "check_leaderboard",
    "run_checks",
    "CheckReport",
    "downgrade_unverifiable",
    "render_markdown",
    "render_html",
    "page_data",
    "build",
    "benchmark_order",
    "paper_seed_submissions",
    "read_reported",
    "write_seed_submissions",
    "MAX_PREDICTION_BYTES",
    "MAX_SUBMISSION_BYTES",
    "METRIC_TOL",
    "PERCENT_METRICS",
    "RANK_METRIC",
    "SCHEMA_VERSION",
    "PAPER_AUTHORS",
    "PAPER_CITATION",
    "PAPER_DATE",
    "PAPER_URL",
    "LEADERBOARD_ENV",
    "resolve_prediction",
    "scores",
]
