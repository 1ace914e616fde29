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
    preds: List[Path] = typer.Argument(..., help="One prediction file per run (seed); each is scored by the evaluator."),
    benchmark: str = typer.Option(..., "--benchmark", "-b", help="Benchmark name, e.g. imbalanced-2k."),
    method: str = typer.Option(..., "--method", "-m", help="Method name as displayed, e.g. 'TEMI'."),
    version: Optional[str] = typer.Option(None, help="Benchmark version (default: latest)."),
    backbone: str = typer.Option("unspecified", help="Feature backbone, e.g. 'iBOT ViT-L (IN-21K)'."),
    slug: Optional[str] = typer.Option(None, help="File name stem (default: slug of method + backbone)."),
    authors: List[str] = typer.Option([], "--authors", "--author", help="Author (repeat for several, or comma-separated)."),
    paper_url: Optional[str] = typer.Option(None, help="Paper URL (http/https)."),
    code_url: Optional[str] = typer.Option(None, help="Code URL (http/https)."),
    notes: Optional[str] = typer.Option(None, help="Free-text notes shown with the entry."),
    supervised: bool = typer.Option(False, "--supervised", help="Mark as a supervised upper bound (e.g. linear probe)."),
    root: Optional[Path] = typer.Option(None, help=_ROOT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing submission with the same slug."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate and print the record without writing it."),
    json_out: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Evaluate each run's predictions and write a verified leaderboard entry (mean and std over runs)."""
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
    )
    print(("would write " if dry_run else "wrote ") + str(path), file=sys.stderr)
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
    no_reevaluate: bool = typer.Option(False, "--no-reevaluate", help="Skip re-evaluating prediction files that are present."),
    no_rendered: bool = typer.Option(False, "--no-rendered", help="Do not require README.md / site/index.html to be up to date."),
    json_out: bool = typer.Option(False, "--json", help="Print {ok, problems} as JSON."),
) -> None:
    """Check every submission (schema, registry, duplicates, sizes, re-evaluation, rendering). Exit 2 on problems."""
    from ..leaderboard import check_leaderboard, submission_files

    r = _root(root)
    problems = check_leaderboard(r, reevaluate=not no_reevaluate, check_rendered=not no_rendered)
    if json_out:
        sys.stdout.write(json.dumps({"ok": not problems, "problems": problems}, indent=2) + "\n")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        raise typer.Exit(2)
    if not json_out:
        print(f"ok: {len(submission_files(r))} submissions in {r}")


@leaderboard_app.command("seed")
def seed_cmd(root: Optional[Path] = typer.Option(None, help=_ROOT_HELP)) -> None:
    """(Re)write the paper's published results as `reported` entries (idempotent)."""
    from ..leaderboard import write_seed_submissions

    paths = write_seed_submissions(_root(root))
    print(f"{len(paths)} seed submissions in {_root(root) / 'submissions'}")
