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

from ._apps import app, fit_app

from ._common import DEVICE_HELP, open_features_and_benchmark


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _fit(method: str, features: Path, benchmark: Optional[str], out: Path, num_clusters: Optional[int],
         neighbors: Optional[Path], epochs: Optional[int], batch_size: Optional[int], heads: int, k: int,
         lr: float, seed: int, momentum_final: Optional[float], save_probs: Optional[bool], resume: bool,
         device: str, json_out: bool) -> None:
    from ..errors import InvalidInputError
    from ..methods.train import fit, init_distributed, paper_defaults

    dist = init_distributed(device)
    train, val, bench = open_features_and_benchmark(features, benchmark)
    name = bench.name if bench is not None else (train.meta.get("benchmark") or "")
    if num_clusters is None:
        num_clusters = bench.num_classes if bench is not None else train.meta.get("num_classes")
        if num_clusters is None:
            raise InvalidInputError(f"fit {method}: expected --num-clusters or --benchmark (the store records no number of classes), found neither")
    if bench is not None and val.num_rows != bench.num_val and dist.rank == 0:
        print(f"fit {method}: warning: val has {val.num_rows:,} rows, benchmark {bench.name} has {bench.num_val:,}; "
              "`evaluate --benchmark` will reject the predictions", file=sys.stderr)
    cfg = paper_defaults(method, name, int(num_clusters))
    cfg.num_heads, cfg.knn, cfg.base_lr, cfg.seed = heads, k, lr, seed
    cfg.teacher_momentum_final = momentum_final
    if epochs is not None:
        cfg.epochs = epochs
    if batch_size is not None:
        cfg.batch_size = batch_size
    cfg.__post_init__()
    if neighbors is None:
        from ..methods.knn import default_knn_path

        neighbors = default_knn_path(train, k)
    if neighbors.is_file():
        import numpy as np

        nbrs = np.load(neighbors, mmap_mode="r", allow_pickle=False)
    else:
        if dist.enabled:
            raise InvalidInputError(f"fit {method}: neighbour file {neighbors} not found; mine it first with "
                                    f"`in21k-bench knn --features {features} --k {k}` (not inside torchrun)")
        from ..methods.knn import mine_knn

        print(f"fit {method}: mining {k} neighbours per train row -> {neighbors}", file=sys.stderr)
        nbrs = mine_knn(train, k, neighbors, device=device)
    res = fit(train, nbrs, cfg, val_features=val, out_dir=out, resume=resume, device=device, save_probs=save_probs)
    if dist.rank != 0:
        return
    summary = {
        "method": method, "out": str(out), "best_head": res.best_head, "best_loss": float(res.head_losses[res.best_head]),
        "epochs": cfg.epochs, "batch_size": cfg.batch_size, "num_heads": cfg.num_heads, "knn": cfg.knn,
        "num_clusters": cfg.num_clusters, "benchmark": name or None, "world_size": dist.world_size,
        "resumed_from_epoch": res.resumed_from_epoch, "num_val": int(len(res.top1)),
        "files": ["top1.npy", "top5.npy"] + (["probs.npy"] if res.probs is not None else []) + ["fit.json", "checkpoint.pt"],
    }
    if json_out:
        _print_json(summary)
    else:
        print(f"{method}: best head {res.best_head} (mean loss {summary['best_loss']:.4f} over the last epoch), "
              f"{summary['num_val']:,} val predictions -> {out}/top1.npy, top5.npy"
              + (", probs.npy" if res.probs is not None else ""))


def _make_fit_command(method: str, batch_default: str):
    def command(
        features: Path = typer.Option(..., "--features", help="Features directory with train/ and val/."),
        out: Path = typer.Option(..., "--out", help="Output folder: top1.npy, top5.npy, probs.npy, fit.json, checkpoint.pt."),
        benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark (sets C and the paper's epochs: 50 on ImageNet-1K, 25 on IN-21K)."),
        num_clusters: Optional[int] = typer.Option(None, "--num-clusters", help="C (default: the benchmark's number of classes)."),
        neighbors: Optional[Path] = typer.Option(None, "--neighbors", help="kNN .npy (N, >= k) (default: <features>/train/knn-k<k>.npy, mined if absent)."),
        epochs: Optional[int] = typer.Option(None, "--epochs", min=1, help="Default: 50 on ImageNet-1K benchmarks, 25 otherwise."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help=f"Global batch (default {batch_default})."),
        heads: int = typer.Option(32, "--heads", min=1, help="Number of clustering heads."),
        k: int = typer.Option(50, "--k", min=1, help="Partners are drawn from the top-k neighbours (TEMI default 50)."),
        lr: float = typer.Option(1e-4, "--lr", help="Base learning rate for batch 256 (scaled by batch/256)."),
        seed: int = typer.Option(0, "--seed"),
        momentum_final: Optional[float] = typer.Option(None, "--momentum-final", help="Cosine-schedule the teacher EMA momentum from 0.996 to this (e.g. 1.0)."),
        save_probs: Optional[bool] = typer.Option(None, "--probs/--no-probs", help="Write probs.npy (default: when <= 4 GB)."),
        resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue from <out>/checkpoint.pt if present."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        _fit(method, features, benchmark, out, num_clusters, neighbors, epochs, batch_size, heads, k, lr, seed,
             momentum_final, save_probs, resume, device, json_out)

    return command


fit_app.command("temi", help="TEMI clustering heads on frozen features (resumable; multi-GPU under torchrun); "
                "writes predictions of the best head for `evaluate`.")(_make_fit_command("temi", "512"))
fit_app.command("scanv2", help="SCANv2 clustering heads on frozen features (resumable; multi-GPU under torchrun); "
                "writes predictions of the best head for `evaluate`.")(_make_fit_command("scanv2", "4096"))


@app.command("probe")
def probe_cmd(
    features: Path = typer.Option(..., "--features", help="Features directory with train/ and val/ (labels from the store or --benchmark)."),
    out: Path = typer.Option(..., "--out", help="Output folder: class_scores.parquet (wnid, class_index, score) and probe.json."),
    benchmark: Optional[str] = typer.Option(None, "--benchmark", help="Benchmark giving labels, C and wnids (default: the store's labels)."),
    epochs: int = typer.Option(100, "--epochs", min=1),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    diagnostics: bool = typer.Option(True, "--diagnostics/--no-diagnostics", help="Also compute silhouette, Davies-Bouldin and alignment on val."),
    sample_size: int = typer.Option(20000, "--sample-size", min=2, help="Rows for silhouette / Davies-Bouldin."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Linear probe on frozen features (SGD, lr x weight-decay grid), best val accuracy and per-class scores."""
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
        raise InvalidInputError(f"probe: expected {train.num_rows:,} train / {val.num_rows:,} val labels, "
                                f"found {len(ytr):,} / {len(yva):,} (features and benchmark do not match)")
    res = linear_probe(train, np.asarray(ytr), val, np.asarray(yva), c, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    class_index = np.arange(c)
    if bench is not None:
        try:
            idx = {w: i for i, w in enumerate(bench.taxonomy.wnids)}
            class_index = np.array([idx.get(w, -1) for w in wnids])
        except AttributeError:
            pass
    write_class_scores(out / "class_scores.parquet", res.per_class_accuracy, wnids, class_index)
    record = {"features": str(features), "benchmark": bench.name if bench is not None else None, "num_classes": c,
              "probe": res.to_dict(), "files": ["class_scores.parquet", "probe.json"]}
    if diagnostics:
        from ..methods.diagnostics import separability

        record["diagnostics"] = separability(val.to_array(normalize=True), np.asarray(yva), sample_size=sample_size, seed=seed)
    write_json(out / "probe.json", record)
    if json_out:
        _print_json(record)
    else:
        print(f"probe: best val accuracy {res.best_accuracy:.4f} (lr {res.best_lr:g}, weight decay {res.best_weight_decay:g}, "
              f"{epochs} epochs) -> {out}/class_scores.parquet")
        if diagnostics:
            d = record["diagnostics"]
            print(f"separability (val): silhouette {d['silhouette']:.4f}, Davies-Bouldin {d['davies_bouldin']:.4f}, "
                  f"alignment {d['alignment']:.4f} over {d['true_positive_pairs']:,} true-positive 1-NN pairs")
