"""The feature store: one row of features per sample, in canonical sample order, on disk.

Layout of a store directory (one split)::

    meta.json          backbone, dim, split, benchmark, version, dtype, num_rows, complete,
                       shards: [{file, rows, sha256}, ...]
    index.parquet      sample_id, shard, row (+ label when known), one row per sample, in order
    shard-00000.npy    float16 (rows, dim), plain .npy, memory-mapped on read
    shard-00001.npy    ...

A *features directory* holds two stores, ``train/`` and ``val/`` (:func:`open_features`).

Reading never loads a shard whole: shards are opened with ``np.load(mmap_mode="r")`` and
:meth:`FeatureStore.iter_chunks` converts one chunk at a time to float32, L2-normalised on the fly.
ImageNet-21K with a ViT-L (11 M x 1024 at fp16, 22 GB) is streamed in 65,536-row chunks.

Writing (:class:`FeatureStoreWriter`) buffers rows until a shard is full, then writes the shard and a
small per-shard id file atomically and records the shard in ``meta.json``. A killed writer leaves only
complete shards behind; opening a writer on the same directory continues after the last complete shard
(``writer.num_rows`` says how many rows are already stored). :meth:`FeatureStoreWriter.close` writes the
final ``index.parquet`` and marks the store complete.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import ChecksumError, InvalidInputError
from ..fileio import atomic_path, ensure_dir, save_npy, sha256_file, write_json

FORMAT_VERSION = 1
DEFAULT_SHARD_ROWS = 65_536
META = "meta.json"
INDEX = "index.parquet"
_EPS = 1e-12


def shard_name(i: int) -> str:
    """File name of shard ``i`` (rows ``[i * shard_rows, (i + 1) * shard_rows)``)."""
    return f"shard-{i:05d}.npy"


def ids_name(i: int) -> str:
    """The per-shard sample-id (+ label) file kept while a store is being written."""
    return f"shard-{i:05d}.ids.parquet"


def l2_normalize(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    x = np.asarray(x)
    if out is None:
        out = x.astype(np.float32, copy=True)
    else:
        out[...] = x
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    np.maximum(norms, _EPS, out=norms)
    out /= norms[:, None]
    return out


def read_meta(path: Path) -> dict:
    f = path / META
    if not f.is_file():
        raise InvalidInputError(f"feature store: expected {META} in {path}, found none (not a feature store)")
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"feature store: expected valid JSON in {f}, found a parse error ({exc.msg})") from None
    except UnicodeDecodeError:
        raise InvalidInputError(
            f"feature store: expected UTF-8 JSON text in {f}, found binary or non-UTF-8 bytes"
        ) from None
    except OSError as exc:
        raise InvalidInputError(
            f"feature store: expected a readable {META} in {path}, found {exc.strerror or exc.__class__.__name__}"
        ) from None
    if not isinstance(meta, dict):
        raise InvalidInputError(f"feature store: expected a JSON object in {f}, found {type(meta).__name__}")
    for key in ("dim", "shards", "backbone"):
        if key not in meta:
            raise InvalidInputError(f"feature store: expected key {key!r} in {f}, found keys {sorted(meta)}")
    b = meta["backbone"]
    if not (isinstance(b, str) or (isinstance(b, dict) and isinstance(b.get("name"), str))):
        raise InvalidInputError(
            f"feature store: expected 'backbone' a name or an object with a 'name' in {f}, found {b!r:.80}"
        )
    dim = meta["dim"]
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise InvalidInputError(f"feature store: expected 'dim' a positive integer in {f}, found {dim!r}")
    shards = meta["shards"]
    if not isinstance(shards, list):
        raise InvalidInputError(f"feature store: expected 'shards' a list in {f}, found {type(shards).__name__}")
    for i, sh in enumerate(shards):
        ok = (
            isinstance(sh, dict)
            and isinstance(sh.get("file"), str)
            and sh["file"] == Path(sh["file"]).name
            and sh["file"] not in ("", ".", "..")
            and isinstance(sh.get("rows"), int)
            and not isinstance(sh.get("rows"), bool)
            and sh["rows"] >= 0
        )
        if not ok:
            raise InvalidInputError(
                f"feature store: expected shard {i} in {f} as {{file: <name in the store folder>, rows: int >= 0, "
                f"sha256}}, found {str(sh)[:120]}"
            )
    return meta


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------


class FeatureStore:
    """A complete feature store opened for reading. Use :meth:`open`."""

    def __init__(self, path: Path, meta: dict, index: pd.DataFrame | None = None):
        self.path = Path(path)
        self.meta = meta
        self.dim = int(meta["dim"])
        self._shard_rows = np.array([int(s["rows"]) for s in meta["shards"]], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self._shard_rows)]).astype(np.int64)
        self.num_rows = int(self.offsets[-1])
        self._shards: list[np.ndarray] | None = None
        self._index = index

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = False) -> "FeatureStore":
        """Open a complete store. ``verify=True`` also checks every shard's sha256 (reads all data)."""
        path = Path(path)
        if not path.is_dir():
            raise InvalidInputError(f"feature store: expected a directory at {path}, found none")
        meta = read_meta(path)
        if not meta.get("complete", False):
            done = sum(int(s["rows"]) for s in meta["shards"])
            raise InvalidInputError(
                f"feature store {path}: expected a complete store, found a partial one ({len(meta['shards'])} shards, "
                f"{done} rows); re-run the command that writes it to resume"
            )
        store = cls(path, meta)
        if int(meta.get("num_rows", store.num_rows)) != store.num_rows:
            raise InvalidInputError(
                f"feature store {path}: meta.json num_rows {meta['num_rows']} != sum of shard rows {store.num_rows}"
            )
        for s in meta["shards"]:
            f = path / s["file"]
            if not f.is_file():
                raise InvalidInputError(f"feature store {path}: expected shard {s['file']}, found none")
            if verify and sha256_file(f) != s.get("sha256"):
                raise ChecksumError(f"feature store {path}: shard {s['file']} sha256 differs from meta.json")
        store._load_shards()
        if verify:
            idx = store.index
            if len(idx) != store.num_rows:
                raise ChecksumError(
                    f"feature store {path}: index.parquet has {len(idx)} rows, shards hold {store.num_rows}"
                )
        return store

    def _load_shards(self) -> None:
        shards = []
        for s in self.meta["shards"]:
            try:
                arr = np.load(self.path / s["file"], mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise InvalidInputError(
                    f"feature store {self.path}: expected shard {s['file']} to be a complete .npy of shape "
                    f"({s['rows']}, {self.dim}), "
                    f"found an unreadable or truncated file ({' '.join(str(exc).split())[:160]})"
                ) from None
            if arr.dtype.kind != "f":
                raise InvalidInputError(
                    f"feature store {self.path}: expected shard {s['file']} of floats, found dtype {arr.dtype}"
                )
            if arr.ndim != 2 or arr.shape[1] != self.dim or arr.shape[0] != int(s["rows"]):
                raise InvalidInputError(
                    f"feature store {self.path}: expected shard {s['file']} of shape ({s['rows']}, {self.dim}), found "
                    f"{arr.shape}"
                )
            shards.append(arr)
        self._shards = shards

    def verify(self) -> None:
        """Check every shard's sha256 against ``meta.json`` (raises :class:`ChecksumError`)."""
        FeatureStore.open(self.path, verify=True)

    # --- metadata ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r}, rows={self.num_rows}, dim={self.dim}, backbone={self.backbone!r})"

    @property
    def backbone(self) -> str:
        """The backbone's name (``meta.json`` ``backbone``: a name, or a record with ``name``)."""
        b = self.meta.get("backbone")
        return str(b.get("name")) if isinstance(b, dict) else str(b)

    @property
    def backbone_record(self) -> dict:
        """The backbone record of ``meta.json`` (``name``, and for extracted stores ``spec``, ``loader``,
        ``weights``, ``checkpoint_sha256``, ``dim``); ``{"name": ...}`` for stores that give only a name."""
        b = self.meta.get("backbone")
        return dict(b) if isinstance(b, dict) else {"name": str(b)}

    @property
    def preprocessing(self) -> dict | None:
        """The image preprocessing of ``meta.json`` (``resize``, ``crop``, ``interpolation``, ``mean``,
        ``std``, ``mode``), or None when the store does not record it (simulated or older stores)."""
        p = self.meta.get("preprocessing")
        return dict(p) if isinstance(p, dict) else None

    @property
    def index(self) -> pd.DataFrame:
        """The ``index.parquet`` table (``sample_id``, ``shard``, ``row``, optional ``label``)."""
        if self._index is None:
            f = self.path / INDEX
            if not f.is_file():
                raise InvalidInputError(f"feature store {self.path}: expected {INDEX}, found none")
            try:
                idx = pq.read_table(f).to_pandas()
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInputError(
                    f"feature store {self.path}: expected a readable {INDEX}, found a corrupt file "
                    f"({' '.join(str(exc).split())[:160]})"
                ) from None
            if "sample_id" not in idx.columns:
                raise InvalidInputError(
                    f"feature store {self.path}: expected a 'sample_id' column in {INDEX}, found columns "
                    f"{list(idx.columns)}"
                )
            self._index = idx
        return self._index

    @property
    def sample_ids(self) -> np.ndarray:
        return self.index["sample_id"].to_numpy(dtype=object)

    @property
    def labels(self) -> np.ndarray | None:
        idx = self.index
        return idx["label"].to_numpy(dtype=np.int64) if "label" in idx.columns else None

    # --- data --------------------------------------------------------------------------------------
    def _rows(self, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) as float32 (a fresh array)."""
        out = np.empty((stop - start, self.dim), dtype=np.float32)
        first = int(np.searchsorted(self.offsets, start, side="right") - 1)
        pos, s = start, first
        while pos < stop:
            lo = pos - self.offsets[s]
            hi = min(stop, self.offsets[s + 1]) - self.offsets[s]
            out[pos - start : pos - start + (hi - lo)] = self._shards[s][lo:hi]
            pos += hi - lo
            s += 1
        return out

    def iter_chunks(
        self, chunk_rows: int = 65_536, normalize: bool = True, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(start_row, float32 array)`` chunks of at most ``chunk_rows`` rows, in order."""
        if chunk_rows < 1:
            raise InvalidInputError(f"iter_chunks: expected chunk_rows >= 1, found {chunk_rows}")
        stop = self.num_rows if stop is None else min(int(stop), self.num_rows)
        for a in range(int(start), stop, chunk_rows):
            b = min(a + chunk_rows, stop)
            x = self._rows(a, b)
            yield a, (l2_normalize(x, out=x) if normalize else x)

    def take(self, indices: Sequence[int] | np.ndarray, normalize: bool = True) -> np.ndarray:
        """Rows at ``indices`` (any order, repeats allowed) as a float32 array."""
        idx = np.asarray(indices, dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_rows):
            raise InvalidInputError(
                f"take: expected row indices in [0, {self.num_rows}), found [{idx.min()}, {idx.max()}]"
            )
        out = np.empty((idx.size, self.dim), dtype=np.float32)
        order = np.argsort(idx, kind="stable")  # read each shard in increasing row order
        sidx = idx[order]
        shard_of = np.searchsorted(self.offsets, sidx, side="right") - 1
        bounds = np.flatnonzero(np.diff(shard_of)) + 1
        for grp_lo, grp_hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [sidx.size]])):
            if grp_hi <= grp_lo:
                continue
            s = int(shard_of[grp_lo])
            local = sidx[grp_lo:grp_hi] - self.offsets[s]
            out[order[grp_lo:grp_hi]] = self._shards[s][local]
        return l2_normalize(out, out=out) if normalize else out

    def to_array(self, normalize: bool = True) -> np.ndarray:
        """The whole store as one float32 array (small stores only: 4 bytes x rows x dim of RAM)."""
        x = self._rows(0, self.num_rows) if self.num_rows else np.empty((0, self.dim), np.float32)
        return l2_normalize(x, out=x) if normalize else x

    def info(self) -> dict:
        labels = self.labels
        return {
            "path": str(self.path),
            "backbone": self.backbone,
            "backbone_record": self.backbone_record,
            "preprocessing": self.preprocessing,
            "dim": self.dim,
            "num_rows": self.num_rows,
            "num_shards": len(self.meta["shards"]),
            "split": self.meta.get("split"),
            "benchmark": self.meta.get("benchmark"),
            "version": self.meta.get("version"),
            "dtype": str(self._shards[0].dtype) if self._shards else self.meta.get("dtype", "float16"),
            "has_labels": labels is not None,
            "num_labels": int(len(np.unique(labels))) if labels is not None and len(labels) else 0,
            "synthetic": bool(self.meta.get("synthetic", False)),
            "size_bytes": int(sum((self.path / s["file"]).stat().st_size for s in self.meta["shards"])),
        }


def open_features(directory: str | os.PathLike) -> tuple[FeatureStore, FeatureStore]:
    """Open a features directory holding ``train/`` and ``val/`` stores."""
    d = Path(directory)
    missing = [s for s in ("train", "val") if not (d / s / META).is_file()]
    if missing:
        raise InvalidInputError(
            f"features directory {d}: expected stores train/ and val/ (each with {META}), found none for "
            f"{', '.join(missing)}; create one with `in21k-bench features extract|simulate|digits`"
        )
    train, val = FeatureStore.open(d / "train"), FeatureStore.open(d / "val")
    if train.dim != val.dim:
        raise InvalidInputError(
            f"features directory {d}: expected train and val of the same dim, found {train.dim} and {val.dim}"
        )
    return train, val


def open_store_or_train(path: str | os.PathLike) -> FeatureStore:
    """A store directory, or the ``train/`` store of a features directory."""
    p = Path(path)
    if (p / META).is_file():
        return FeatureStore.open(p)
    if (p / "train" / META).is_file():
        return FeatureStore.open(p / "train")
    raise InvalidInputError(
        f"features: expected a feature store (with {META}) or a features directory with train/ at {p}, found neither"
    )


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


class FeatureStoreWriter:
    """Write a store shard by shard; re-opening a partial store continues after its last complete shard.

    >>> w = FeatureStoreWriter(path, dim=768, backbone="timm:vit_base_patch16_224")
    >>> w.num_rows            # rows already stored (resume point)
    >>> w.append(x, sample_ids, labels)
    >>> w.close()
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dim: int,
        backbone: str,
        shard_rows: int = DEFAULT_SHARD_ROWS,
        *,
        split: str | None = None,
        benchmark: str | None = None,
        version: str | None = None,
        extra: dict | None = None,
        overwrite: bool = False,
    ):
        if shard_rows < 1:
            raise InvalidInputError(f"feature store writer: expected shard_rows >= 1, found {shard_rows}")
        self.path = Path(path)
        self.dim = int(dim)
        if self.dim < 1:
            raise InvalidInputError(f"feature store writer: expected dim >= 1, found {dim}")
        ensure_dir(self.path, "feature store")
        if overwrite:
            for f in self.path.iterdir():
                if f.name == META or f.name == INDEX or f.name.startswith("shard-"):
                    f.unlink()
        if (self.path / META).is_file():
            meta = read_meta(self.path)
            for key, want in (("dim", self.dim), ("backbone", backbone), ("shard_rows", int(shard_rows))):
                if meta.get(key) != want:
                    raise InvalidInputError(
                        f"feature store {self.path}: resuming needs the same {key}; expected {want!r}, found "
                        f"{meta.get(key)!r} (use another --out or overwrite)"
                    )
            self.meta = meta
        else:
            self.meta = {
                "format_version": FORMAT_VERSION,
                "backbone": backbone,
                "dim": self.dim,
                "dtype": "float16",
                "shard_rows": int(shard_rows),
                "split": split,
                "benchmark": benchmark,
                "version": version,
                "shards": [],
                "num_rows": 0,
                "has_labels": None,
                "complete": False,
                **(extra or {}),
            }
            write_json(self.path / META, self.meta)
        self.shard_rows = int(self.meta["shard_rows"])
        self._drop_orphans()
        self._buf_x: list[np.ndarray] = []
        self._buf_ids: list[np.ndarray] = []
        self._buf_labels: list[np.ndarray] = []
        self._buffered = 0

    def _drop_orphans(self) -> None:
        """Remove shard files written after the last shard recorded in meta.json (a kill between the two writes)."""
        known = {s["file"] for s in self.meta["shards"]} | {ids_name(i) for i in range(len(self.meta["shards"]))}
        for f in self.path.glob("shard-*"):
            if f.name not in known:
                f.unlink()

    @property
    def complete(self) -> bool:
        return bool(self.meta.get("complete"))

    @property
    def num_rows(self) -> int:
        """Rows stored in complete shards (the resume point); buffered rows are not counted."""
        return int(sum(int(s["rows"]) for s in self.meta["shards"]))

    def stored_sample_ids(self) -> np.ndarray:
        """Sample ids of the rows already in complete shards (to check a resume continues the same list)."""
        parts = [
            pq.read_table(self.path / ids_name(i)).column("sample_id").to_numpy(zero_copy_only=False)
            for i in range(len(self.meta["shards"]))
        ]
        if self.complete and not parts and (self.path / INDEX).is_file():
            return pq.read_table(self.path / INDEX).column("sample_id").to_numpy(zero_copy_only=False)
        return np.concatenate(parts).astype(object) if parts else np.empty(0, dtype=object)

    def append(self, x: np.ndarray, sample_ids: Sequence[str], labels: Sequence[int] | None = None) -> None:
        if self.complete:
            raise InvalidInputError(
                f"feature store {self.path}: expected an open store, found a complete one (nothing to append)"
            )
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InvalidInputError(
                f"feature store append: expected an array of shape (n, {self.dim}), found {x.shape}"
            )
        ids = np.asarray(sample_ids, dtype=object)
        if len(ids) != len(x):
            raise InvalidInputError(f"feature store append: expected {len(x)} sample ids, found {len(ids)}")
        if not np.isfinite(x).all():
            raise InvalidInputError("feature store append: expected finite features, found NaN or inf")
        has = labels is not None
        if self.meta.get("has_labels") is not None and self.meta["has_labels"] != has:
            want = "with labels" if self.meta["has_labels"] else "without labels"
            raise InvalidInputError(
                f"feature store append: expected every batch {want} (like the first), found one "
                f"{'with' if has else 'without'}"
            )
        if has:
            lab = np.asarray(labels, dtype=np.int64).ravel()
            if len(lab) != len(x):
                raise InvalidInputError(f"feature store append: expected {len(x)} labels, found {len(lab)}")
            self._buf_labels.append(lab)
        self.meta["has_labels"] = has
        self._buf_x.append(x.astype(np.float16))
        self._buf_ids.append(ids)
        self._buffered += len(x)
        while self._buffered >= self.shard_rows:
            self._flush(self.shard_rows)

    def _flush(self, rows: int) -> None:
        x = np.concatenate(self._buf_x) if len(self._buf_x) > 1 else self._buf_x[0]
        ids = np.concatenate(self._buf_ids) if len(self._buf_ids) > 1 else self._buf_ids[0]
        lab = (
            (np.concatenate(self._buf_labels) if len(self._buf_labels) > 1 else self._buf_labels[0])
            if self._buf_labels
            else None
        )
        i = len(self.meta["shards"])
        cols = {"sample_id": pa.array(ids[:rows].tolist(), type=pa.string())}
        if lab is not None:
            cols["label"] = pa.array(lab[:rows], type=pa.int64())
        with atomic_path(self.path / ids_name(i)) as tmp:
            pq.write_table(pa.table(cols), tmp)
        save_npy(self.path / shard_name(i), np.ascontiguousarray(x[:rows]))
        self.meta["shards"].append(
            {"file": shard_name(i), "rows": int(rows), "sha256": sha256_file(self.path / shard_name(i))}
        )
        self.meta["num_rows"] = self.num_rows
        write_json(self.path / META, self.meta)  # the shard counts only once it is recorded here
        rest = len(x) - rows
        self._buf_x = [x[rows:]] if rest else []
        self._buf_ids = [ids[rows:]] if rest else []
        self._buf_labels = [lab[rows:]] if (rest and lab is not None) else []
        self._buffered = rest

    def close(self) -> FeatureStore:
        """Flush the last partial shard, write ``index.parquet`` and mark the store complete."""
        if self.complete:
            return FeatureStore.open(self.path)
        if self._buffered:
            self._flush(self._buffered)
        self.meta = finish_store(self.path, self.meta)
        return FeatureStore.open(self.path)


def finish_store(path: Path, meta: dict) -> dict:
    """Complete a store whose shards (``meta["shards"]``, in order) and per-shard id files are written:
    write ``index.parquet`` from the id files, mark ``meta.json`` complete, remove the id files.
    Shared by :class:`FeatureStoreWriter` and the multi-process build (``features.parts``), so both
    produce the same files."""
    path = Path(path)
    meta = dict(meta)
    n = len(meta["shards"])
    tables = [pq.read_table(path / ids_name(i)) for i in range(n)]
    ids = pa.concat_tables(tables) if tables else pa.table({"sample_id": pa.array([], type=pa.string())})
    shard_col = np.repeat(np.arange(n, dtype=np.int32), [int(s["rows"]) for s in meta["shards"]])
    row_col = (
        np.concatenate([np.arange(int(s["rows"]), dtype=np.int64) for s in meta["shards"]])
        if n
        else np.empty(0, np.int64)
    )
    cols = {"sample_id": ids.column("sample_id"), "shard": pa.array(shard_col), "row": pa.array(row_col)}
    if "label" in ids.column_names:
        cols["label"] = ids.column("label")
    with atomic_path(path / INDEX) as tmp:
        pq.write_table(pa.table(cols), tmp)
    meta["complete"] = True
    meta["num_rows"] = int(sum(int(s["rows"]) for s in meta["shards"]))
    if meta.get("has_labels") is None:
        meta["has_labels"] = "label" in ids.column_names
    write_json(path / META, meta)
    for i in range(n):
        (path / ids_name(i)).unlink(missing_ok=True)
    return meta


def write_store(
    path: str | os.PathLike,
    x: np.ndarray,
    sample_ids: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    backbone: str = "unknown",
    shard_rows: int = DEFAULT_SHARD_ROWS,
    **meta,
) -> FeatureStore:
    """Write an in-memory array as a complete store (overwriting any store at ``path``)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise InvalidInputError(f"write_store: expected a 2-D array, found shape {x.shape}")
    if sample_ids is None:
        sample_ids = np.array([f"{i:09d}" for i in range(len(x))], dtype=object)
    extra = {k: v for k, v in meta.items() if k not in ("split", "benchmark", "version")}
    w = FeatureStoreWriter(
        path,
        x.shape[1],
        backbone,
        shard_rows=shard_rows,
        split=meta.get("split"),
        benchmark=meta.get("benchmark"),
        version=meta.get("version"),
        extra=extra,
        overwrite=True,
    )
    for a in range(0, len(x), shard_rows):
        w.append(
            x[a : a + shard_rows],
            np.asarray(sample_ids, dtype=object)[a : a + shard_rows],
            None if labels is None else np.asarray(labels)[a : a + shard_rows],
        )
    return w.close()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
