"""``in21k-bench demo``: the main job on the embedded default (no download)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from ..runtime.extras import require
from ._apps import app


@app.command("demo")
def demo_cmd(
    preset: str = typer.Option(
        "fine",
        help="fine: the 155 fine dog labels (well separated, curved classes); coarse: the same simulated rows under "
        "coarse-d2's 35 coarse labels.",
    ),
    dataset: str = typer.Option(
        "simulated", help="simulated (SYNTHETIC IN-21K-like features) or digits (scikit-learn's real 8x8 digits)."
    ),
    benchmark: str = typer.Option(
        "",
        help="Benchmark whose classes, sizes, labels and tree the simulated features follow (default: the preset's).",
    ),
    subtree: str = typer.Option(
        "n02084071", help="Keep only classes under this MIIL node (default: dog); '' for the whole benchmark."
    ),
    scale: float = typer.Option(0.1, help="Fraction of each class's (estimated) train count to simulate."),
    val_scale: float = typer.Option(0.4, help="Fraction of the 50 val images per class to simulate."),
    dim: int = typer.Option(64, help="Feature dimension of the simulated features."),
    separation: float = typer.Option(
        4.0, help="Class-shape model: divides the isotropic class thickness (1 = the simulator's default)."
    ),
    curve: float = typer.Option(
        1.5, help="Class-shape model: bend of a class's long direction, radians per std (0 = straight)."
    ),
    rank: int = typer.Option(1, help="Class-shape model: number of long directions per class (simulator default 4)."),
    methods: str = typer.Option("kmeans,temi,scanv2", help="Comma-separated methods to run."),
    steps: int = typer.Option(
        2000, help="TEMI optimizer steps (fit's minimum; SCANv2: the same number of pairs at its batch 512)."
    ),
    heads: int = typer.Option(2, help="Clustering heads for TEMI / SCANv2 (fit's default here: 8; paper: 32)."),
    knn: int = typer.Option(
        None, help="Neighbours per sample for TEMI / SCANv2 pairs (default: fit's, clamp(N / 3C, 5, 50))."
    ),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    out: Path = typer.Option(
        None,
        help="Working folder; completed steps are reused (default runs/demo, runs/demo-coarse for --preset coarse).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable results."),
) -> None:
    """Features -> kNN -> k-means / TEMI / SCANv2 -> evaluation on SIMULATED IN-21K features; prints a results table."""
    require("torch", "faiss", what="demo")
    from ..demo import DemoConfig, format_table, run_demo

    cfg = DemoConfig(
        dataset=dataset,
        preset=preset,
        benchmark=benchmark or None,
        subtree=subtree or None,
        scale=scale,
        val_scale=val_scale,
        dim=dim,
        shape={"rank": rank, "separation": separation, "curve": curve},
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()),
        steps=steps,
        heads=heads,
        knn=knn,
        seed=seed,
        device=device,
        out=out
        if out is not None
        else Path(
            "runs/demo"
            if dataset == "simulated" and preset == "fine"
            else f"runs/demo-{preset if dataset == 'simulated' else dataset}"
        ),
    )
    rows = run_demo(cfg)
    synthetic = dataset != "digits"
    if json_out:
        info = {"dataset": dataset, "synthetic": synthetic, "results": rows}
        if synthetic:
            info.update(
                preset=preset,
                benchmark=cfg.benchmark,
                subtree=cfg.subtree,
                shape=cfg.shape,
                note="SYNTHETIC features (in21k_bench.features.simulate); not results on real images",
            )
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return
    if not synthetic:
        title = "in21k-bench demo: digits (real 8x8 images, pixels as features)"
    else:
        where = f", subtree {cfg.subtree}" if cfg.subtree else ""
        shape = ", ".join(f"{k} {v:g}" for k, v in cfg.shape.items())
        title = (
            f"in21k-bench demo --preset {preset}: {cfg.benchmark} labels{where} -- SIMULATED features "
            f"(scale {scale}; class shape: {shape}), not real images"
        )
    print(format_table(rows, title, synthetic=synthetic))
