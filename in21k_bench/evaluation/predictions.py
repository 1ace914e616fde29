"""Prediction files: the one place that knows their formats, on disk and in memory.

A **predictions folder** is what every method writes (``in21k-bench kmeans``, ``in21k-bench fit``,
the demo) and what ``in21k-bench evaluate DIR`` reads:

- ``top1.npy``: int64 (N,), top-1 cluster id of every val sample, canonical val order;
- ``top5.npy``: int64 (N, k), ranked clusters, column 0 = top-1 (k = 5 unless K < 5);
- ``probs.npy``: float32 (N, K), cluster probabilities (optional; rows sum to 1);
- the run record: ``run.json`` (k-means) or ``fit.json`` (trained heads), JSON with the method's
  settings, plus ``prediction_files`` (file name -> sha256, shape, dtype) added by
  :func:`write_predictions`.

:func:`write_predictions` writes every array atomically (temp file + rename) and the run record
last, so a folder whose record lists a file's sha256 holds exactly that file.
:func:`read_prediction_folder` reads the arrays memory-mapped (never unpickled), checks shapes, dtypes,
row counts and, when the record lists them, the sha256 of every file.

Single files are accepted too (:func:`load_predictions`): a ``.npy`` int (N,) / int (N, k) / float
(N, K), or a ``.parquet`` / ``.csv`` table keyed by ``sample_id`` (a :class:`PredictionTable`, put in
canonical order by :func:`table_to_arrays`). Range checks (ids < K, probabilities summing
to 1, ...) are the evaluator's (:mod:`in21k_bench.evaluation.validation`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InvalidInputError
from ..fileio import ensure_dir, save_npy, sha256_file, write_json

TOP1_FILE = "top1.npy"
TOPK_FILE = "top5.npy"
PROBS_FILE = "probs.npy"
#: Array files of a predictions folder, in the order their hashes are combined.
PREDICTION_FILES: tuple[str, ...] = (TOP1_FILE, TOPK_FILE, PROBS_FILE)
#: Run record names: ``run.json`` (k-means) and ``fit.json`` (TEMI / SCANv2 heads).
RECORD_FILES: tuple[str, ...] = ("run.json", "fit.json")
_NPY_MAGIC = b"\x93NUMPY"

__all__ = [
    "TOP1_FILE",
    "TOPK_FILE",
    "PROBS_FILE",
    "PREDICTION_FILES",
    "RECORD_FILES",
    "PredictionArrays",
    "PredictionTable",
    "write_predictions",
    "read_prediction_folder",
    "read_run_record",
    "load_predictions",
    "open_npy",
    "array_sha256",
    "as_numeric_array",
    "table_to_arrays",
    "read_sample_ids",
    "check_id_classes",
]


@dataclass
class PredictionArrays:
    """Raw prediction arrays before validation (any may be None; at least one is needed):
    ``top1`` int (N,), ``topk`` int (N, k) ranked, ``probs`` float (N, K), ``confidence`` float (N,)."""

    top1: Any = None
    topk: Any = None
    probs: Any = None
    confidence: Any = None

    def first(self) -> Any:
        """The first array given (for its row count)."""
        return next((a for a in (self.top1, self.topk, self.probs, self.confidence) if a is not None), None)


@dataclass
class PredictionTable:
    """A ``.parquet`` / ``.csv`` prediction table: ``sample_id`` + ``cluster`` (+ ``topk`` list column or
    ``top1..topN`` columns, + ``probs`` list column), rows in any order. Put it in canonical order with
    :func:`table_to_arrays`."""

    frame: Any  # pandas.DataFrame
    path: Path | None = None


# ---------------------------------------------------------------------------------------------------
# writing


def write_predictions(
    out_dir: str | os.PathLike,
    top1: np.ndarray,
    topk: np.ndarray | None = None,
    probs: np.ndarray | None = None,
    *,
    record: Mapping | None = None,
    record_name: str = "run.json",
) -> dict:
    """Write a predictions folder: ``top1.npy`` (int64), ``top5.npy`` (int64 ranked, when given),
    ``probs.npy`` (float32, when given), each atomically, then the run record ``record_name`` (one of
    :data:`RECORD_FILES`) with ``prediction_files`` added, written last. Arrays are checked first
    (shapes, dtypes, equal rows, ``topk[:, 0] == top1``); a bad array raises
    :class:`~in21k_bench.errors.InvalidInputError` before anything is written. Returns the record."""
    what = f"predictions {out_dir}"
    if record_name not in RECORD_FILES:
        raise InvalidInputError(
            f"{what}: expected a run record named {' or '.join(RECORD_FILES)}, found {record_name!r}"
        )
    arrays = {TOP1_FILE: _int_array(top1, 1, what, "top1")}
    n = arrays[TOP1_FILE].shape[0]
    if topk is not None:
        tk = _int_array(topk, 2, what, "topk")
        if tk.shape[1] == 0:
            raise InvalidInputError(
                f"{what}: expected at least one column of ranked clusters, found shape {tuple(tk.shape)}"
            )
        if tk.shape[0] == n and not np.array_equal(tk[:, 0], arrays[TOP1_FILE]):
            i = int(np.flatnonzero(tk[:, 0] != arrays[TOP1_FILE])[0])
            raise InvalidInputError(
                f"{what}: expected topk[:, 0] == top1, found {int(tk[i, 0])} vs {int(arrays[TOP1_FILE][i])} (row {i})"
            )
        arrays[TOPK_FILE] = tk
    if probs is not None:
        p = np.asarray(probs)
        if p.ndim != 2 or p.dtype.kind != "f":
            raise InvalidInputError(f"{what}: expected probs as float (N, K), found {p.dtype} {tuple(p.shape)}")
        arrays[PROBS_FILE] = p.astype(np.float32, copy=False)
    rows = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(rows.values())) != 1:
        raise InvalidInputError(f"{what}: expected the same number of rows in every array, found {rows}")
    out = ensure_dir(out_dir, "predictions")
    files = {}
    for name, a in arrays.items():
        save_npy(out / name, a)
        files[name] = {"sha256": sha256_file(out / name), "shape": list(a.shape), "dtype": str(a.dtype)}
    rec = json.loads(json.dumps(dict(record or {}), default=str))
    rec["prediction_files"] = files
    write_json(out / record_name, rec)
    return rec


def _int_array(a, ndim: int, what: str, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != ndim or a.dtype.kind not in "iu":
        shape = "(N,)" if ndim == 1 else "(N, k)"
        raise InvalidInputError(f"{what}: expected {name} as int {shape}, found {a.dtype} {tuple(a.shape)}")
    return a.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------------
# reading


def open_npy(path: str | os.PathLike, what: str = "predictions") -> np.ndarray:
    """Memory-map a numeric ``.npy`` after checking its header and size ourselves: pickled, object,
    structured, truncated or non-npy files are an :class:`~in21k_bench.errors.InvalidInputError`
    (nothing is ever unpickled)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if magic != _NPY_MAGIC:
                kind = "pickled data" if magic[:1] == b"\x80" else "no NUMPY magic bytes"
                raise InvalidInputError(
                    f"{what}: expected a .npy array file at {path}, found {kind} (files are never unpickled)"
                )
            f.seek(0)
            try:
                major, _minor = np.lib.format.read_magic(f)
                reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = reader(f)
            except (ValueError, EOFError, OSError) as exc:
                raise InvalidInputError(
                    f"{what}: expected a complete .npy header in {path}, found a truncated or corrupt one ({exc})"
                ) from None
            if dtype.hasobject:
                raise InvalidInputError(
                    f"{what}: expected a numeric .npy in {path}, found object dtype (pickled arrays are never loaded)"
                )
            need = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if size < need:
            raise InvalidInputError(
                f"{what}: expected {need} bytes for a {dtype} {tuple(shape)} array in {path}, found {size} (truncated "
                "file)"
            )
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except InvalidInputError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(
            f"{what}: expected a readable .npy file at {path}, found an unreadable one ({exc.__class__.__name__}: "
            f"{exc})"
        ) from None
    if a.dtype.fields is not None or a.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what}: expected a numeric .npy array in {path}, found dtype {a.dtype}")
    return a


def _kind(a: np.ndarray) -> str:
    return f"{a.dtype} array of shape {tuple(a.shape)}"


def npy_to_arrays(a: np.ndarray, what: str) -> PredictionArrays:
    """Classify one array: 1-d = top-1 ids, 2-d float = probabilities, 2-d int = ranked clusters."""
    if a.ndim == 1:
        return PredictionArrays(top1=np.asarray(a))
    if a.ndim == 2 and a.dtype.kind == "f":
        return PredictionArrays(probs=a)
    if a.ndim == 2:
        return PredictionArrays(topk=np.asarray(a))
    raise InvalidInputError(
        f"{what}: expected a .npy of shape (N,), (N, k) or (N, K), found {a.ndim}-d array of shape {tuple(a.shape)}"
    )


def read_run_record(folder: str | os.PathLike, what: str = "predictions") -> dict | None:
    """The folder's run record (``run.json`` or ``fit.json``, the first found), or None when it has none.
    Unreadable JSON is an :class:`~in21k_bench.errors.InvalidInputError`."""
    for name in RECORD_FILES:
        p = Path(folder) / name
        if p.is_file():
            try:
                rec = json.loads(p.read_text())
            except (ValueError, OSError) as exc:
                raise InvalidInputError(
                    f"{what}: expected a JSON run record at {p}, found an unreadable file ({exc.__class__.__name__})"
                ) from None
            if not isinstance(rec, dict):
                raise InvalidInputError(f"{what}: expected a JSON object in {p}, found {type(rec).__name__}")
            return rec
    return None


def _folder_sha(shas: Mapping[str, str]) -> str:
    """One file: its sha256. Several: sha256 of the lines ``name:sha256`` in :data:`PREDICTION_FILES` order."""
    if len(shas) == 1:
        return next(iter(shas.values()))
    h = hashlib.sha256()
    for name, s in shas.items():
        h.update(f"{name}:{s}\n".encode())
    return h.hexdigest()


def read_prediction_folder(folder: str | os.PathLike, what: str = "predictions") -> tuple[PredictionArrays, str]:
    """Read a predictions folder -> (arrays, sha256). Needs at least one of ``top1.npy``, ``top5.npy``,
    ``probs.npy``; each must have its documented shape and kind, and all the same number of rows. When
    the run record lists ``prediction_files``, every listed file must exist with that sha256 (a file
    changed or truncated after the run is an error). The sha256 is the file's for one file, else the
    sha256 of the lines ``name:sha256`` in the order top1, top5, probs."""
    folder = Path(folder)
    present = [n for n in PREDICTION_FILES if (folder / n).is_file()]
    if not present:
        raise InvalidInputError(f"{what}: expected {', '.join(PREDICTION_FILES)} in folder {folder}, found none")
    shas = {n: sha256_file(folder / n) for n in present}
    rec = read_run_record(folder, what)
    listed = rec.get("prediction_files") if rec else None
    if isinstance(listed, dict):
        for name, meta in listed.items():
            want = meta.get("sha256") if isinstance(meta, dict) else None
            if name not in shas:
                raise InvalidInputError(f"{what}: expected {name} in {folder} (listed in its run record), found none")
            if want and shas[name] != want:
                raise InvalidInputError(
                    f"{what}: expected {name} with the sha256 in its run record ({want[:12]}...), found "
                    f"{shas[name][:12]}... (file changed after the run)"
                )
    arrays = PredictionArrays()
    for name in present:
        a = open_npy(folder / name, what)
        if name == TOP1_FILE:
            if a.ndim != 1:
                raise InvalidInputError(f"{what}: expected {name} of shape (N,), found {_kind(a)}")
            arrays.top1 = np.asarray(a)
        elif name == TOPK_FILE:
            if a.ndim != 2 or a.dtype.kind == "f":
                raise InvalidInputError(f"{what}: expected {name} as int (N, k), found {_kind(a)}")
            arrays.topk = np.asarray(a)
        else:
            if a.ndim != 2 or a.dtype.kind != "f":
                raise InvalidInputError(f"{what}: expected {name} as float (N, K), found {_kind(a)}")
            arrays.probs = a  # stays memory-mapped
    rows = {
        n: int(getattr(arrays, f).shape[0])
        for n, f in zip(PREDICTION_FILES, ("top1", "topk", "probs"))
        if getattr(arrays, f) is not None
    }
    if len(set(rows.values())) > 1:
        raise InvalidInputError(f"{what}: expected the same number of rows in every file of {folder}, found {rows}")
    return arrays, _folder_sha(shas)


def load_predictions(
    path: str | os.PathLike, what: str = "predictions"
) -> tuple[PredictionArrays | PredictionTable, str]:
    """Read a prediction file or folder -> (arrays or table, sha256 of the input).

    A folder: :func:`read_prediction_folder`. A ``.npy``: :func:`open_npy` then classified by shape and
    dtype. A ``.parquet`` / ``.csv``: a :class:`PredictionTable` (still keyed by ``sample_id``)."""
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"{what}: expected a predictions file or folder, found nothing at {path}")
    if path.is_dir():
        return read_prediction_folder(path, what)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        a = open_npy(path, what)
        return npy_to_arrays(a, what), sha256_file(path)
    if suffix in (".parquet", ".csv"):
        import pandas as pd

        try:
            df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype={"sample_id": str})
        except Exception as exc:  # pyarrow / pandas raise many types for corrupt files
            first = str(exc).splitlines()[0] if str(exc) else ""
            raise InvalidInputError(
                f"{what}: expected a readable {suffix} table at {path}, found an unreadable file "
                f"({exc.__class__.__name__}: {first})"
            ) from None
        return PredictionTable(df, path), sha256_file(path)
    raise InvalidInputError(f"{what}: expected a .npy, .parquet or .csv file or a folder, found {path.name!r}")


def array_sha256(arrays: PredictionArrays) -> str:
    """sha256 over the ``.npy`` serialisation of the given arrays (top1, topk, probs, confidence in that
    order); for one array this equals the sha256 of the file ``np.save`` writes."""
    h = hashlib.sha256()

    class _Sink:
        def write(self, b):
            h.update(b)

    for a in (arrays.top1, arrays.topk, arrays.probs, arrays.confidence):
        if a is not None:
            np.lib.format.write_array(_Sink(), np.asanyarray(a), allow_pickle=False)
    return h.hexdigest()


def as_numeric_array(x, what: str, name: str) -> np.ndarray:
    if x is None:
        return None
    if isinstance(x, np.ndarray):
        a = x
    else:
        try:
            a = np.asarray(x)
        except Exception as exc:  # ragged lists etc.
            raise InvalidInputError(
                f"{what}: expected {name} as a numeric array, found {type(x).__name__} that numpy cannot convert "
                f"({exc.__class__.__name__})"
            ) from None
    if a.dtype.hasobject or a.dtype.fields is not None or a.dtype.kind not in "biuf":
        raise InvalidInputError(
            f"{what}: expected {name} as a numeric array, found {a.dtype} dtype (object, string or structured arrays "
            "are not accepted)"
        )
    return a


# --------------------------------------------------------------------------- tables keyed by sample_id
# A table has ``sample_id`` and ``cluster`` columns, optionally ranked clusters (a ``topk`` list column, a
# space-separated string in CSV, or ``top1..topN`` columns) and ``probs`` (list column). Rows may come in
# any order; :func:`table_to_arrays` matches them to the canonical ids of the val split. Every id must
# appear exactly once; ids of a larger source that are not scored (``allowed_ids``) are ignored.


def _parse_list_column(col, what: str, name: str) -> np.ndarray:
    vals = col.tolist()
    try:
        if vals and isinstance(vals[0], str):
            rows = [
                [float(x) if name == "probs" else int(x) for x in v.replace(",", " ").replace(";", " ").split()]
                for v in vals
            ]
        else:
            rows = [list(v) for v in vals]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{what}: expected column {name!r} to hold lists of numbers, found unparsable values ({exc})"
        ) from None
    lengths = {len(r) for r in rows}
    if len(lengths) > 1:
        raise InvalidInputError(
            f"{what}: expected the same length in every {name!r} list, found lengths {sorted(lengths)[:5]}"
        )
    return as_numeric_array(np.asarray(rows), what, name)


def table_to_arrays(
    table, what: str, expected_ids: np.ndarray | None, allowed_ids: np.ndarray | None, id_hint: str
) -> PredictionArrays:
    """Table with ``sample_id`` -> arrays in the canonical order of ``expected_ids``. ``allowed_ids`` are
    extra ids that may be present and are ignored (ReaL: unscored ImageNet-1K val images)."""
    import pandas as pd

    df = table.frame if isinstance(table, PredictionTable) else table
    cols = list(df.columns)
    if "sample_id" not in cols:
        raise InvalidInputError(f"{what}: expected a 'sample_id' column, found columns {cols[:8]}")
    tops = sorted(
        (c for c in cols if isinstance(c, str) and c.startswith("top") and c[3:].isdigit()), key=lambda c: int(c[3:])
    )
    if "cluster" not in cols and not tops and "topk" not in cols and "probs" not in cols:
        raise InvalidInputError(
            f"{what}: expected a 'cluster' column (or topk / top1..topN / probs), found columns {cols[:8]}"
        )
    if expected_ids is None:
        raise InvalidInputError(
            f"{what}: expected sample ids of the val split to match a table, found none in the manifest ({id_hint})"
        )
    ids = df["sample_id"].astype(str).to_numpy()
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise InvalidInputError(
            f"{what}: expected each sample_id once, found duplicates (e.g. {ids[np.flatnonzero(dup)[0]]!r}, "
            f"{int(dup.sum())} in all)"
        )
    exp = pd.Index(np.asarray(expected_ids, dtype=str))
    pos = exp.get_indexer(ids)
    unknown = pos < 0
    if unknown.any():
        if allowed_ids is not None:
            ok = pd.Index(np.asarray(allowed_ids, dtype=str)).get_indexer(ids[unknown]) >= 0
            really = np.flatnonzero(unknown)[~ok]
        else:
            really = np.flatnonzero(unknown)
        if len(really):
            raise InvalidInputError(
                f"{what}: expected sample ids of the val split, found {len(really)} unknown (e.g. {ids[really[0]]!r})"
            )
    keep = ~unknown
    present = np.zeros(len(exp), dtype=bool)
    present[pos[keep]] = True
    if not present.all():
        miss = np.flatnonzero(~present)
        raise InvalidInputError(
            f"{what}: expected all {len(exp)} val sample ids, found {len(exp) - len(miss)} ({len(miss)} missing, e.g. "
            f"{exp[miss[0]]!r})"
        )
    order = np.empty(len(exp), dtype=np.int64)
    order[pos[keep]] = np.flatnonzero(keep)
    df = df.iloc[order].reset_index(drop=True)

    out = PredictionArrays()
    if "cluster" in cols:
        out.top1 = as_numeric_array(df["cluster"].to_numpy(), what, "cluster")
    if "topk" in cols:
        out.topk = _parse_list_column(df["topk"], what, "topk")
    elif tops:
        if [int(c[3:]) for c in tops] != list(range(1, len(tops) + 1)):
            raise InvalidInputError(f"{what}: expected columns top1..topN without gaps, found {tops}")
        out.topk = as_numeric_array(df[tops].to_numpy(), what, "top1..topN")
    if "probs" in cols:
        out.probs = _parse_list_column(df["probs"], what, "probs")
    if out.top1 is not None and out.top1.dtype.kind == "f" and np.isnan(out.top1).any():
        raise InvalidInputError(
            f"{what}: expected an integer cluster id in every row, found empty/NaN entries in 'cluster'"
        )
    return out


def read_sample_ids(sample_ids, n: int, what: str) -> np.ndarray:
    """Canonical val ids from an array or a parquet/csv with a ``sample_id`` column (e.g. a feature
    store's ``val/index.parquet``): ``n`` unique strings."""
    import pandas as pd

    if isinstance(sample_ids, (str, os.PathLike)):
        p = Path(sample_ids)
        try:
            df = (
                pd.read_parquet(p, columns=["sample_id"])
                if p.suffix.lower() == ".parquet"
                else pd.read_csv(p, usecols=["sample_id"], dtype=str)
            )
        except Exception as exc:
            raise InvalidInputError(
                f"{what}: expected a parquet/csv with a 'sample_id' column at {p}, found an unreadable file "
                f"({exc.__class__.__name__})"
            ) from None
        ids = df["sample_id"].astype(str).to_numpy()
    else:
        ids = np.asarray(sample_ids, dtype=str)
    if ids.ndim != 1 or len(ids) != n:
        raise InvalidInputError(f"{what}: expected {n} canonical val sample ids, found {ids.shape}")
    if len(np.unique(ids)) != len(ids):
        raise InvalidInputError(f"{what}: expected unique canonical val sample ids, found duplicates")
    return ids


def check_id_classes(ids: np.ndarray, expected_class: np.ndarray, what: str) -> None:
    """Class-folder ids (``val/<wnid>/...``): the folder of id i must be ``expected_class[i]``."""
    if len(expected_class) != len(ids):
        return
    parts = np.array([s.split("/")[-2] if s.count("/") >= 2 else "" for s in ids], dtype=str)
    bad = parts != np.asarray(expected_class, dtype=str)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{what}: expected the val sample ids in canonical order (row {i} in class folder {expected_class[i]}), "
            f"found {ids[i]!r}"
        )
