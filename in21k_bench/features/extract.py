"""Feature extraction from a local image folder with a registered backbone or a backbone spec.

Backbone names (:mod:`in21k_bench.features.backbones`, ``in21k-bench backbones``):

* a registry name, e.g. ``dinov2-vitg14``, ``ibot-vitl16-in21k`` (or the paper's label);
* ``timm:<model>`` (or a bare timm name), e.g. ``timm:vit_large_patch16_224.augreg_in21k``;
* ``open_clip:<arch>:<pretrained tag>`` / ``open_clip:hf-hub:<org>/<repo>``, e.g.
  ``open_clip:ViT-bigG-14:laion2b_s39b_b160k``;
* ``torch_hub:<owner>/<repo>:<entry>`` (or a local hub folder), ``ibot:<timm arch>`` (a converted checkpoint).

Weights are whatever those libraries load on the user's machine (their own caches and hubs), or a
local checkpoint (``checkpoint=PATH``), or none (``pretrained=False``: random initialisation, used in
tests). Preprocessing is the paper's for registered backbones and local checkpoints, else the library's own
(``preprocess="paper"|"model"``, with explicit overrides); it and the backbone record (weights,
checkpoint sha256) are written to ``meta.json``. The image list is the canonical sample order
(:func:`in21k_bench.images.folder.scan_split`, or :meth:`Benchmark.materialize` when a benchmark is given);
features are the pooled image embedding (timm ``num_classes=0``; open_clip ``encode_image``; a hub model's
class token), stored unnormalised in float16.

Rows are written shard by shard (:class:`~in21k_bench.features.parts.ShardedBuild`): shard ``i``
holds rows ``[i * shard_rows, (i + 1) * shard_rows)`` of the canonical list. Under ``torchrun`` every
rank encodes its round-robin share of the unfinished shards (same command on every rank; NCCL on
GPUs, gloo on CPU) and rank 0 assembles ``meta.json`` and ``index.parquet`` at the end, so the store
is the one a single process writes. A killed run keeps every finished shard; a re-run with the same
arguments -- with any number of processes -- computes only the missing ones, after checking that
the finished shards hold the ids the current list puts there.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import In21kError, InvalidInputError
from ..fileio import atomic_path, check_output_dir, write_json
from ..runtime.distributed import Dist, fault_point, my_units
from ..runtime.distributed import init as init_distributed
from .parts import ShardedBuild
from .store import DEFAULT_SHARD_ROWS, FeatureStore


def _log(msg: str) -> None:
    print(f"extract: {msg}", file=sys.stderr, flush=True)


def parse_backbone(backbone: str) -> tuple[str, str, str | None]:
    """A registry name or spec -> ``(loader, model, tag)`` (see :mod:`in21k_bench.features.backbones`):
    ``"timm:name"`` / bare name -> ("timm", name, None); ``"open_clip:arch:tag"`` -> ("open_clip", arch,
    tag); ``"open_clip:hf-hub:org/repo"`` -> ("open_clip", "hf-hub:org/repo", None); ``"torch_hub:repo:entry"``
    -> ("torch_hub", repo, entry); ``"ibot:arch"`` -> ("checkpoint", arch, "ibot")."""
    from .backbones import resolve

    spec, _ = resolve(backbone)
    return spec.loader, spec.model, spec.tag


class _Embedder:
    """Wraps a model so that ``embed(batch) -> (B, D)`` whatever the library; carries the backbone
    record and the preprocessing record written to ``meta.json``."""

    def __init__(self, model, kind: str, dim: int, record: dict | None = None, preprocessing: dict | None = None):
        self.model, self.kind, self.dim = model, kind, dim
        self.record, self.preprocessing = record, preprocessing

    def __call__(self, x):
        if self.kind == "open_clip":
            return self.model.encode_image(x)
        out = self.model(x)
        if self.kind == "tokens" and out.ndim == 3:  # a hub model returning all tokens: the class token
            out = out[:, 0]
        return out


def load_backbone(
    backbone: str,
    checkpoint: str | os.PathLike | None = None,
    pretrained: bool = True,
    device: str = "cpu",
    image_size: int | None = None,
    *,
    preprocess: str | None = None,
    resize: int | None = None,
    crop: int | None = None,
    interpolation: str | None = None,
    mean=None,
    std=None,
):
    """Return ``(embedder, transform, dim)`` for a registry name or spec (see the module docstring).

    ``preprocess``: ``"paper"`` (default for registered backbones and with a ``checkpoint``), ``"model"``
    (default for raw specs without one: the library's own configuration); ``resize``, ``crop``,
    ``interpolation``, ``mean``, ``std`` override it (``image_size`` sets the crop and scales the resize).
    ``embedder.record`` / ``embedder.preprocessing`` are the ``meta.json`` records; the transform is built
    from the preprocessing record."""
    from .backbones import resolve

    spec, entry = resolve(backbone)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise InvalidInputError(f"backbone: expected a checkpoint file at {checkpoint}, found none")
    if image_size is not None and int(image_size) < 1:
        raise InvalidInputError(f"backbone: expected image_size >= 1 (or unset), found {image_size}")
    overrides = dict(resize=resize, crop=crop, interpolation=interpolation, mean=mean, std=std, image_size=image_size)
    try:
        return _load_backbone(backbone, spec, entry, checkpoint, pretrained, device, preprocess, overrides)
    except In21kError:
        raise
    except pickle.UnpicklingError:
        raise InvalidInputError(
            f"backbone: expected {checkpoint} to be a plain weights checkpoint for {backbone}, found a file "
            "torch.load(weights_only=True) refuses (never unpickled)"
        ) from None
    except (RuntimeError, OSError, ValueError, EOFError, KeyError, TypeError, ImportError) as exc:
        what = (
            f"checkpoint {checkpoint}"
            if checkpoint is not None
            else ("pretrained weights" if pretrained else "random weights")
        )
        raise InvalidInputError(
            f"backbone: expected to build {backbone} with {what}, found {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None


def _load_backbone(backbone: str, spec, entry, checkpoint, pretrained: bool, device: str, preprocess, overrides):
    from .loaders import build_transform, load

    built = load(
        spec,
        entry,
        backbone,
        checkpoint=checkpoint,
        pretrained=pretrained,
        device=device,
        preprocess=preprocess,
        overrides=overrides,
    )
    emb = _Embedder(built.model, built.kind, built.dim, built.record, built.preprocessing.to_dict())
    return emb, build_transform(built.preprocessing), built.dim


def list_split(root: Path, split: str | None, benchmark=None, class_names: Sequence[str] | None = None, transform=None):
    """The :class:`~in21k_bench.images.dataset.ImageDataset` of one split in canonical order: the
    benchmark's (:meth:`Benchmark.torch_dataset`) or the folder's (labels = ``class_names`` positions)."""
    from ..images.dataset import ImageDataset

    if benchmark is not None:
        return benchmark.torch_dataset(root, split, transform)
    return ImageDataset.from_folder(root, split or None, class_names, transform)


def _batches(ds, rows: np.ndarray, batch_size: int, workers: int, pin: bool):
    """``(tensors, skipped positions, their errors)`` of ``ds`` at positions ``rows`` (in that order),
    batch by batch; skips come only from a :class:`~in21k_bench.images.readers.SourceDataset` with
    ``skip_bad``."""
    from torch.utils.data import DataLoader, Subset

    from ..images.readers import SourceDataset, collate

    source = isinstance(ds, SourceDataset)
    loader = DataLoader(
        Subset(ds, rows.tolist()),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=False,
        **({"collate_fn": collate} if source else {}),
    )
    for batch in loader:
        yield batch if source else (batch[0], [], [])


def extract_split(
    ds,
    out_dir: str | os.PathLike,
    embedder,
    dim: int,
    backbone: str,
    *,
    dist: Dist | None = None,
    split: str | None = None,
    benchmark: str | None = None,
    version: str | None = None,
    batch_size: int = 64,
    workers: int = 4,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    with_labels: bool = True,
    extra_meta: dict | None = None,
) -> FeatureStore | None:
    """Embed the dataset ``ds`` (an :class:`~in21k_bench.images.dataset.ImageDataset` with the model's
    transform) into a store at ``out_dir``, resuming if partial; this rank's share under torchrun.

    Returns the store on rank 0 (after assembly), None on the other ranks."""
    import torch
    from tqdm.auto import tqdm

    dist = dist or Dist()
    n = len(ds)
    ids = np.asarray(ds.sample_ids, dtype=object)
    labels = np.asarray(ds.labels, dtype=np.int64) if with_labels else None
    build = ShardedBuild(out_dir, n, shard_rows)
    record = getattr(embedder, "record", None) or backbone  # meta.json "backbone" and "preprocessing" records
    complete = dist.main_first(
        build.prepare,
        ids,
        dim,
        record,
        preprocessing=getattr(embedder, "preprocessing", None),
        has_labels=with_labels,
        split=split,
        benchmark=benchmark,
        version=version,
        **(extra_meta or {}),
    )
    if complete:
        if dist.is_main:
            _log(f"{out_dir}: already complete ({n:,} rows)")
        return FeatureStore.open(out_dir) if dist.is_main else None
    dist.main_first(build.check_done_ids, ids)
    todo = dist.main_first(build.missing)  # rank 0's view of the shared folder, the same list on every rank
    if dist.is_main and len(todo) < build.num_shards:
        _log(f"{out_dir}: resuming, {build.num_shards - len(todo)} of {build.num_shards} shards already done")
    mine = my_units(todo, dist)
    rows = np.concatenate([np.arange(*build.rows(i)) for i in mine]) if mine else np.zeros(0, np.int64)
    dev = dist.device
    use_amp = dev.startswith("cuda")
    what = f"extract {split or ''}".strip() + (f" [rank {dist.rank}/{dist.world_size}]" if dist.enabled else "")
    bar = tqdm(
        total=len(rows),
        desc=what,
        unit="img",
        unit_scale=True,
        file=sys.stderr,
        disable=None if dist.is_main else True,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    t0 = time.perf_counter()
    buf: list[np.ndarray] = []
    okbuf: list[np.ndarray] = []
    skipped: list[dict] = []
    have, k, at = 0, 0, 0  # rows buffered for shard mine[k]; position in ``rows``
    with torch.inference_mode():
        for xb, bad, errors in _batches(ds, rows, batch_size, workers, pin=use_amp):
            if xb is not None:
                xb = xb.to(dev, non_blocking=True)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    feats = embedder(xb)
                feats = feats.float().cpu().numpy()
            else:
                feats = np.zeros((0, dim), np.float32)
            nb = len(feats) + len(bad)
            ok = np.ones(nb, bool)
            ok[bad] = False
            err_of = dict(zip((at + j for j in bad), errors))
            bar.update(nb)
            while len(ok):
                a, b = build.rows(mine[k])
                take = min(len(ok), (b - a) - have)
                good = int(ok[:take].sum())
                buf.append(feats[:good])
                okbuf.append(ok[:take])
                for j in np.flatnonzero(~ok[:take]):  # --skip-bad: recorded, never a silent drop
                    skipped.append({"sample_id": str(ids[rows[at + j]]), "error": err_of[at + j]})
                feats, ok, at = feats[good:], ok[take:], at + take
                have += take
                if have == b - a:
                    keep = np.concatenate(okbuf)
                    build.write_shard(
                        mine[k],
                        np.concatenate(buf),
                        ids[a:b][keep],
                        None if labels is None else labels[a:b][keep],
                        skipped=skipped,
                    )
                    fault_point("extract", mine[k])
                    buf, okbuf, skipped, have, k = [], [], [], 0, k + 1
    bar.close()
    dt = time.perf_counter() - t0
    if len(rows):
        _log(
            f"{out_dir}: {len(rows):,} images in {dt:.1f}s ({len(rows) / max(dt, 1e-9):.1f} img/s)"
            + (f" on rank {dist.rank}" if dist.enabled else "")
        )
    dist.barrier()  # every shard is on disk
    dist.main_first(lambda: (build.assemble(), None)[1])
    return FeatureStore.open(out_dir) if dist.is_main else None


def extract_features(
    images: str | os.PathLike,
    out_dir: str | os.PathLike,
    backbone: str,
    *,
    splits: Sequence[str] = ("train", "val"),
    benchmark: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    pretrained: bool = True,
    batch_size: int = 64,
    workers: int = 4,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    device: str = "auto",
    image_size: int | None = None,
    preprocess: str | None = None,
    resize: int | None = None,
    crop: int | None = None,
    interpolation: str | None = None,
    mean=None,
    std=None,
    format: str | None = None,
    skip_bad: bool = False,
) -> dict[str, FeatureStore]:
    """Extract every split of ``images`` into ``out_dir/<split>/`` (a features directory).

    ``images``: any layout of :mod:`in21k_bench.images.readers` (image folders, HF parquet shards,
    webdataset tars), detected or forced with ``format``. Labels: the benchmark's labels when
    ``benchmark`` is given (classes and order from its manifest); otherwise the index of the class
    among the sorted classes of all splits (recorded in ``out_dir/classes.json``). ``splits=("",)``
    treats an image folder ``images`` itself as one ``root/<class>/<file>`` tree and writes a single
    store at ``out_dir``. ``skip_bad``: an unreadable image is left out of its shard and counted in
    meta.json (``skipped``) instead of stopping the run.
    """
    from ..images.readers import Source, open_source

    root = Path(images)
    if image_size is not None and int(image_size) < 1:
        raise InvalidInputError(f"extract: expected image_size >= 1 (or unset), found {image_size}")
    if "" in splits:
        if not root.is_dir():
            raise InvalidInputError(f"extract: expected an image folder at {root}, found none")
        if format not in (None, "folder"):
            raise InvalidInputError(f"extract: expected --format folder with --split '', found --format {format}")
        source = Source("folder", root, {"": root})
    else:
        source = open_source(root, format, extra_splits=[s for s in splits if s not in ("train", "val")])
    source.skip_bad = bool(skip_bad)
    missing = [s for s in splits if s and not source.has_split(s)]
    if missing:
        raise InvalidInputError(
            f"extract: expected split{' folders' if source.format == 'folder' else 's'} {', '.join(missing)} under "
            f"{source.describe()}, found {sorted(source.splits)}"
        )
    check_output_dir(out_dir, "extract")  # before the backbone is loaded
    dist = init_distributed(device)
    dev = dist.device
    bench = None
    if benchmark:
        from ..benchmark import load

        bench = load(benchmark)
    out = Path(out_dir)
    # the backbone first: a bad model name or checkpoint must fail before anything is written to out_dir
    embedder, transform, dim = load_backbone(
        backbone,
        checkpoint=checkpoint,
        pretrained=pretrained,
        device=dev,
        image_size=image_size,
        preprocess=preprocess,
        resize=resize,
        crop=crop,
        interpolation=interpolation,
        mean=mean,
        std=std,
    )
    class_names = None
    if bench is None:
        class_names = dist.main_first(_class_folders, source, splits, out)
    if dist.is_main:
        _log(f"images: {source.describe()}")
        _log(
            f"backbone {backbone} (dim {dim}, "
            f"{'checkpoint ' + str(checkpoint) if checkpoint else ('pretrained' if pretrained else 'random init')}) on "
            f"{dev}" + (f", {dist.world_size} processes" if dist.enabled else "") + _describe_prep(embedder)
        )
    stores = {}
    for s in splits:
        store_dir = out / s if s else out

        def make(s=s):
            table, labels = split_listing(source, s, bench, class_names)
            return source.dataset(table, labels, transform, skip_bad)

        ds = _shared_listing(dist, store_dir, source.root, make, transform, source.format, skip_bad)
        extra = {"image_format": source.format}
        if skip_bad:
            extra["skip_bad"] = True
            damaged = [d for d in source.index_skipped if d.get("split") in (None, s)]
            if damaged:
                extra["damaged_files"] = damaged
        stores[s or "all"] = extract_split(
            ds,
            store_dir,
            embedder,
            dim,
            backbone,
            dist=dist,
            split=s or None,
            benchmark=benchmark,
            version=bench.version if bench is not None else None,
            batch_size=batch_size,
            workers=workers,
            shard_rows=shard_rows,
            extra_meta=extra,
        )
        if dist.is_main:
            (store_dir / LISTING).unlink(missing_ok=True)
    return stores if dist.is_main else {}


def _describe_prep(embedder) -> str:
    p = getattr(embedder, "preprocessing", None)
    if not p:
        return ""
    return (
        f"; preprocessing {p['mode']}: resize {p['resize']}, crop {p['crop']}, {p['interpolation']}, "
        f"mean {tuple(round(x, 4) for x in p['mean'])}, std {tuple(round(x, 4) for x in p['std'])}"
    )


LISTING = "build-samples.parquet"


def split_listing(source, split: str, bench=None, class_names: Sequence[str] | None = None):
    """``(table, labels)``: the images of one split of ``source`` in canonical order -- the benchmark's
    (its classes, order and labels; a class of the source outside the benchmark's image set is an
    error) or all of them (labels = positions in ``class_names``)."""
    import pandas as pd

    if bench is None:
        table = source.listing(split, classes=class_names)
        label_of = {c: i for i, c in enumerate(class_names or [])}
        labels = table["class_dir"].map(label_of).fillna(-1).astype(np.int64).to_numpy()
        return table, labels
    _check_classes(source, split, bench)
    plain = source.format == "folder" and Path(source.splits[split]).name == split
    if plain and bench.sample_table(split) is not None:  # as before: files named by the manifest's ids
        df = bench.materialize_split(source.root, split)
        rel = df["path"] if "path" in df else df["sample_id"]
        df = df[rel != ""]
        rel = rel[rel != ""]
        n = len(df)
        table = pd.DataFrame(
            {
                "sample_id": df["sample_id"].to_numpy(dtype=object),
                "class_dir": np.full(n, "", dtype=object),
                "file": np.asarray([str(source.root / r) for r in rel], dtype=object),
                "pos": np.full(n, -1, np.int64),
                "size": np.full(n, -1, np.int64),
            }
        )
        return table, df["label"].to_numpy(dtype=np.int64)
    classes = bench.source_classes["wnid"].astype(str).tolist() if bench.sample_table(split) is None else None
    df = bench.materialize_split(source.root, split, listing=source.listing(split, classes=classes))
    return df, df["label"].to_numpy(dtype=np.int64)


def _check_classes(source, split: str, bench) -> None:
    """Every class of the source belongs to the benchmark's image set (ImageNet-21K-P or ImageNet-1K)."""
    from ..benchmark import load
    from .view import _image_set

    found = source.class_dirs(split)
    if not found:
        return
    image_set = bench if bench.name == _image_set(bench) else load(_image_set(bench))
    known = set(image_set.source_classes["wnid"].astype(str))
    bad = [c for c in found if c not in known]
    if bad:
        raise InvalidInputError(
            f"extract: expected classes of benchmark {image_set.name} ({len(known):,} wnids) in {split} of "
            f"{source.describe()}, found {len(bad):,} others (first: {bad[0]})"
        )


def _class_folders(source, splits: Sequence[str], out: Path) -> list[str]:
    """Sorted classes of all splits (the labels without a benchmark), recorded in ``classes.json``."""
    names: set[str] = set()
    for s in splits:
        names.update(source.class_dirs(s))
    class_names = sorted(names)
    write_json(out / "classes.json", {"label_source": "sorted class folders", "classes": class_names})
    return class_names


def _shared_listing(dist: Dist, store_dir: Path, where: Path, make, transform, fmt: str, skip_bad: bool):
    """The split's image list, made once on rank 0 and read by the other ranks from
    ``<store>/build-samples.parquet``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..images.readers import SourceDataset

    box = {}

    def listing():
        ds = make()
        if not len(ds):
            raise InvalidInputError(f"extract: expected images under {where}, found none")
        box["ds"] = ds
        if dist.enabled:
            store_dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(store_dir / LISTING) as tmp:
                pq.write_table(pa.Table.from_pandas(ds.table(), preserve_index=False), tmp)

    dist.main_first(listing)
    if dist.is_main:
        return box["ds"]
    t = pq.read_table(store_dir / LISTING).to_pandas()
    return SourceDataset.from_table(fmt, t, transform, skip_bad)
