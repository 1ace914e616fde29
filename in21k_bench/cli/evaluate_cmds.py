"""``in21k-bench evaluate PREDS --benchmark NAME | --labels Y.npy | --features DIR``: score a prediction
file (see ``docs/evaluation.md``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInputError
from ..runtime.extras import require
from ._apps import app


@app.command("evaluate")
def evaluate_cmd(
    preds: Path = typer.Argument(
        ...,
        help="Predictions: .npy (N,) top-1 / (N, k) ranked / (N, K) probabilities, .parquet/.csv with sample_id, or a "
        "folder with top1.npy / top5.npy / probs.npy.",
    ),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", "-b", help="Benchmark name, e.g. in21k, real1k."),
    labels: Optional[Path] = typer.Option(
        None,
        "--labels",
        help="Score against your own labels: a .npy of int class ids, one per prediction row (no benchmark needed).",
    ),
    features: Optional[Path] = typer.Option(
        None,
        "--features",
        help="Score against the labels stored in a feature store's val split (features directory or store).",
    ),
    version: Optional[str] = typer.Option(
        None, "--version", help="Manifest version (default: latest; with --benchmark)."
    ),
    num_clusters: Optional[int] = typer.Option(
        None,
        "--num-clusters",
        "-k",
        help="K: cluster ids must be < K (default: probability columns, else max(C, largest id + 1)).",
    ),
    val_ids: Optional[Path] = typer.Option(
        None,
        "--val-ids",
        help="Canonical val sample ids (parquet/csv with sample_id) for id-keyed tables on IN-21K benchmarks or with "
        "--labels.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    plots: Optional[Path] = typer.Option(
        None, "--plots", help="Write reliability.png (with probabilities) and per_class_accuracy.png into this folder."
    ),
) -> None:
    """Score predictions on a benchmark (--benchmark), against a labels file (--labels) or a feature
    store's val labels (--features): Hungarian ACC, top-1/top-5 -> 1/L, NMI, ARI, ECE, majority-vote ACC,
    and for K > C the over-clustering ACC of TEMI's evaluation code."""
    if plots is not None:
        require("matplotlib", what="evaluate --plots")
    from ..evaluation.evaluator import evaluate

    if version is not None and benchmark is None:
        raise InvalidInputError(
            f"evaluate: expected --version only with --benchmark, found --version {version} without it"
        )
    result = evaluate(
        preds,
        benchmark,
        version=version,
        num_clusters=num_clusters,
        labels=labels,
        features=features,
        sample_ids=val_ids,
    )
    if plots is not None:
        from ..evaluation.plots import write_evaluation_plots

        for p in write_evaluation_plots(result, plots):
            print(f"wrote {p}", file=sys.stderr)
    if json_out:
        sys.stdout.write(json.dumps(result.to_json_dict(), indent=2) + "\n")
    else:
        print(result.table())
