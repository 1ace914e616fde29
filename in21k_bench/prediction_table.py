"""Prediction tables (``.parquet`` / ``.csv`` keyed by ``sample_id``) put into canonical val order.

A table has ``sample_id`` and ``cluster`` columns, optionally ranked clusters (a ``topk`` list column,
a space-separated string in CSV, or ``top1..topN`` columns) and ``probs`` (list column). Rows may come
in any order; :func:`table_to_arrays` matches them to the canonical ids of the val split and returns
:class:`~in21k_bench.predictions.PredictionArrays` in that order. Every id must appear exactly once;
ids of a larger source that are not scored (``allowed_ids``) are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InvalidInputError
from .predictions import PredictionArrays, PredictionTable
from .validation import as_numeric_array

__all__ = ["table_to_arrays", "read_sample_ids", "check_id_classes"]


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
