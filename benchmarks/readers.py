"""Benchmark: images/s of each reader of in21k_bench.images.readers against torchvision's ImageFolder.

    python benchmarks/readers.py                      # 3,000 images, 2 DataLoader workers
    python benchmarks/readers.py --n 1000 --repeat 1  # quicker

The same real images -- scikit-learn's digits upscaled to 256 x 256 and saved as JPEG (quality 90) --
are written in every layout: class folders, HF-style parquet shards (``image`` {bytes, path} +
``label``, 100 rows per row group, rows in class order as the hub copies are), webdataset tars
(1,000 samples per tar, ``.jpg`` + ``.cls``) and, to show the cost of a file order unlike the
canonical one, the same parquet with its rows shuffled. Every reader decodes and applies the paper's
transform (resize 256 bicubic, centre crop 224, tensor, ImageNet mean/std) on CPU, through the same
``DataLoader`` (batch 64, same workers), in the canonical order extraction uses. Baseline:
``torchvision.datasets.ImageFolder`` on the folder copy. Best of ``--repeat`` runs, interleaved.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def make_images(n: int, size: int = 256):
    """``[(wnid, label index, file name, JPEG bytes)]``: digits 0-9 as 10 winter-21 classes."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from in21k_bench.images.readers import winter21_wnids

    wn = winter21_wnids()
    d = load_digits()
    out = []
    for i in range(n):
        k = i % len(d.images)
        digit = int(d.target[k])
        a = (d.images[k] * (255 / 16)).astype(np.uint8)
        im = Image.fromarray(a).resize((size, size), Image.BICUBIC).convert("RGB")
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        pos = digit * 7
        out.append((wn[pos], pos, f"{wn[pos]}_{i:06d}.JPEG", buf.getvalue()))
    return out


def write_layouts(base: Path, samples) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ordered = sorted(samples, key=lambda s: (s[1], s[2]))
    for wnid, _, name, data in samples:
        d = base / "folder" / "train" / wnid
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    for layout, rows in (
        ("parquet", ordered),
        ("parquet-shuffled", [ordered[i] for i in np.random.default_rng(0).permutation(len(ordered))]),
    ):
        (base / layout / "data").mkdir(parents=True)
        per_file = 1000
        nf = (len(rows) + per_file - 1) // per_file
        for f in range(nf):
            part = rows[f * per_file : (f + 1) * per_file]
            t = pa.table(
                {
                    "image": pa.array([{"bytes": b, "path": n} for _, _, n, b in part], type=struct),
                    "label": pa.array([p for _, p, _, _ in part], type=pa.int64()),
                }
            )
            pq.write_table(t, base / layout / "data" / f"train-{f:05d}-of-{nf:05d}.parquet", row_group_size=100)
    (base / "webdataset").mkdir()
    for f in range(0, len(ordered), 1000):
        with tarfile.open(base / "webdataset" / f"train-{f // 1000:06d}.tar", "w") as tf:
            for _, pos, name, data in ordered[f : f + 1000]:
                key = name.rsplit(".", 1)[0]
                for member, payload in ((f"{key}.jpg", data), (f"{key}.cls", str(pos).encode())):
                    ti = tarfile.TarInfo(member)
                    ti.size = len(payload)
                    tf.addfile(ti, io.BytesIO(payload))
    return {k: base / k for k in ("folder", "parquet", "webdataset", "parquet-shuffled")}


def paper_transform():
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(256, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def run(ds, workers: int, batch: int, collate=None) -> float:
    from torch.utils.data import DataLoader

    kw = {"collate_fn": collate} if collate is not None else {}
    loader = DataLoader(ds, batch_size=batch, shuffle=False, num_workers=workers, **kw)
    t0 = time.perf_counter()
    n = 0
    for b in loader:
        n += len(b[0])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", default=None, help="Work directory (default: a temporary one).")
    args = ap.parse_args()

    import torch
    from torchvision.datasets import ImageFolder

    from in21k_bench.images.readers import collate, open_source

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        t0 = time.perf_counter()
        paths = write_layouts(Path(tmp), make_images(args.n))
        print(f"{args.n:,} JPEG images (256 x 256 digits) in 4 layouts, written in {time.perf_counter() - t0:.1f}s")
        tf = paper_transform()
        readers = {"ImageFolder (torchvision)": ImageFolder(str(paths["folder"] / "train"), transform=tf)}
        for name in ("folder", "parquet", "webdataset", "parquet-shuffled"):
            src = open_source(paths[name])
            t1 = time.perf_counter()
            table = src.listing("train")
            dt = time.perf_counter() - t1
            print(f"  index {name}: {len(table):,} rows in {dt:.2f}s")
            readers[f"ours: {name}"] = src.dataset(table, np.zeros(len(table), np.int64), tf)
        best = {k: 0.0 for k in readers}
        for _ in range(args.repeat):
            for k, ds in readers.items():
                best[k] = max(best[k], run(ds, args.workers, args.batch, None if k.startswith("Image") else collate))
        base = best["ImageFolder (torchvision)"]
        print(
            f"\nimages/s, decode + resize 256 / crop 224, {args.workers} workers, batch {args.batch}, "
            f"best of {args.repeat}"
        )
        print(f"{'reader':34s} {'img/s':>8s} {'vs ImageFolder':>15s}")
        for k, v in best.items():
            print(f"{k:34s} {v:8.1f} {v / base:14.2f}x")


if __name__ == "__main__":
    main()
