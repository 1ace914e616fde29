"""``in21k-bench submit`` and ``in21k-bench leaderboard build | check | seed``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ._apps import app, leaderboard_app

_ROOT_HELP = "Leaderboard folder (default: $IN21K_LEADERBOARD, ./leaderboard, or the checkout's leaderboard/)."


def _root(root: Optional[Path]) -> Path:
    from ..leaderboard import default_root

    return root if root is not None else default_root()


@app.command("submit")
def submit_cmd(
    preds: List[Path] = typer.Argument(
        ..., help="One prediction file per run (seed); each is scored by the evaluator."
    ),
    benchmark: str = typer.Option(..., "--benchmark", "-b", help="Benchmark name, e.g. imbalanced-2k."),
    method: str = typer.Option(..., "--method", "-m", help="Method name as displayed, e.g. 'TEMI'."),
    version: Optional[str] = typer.Option(None, help="Benchmark version (default: latest)."),
    backbone: str = typer.Option("unspecified", help="Feature backbone, e.g. 'iBOT ViT-L (IN-21K)'."),
    slug: Optional[str] = typer.Option(None, help="File name stem (default: slug of method + backbone)."),
    authors: List[str] = typer.Option(
        [], "--authors", "--author", help="Author (repeat for several, or comma-separated)."
    ),
    paper_url: Optional[str] = typer.Option(None, help="Paper URL (http/https)."),
    code_url: Optional[str] = typer.Option(None, help="Code URL (http/https)."),
    notes: Optional[str] = typer.Option(None, help="Free-text notes shown with the entry."),
    supervised: bool = typer.Option(
        False, "--supervised", help="Mark as a supervised upper bound (e.g. linear probe)."
    ),
    root: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing submission with the same slug."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate and print the record without writing it."),
    copy_predictions: bool = typer.Option(
        False,
        "--copy-predictions",
        help="Copy the prediction files beside the entry (submissions/<benchmark>/<slug>/) so `leaderboard check` can "
        "re-score them.",
    ),
    prediction_urls: List[str] = typer.Option(
        [],
        "--predictions-url",
        metavar="URL",
        help="Where each run's file is published (repeat once per run, in order): https://... or "
        "hf://datasets/ORG/NAME@REV/PATH; `check --fetch` downloads them.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Evaluate each run's predictions and write a verified leaderboard entry (mean and std over runs).

    A verified entry must let `leaderboard check` re-score every run: commit the files (--copy-predictions,
    or paths inside the repository) or publish them (--predictions-url)."""
    from ..leaderboard import METRICS, PERCENT_METRICS, submit

    names = [a.strip() for item in authors for a in item.split(",") if a.strip()]
    sub, path = submit(
        preds,
        benchmark=benchmark,
        method=method,
        version=version,
        backbone=backbone,
        slug=slug,
        authors=names,
        paper_url=paper_url,
        code_url=code_url,
        notes=notes,
        supervised=supervised,
        root=_root(root),
        overwrite=overwrite,
        dry_run=dry_run,
        copy_predictions=copy_predictions,
        prediction_urls=prediction_urls,
    )
    print(("would write " if dry_run else "wrote ") + str(path), file=sys.stderr)
    if not copy_predictions and not prediction_urls:
        repo = _root(root).resolve().parent
        outside = [p for p in preds if not Path(p).resolve().is_relative_to(repo)]
        if outside:
            print(
                f"note: {len(outside)} prediction file(s) are outside {repo}; `leaderboard check` elsewhere cannot "
                "re-score them and will refuse the entry: use --copy-predictions or --predictions-url",
                file=sys.stderr,
            )
    from ..evaluation.provenance import missing_fields

    missing = missing_fields(sub.provenance.model_dump() if sub.provenance is not None else None)
    if missing:
        print(
            f"note: provenance incomplete (missing {', '.join(missing)}); `leaderboard check` refuses it as verified: "
            "submit prediction folders written by `fit` on a store extracted with a recorded backbone",
            file=sys.stderr,
        )
    if json_out:
        sys.stdout.write(json.dumps(sub.to_json_dict(), indent=2, sort_keys=True) + "\n")
        return
    print(f"{sub.method} / {sub.backbone} on {sub.benchmark} {sub.benchmark_version}: {sub.num_runs} run(s)")
    for name, stat in sub.metrics.items():
        scale, unit = (100.0, " %") if name in PERCENT_METRICS else (1.0, "")
        std = f" ± {stat.std * scale:.4f}" if stat.std is not None else ""
        print(f"  {METRICS[name]:<16} {stat.mean * scale:.4f}{std}{unit}")


@leaderboard_app.command("build")
def build_cmd(
    root: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
) -> None:
    """Validate every submission and write README.md, site/index.html and submission.schema.json."""
    from ..leaderboard import build, load_submissions

    r = _root(root)
    written = build(r)
    n = len(load_submissions(r))
    if json_out:
        sys.stdout.write(json.dumps({"submissions": n, "written": [str(p) for p in written]}, indent=2) + "\n")
        return
    for p in written:
        print(p)
    print(f"{n} submissions rendered", file=sys.stderr)


@leaderboard_app.command("check")
def check_cmd(
    root: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
    no_reevaluate: bool = typer.Option(
        False, "--no-reevaluate", help="Skip re-scoring prediction files (their presence is still required)."
    ),
    no_rendered: bool = typer.Option(
        False, "--no-rendered", help="Do not require README.md / site/index.html to be up to date."
    ),
    fetch: bool = typer.Option(
        False,
        "--fetch",
        help="Download remote prediction files (URL / hf:// path), check their sha256 and re-score them.",
    ),
    downgrade: bool = typer.Option(
        False,
        "--downgrade",
        help="First mark 'unchecked' every verified entry whose prediction files are missing (rewrites them; rebuild "
        "the page after).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print {ok, problems, counts} as JSON."),
) -> None:
    """Check every submission (schema, registry, duplicates, sizes, re-scoring, rendering). Exit 2 on problems.

    Prints how many verified entries were re-scored from their prediction files."""
    from ..leaderboard import downgrade_unverifiable, run_checks

    r = _root(root)
    if downgrade:
        for p in downgrade_unverifiable(r):
            print(f"downgraded to unchecked: {p}", file=sys.stderr)
    report = run_checks(r, reevaluate=not no_reevaluate, check_rendered=not no_rendered, fetch=fetch)
    if json_out:
        counts = {
            k: getattr(report, k)
            for k in ("submissions", "verified", "rescored", "rescored_runs", "remote_not_fetched")
        }
        sys.stdout.write(json.dumps({"ok": report.ok, "problems": report.problems, **counts}, indent=2) + "\n")
    for p in report.problems:
        print(f"error: {p}", file=sys.stderr)
    if report.problems:
        if not json_out:
            print(f"failed: {len(report.problems)} problem(s); {report.summary()} in {r}")
        raise typer.Exit(2)
    if not json_out:
        print(f"ok: {report.summary()} in {r}")


@leaderboard_app.command("seed")
def seed_cmd(root: Optional[Path] = typer.Option(None, help=_ROOT_HELP)) -> None:
    """(Re)write the paper's published results as `reported` entries (idempotent)."""
    from ..leaderboard import write_seed_submissions

    paths = write_seed_submissions(_root(root))
    print(f"{len(paths)} seed submissions in {_root(root) / 'submissions'}")
