"""``in21k-bench evaluate PREDS --benchmark NAME | --labels Y.npy | --features DIR``: score a prediction
file (see ``docs/evaluation.md``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import InvalidInputError
from ..extras import require
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
    from ..evaluate import evaluate

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
        for p in write_plots(result, plots):
            print(f"wrote {p}", file=sys.stderr)
    if json_out:
        sys.stdout.write(json.dumps(result.to_json_dict(), indent=2) + "\n")
    else:
        print(result.table())


def write_plots(result, out_dir: Path) -> list[Path]:
    """Reliability diagram (when confidences were given) and per-class accuracy histogram, as PNGs
    written atomically. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ..fileio import atomic_path

    out_dir = Path(out_dir)
    written: list[Path] = []
    title = f"{result.benchmark} {result.version or ''}".strip()
    if result.reliability is not None:
        rel = result.reliability
        edges = np.asarray(rel["edges"])
        centers = (edges[:-1] + edges[1:]) / 2
        acc = np.array([np.nan if a is None else a for a in rel["accuracy"]])
        conf = np.array([np.nan if c is None else c for c in rel["confidence"]])
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        width = edges[1] - edges[0]
        ax.bar(centers, np.nan_to_num(acc), width=width * 0.95, color="#4c72b0", edgecolor="black", label="accuracy")
        ax.bar(
            centers,
            np.nan_to_num(conf - acc),
            bottom=np.nan_to_num(acc),
            width=width * 0.95,
            color="#dd8452",
            alpha=0.5,
            label="gap to confidence",
        )
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max probability)")
        ax.set_ylabel("accuracy after Hungarian map")
        ax.set_title(f"{title}: ECE {result.ece:.4f}" if result.ece is not None else title)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        dest = out_dir / "reliability.png"
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        written.append(dest)
    else:
        print("no probabilities given: reliability diagram skipped", file=sys.stderr)
    if result.per_class_acc is not None:
        pca = np.asarray(result.per_class_acc, dtype=np.float64)
        pca = pca[np.isfinite(pca)]
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.hist(pca, bins=np.linspace(0, 1, 21), color="#55a868", edgecolor="black")
        ax.set_xlabel("per-class accuracy (Hungarian map)")
        ax.set_ylabel("number of classes")
        ax.set_title(f"{title}: {len(pca):,} classes, mean {pca.mean():.3f}" if len(pca) else title)
        fig.tight_layout()
        dest = out_dir / "per_class_accuracy.png"
        with atomic_path(dest) as tmp:
            fig.savefig(tmp, dpi=120, format="png")
        plt.close(fig)
        written.append(dest)
    return written
