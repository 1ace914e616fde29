"""``in21k-bench features extract|simulate|digits|info``, ``in21k-bench knn`` and ``in21k-bench fit kmeans``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..runtime.extras import require
from ._apps import app, features_app, fit_app
from ._common import DEVICE_HELP, open_features_and_benchmark


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _print_kv(rows: dict) -> None:
    width = max((len(k) for k in rows), default=0)
    for k, v in rows.items():
        print(f"{k:<{width}}  {v}")


@features_app.command("extract")
def extract_cmd(
    images: Path = typer.Option(
        ...,
        "--images",
        help="Your download, layout detected: image folders (<root>/{train,val}/<wnid>/<file> or the official "
        "imagenet21k_resized/{imagenet21k_train,imagenet21k_val}/), HF parquet shards (data/<split>-*.parquet) "
        "or webdataset tars (<split>-*.tar with .cls/.json).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Features directory to write (<out>/<split>/); a partial one is resumed."
    ),
    backbone: str = typer.Option(
        ...,
        "--backbone",
        help="A registered name (in21k-bench backbones), timm:<model>, open_clip:<arch>:<tag>, "
        "open_clip:hf-hub:<org>/<repo>, torch_hub:<repo>:<entry> or ibot:<timm arch>.",
    ),
    split: List[str] = typer.Option(
        ["train", "val"], "--split", help="Split folder(s) to extract; '' = the root itself is one class-folder tree."
    ),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", help="Take the classes, order and labels from this benchmark's manifest."
    ),
    checkpoint: Optional[Path] = typer.Option(
        None, "--checkpoint", help="Local weights file instead of the library's download."
    ),
    pretrained: bool = typer.Option(
        True, "--pretrained/--random-init", help="Load pretrained weights (default) or keep random initialisation."
    ),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    workers: int = typer.Option(4, "--workers", min=0, help="DataLoader worker processes."),
    shard_rows: int = typer.Option(
        65_536,
        "--shard-rows",
        min=1,
        help="Rows per shard (the unit of resume and of work per process; use at least a few shards per process).",
    ),
    image_size: Optional[int] = typer.Option(
        None, "--image-size", min=1, help="Crop size (the resize keeps the preprocessing's resize/crop ratio)."
    ),
    preprocess: Optional[str] = typer.Option(
        None,
        "--preprocess",
        help="paper (default for registered backbones and --checkpoint) or model (the library's own "
        "configuration; default for other specs).",
    ),
    resize: Optional[int] = typer.Option(None, "--resize", min=1, help="Override: shorter side resized to this."),
    crop: Optional[int] = typer.Option(None, "--crop", min=1, help="Override: centre crop size (model input)."),
    interpolation: Optional[str] = typer.Option(None, "--interpolation", help="Override: bicubic, bilinear, ..."),
    mean: Optional[str] = typer.Option(None, "--mean", help="Override: normalisation mean 'R,G,B'."),
    std: Optional[str] = typer.Option(None, "--std", help="Override: normalisation std 'R,G,B'."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    format: Optional[str] = typer.Option(
        None, "--format", help="Force the layout of --images: folder, parquet or webdataset (default: detected)."
    ),
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Skip unreadable images and truncated shards (counted in meta.json 'skipped') instead of stopping.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Extract features of a local image folder with a timm / open_clip backbone (resumable; several
    GPUs / nodes under torchrun, see docs/scale.md)."""
    require("torch", "torchvision", "PIL", what="features extract", extra="extract")
    from ..features.extract import extract_features

    stores = extract_features(
        images,
        out,
        backbone,
        splits=split,
        benchmark=benchmark,
        checkpoint=checkpoint,
        pretrained=pretrained,
        batch_size=batch_size,
        workers=workers,
        shard_rows=shard_rows,
        device=device,
        image_size=image_size,
        preprocess=preprocess,
        resize=resize,
        crop=crop,
        interpolation=interpolation,
        mean=mean,
        std=std,
        format=format,
        skip_bad=skip_bad,
    )
    if not stores:  # a rank other than 0 under torchrun: rank 0 reports
        return
    info = {name: s.info() for name, s in stores.items()}
    if json_out:
        _print_json(info)
    else:
        for name, i in info.items():
            print(f"{name}: {i['num_rows']:,} rows x {i['dim']} ({i['backbone']}) -> {i['path']}")
            skipped = stores[name].meta.get("skipped")
            if skipped and (skipped.get("count") or skipped.get("damaged_files")):
                print(
                    f"{name}: skipped {skipped['count']:,} unreadable images, {len(skipped.get('damaged_files', []))} "
                    "damaged shards (see meta.json 'skipped')"
                )


@features_app.command("simulate")
def simulate_cmd(
    benchmark: str = typer.Option(..., "--benchmark", help="Benchmark whose classes, tree and class sizes to follow."),
    out: Path = typer.Option(..., "--out", help="Features directory to write (train/, val/)."),
    scale: float = typer.Option(0.01, "--scale", help="Train rows per class = real train count x scale."),
    val_scale: float = typer.Option(
        1.0, "--val-scale", help="Val rows per class = 50 x val-scale (1.0 matches the benchmark's val split)."
    ),
    min_train: int = typer.Option(2, "--min-train", min=1, help="Floor on train rows per class."),
    dim: int = typer.Option(128, "--dim", min=2),
    seed: int = typer.Option(0, "--seed", min=0),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write SYNTHETIC ImageNet-21K-like features for a benchmark (development / embedded default)."""
    from ..features.simulate import simulate_features

    train, val = simulate_features(
        benchmark, out, scale=scale, val_scale=val_scale, min_train=min_train, dim=dim, seed=seed
    )
    info = {"train": train.info(), "val": val.info()}
    if json_out:
        _print_json(info)
    else:
        print(
            f"synthetic features for {benchmark}: train {train.num_rows:,} x {train.dim}, val {val.num_rows:,} -> {out}"
        )


@features_app.command("digits")
def digits_cmd(
    out: Path = typer.Option(..., "--out", help="Features directory to write (train/, val/)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write scikit-learn's real digits images (8x8 pixels as features) as a features directory."""
    require("sklearn", what="features digits")
    from ..features.digits import write_digits

    train, val = write_digits(out)
    info = {"train": train.info(), "val": val.info()}
    if json_out:
        _print_json(info)
    else:
        print(f"digits: train {train.num_rows:,} x {train.dim}, val {val.num_rows:,} -> {out}")


@features_app.command("info")
def info_cmd(
    path: Path = typer.Argument(..., help="A store directory or a features directory (train/, val/)."),
    verify: bool = typer.Option(False, "--verify", help="Also check every shard's sha256."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Describe a feature store or features directory."""
    from ..errors import InvalidInputError
    from ..features.store import META, FeatureStore

    if (path / META).is_file():
        named = {"store": path}
    else:
        # a train/ or val/ folder that is there but broken is reported, not skipped
        named = {s: path / s for s in ("train", "val") if (path / s / META).is_file() or (path / s).is_dir()}
    if not named:
        raise InvalidInputError(f"features info: expected a store or a features directory at {path}, found neither")
    info = {name: FeatureStore.open(p, verify=verify).info() for name, p in named.items()}
    if json_out:
        _print_json(info)
        return
    for name, i in info.items():
        print(f"[{name}]")
        _print_kv({k: v for k, v in i.items()})


@app.command("knn")
def knn_cmd(
    features: Path = typer.Option(
        ..., "--features", help="A store, or a features directory (its train/ store is used)."
    ),
    k: int = typer.Option(50, "--k", min=1, help="Neighbours per row (self excluded)."),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", help="Mine within this benchmark's rows of a larger store (e.g. tiny on an in21k store)."
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        help="Output .npy (default: <store>/knn-k<k>.npy, or knn-k<k>-<benchmark>.npy for a benchmark's view).",
    ),
    chunk_rows: int = typer.Option(
        65_536, "--chunk-rows", min=1, help="Query rows per chunk (the unit of resume and of work per process)."
    ),
    db_rows: Optional[int] = typer.Option(
        None, "--db-rows", help="Database rows per block (default: fit 4 GiB of float32)."
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Mine exact top-k cosine neighbours of every train row (int32 .npy, resumable; several GPUs / nodes
    under torchrun, see docs/scale.md)."""
    require("torch", "faiss", what="knn")
    from ..features.view import open_view
    from ..methods.knn import default_knn_path, mine_knn
    from ..runtime.distributed import init

    dist = init(device, engine="faiss")
    store = open_view(features, benchmark, "train")
    out = out or default_knn_path(store, k)
    result = mine_knn(
        store, k, out, chunk_rows=chunk_rows, db_rows=db_rows, device=device, dist=dist if dist.enabled else None
    )
    if result is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    info = {
        "out": str(out),
        "shape": list(result.shape),
        "dtype": str(result.dtype),
        "store": str(store.path),
        "benchmark": getattr(store, "view_name", None) or store.meta.get("benchmark"),
        "processes": dist.world_size,
    }
    if json_out:
        _print_json(info)
    else:
        print(f"knn: {result.shape[0]:,} x {result.shape[1]} int32 -> {out}")


@fit_app.command("kmeans")
def fit_kmeans_cmd(
    features: Path = typer.Option(..., "--features", help="Features directory with train/ and val/."),
    out: Path = typer.Option(..., "--out", help="Output folder for top1.npy, top5.npy, centroids.npy, run.json."),
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", help="Benchmark (sets K = its number of classes; recorded)."
    ),
    num_clusters: Optional[int] = typer.Option(None, "--num-clusters", "-k", help="K (default: the benchmark's C)."),
    niter: int = typer.Option(20, "--niter", min=1),
    nredo: int = typer.Option(1, "--nredo", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    train_size: str = typer.Option(
        "all", "--train-size", help="'all' or a number of train rows (uniform sample with the seed)."
    ),
    chunk_rows: int = typer.Option(65_536, "--chunk-rows", min=1),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Spherical k-means on train, val assigned to the nearest centroids (top-5); predictions for `evaluate`."""
    require("faiss", what="fit kmeans")
    from ..errors import InvalidInputError
    from ..methods.kmeans import run_kmeans

    train, val, bench = open_features_and_benchmark(features, benchmark)
    if num_clusters is None:
        num_clusters = bench.num_classes if bench is not None else train.meta.get("num_classes")
        if num_clusters is None:
            raise InvalidInputError(
                "fit kmeans: expected --num-clusters or --benchmark (the store records no number of classes), found "
                "neither"
            )
    if bench is not None and val.num_rows != bench.num_val:
        print(
            f"fit kmeans: warning: val has {val.num_rows:,} rows, benchmark {bench.name} has {bench.num_val:,}; "
            "`evaluate --benchmark` will reject the predictions",
            file=sys.stderr,
        )
    extra = {
        "features": str(features),
        "benchmark": bench.name if bench is not None else train.meta.get("benchmark"),
        "benchmark_version": bench.version if bench is not None else train.meta.get("version"),
    }
    record = run_kmeans(
        train,
        val,
        int(num_clusters),
        out,
        niter=niter,
        nredo=nredo,
        seed=seed,
        train_size=train_size,
        device=device,
        chunk_rows=chunk_rows,
        extra=extra,
    )
    if json_out:
        _print_json(record)
    else:
        print(
            f"kmeans K={record['num_clusters']}: objective {record['objective']:.4f} (mean cosine "
            f"{record['mean_cosine']:.4f}), "
            f"{record['num_val']:,} val predictions -> {out}/top1.npy, top5.npy"
        )
