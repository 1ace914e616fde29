"""``in21k-bench demo``: the main job on the embedded default (no download)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ._apps import app


@app.command("demo")
def demo_cmd(
    dataset: str = typer.Option("simulated", help="simulated (synthetic IN-21K features for --benchmark) or digits (scikit-learn's real 8x8 digits)."),
    benchmark: str = typer.Option("in21k", help="Benchmark whose classes, sizes and tree the simulated features follow."),
    subtree: str = typer.Option("n02084071", help="Keep only classes under this MIIL node (default: dog, 155 classes); '' for the whole benchmark."),
    scale: float = typer.Option(0.1, help="Fraction of each class's (estimated) train count to simulate."),
    val_scale: float = typer.Option(0.4, help="Fraction of the 50 val images per class to simulate."),
    dim: int = typer.Option(64, help="Feature dimension of the simulated features."),
    methods: str = typer.Option("kmeans,temi,scanv2", help="Comma-separated methods to run."),
    epochs: int = typer.Option(12, help="Training epochs for TEMI / SCANv2 (paper: 25-50)."),
    heads: int = typer.Option(4, help="Clustering heads for TEMI / SCANv2 (paper: 32)."),
    knn: int = typer.Option(5, help="Neighbours per sample for TEMI / SCANv2 pairs."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    out: Path = typer.Option(Path("runs/demo"), help="Working folder; completed steps are reused."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable results."),
) -> None:
    """Features -> kNN -> k-means / TEMI / SCANv2 -> evaluation on simulated IN-21K features; prints a results table."""
    from ..demo import DemoConfig, format_table, run_demo

    cfg = DemoConfig(
        dataset=dataset,
        benchmark=benchmark,
        subtree=subtree or None,
        scale=scale,
        val_scale=val_scale,
        dim=dim,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        epochs=epochs,
        heads=heads,
        knn=knn,
        seed=seed,
        device=device,
        out=out,
    )
    rows = run_demo(cfg)
    if json_out:
        sys.stdout.write(json.dumps({"dataset": dataset, "benchmark": benchmark if dataset != "digits" else None, "results": rows}, indent=2) + "\n")
        return
    if dataset == "digits":
        title = "in21k-bench demo: digits (real 8x8 images, pixels as features)"
    else:
        where = f", subtree {subtree}" if subtree else ""
        title = f"in21k-bench demo: {benchmark}{where} -- SIMULATED features (scale {scale}), not real images"
    print(format_table(rows, title))
