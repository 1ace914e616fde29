"""``in21k-bench relabel`` (leaf-HZR / p-HZR) and ``in21k-bench zeroshot`` (zero-shot classification)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..runtime.extras import require
from ._apps import app
from ._common import DEVICE_HELP

_BIG_KEYS = ("class_counts_before", "class_counts_after", "lemma_choice", "classes_vanished", "classes_appeared")


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def _splits(value: str) -> list[str]:
    from ..errors import InvalidInputError

    parts = [s.strip() for s in value.split(",") if s.strip()]
    if not parts or any(p not in ("train", "val") for p in parts):
        raise InvalidInputError(f"relabel: expected --splits from train,val, found {value!r}")
    return parts


@app.command("relabel")
def relabel_cmd(
    mode: str = typer.Option(
        ..., "--mode", help="p-hzr (children + current class compete) or leaf-hzr (walk to a leaf)."
    ),
    root: Path = typer.Option(..., "--root", help="Local ImageNet-21K-P copy: <root>/train|val/<wnid>/<file>."),
    model: str = typer.Option(
        ..., "--model", help="open_clip model name, e.g. ViT-bigG-14 (or hf-hub:..., local-dir:...)."
    ),
    pretrained: Optional[str] = typer.Option(
        None,
        "--pretrained",
        help="open_clip pretrained tag or a local checkpoint file; omitted = random weights (testing only).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Relabel manifest to write (.parquet); the summary goes to <out stem>.summary.json."
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Images per forward pass."),
    num_workers: int = typer.Option(4, "--num-workers", min=0, help="DataLoader workers for image decoding."),
    chunk_rows: int = typer.Option(65536, "--chunk-rows", min=1, help="Samples per resumable chunk."),
    splits: str = typer.Option("train,val", "--splits", help="Comma-separated splits to relabel."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Resumable work area (default: <out>.work)."),
    cache_dir: Optional[Path] = typer.Option(
        None,
        "--cache-dir",
        help="Text-embedding cache (default: $IN21K_BENCH_CACHE/clip_text or ~/.cache/in21k_bench/clip_text).",
    ),
    features: Optional[Path] = typer.Option(
        None,
        "--features",
        help="Feature directory (train/ val/ stores) made with the same model; skips image encoding.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its work area."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Hierarchical zero-shot relabeling of every sample of a non-leaf class (docs/zeroshot.md); images
    encoded by several GPUs / nodes under torchrun (docs/scale.md)."""
    require("torch", "open_clip", "PIL", what="relabel", extra="extract")
    from ..zeroshot.hzr import relabel, summary_path

    if pretrained is None:
        print("warning: no --pretrained given: using randomly initialised weights (for testing only)", file=sys.stderr)
    summary = relabel(
        root,
        mode,
        out,
        model=model,
        pretrained=pretrained,
        device=device,
        splits=_splits(splits),
        batch_size=batch_size,
        num_workers=num_workers,
        chunk_rows=chunk_rows,
        work_dir=work_dir,
        cache_dir=cache_dir,
        resume=resume,
        features=str(features) if features else None,
    )
    if summary is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    short = {k: v for k, v in summary.items() if k not in _BIG_KEYS}
    short["num_classes_vanished"] = len(summary["classes_vanished"])
    short["summary_file"] = str(summary_path(out))
    if json_out:
        _print_json(short)
        return
    print(
        f"{mode}: {summary['samples_moved']:,} of {summary['num_samples']:,} samples moved; "
        f"classes {summary['num_classes_before']:,} -> {summary['num_classes_after']:,} "
        f"({len(summary['classes_vanished']):,} vanished)"
    )
    print(f"manifest: {out}")
    print(f"summary:  {summary_path(out)}")


@app.command("zeroshot")
def zeroshot_cmd(
    root: Path = typer.Option(..., "--root", help="Image folder: <root>/<split>/<wnid>/<file>."),
    model: str = typer.Option(..., "--model", help="open_clip model name."),
    pretrained: Optional[str] = typer.Option(
        None,
        "--pretrained",
        help="open_clip pretrained tag or checkpoint file; omitted = random weights (testing only).",
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder: results.json, predictions.parquet, reliability-<mode>.png."
    ),
    split: str = typer.Option("val", "--split", help="Split to classify."),
    modes: str = typer.Option("all,level,siblings", "--modes", help="Comma-separated: all, level, siblings."),
    classes: str = typer.Option(
        "all", "--classes", help="Candidate universe: all (10,450 classes) or present (classes with images)."
    ),
    lemma_choice: str = typer.Option(
        "auto",
        "--lemma-choice",
        help="auto (votes of a relabel run, else first lemma) | vote (vote on these images) | first.",
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    batch_size: int = typer.Option(256, "--batch-size", min=1),
    num_workers: int = typer.Option(4, "--num-workers", min=0),
    chunk_rows: int = typer.Option(65536, "--chunk-rows", min=1),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Text-embedding cache folder."),
    features: Optional[Path] = typer.Option(None, "--features", help="Feature directory made with the same model."),
    resume: bool = typer.Option(False, "--resume", help="Reuse image embeddings of an interrupted run."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Zero-shot classification: all classes, same hierarchy level, semantic siblings (docs/zeroshot.md);
    images encoded by several GPUs / nodes under torchrun (docs/scale.md)."""
    require("torch", "open_clip", "PIL", what="zeroshot", extra="extract")
    from ..zeroshot.classify import zeroshot

    if pretrained is None:
        print("warning: no --pretrained given: using randomly initialised weights (for testing only)", file=sys.stderr)
    res = zeroshot(
        root,
        out,
        model=model,
        pretrained=pretrained,
        split=split,
        modes=[m.strip() for m in modes.split(",") if m.strip()],
        classes=classes,
        lemma_choice=lemma_choice,
        device=device,
        batch_size=batch_size,
        num_workers=num_workers,
        chunk_rows=chunk_rows,
        cache_dir=cache_dir,
        resume=resume,
        features=str(features) if features else None,
    )
    if res is None:  # a rank other than 0 under torchrun: rank 0 reports
        return
    if json_out:
        _print_json(
            {**res, "modes": {m: {k: v for k, v in r.items() if k != "reliability"} for m, r in res["modes"].items()}}
        )
        return
    print(f"{'mode':<10} {'accuracy':>9} {'mean conf':>10} {'ECE':>7} {'fallback':>9}")
    for m, r in res["modes"].items():
        print(f"{m:<10} {r['accuracy']:>9.4f} {r['mean_confidence']:>10.4f} {r['ece']:>7.4f} {r['num_fallback']:>9,}")
    print(f"results: {Path(out) / 'results.json'}")
