"""Exact cosine k-nearest-neighbour mining with faiss (docs/features.md, "Exact kNN mining").

* :func:`exact_knn` -- in-memory, L2-normalised float32 rows -> int32 ``(N, k)`` neighbour ids.
* :func:`mine_knn` -- a :class:`~in21k_bench.features.store.FeatureStore` -> an int32 ``.npy``
  memmap on disk, resumable chunk by chunk.

Both search every query chunk against every database block with an exact ``IndexFlatIP``
(``GpuIndexFlatIP`` via ``faiss.index_cpu_to_all_gpus`` on ``device="cuda"``) and merge the
per-block top lists, so memory is bounded by one query chunk plus one database block: 11 M x 1024
rows never have to sit in RAM or on one GPU at once.

Self exclusion is *by index*: each row asks for ``k + 1`` neighbours and drops its own row index
wherever it appears in the list; when it does not appear (possible with exact duplicates, which tie
with the row itself) the last of the ``k + 1`` is dropped. The TEMI reference code instead dropped the
first column, which leaks self-pairs whenever a duplicate outranks the row itself.

Neighbour lists are sorted by decreasing cosine similarity; ties are broken by lower row index first.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InvalidInputError
from ..fileio import check_output_dir, ensure_dir, save_npy, write_json
from ..runtime.device import faiss_num_gpus  # noqa: F401  (faiss_num_gpus: re-exported)
from ..runtime.device import resolve_device as _resolve

DEFAULT_CHUNK_ROWS = 65_536
DEFAULT_MAX_DB_BYTES = 4 << 30  # float32 bytes of one database block


# ------------------------------------------------------------------------------------------------
# faiss device handling (shared with methods.kmeans)
# ------------------------------------------------------------------------------------------------


def resolve_device(device: str | None) -> str:
    """:func:`in21k_bench.runtime.device.resolve_device` for faiss (kept for callers of this module)."""
    return _resolve(device, engine="faiss")


def flat_ip_index(dim: int, device: str):
    """An exact inner-product index: on the CPU, on one GPU (``cuda:N``), or split across all
    visible GPUs (``cuda``: each GPU holds a slice of the database, so larger blocks fit)."""
    import faiss

    index = faiss.IndexFlatIP(int(dim))
    if device == "cuda":
        co = faiss.GpuMultipleClonerOptions()
        co.shard = True
        index = faiss.index_cpu_to_all_gpus(index, co=co)
    elif device.startswith("cuda:"):
        gpu = int(device.split(":")[1])
        if gpu not in _GPU_RESOURCES:  # one allocator per GPU, alive as long as the process
            _GPU_RESOURCES[gpu] = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(_GPU_RESOURCES[gpu], gpu, index)
    return index


_GPU_RESOURCES: dict = {}


# ------------------------------------------------------------------------------------------------
# Core: one query chunk against a sequence of database blocks
# ------------------------------------------------------------------------------------------------


def _merge_topk(dists: list[np.ndarray], ids: list[np.ndarray], kk: int) -> tuple[np.ndarray, np.ndarray]:
    if len(dists) == 1:
        return dists[0], ids[0]
    d = np.concatenate(dists, axis=1)
    i = np.concatenate(ids, axis=1)
    # sort by (-similarity, id): lexsort keys are applied last-first
    order = np.lexsort((np.where(i < 0, np.iinfo(np.int64).max, i), -d), axis=1)[:, :kk]
    return np.take_along_axis(d, order, axis=1), np.take_along_axis(i, order, axis=1)


def _drop_self(ids: np.ndarray, first_row: int) -> np.ndarray:
    """``ids`` (q, k+1) -> (q, k): drop each row's own index, or the last column when absent."""
    q, kk = ids.shape
    own = np.arange(first_row, first_row + q, dtype=ids.dtype)[:, None]
    keep = ids != own
    no_self = keep.all(axis=1)
    keep[no_self, kk - 1] = False
    return ids[keep].reshape(q, kk - 1)


def _search_chunk(queries: np.ndarray, first_row: int, blocks: Callable, kk: int) -> np.ndarray:
    """Top-``kk`` ids of ``queries`` over all database blocks, self removed -> (q, kk - 1) int64."""
    dists, ids = [], []
    for offset, index in blocks():
        d, i = index.search(queries, min(kk, index.ntotal))
        if i.shape[1] < kk:  # a block smaller than kk: pad
            pad = kk - i.shape[1]
            d = np.pad(d, ((0, 0), (0, pad)), constant_values=-np.inf)
            i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
        i = np.where(i >= 0, i + offset, -1)
        dists.append(d)
        ids.append(i)
        if len(dists) > 1:  # keep memory at two blocks' lists
            d0, i0 = _merge_topk(dists, ids, kk)
            dists, ids = [d0], [i0]
    _, top = _merge_topk(dists, ids, kk)
    return _drop_self(top, first_row)


def _check_k(k: int, n: int) -> None:
    if k < 1:
        raise InvalidInputError(f"knn: expected k >= 1, found {k}")
    if k >= n:
        raise InvalidInputError(
            f"knn: expected k < number of rows ({n}) since a row is not its own neighbour, found k={k}"
        )


def _check_rows(chunk_rows: int, db_rows: int | None) -> None:
    if int(chunk_rows) < 1:
        raise InvalidInputError(f"knn: expected chunk_rows >= 1, found {chunk_rows}")
    if db_rows is not None and int(db_rows) < 1:
        raise InvalidInputError(f"knn: expected db_rows >= 1 (or unset), found {db_rows}")


def _progress(total: int, desc: str, initial: int = 0):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="rows",
        unit_scale=True,
        file=sys.stderr,
        disable=None,
        dynamic_ncols=True,
    )


# ------------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------------


def exact_knn(
    x: np.ndarray,
    k: int,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    device: str = "cpu",
    db_rows: int | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Exact cosine top-``k`` neighbours of every row of ``x`` among the other rows.

    ``x`` must already be L2-normalised float32 (the inner product is the cosine). Returns int32
    ``(N, k)``, most similar first, self excluded by index. ``db_rows`` splits the database into
    blocks (default: one block).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InvalidInputError(f"exact_knn: expected a 2-D array, found shape {x.shape}")
    n, dim = x.shape
    _check_k(k, n)
    _check_rows(chunk_rows, db_rows)
    dev = resolve_device(device)
    db_rows = n if db_rows is None else int(db_rows)
    indexes = []
    for a in range(0, n, db_rows):
        index = flat_ip_index(dim, dev)
        index.add(x[a : a + db_rows])
        indexes.append((a, index))
    out = np.empty((n, k), dtype=np.int32)
    bar = _progress(n, "knn") if progress else None
    for a in range(0, n, chunk_rows):
        b = min(a + chunk_rows, n)
        out[a:b] = _search_chunk(x[a:b], a, lambda: indexes, k + 1)
        if bar is not None:
            bar.update(b - a)
    if bar is not None:
        bar.close()
    return out


def _progress_path(out: Path) -> Path:
    return out.with_name(out.name + ".progress.json")


def _partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.npy")


def mine_knn(
    store,
    k: int,
    out_path: str | os.PathLike,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    device: str = "auto",
    db_rows: int | None = None,
    max_db_bytes: int = DEFAULT_MAX_DB_BYTES,
    progress: bool = True,
    dist=None,
) -> np.ndarray | None:
    """Mine exact top-``k`` cosine neighbours of every row of ``store`` into ``out_path`` (int32 ``.npy``).

    Query chunks of ``chunk_rows`` rows are searched against database blocks of ``db_rows`` rows
    (default: as many as fit in ``max_db_bytes`` of float32; one block -- built once -- when the whole
    store fits). The result is written to ``<out>.partial.npy`` (a memmap) and every finished chunk is
    recorded in ``<out>.progress.json`` after the memmap is flushed; a re-run with the same arguments
    skips recorded chunks. On completion the file is renamed to ``out_path`` and a small
    ``<out>.json`` describes it. Returns the result opened read-only as a memmap.

    Several processes (``dist``, from :func:`in21k_bench.runtime.distributed.init` under torchrun): each
    rank searches its round-robin share of the query chunks against the full database and writes
    every finished chunk to ``<out>.parts/chunk-NNNNN.npy``; rank 0 assembles ``out_path`` in order
    (identical to the one-process file) and returns it, the other ranks return None. A re-run with
    any number of processes continues the missing chunks. ``dist.device`` is the rank's device.
    """
    out = Path(out_path)
    if out.suffix != ".npy":
        raise InvalidInputError(f"knn: expected an output path ending in .npy, found {out}")
    n, dim = store.num_rows, store.dim
    _check_k(k, n)
    _check_rows(chunk_rows, db_rows)
    dev = dist.device if dist is not None and dist.enabled else resolve_device(device)
    if out.is_dir():
        raise InvalidInputError(f"knn: expected an output file path ending in .npy, found a folder at {out}")
    check_output_dir(out.parent, "knn")
    if db_rows is None:
        db_rows = max(1, min(n, int(max_db_bytes) // (4 * dim)))
    db_rows = int(db_rows)
    num_chunks = (n + chunk_rows - 1) // chunk_rows
    desc = {
        "k": int(k),
        "num_rows": n,
        "dim": dim,
        "chunk_rows": int(chunk_rows),
        "store": str(Path(store.path).resolve()),
        "backbone": store.backbone,
        "view": getattr(store, "view_name", None),
    }

    if out.is_file() and not _progress_path(out).is_file():
        info = out.with_suffix(".json")
        prev = _read_json_or_empty(info)
        if all(prev.get(key) == desc[key] for key in ("k", "num_rows", "store")) and prev.get("view") == desc["view"]:
            if dist is None or dist.is_main:
                print(f"knn: {out} is already complete; nothing to do", file=sys.stderr)
            return np.load(out, mmap_mode="r", allow_pickle=False) if dist is None or dist.is_main else None

    blocks = _database(store, n, dim, db_rows, chunk_rows, dev)
    if (dist is not None and dist.enabled) or _parts_dir(out).is_dir():
        from ..runtime.distributed import Dist

        return _mine_parts(store, k, out, desc, blocks, chunk_rows, dist or Dist(device=dev), progress)

    prog_file, partial = _progress_path(out), _partial_path(out)
    done: set[int] = set()
    if prog_file.is_file() and partial.is_file():
        prog = _read_json_or_empty(prog_file)
        for key in ("k", "num_rows", "dim", "chunk_rows", "store", "view"):
            if prog.get(key) != desc[key]:
                raise InvalidInputError(
                    f"knn: resuming {partial} needs the same {key}; expected {desc[key]!r}, found {prog.get(key)!r} "
                    f"(delete {prog_file} to start over)"
                )
        done = {int(c) for c in prog.get("done", [])}
        mm = np.load(partial, mmap_mode="r+", allow_pickle=False)
        if mm.shape != (n, k) or mm.dtype != np.int32:
            raise InvalidInputError(f"knn: expected {partial} of shape ({n}, {k}) int32, found {mm.shape} {mm.dtype}")
        print(f"knn: resuming, {len(done)}/{num_chunks} chunks already done", file=sys.stderr)
    else:
        ensure_dir(out.parent, "knn")
        mm = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int32, shape=(n, k))
        write_json(prog_file, {**desc, "done": []})

    block_iter = blocks
    bar = (
        _progress(n, f"knn k={k}", initial=sum(min(chunk_rows, n - c * chunk_rows) for c in done)) if progress else None
    )
    for c in range(num_chunks):
        if c in done:
            continue
        a = c * chunk_rows
        b = min(a + chunk_rows, n)
        q = next(store.iter_chunks(chunk_rows=b - a, start=a, stop=b))[1]
        mm[a:b] = _search_chunk(q, a, block_iter, k + 1)
        mm.flush()
        done.add(c)
        write_json(prog_file, {**desc, "done": sorted(done)})
        if bar is not None:
            bar.update(b - a)
    if bar is not None:
        bar.close()
    del mm
    os.replace(partial, out)
    _write_description(out, desc, dev)
    prog_file.unlink(missing_ok=True)
    return np.load(out, mmap_mode="r", allow_pickle=False)


def _write_description(out: Path, desc: dict, dev: str, world_size: int = 1) -> None:
    write_json(
        out.with_suffix(".json"),
        {
            **desc,
            "metric": "cosine",
            "self_excluded": "by index",
            "order": "most similar first",
            "dtype": "int32",
            "device": dev,
            "processes": int(world_size),
        },
    )


def _database(store, n: int, dim: int, db_rows: int, chunk_rows: int, dev: str):
    """``blocks()`` -> the database blocks ``(offset, index)``: built once when the store fits in one
    block, else streamed from the store for every query chunk (bounded memory)."""
    cached: list = []

    def blocks():
        if db_rows < n:
            return _stream_blocks(store, db_rows, dim, dev)
        if not cached:
            index = flat_ip_index(dim, dev)
            for _, xb in store.iter_chunks(chunk_rows=min(n, DEFAULT_CHUNK_ROWS), normalize=True):
                index.add(xb)
            cached.append((0, index))
        return cached

    return blocks


def _parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _mine_parts(
    store, k: int, out: Path, desc: dict, blocks, chunk_rows: int, dist, progress: bool
) -> np.ndarray | None:
    """The multi-process path of :func:`mine_knn` (also a one-process re-run of a multi-process run)."""
    from ..runtime.distributed import fault_point, my_units

    n = desc["num_rows"]
    num_chunks = (n + chunk_rows - 1) // chunk_rows
    parts = _parts_dir(out)

    def prepare():
        if _progress_path(out).is_file():
            raise InvalidInputError(
                f"knn: {_partial_path(out)} is a one-process run in progress; resume it with one process "
                f"(the same command without torchrun) or delete {_progress_path(out)} to start over"
            )
        ensure_dir(parts, "knn")
        prev = _read_json_or_empty(parts / "meta.json")
        if prev:
            for key in ("k", "num_rows", "dim", "chunk_rows", "store", "view"):
                if prev.get(key) != desc[key]:
                    raise InvalidInputError(
                        f"knn: resuming {parts} needs the same {key}; expected {desc[key]!r}, found {prev.get(key)!r} "
                        f"(re-run with the original arguments, or delete {parts} to start over)"
                    )
        else:
            write_json(parts / "meta.json", desc)

    dist.main_first(prepare)
    # rank 0's view of the shared folder: the same list on every rank
    todo = dist.main_first(lambda: [c for c in range(num_chunks) if not (parts / f"chunk-{c:05d}.npy").is_file()])
    if dist.is_main and len(todo) < num_chunks:
        print(f"knn: resuming, {num_chunks - len(todo)}/{num_chunks} chunks already done", file=sys.stderr)
    mine = my_units(todo, dist)
    total = sum(min(chunk_rows, n - c * chunk_rows) for c in mine)
    bar = (
        _progress(total, f"knn k={k}" + (f" [rank {dist.rank}/{dist.world_size}]" if dist.enabled else ""))
        if progress and dist.is_main
        else None
    )
    for c in mine:
        a, b = c * chunk_rows, min((c + 1) * chunk_rows, n)
        q = next(store.iter_chunks(chunk_rows=b - a, start=a, stop=b))[1]
        save_npy(parts / f"chunk-{c:05d}.npy", _search_chunk(q, a, blocks, k + 1).astype(np.int32))
        fault_point("knn", c)
        if bar is not None:
            bar.update(b - a)
    if bar is not None:
        bar.close()
    dist.barrier()  # every chunk is on disk

    def assemble():
        from ..runtime.distributed import wait_for

        wait_for([parts / f"chunk-{c:05d}.npy" for c in range(num_chunks)])  # other nodes' files may show up late
        partial = _partial_path(out)
        mm = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int32, shape=(n, k))
        for c in range(num_chunks):
            f = parts / f"chunk-{c:05d}.npy"
            if not f.is_file():
                raise InvalidInputError(
                    f"knn: expected every chunk of {parts} finished, found {f.name} missing; re-run the same command"
                )
            a, b = c * chunk_rows, min((c + 1) * chunk_rows, n)
            mm[a:b] = np.load(f, allow_pickle=False)
        mm.flush()
        del mm
        os.replace(partial, out)
        _write_description(out, desc, dist.device, dist.world_size)
        for f in parts.iterdir():
            f.unlink()
        parts.rmdir()

    dist.main_first(assemble)
    return np.load(out, mmap_mode="r", allow_pickle=False) if dist.is_main else None


def default_knn_path(store, k: int) -> Path:
    """``<store>/knn-k<k>.npy``, or ``<store>/knn-k<k>-<benchmark>.npy`` for a benchmark's view of a larger store."""
    view = getattr(store, "view_name", None)
    return Path(store.path) / (f"knn-k{int(k)}-{view}.npy" if view else f"knn-k{int(k)}.npy")


def _read_json_or_empty(path: Path) -> dict:
    """A small JSON record this module wrote; an unreadable one counts as absent."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (ValueError, OSError):
        return {}
    return obj if isinstance(obj, dict) else {}


def _stream_blocks(store, db_rows: int, dim: int, dev: str):
    """Database blocks read from the store one at a time (bounded memory: one block)."""
    for a, xb in store.iter_chunks(chunk_rows=db_rows, normalize=True):
        index = flat_ip_index(dim, dev)
        index.add(xb)
        yield a, index
        del index
