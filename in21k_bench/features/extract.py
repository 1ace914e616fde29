"""Feature extraction from a local image folder with a timm or open_clip backbone.

Backbone names:

* ``timm:<model>`` (or a bare timm name), e.g. ``timm:vit_large_patch16_224.augreg_in21k``;
* ``open_clip:<arch>:<pretrained tag>``, e.g. ``open_clip:ViT-bigG-14:laion2b_s39b_b160k``.

Weights are whatever those libraries load on the user's machine (their own caches and hubs), or a
local checkpoint (``checkpoint=PATH``), or none (``pretrained=False``: random initialisation, used in
tests). The model's own preprocessing is used (timm's resolved data config / open_clip's val
transform). The image list is the canonical sample order (:func:`in21k_bench.imagefolder.scan_split`,
or :meth:`Benchmark.materialize` when a benchmark is given); features are the pooled image embedding
(timm ``num_classes=0``; open_clip ``encode_image``), stored unnormalised in float16.

Rows are written shard by shard (:class:`~in21k_bench.features.store.FeatureStoreWriter`): a killed
run keeps every complete shard and a re-run with the same arguments continues after the last one,
after checking that the stored sample ids are the first ids of the current list.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import In21kError, InvalidInputError
from ..fileio import check_output_dir, write_json
from .store import DEFAULT_SHARD_ROWS, FeatureStore, FeatureStoreWriter


def _log(msg: str) -> None:
    print(f"extract: {msg}", file=sys.stderr, flush=True)


def resolve_torch_device(device: str | None) -> str:
    import torch

    d = (device or "auto").lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise In21kError("device: expected a CUDA GPU visible to torch, found none; use --device cpu")
        return d
    if d != "cpu":
        raise In21kError(f"device: expected auto, cpu or cuda, found {device!r}")
    return d


def parse_backbone(backbone: str) -> tuple[str, str, str | None]:
    """``"timm:name"`` / bare name -> ("timm", name, None); ``"open_clip:arch:tag"`` -> ("open_clip", arch, tag)."""
    lib, _, rest = backbone.partition(":")
    if not rest:
        return "timm", backbone, None
    if lib == "timm":
        return "timm", rest, None
    if lib in ("open_clip", "openclip"):
        arch, _, tag = rest.partition(":")
        return "open_clip", arch, tag or None
    raise InvalidInputError(f"backbone: expected 'timm:<model>' or 'open_clip:<arch>:<pretrained>', found {backbone!r}")


class _Embedder:
    """Wraps a model so that ``embed(batch) -> (B, D)`` whatever the library."""

    def __init__(self, model, kind: str, dim: int):
        self.model, self.kind, self.dim = model, kind, dim

    def __call__(self, x):
        if self.kind == "open_clip":
            return self.model.encode_image(x)
        return self.model(x)


def load_backbone(backbone: str, checkpoint: str | os.PathLike | None = None, pretrained: bool = True, device: str = "cpu", image_size: int | None = None):
    """Return ``(embedder, transform, dim)`` for a backbone name (see module docstring)."""
    import torch

    lib, name, tag = parse_backbone(backbone)
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise InvalidInputError(f"backbone: expected a checkpoint file at {checkpoint}, found none")
    if image_size is not None and int(image_size) < 1:
        raise InvalidInputError(f"backbone: expected image_size >= 1 (or unset), found {image_size}")
    try:
        return _load_backbone(lib, name, tag, checkpoint, pretrained, device, image_size)
    except In21kError:
        raise
    except pickle.UnpicklingError:
        raise InvalidInputError(f"backbone: expected {checkpoint} to be a plain weights checkpoint for {backbone}, found a file torch.load(weights_only=True) refuses (never unpickled)") from None
    except (RuntimeError, OSError, ValueError, EOFError, KeyError) as exc:
        what = f"checkpoint {checkpoint}" if checkpoint is not None else ("pretrained weights" if pretrained else "random weights")
        raise InvalidInputError(f"backbone: expected to build {backbone} with {what}, found {type(exc).__name__}: {' '.join(str(exc).split())[:200]}") from None


def _load_backbone(lib: str, name: str, tag: str | None, checkpoint, pretrained: bool, device: str, image_size: int | None):
    import torch  # noqa: F401

    if lib == "timm":
        import timm

        kwargs: dict = {"num_classes": 0}
        if image_size and any(s in name for s in ("vit", "deit", "eva", "beit")):
            kwargs["img_size"] = int(image_size)
        if checkpoint is not None:
            model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(checkpoint)}, **kwargs)
        else:
            model = timm.create_model(name, pretrained=pretrained, **kwargs)
        cfg = timm.data.resolve_model_data_config(model)
        if image_size:
            cfg["input_size"] = (3, int(image_size), int(image_size))
        transform = timm.data.create_transform(**cfg, is_training=False)
        dim = int(model.num_features)
    else:
        import open_clip

        pre = str(checkpoint) if checkpoint is not None else (tag if pretrained else None)
        kwargs = {"force_image_size": int(image_size)} if image_size else {}
        model, _, transform = open_clip.create_model_and_transforms(name, pretrained=pre, **kwargs)
        dim = int(model.visual.output_dim)
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return _Embedder(model, lib, dim), transform, dim


class _ImageList:
    """A torch-style dataset over file paths: returns (tensor, position)."""

    def __init__(self, paths: Sequence[str], transform, start: int = 0):
        self.paths, self.transform, self.start = list(paths), transform, start

    def __len__(self) -> int:
        return len(self.paths) - self.start

    def __getitem__(self, i: int):
        from PIL import Image

        path = self.paths[self.start + i]
        try:
            with Image.open(path) as im:
                return self.transform(im.convert("RGB")), self.start + i
        except OSError as exc:  # PIL's UnidentifiedImageError and truncated files are OSErrors
            raise InvalidInputError(f"image folder: expected a readable image at {path}, found {type(exc).__name__}: {exc}") from None


def list_split(root: Path, split: str | None, benchmark=None, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Samples of one split in canonical order: ``sample_id``, ``path``, ``label`` (-1 when unknown)."""
    from ..imagefolder import scan_split

    if benchmark is not None:
        train_df, val_df = benchmark.materialize(root)
        df = (train_df if split == "train" else val_df).copy()
        if "path" in df:
            df = df[df["path"] != ""].copy()
            df["path"] = [str(root / p) for p in df["path"]]
        else:
            df["path"] = [str(root / s) for s in df["sample_id"]]
        return df[["sample_id", "path", "label"]].reset_index(drop=True)
    df = scan_split(root, split or None, classes=class_names)
    label_of = {c: i for i, c in enumerate(class_names)} if class_names is not None else {}
    df["label"] = df["class_dir"].map(label_of).fillna(-1).astype(np.int64)
    return df[["sample_id", "path", "label"]]


def extract_split(
    samples: pd.DataFrame,
    out_dir: str | os.PathLike,
    embedder,
    transform,
    dim: int,
    backbone: str,
    *,
    split: str | None = None,
    benchmark: str | None = None,
    version: str | None = None,
    batch_size: int = 64,
    workers: int = 4,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    device: str = "cpu",
    with_labels: bool = True,
) -> FeatureStore:
    """Embed ``samples`` (``sample_id``, ``path``, ``label``) into a store at ``out_dir``, resuming if partial."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    n = len(samples)
    writer = FeatureStoreWriter(out_dir, dim, backbone, shard_rows=shard_rows, split=split, benchmark=benchmark, version=version)
    if writer.complete:
        store = FeatureStore.open(out_dir)
        if store.num_rows != n:
            raise InvalidInputError(f"extract: {out_dir} is a complete store of {store.num_rows} rows, expected {n}; use another --out")
        _log(f"{out_dir}: already complete ({n:,} rows)")
        return store
    done = writer.num_rows
    ids = samples["sample_id"].to_numpy(dtype=object)
    if done:
        stored = writer.stored_sample_ids()
        if done > n or not np.array_equal(stored, ids[:done]):
            raise InvalidInputError(f"extract: {out_dir} holds {done:,} rows whose sample ids are not the first ids of this image list; use another --out")
        _log(f"{out_dir}: resuming after {done:,} of {n:,} rows")
    labels = samples["label"].to_numpy(dtype=np.int64) if with_labels else None
    ds = _ImageList(samples["path"].tolist(), transform, start=done)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=device.startswith("cuda"), persistent_workers=False)
    use_amp = device.startswith("cuda")
    bar = tqdm(total=n, initial=done, desc=f"extract {split or ''}".strip(), unit="img", unit_scale=True, file=sys.stderr, disable=None, dynamic_ncols=True, smoothing=0.05)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for xb, pos in loader:
            xb = xb.to(device, non_blocking=True)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                feats = embedder(xb)
            feats = feats.float().cpu().numpy()
            p = pos.numpy()
            writer.append(feats, ids[p], None if labels is None else labels[p])
            bar.update(len(p))
    bar.close()
    store = writer.close()
    dt = time.perf_counter() - t0
    if n - done:
        _log(f"{out_dir}: {n - done:,} images in {dt:.1f}s ({(n - done) / max(dt, 1e-9):.1f} img/s)")
    return store


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
) -> dict[str, FeatureStore]:
    """Extract every split of ``images`` into ``out_dir/<split>/`` (a features directory).

    Labels: the benchmark's labels when ``benchmark`` is given (class folders and order from its
    manifest); otherwise the index of the class folder among the sorted class folders of all splits
    (recorded in ``out_dir/classes.json``). ``splits=("",)`` treats ``images`` itself as one
    ``root/<class>/<file>`` folder and writes a single store at ``out_dir``.
    """
    root = Path(images)
    if not root.is_dir():
        raise InvalidInputError(f"extract: expected an image folder at {root}, found none")
    if image_size is not None and int(image_size) < 1:
        raise InvalidInputError(f"extract: expected image_size >= 1 (or unset), found {image_size}")
    check_output_dir(out_dir, "extract")  # before the backbone is loaded
    dev = resolve_torch_device(device)
    bench = None
    if benchmark:
        from ..benchmark import load

        bench = load(benchmark)
    missing = [s for s in splits if s and not (root / s).is_dir()]
    if missing:
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise InvalidInputError(f"extract: expected split folders {', '.join(missing)} under {root}, found {found[:10]}")
    class_names = None
    if bench is None:
        names: set[str] = set()
        for s in splits:
            base = root / s if s else root
            names.update(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
        class_names = sorted(names)
    embedder, transform, dim = load_backbone(backbone, checkpoint=checkpoint, pretrained=pretrained, device=dev, image_size=image_size)
    _log(f"backbone {backbone} (dim {dim}, {'checkpoint ' + str(checkpoint) if checkpoint else ('pretrained' if pretrained else 'random init')}) on {dev}")
    out = Path(out_dir)
    if class_names is not None:
        write_json(out / "classes.json", {"label_source": "sorted class folders", "classes": class_names})
    stores = {}
    for s in splits:
        samples = list_split(root, s or None, bench, class_names)
        if not len(samples):
            raise InvalidInputError(f"extract: expected images under {root / s}, found none")
        stores[s or "all"] = extract_split(
            samples, out / s if s else out, embedder, transform, dim, backbone,
            split=s or None, benchmark=benchmark, version=bench.version if bench is not None else None,
            batch_size=batch_size, workers=workers, shard_rows=shard_rows, device=dev,
        )
    return stores
