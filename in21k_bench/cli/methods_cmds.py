"""``in21k-bench fit temi|scanv2`` (self-distillation clustering) and ``in21k-bench probe`` (linear probe
+ separability diagnostics).

Multi-GPU: ``torchrun --nproc_per_node=8 --no-python in21k-bench fit temi ...`` (every rank runs the
same command; see docs/methods.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..runtime.extras import require
from ._apps import app, fit_app
from ._common import DEVICE_HELP, open_features_and_benchmark


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _fit(method: str, features: Path, out: Path, json_out: bool, **kw) -> None:
    require("torch", "faiss", what=f"fit {method}")
    from ..methods.fit import fit_features

    run = fit_features(method, features, out, **kw)
    if not run.dist.is_main:
        return
    summary = run.summary()
    if json_out:
        _print_json(summary)
    else:
        res = run.result
        print(
            f"{method}: best head {res.best_head} (mean loss {summary['best_loss']:.4f} over the last epoch; "
            f"{summary['total_steps']:,} steps, {run.recipe.regime} settings), "
            f"{summary['num_val']:,} val predictions -> {out}/top1.npy, top5.npy"
            + (", probs.npy" if res.probs is not None else "")
        )


def _make_fit_command(method: str, batch_default: str):
    def command(
        features: Path = typer.Option(..., "--features", help="Features directory with train/ and val/."),
        out: Path = typer.Option(
            ..., "--out", help="Output folder: top1.npy, top5.npy, probs.npy, fit.json, checkpoint.pt."
        ),
        benchmark: Optional[str] = typer.Option(
            None,
            "--benchmark",
            help="Benchmark (sets C; at full size the paper's settings: 50 epochs on ImageNet-1K, 25 on IN-21K).",
        ),
        num_clusters: Optional[int] = typer.Option(
            None, "--num-clusters", help="C (default: the benchmark's number of classes)."
        ),
        neighbors: Optional[Path] = typer.Option(
            None, "--neighbors", help="kNN .npy (N, >= k) (default: <features>/train/knn-k<k>.npy, mined if absent)."
        ),
        epochs: Optional[int] = typer.Option(
            None,
            "--epochs",
            min=1,
            help="Default: the paper's (50 on ImageNet-1K, 25 otherwise), raised on small sets to give >= 2,000 steps.",
        ),
        batch_size: Optional[int] = typer.Option(
            None, "--batch-size", min=1, help=f"Global batch (paper {batch_default}; on small sets <= N/16)."
        ),
        heads: Optional[int] = typer.Option(
            None, "--heads", min=1, help="Number of clustering heads (default 32, the paper's)."
        ),
        k: Optional[int] = typer.Option(
            None,
            "--k",
            min=1,
            help="Partners are drawn from the top-k neighbours (paper/TEMI 50; on small sets N / 3C, "
            "clamped to 5..50).",
        ),
        lr: Optional[float] = typer.Option(
            None,
            "--lr",
            min=0.0,
            help="Base learning rate for batch 256, scaled by batch/256 (paper 1e-4; small sets: peak 1e-3).",
        ),
        lr_schedule: Optional[str] = typer.Option(
            None, "--lr-schedule", help="After warm-up: cosine (paper) or constant (small sets; official TEMI README)."
        ),
        freeze_last_layer: Optional[float] = typer.Option(
            None,
            "--freeze-last-layer",
            min=0.0,
            help="Epochs with the cluster layer frozen (paper 0 here; official TEMI 1; small sets 1).",
        ),
        inputs: Optional[str] = typer.Option(
            None,
            "--inputs",
            help="Features into the heads: l2 (L2-normalised, default) or raw (as stored, official TEMI).",
        ),
        seed: Optional[int] = typer.Option(None, "--seed", help="Random seed of the heads and pairs (default 0)."),
        momentum_final: Optional[float] = typer.Option(
            None, "--momentum-final", help="Cosine-schedule the teacher EMA momentum from 0.996 to this (e.g. 1.0)."
        ),
        save_probs: Optional[bool] = typer.Option(
            None, "--probs/--no-probs", help="Write probs.npy (default: when <= 4 GB)."
        ),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from <out>/checkpoint.pt if present."),
        progress: bool = typer.Option(
            True, "--progress/--no-progress", help="Progress bar over the steps of each epoch (stderr)."
        ),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        _fit(
            method,
            features,
            out,
            json_out,
            benchmark=benchmark,
            num_clusters=num_clusters,
            neighbors=neighbors,
            device=device,
            resume=resume,
            save_probs=save_probs,
            progress=None if progress else False,
            epochs=epochs,
            batch_size=batch_size,
            num_heads=heads,
            knn=k,
            base_lr=lr,
            lr_schedule=lr_schedule,
            freeze_last_layer_epochs=freeze_last_layer,
            input_norm=inputs,
            seed=seed,
            teacher_momentum_final=momentum_final,
        )

    return command


fit_app.command(
    "temi",
    help="TEMI clustering heads on frozen features (resumable; multi-GPU under torchrun); "
    "writes predictions of the best head for `evaluate`.",
)(_make_fit_command("temi", "512"))
fit_app.command(
    "scanv2",
    help="SCANv2 clustering heads on frozen features (resumable; multi-GPU under torchrun); "
    "writes predictions of the best head for `evaluate`.",
)(_make_fit_command("scanv2", "4096"))


@app.command("probe")
def probe_cmd(
    features: Path = typer.Option(
        ..., "--features", help="Features directory with train/ and val/ (labels from the store or --benchmark)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder: class_scores.parquet (wnid, class_index, score) and probe.json."
    ),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", help="Benchmark giving labels, C and wnids (default: the store's labels)."
    ),
    epochs: int = typer.Option(100, "--epochs", min=1),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    diagnostics: bool = typer.Option(
        True, "--diagnostics/--no-diagnostics", help="Also compute silhouette, Davies-Bouldin and alignment on val."
    ),
    sample_size: int = typer.Option(20000, "--sample-size", min=2, help="Rows for silhouette / Davies-Bouldin."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Linear probe on frozen features (SGD, lr x weight-decay grid), best val accuracy and per-class scores."""
    require("torch", what="probe")
    import numpy as np

    from ..errors import InvalidInputError
    from ..fileio import write_json
    from ..methods.probe import linear_probe, write_class_scores

    train, val, bench = open_features_and_benchmark(features, benchmark)
    if bench is not None:  # the stores are the benchmark's view: their labels are the benchmark's
        ytr = train.labels if train.labels is not None else bench.train_labels()
        yva = val.labels if val.labels is not None else bench.val_labels()
        c = bench.num_classes
        classes = bench.classes.sort_values("label")
        wnids = classes["wnid"].astype(str).tolist()
    else:
        ytr, yva = train.labels, val.labels
        if ytr is None or yva is None:
            raise InvalidInputError("probe: the feature stores carry no labels; pass --benchmark")
        c = int(max(ytr.max(), yva.max()) + 1)
        wnids = [str(i) for i in range(c)]
    if len(ytr) != train.num_rows or len(yva) != val.num_rows:
        raise InvalidInputError(
            f"probe: expected {train.num_rows:,} train / {val.num_rows:,} val labels, "
            f"found {len(ytr):,} / {len(yva):,} (features and benchmark do not match)"
        )
    res = linear_probe(
        train, np.asarray(ytr), val, np.asarray(yva), c, epochs=epochs, batch_size=batch_size, seed=seed, device=device
    )
    class_index = np.arange(c)
    if bench is not None:
        try:
            idx = {w: i for i, w in enumerate(bench.taxonomy.wnids)}
            class_index = np.array([idx.get(w, -1) for w in wnids])
        except AttributeError:
            pass
    write_class_scores(out / "class_scores.parquet", res.per_class_accuracy, wnids, class_index)
    record = {
        "features": str(features),
        "benchmark": bench.name if bench is not None else None,
        "num_classes": c,
        "probe": res.to_dict(),
        "files": ["class_scores.parquet", "probe.json"],
    }
    if diagnostics:
        from ..methods.diagnostics import separability

        record["diagnostics"] = separability(
            val.to_array(normalize=True), np.asarray(yva), sample_size=sample_size, seed=seed
        )
    write_json(out / "probe.json", record)
    if json_out:
        _print_json(record)
    else:
        print(
            f"probe: best val accuracy {res.best_accuracy:.4f} (lr {res.best_lr:g}, weight decay "
            f"{res.best_weight_decay:g}, {epochs} epochs) -> {out}/class_scores.parquet"
        )
        if diagnostics:
            d = record["diagnostics"]
            print(
                f"separability (val): silhouette {d['silhouette']:.4f}, Davies-Bouldin {d['davies_bouldin']:.4f}, "
                f"alignment {d['alignment']:.4f} over {d['true_positive_pairs']:,} true-positive 1-NN pairs"
            )
