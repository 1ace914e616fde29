"""The image sources a user has: the three layouts ImageNet-21K-P is downloaded in.

* ``folder``: ``<root>/{train,val}/<wnid>/<file>`` (plain ImageFolder) or the official release
  ``imagenet21k_resized/{imagenet21k_train,imagenet21k_val}/<wnid>/<file>`` (``--images`` may be
  ``imagenet21k_resized`` or its parent);
* ``parquet``: Hugging Face shards ``<root>/data/<split>-XXXXX-of-YYYYY.parquet`` (or
  ``<root>/<split>/*.parquet``), columns ``image`` (struct ``{bytes, path}``) and ``label`` (int, the
  class index in the winter-21 synset order of the vendored ImageNet-21K-P class list);
* ``webdataset``: tar shards ``<root>/**/<split>-*.tar`` (or ``<root>/<split>/*.tar``) with members
  ``<key>.jpg|jpeg|png|webp`` and ``<key>.cls`` (class index, same order) or ``<key>.json`` (a wnid
  field: ``wnid``, ``synset``, ``class_name`` ...; optionally ``filename``).

HF split names map to ours: ``train`` -> train; ``val`` / ``validation`` (or ``test`` when neither
exists) -> val. :func:`open_source` detects the layout (``format=`` forces one) and refuses an
unknown or mixed root with a one-line error.

Sample ids are the same in every layout: ``<split>/<wnid>/<basename>`` with the original file name
(folder: the file; parquet: basename of ``image.path``; tar: the json ``filename`` or ``<key>.<ext>``).
A split's :meth:`Source.listing` is in the canonical order whatever the layout -- class-index order,
then file name (what :func:`~in21k_bench.images.folder.scan_split` does) -- and records where each image
is (``file``, ``pos``, ``size``: parquet row group + row, tar data offset + size). Indexing reads only
what it needs (parquet: the ``image.path`` and ``label`` columns, never the image bytes; tar: member
headers and the small ``.cls``/``.json`` members). :class:`SourceDataset` reads one image by location
(parquet: the ``image.bytes`` column of its row group, cached per worker so a run of rows in file
order reads each row group once; tar: one seek + read). A corrupt image raises a one-line error
naming the file and row/member, or with ``skip_bad`` is returned as a skip (the caller counts it).
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InvalidInputError
from .folder import IMAGE_EXTENSIONS, scan_split

FORMATS = ("folder", "parquet", "webdataset")
FOLDER_SPLITS = {"train": ("train", "imagenet21k_train"), "val": ("val", "imagenet21k_val")}
HF_SPLITS = {"train": ("train",), "val": ("val", "validation", "test")}  # first present wins
TAR_IMAGE_EXT = ("jpg", "jpeg", "png", "webp")
JSON_CLASS_FIELDS = ("wnid", "synset", "synset_id", "wordnet_id", "class_name", "class", "label_name")
JSON_NAME_FIELDS = ("filename", "file_name", "fname", "original_filename")
_WNID = re.compile(r"^n\d{8}$")
LISTING_COLUMNS = ("sample_id", "class_dir", "file", "pos", "size")


def winter21_wnids() -> list[str]:
    """The class order of parquet ``label`` / webdataset ``.cls``: the ImageNet-21K-P (winter21) list,
    sorted, which is the class order of the taxonomy."""
    from ..registry.taxonomy import load_taxonomy

    return [str(w) for w in load_taxonomy().wnids]


def _err(msg: str) -> InvalidInputError:
    return InvalidInputError(" ".join(msg.split()))


def _short(exc: BaseException) -> str:
    text = re.sub(r" ?<[^<>]* at 0x[0-9a-fA-F]+>", "", " ".join(str(exc).split()))  # no memory addresses
    return f"{type(exc).__name__}: {text[:160]}"


@dataclass
class Source:
    """One detected layout under ``root``: ``splits`` maps ``train``/``val`` to a folder (folder
    layout) or to its shard files in name order (parquet, webdataset)."""

    format: str
    root: Path
    splits: dict = field(default_factory=dict)
    skip_bad: bool = False  # a truncated shard: index what precedes the damage, record it in ``index_skipped``
    index_skipped: list = field(default_factory=list)

    def describe(self) -> str:
        if self.format == "folder":
            return f"folder {self.root} ({', '.join(f'{s}={p.name}/' for s, p in self.splits.items())})"
        n = {s: len(v) for s, v in self.splits.items()}
        return f"{self.format} {self.root} ({', '.join(f'{s}: {k} files' for s, k in n.items())})"

    def has_split(self, split: str) -> bool:
        return split in self.splits

    def class_dirs(self, split: str) -> list[str]:
        """The classes present in a split (folder: the class folders; else from the index)."""
        if self.format == "folder":
            base = self.splits[split]
            return sorted(e.name for e in os.scandir(base) if e.is_dir() and not e.name.startswith("."))
        return sorted(set(self.listing(split)["class_dir"]))

    def listing(self, split: str, classes: Sequence[str] | None = None) -> pd.DataFrame:
        """``sample_id, class_dir, file, pos, size`` in canonical order (classes in ``classes`` order,
        sorted wnids when None; classes not listed are left out)."""
        if split not in self.splits:
            raise _err(
                f"{self.format} source {self.root}: expected a {split} split, found {sorted(self.splits) or 'none'}"
            )
        key = (split, None if classes is None else tuple(classes))
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            if self.format == "folder":
                df = _folder_listing(self.splits[split], split, classes)
            else:
                full = cache.get((split, None))
                if full is None:
                    full = self._index(split)
                    cache[(split, None)] = full
                df = _order(full, classes)
            cache[key] = df
        return cache[key]

    def _index(self, split: str) -> pd.DataFrame:
        wnids = winter21_wnids()
        parts = []
        for f in self.splits[split]:
            if self.format == "parquet":
                try:
                    parts.append(_parquet_index(Path(f), split, wnids))
                except InvalidInputError as exc:
                    if not self.skip_bad or "readable parquet" not in str(exc):
                        raise
                    self.index_skipped.append({"split": split, "file": str(f), "error": str(exc)})
            else:
                skips: list = []
                parts.append(_tar_index(Path(f), split, wnids, skips if self.skip_bad else None))
                self.index_skipped.extend({"split": split, **d} for d in skips)
        df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({c: [] for c in LISTING_COLUMNS})
        dup = df["sample_id"].duplicated()
        if dup.any():
            j = int(np.flatnonzero(dup.to_numpy())[0])
            raise _err(
                f"{self.format} source {self.root}: expected unique sample ids (<split>/<wnid>/<file name>), found "
                f"{int(dup.sum()):,} repeated (first: {df['sample_id'].iat[j]} in {df['file'].iat[j]})"
            )
        return df

    def dataset(self, table: pd.DataFrame, labels, transform=None, skip_bad: bool = False) -> "SourceDataset":
        return SourceDataset(self.format, table, labels, transform, skip_bad)


# --- detection -----------------------------------------------------------------------------------------


def _split_dirs(d: Path, extra: Sequence[str] = ()) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split, names in {**FOLDER_SPLITS, **{e: (e,) for e in extra}}.items():
        hits = [d / n for n in names if (d / n).is_dir()]
        if len(hits) > 1:
            raise _err(
                f"image folder {d}: expected one {split} folder, found {', '.join(h.name + '/' for h in hits)} "
                "(mixed layouts); point --images at one of them"
            )
        if hits:
            found[split] = hits[0]
    return found


def _hf_split(name: str) -> str | None:
    """``train-00000-of-00004.parquet`` -> ``train``; ``validation-...`` -> ``validation``."""
    stem = name.split(".", 1)[0]
    return re.split(r"[-_.]", stem, maxsplit=1)[0].lower() if stem else None


def _assign(files: Sequence[Path], by_dir: bool) -> dict[str, list[Path]]:
    """Group shard files by HF split name, then map to train/val."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        name = f.parent.name.lower() if by_dir else _hf_split(f.name)
        groups.setdefault(name, []).append(f)
    out: dict[str, list[Path]] = {}
    for split, names in HF_SPLITS.items():
        for n in names:
            if n in groups:
                out[split] = sorted(groups[n])
                break
    return out


def _walk(root: Path, suffix: str, depth: int = 3) -> list[Path]:
    """Files ending in ``suffix`` up to ``depth`` levels below ``root`` (not descending into wnid class
    folders or hidden folders, so probing an image tree stays cheap)."""
    out: list[Path] = []
    stack = [(root, 0)]
    while stack:
        d, k = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_file() and e.name.lower().endswith(suffix):
                out.append(Path(e.path))
            elif e.is_dir() and k + 1 < depth and not _WNID.match(e.name):
                stack.append((Path(e.path), k + 1))
    return sorted(out)


def _probe(root: Path, extra: Sequence[str] = ()) -> dict[str, Source]:
    found: dict[str, Source] = {}
    dirs = _split_dirs(root, extra)
    base = root
    if not dirs:  # the parent of imagenet21k_resized (or of any single release folder)
        cands = [c for c in sorted(root.iterdir()) if c.is_dir() and not c.name.startswith(".")]
        hits = [
            (c, s)
            for c in cands
            for s in [_split_dirs(c)]
            if any(p.name.startswith("imagenet21k_") for p in s.values())
        ]
        if len(hits) > 1:
            raise _err(
                f"image folder {root}: expected one ImageNet-21K-P release folder, found "
                f"{', '.join(c.name for c, _ in hits)}; point --images at one of them"
            )
        if hits:
            base, dirs = hits[0]
    if dirs:
        found["folder"] = Source("folder", base, dirs)
    pq_files = _walk(root, ".parquet")
    if pq_files:
        split_named = [f for f in pq_files if f.parent.name.lower() in sum(HF_SPLITS.values(), ())]
        splits = _assign(split_named, by_dir=True) if split_named else {}
        if not splits:
            splits = _assign(pq_files, by_dir=False)
        if splits:
            found["parquet"] = Source("parquet", root, splits)
    tars = _walk(root, ".tar")
    if tars:
        split_named = [f for f in tars if f.parent.name.lower() in sum(HF_SPLITS.values(), ())]
        splits = _assign(split_named, by_dir=True) if split_named else {}
        if not splits:
            splits = _assign(tars, by_dir=False)
        if splits:
            found["webdataset"] = Source("webdataset", root, splits)
    return found


LOOKED_FOR = (
    "folder: <root>/{train,val}/<wnid>/ or [imagenet21k_resized/]{imagenet21k_train,imagenet21k_val}/<wnid>/; "
    "parquet: <root>/data/<split>-*.parquet or <root>/<split>/*.parquet; "
    "webdataset: <root>/**/<split>-*.tar or <root>/<split>/*.tar"
)


def open_source(images: str | os.PathLike, format: str | None = None, extra_splits: Sequence[str] = ()) -> Source:
    """Detect the layout of ``images`` (or use ``format``: folder, parquet or webdataset).
    ``extra_splits``: folder names besides train/val that count as split folders (``--split test``)."""
    root = Path(images)
    if format is not None and format not in FORMATS:
        raise _err(f"images: expected --format one of {', '.join(FORMATS)}, found {format!r}")
    if not root.is_dir():
        raise _err(f"images: expected a directory at {root}, found {'a file' if root.exists() else 'nothing'}")
    found = _probe(root, extra_splits)
    if format is not None:
        if format not in found:
            entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:10]
            raise _err(
                f"images: expected the {format} layout under {root} ({_looked_for(format)}), found "
                f"{', '.join(found) or 'no known layout'}; entries: {entries}"
            )
        return found[format]
    if not found:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:10]
        raise _err(f"images: expected a known layout under {root} ({LOOKED_FOR}), found entries {entries or 'none'}")
    if len(found) > 1:
        raise _err(
            f"images: expected one layout under {root}, found mixed layouts: "
            f"{'; '.join(s.describe() for s in found.values())}; pass --format or point --images at one"
        )
    return next(iter(found.values()))


def _looked_for(fmt: str) -> str:
    return next(p for p in LOOKED_FOR.split("; ") if p.startswith(fmt))


# --- indexing ------------------------------------------------------------------------------------------


def _folder_listing(base: Path, split: str, classes: Sequence[str] | None) -> pd.DataFrame:
    df = scan_split(base.parent, base.name, classes=classes) if split else scan_split(base, None, classes=classes)
    ids = df["sample_id"].to_numpy(dtype=object)
    if split and base.name != split:  # imagenet21k_train/<wnid>/<f> -> train/<wnid>/<f>
        cut = len(base.name) + 1
        ids = np.asarray([f"{split}/{s[cut:]}" for s in ids], dtype=object)
    n = len(df)
    return pd.DataFrame(
        {
            "sample_id": ids,
            "class_dir": df["class_dir"].to_numpy(dtype=object),
            "file": df["path"].to_numpy(dtype=object),
            "pos": np.full(n, -1, np.int64),
            "size": np.full(n, -1, np.int64),
        }
    )


def _order(full: pd.DataFrame, classes: Sequence[str] | None) -> pd.DataFrame:
    """Canonical order: class position (``classes`` order, or sorted wnids), then file name."""
    cls = full["class_dir"].to_numpy(dtype=object)
    if classes is None:
        classes = sorted(set(cls))
    where = pd.Series(np.arange(len(classes)), index=pd.Index(list(classes), dtype=object))
    pos = where.reindex(cls).to_numpy()
    keep = np.flatnonzero(~np.isnan(pos))
    names = full["sample_id"].to_numpy(dtype=object)[keep]
    base = np.asarray([s.rsplit("/", 1)[-1] for s in names], dtype=object)
    order = np.lexsort((base, pos[keep].astype(np.int64)))
    return full.iloc[keep[order]].reset_index(drop=True)


def _class_of_label(label, wnids: list[str], where: str) -> str:
    try:
        k = int(label)
    except (TypeError, ValueError):
        raise _err(f"{where}: expected an integer class index, found {label!r}") from None
    if not 0 <= k < len(wnids):
        raise _err(
            f"{where}: expected a class index in [0, {len(wnids)}) (the winter-21 order of ImageNet-21K-P), found {k}"
        )
    return wnids[k]


def _frame(split: str, wnid: list[str], names: list[str], file: str, pos, size) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": np.asarray([f"{split}/{w}/{b}" for w, b in zip(wnid, names)], dtype=object),
            "class_dir": np.asarray(wnid, dtype=object),
            "file": np.full(len(wnid), file, dtype=object),
            "pos": np.asarray(pos, dtype=np.int64),
            "size": np.asarray(size, dtype=np.int64),
        }
    )


def _parquet_index(path: Path, split: str, wnids: list[str]) -> pd.DataFrame:
    """Index one parquet shard from its ``image.path`` and ``label`` columns, row group by row group."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if "image" not in names or "label" not in names:
            raise _err(f"parquet {path}: expected columns image (struct bytes, path) and label, found {names}")
        wnid: list[str] = []
        base: list[str] = []
        rg_col: list[np.ndarray] = []
        row_col: list[np.ndarray] = []
        for g in range(pf.metadata.num_row_groups):
            t = pf.read_row_group(g, columns=["image.path", "label"])
            paths = t.column("image").combine_chunks().field("path").to_pylist()
            labels = t.column("label").to_pylist()
            for r, (p, lab) in enumerate(zip(paths, labels)):
                wnid.append(_class_of_label(lab, wnids, f"parquet {path} row group {g} row {r}"))
                if not p:
                    raise _err(
                        f"parquet {path} row group {g} row {r}: expected image.path with the original file name, "
                        f"found {p!r}"
                    )
                base.append(p.replace("\\", "/").rsplit("/", 1)[-1])
            rg_col.append(np.full(len(labels), g, np.int64))
            row_col.append(np.arange(len(labels), dtype=np.int64))
    except InvalidInputError:
        raise
    except (OSError, ValueError, KeyError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        raise _err(f"parquet {path}: expected a readable parquet shard, found {_short(exc)}") from None
    rgs = np.concatenate(rg_col) if rg_col else np.zeros(0, np.int64)
    rows = np.concatenate(row_col) if row_col else np.zeros(0, np.int64)
    return _frame(split, wnid, base, str(path), rgs, rows)


def _json_class(meta: dict, wnids: list[str], where: str) -> tuple[str, str | None]:
    name = next((str(meta[k]) for k in JSON_NAME_FIELDS if meta.get(k)), None)
    for k in JSON_CLASS_FIELDS:
        v = meta.get(k)
        if isinstance(v, str) and _WNID.match(v):
            return v, name
    for k in ("label", "cls", "class_index"):
        if isinstance(meta.get(k), int):
            return _class_of_label(meta[k], wnids, where), name
    raise _err(
        f"{where}: expected a wnid field ({', '.join(JSON_CLASS_FIELDS)}) or an int label, found keys {sorted(meta)}"
    )


def _tar_index(path: Path, split: str, wnids: list[str], skips: list | None = None) -> pd.DataFrame:
    """Index one webdataset tar from its member headers and small ``.cls``/``.json`` members.

    A truncated tar raises, or with ``skips`` (a list) keeps the members before the damage and appends
    ``{"file", "error"}`` to ``skips``."""
    size = path.stat().st_size
    images: dict[str, tuple[str, int, int]] = {}
    cls: dict[str, str] = {}
    meta: dict[str, dict] = {}
    last = "(start)"
    cut = len(skips) if skips is not None else 0
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tf:
                if not m.isfile():
                    continue
                last = m.name
                if m.offset_data + m.size > size:
                    msg = f"webdataset {path}: expected complete members, found {m.name} truncated (tar cut short)"
                    if skips is None:
                        raise _err(msg)
                    skips.append({"file": str(path), "error": msg})
                    break
                d, _, b = m.name.rpartition("/")
                stem, dot, ext = b.partition(".")
                key = f"{d}/{stem}" if d else stem
                low = ext.lower()
                if low in TAR_IMAGE_EXT:
                    images[key] = (ext, m.offset_data, m.size)  # the name keeps the extension's case
                elif low == "cls":
                    cls[key] = tf.extractfile(m).read().decode("utf-8", "replace").strip()
                elif low == "json":
                    try:
                        meta[key] = json.loads(tf.extractfile(m).read())
                    except ValueError as exc:
                        raise _err(f"webdataset {path} member {m.name}: expected JSON, found {_short(exc)}") from None
            else:  # tarfile stops quietly at a cut header: a complete tar ends with a zero block
                end = tf.offset
                with open(path, "rb") as fh:
                    fh.seek(end)
                    tail = fh.read(512)
                if len(tail) < 512 or tail.count(0) != 512:
                    msg = (
                        f"webdataset {path}: expected complete members and the end-of-archive block, found the tar "
                        f"cut short at byte {end:,} after member {last}"
                    )
                    if skips is None:
                        raise _err(msg)
                    skips.append({"file": str(path), "error": msg})
    except InvalidInputError:
        raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        msg = f"webdataset {path}: expected a complete tar, found {_short(exc)} after member {last}"
        if skips is None:
            raise _err(msg) from None
        skips.append({"file": str(path), "error": msg})
    wnid, base, pos, sz = [], [], [], []
    for key, (ext, off, n) in images.items():
        where = f"webdataset {path} member {key}"
        name = _json_class_name(meta[key]) if key in meta else None
        if key in cls:
            w = _class_of_label(cls[key], wnids, f"{where}.cls")
        elif key in meta:
            w, name = _json_class(meta[key], wnids, f"{where}.json")
        elif skips is not None and len(skips) > cut:  # its class member was in the lost tail
            continue
        else:
            raise _err(f"{where}.{ext}: expected a {key}.cls or {key}.json member with its class, found neither")
        wnid.append(w)
        base.append((name or f"{key.rsplit('/', 1)[-1]}.{ext}").replace("\\", "/").rsplit("/", 1)[-1])
        pos.append(off)
        sz.append(n)
    return _frame(split, wnid, base, str(path), pos, sz)


def _json_class_name(meta: dict) -> str | None:
    return next((str(meta[k]) for k in JSON_NAME_FIELDS if meta.get(k)), None)


# --- reading -------------------------------------------------------------------------------------------


class SourceDataset:
    """``ds[i] -> (transform(RGB image), label, "")`` for row ``i`` of a listing; with ``skip_bad`` a
    corrupt image gives ``(None, label, error)`` instead of raising. A torch map-style dataset (the
    file handles and the row-group cache are per process, opened lazily)."""

    def __init__(self, fmt: str, table: pd.DataFrame, labels, transform=None, skip_bad: bool = False):
        self.format = fmt
        self.sample_ids = table["sample_id"].to_numpy(dtype=object)
        self.files = table["file"].to_numpy(dtype=object)
        self.pos = table["pos"].to_numpy(dtype=np.int64)
        self.size = table["size"].to_numpy(dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.transform = transform
        self.skip_bad = bool(skip_bad)
        self._handles: dict = {}
        self._groups: dict = {}

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_handles"], d["_groups"] = {}, {}
        return d

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "sample_id": self.sample_ids,
                "file": self.files,
                "pos": self.pos,
                "size": self.size,
                "label": self.labels,
            }
        )

    @classmethod
    def from_table(cls, fmt: str, t: pd.DataFrame, transform=None, skip_bad: bool = False) -> "SourceDataset":
        return cls(fmt, t, t["label"].to_numpy(), transform, skip_bad)

    def __len__(self) -> int:
        return len(self.sample_ids)

    def where(self, i: int) -> str:
        if self.format == "parquet":
            return f"parquet {self.files[i]} row group {self.pos[i]} row {self.size[i]}"
        if self.format == "webdataset":
            return f"webdataset {self.files[i]} member at byte {self.pos[i]} ({self.sample_ids[i]})"
        return str(self.files[i])

    def _bytes(self, i: int) -> bytes | str:
        f = self.files[i]
        if self.format == "folder":
            return f
        if self.format == "webdataset":
            h = self._handles.get(f)
            if h is None:
                if len(self._handles) > 8:
                    for old in self._handles.values():
                        old.close()
                    self._handles.clear()
                h = self._handles[f] = open(f, "rb")  # noqa: SIM115 (kept open across items)
            h.seek(int(self.pos[i]))
            data = h.read(int(self.size[i]))
            if len(data) != int(self.size[i]):
                raise OSError(f"read {len(data)} of {int(self.size[i])} bytes (tar cut short)")
            return data
        key = (f, int(self.pos[i]))
        col = self._groups.get(key)
        if col is None:
            import pyarrow.parquet as pq

            if len(self._groups) >= 2:
                self._groups.pop(next(iter(self._groups)))
            t = pq.ParquetFile(f).read_row_group(key[1], columns=["image.bytes"])
            col = self._groups[key] = t.column("image").combine_chunks().field("bytes")
        return col[int(self.size[i])].as_py()

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            src = self._bytes(i)
            if src is None:
                raise OSError("no image bytes")
            with Image.open(src if isinstance(src, str) else io.BytesIO(src)) as im:
                img = im.convert("RGB")
        except (OSError, ValueError, SyntaxError) as exc:  # PIL errors, truncated files, arrow errors
            msg = f"expected a readable image at {self.where(i)}, found {_short(exc)}"
            if self.skip_bad:
                return None, int(self.labels[i]), msg
            raise _err(f"images: {msg}; pass --skip-bad to skip and count such images") from None
        return (self.transform(img) if self.transform is not None else img), int(self.labels[i]), ""


def collate(batch):
    """``(images stacked, positions in the batch that were skipped, their errors)``."""
    from torch.utils.data import default_collate

    good = [b[0] for b in batch if b[0] is not None]
    bad = [k for k, b in enumerate(batch) if b[0] is None]
    xb = default_collate(good) if good else None  # in a worker: stacked straight into shared memory
    return xb, bad, [batch[k][2] for k in bad]


__all__ = ["FORMATS", "Source", "SourceDataset", "open_source", "collate", "winter21_wnids", "IMAGE_EXTENSIONS"]
