"""Sample-level relabelings from hierarchical zero-shot refinement (``leaf-hzr``, ``p-hzr``).

Input: the relabel file written by ``in21k-bench relabel`` -- parquet with columns ``sample_id``
(``train/<wnid>/<file>`` or ``val/<wnid>/<file>``), ``original_wnid``, ``refined_wnid`` (plus
``path`` and ``margin``, not needed here). Labels are the distinct refined classes (C = their
number), numbered in class-index order. Samples keep the canonical order of their split: original
class index, then sample id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ...errors import InvalidInputError
from .common import rule_metadata


def read_relabels(path: str | Path, taxonomy, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{what}: expected a relabel parquet file at {path}, found none")
    cols = ["sample_id", "original_wnid", "refined_wnid"]
    try:
        import pyarrow.parquet as pq

        have = pq.read_schema(path).names
        missing = [c for c in cols if c not in have]
        if missing:
            raise InvalidInputError(
                f"{what}: expected columns {', '.join(cols)} in {path}, found {have} (missing {', '.join(missing)})"
            )
        df = pd.read_parquet(path, columns=cols)
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InvalidInputError(
            f"{what}: expected a parquet file with columns {', '.join(cols)} at {path}, found {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}"
        ) from None
    for col in cols:
        if not df[col].map(lambda v: isinstance(v, str)).all():
            raise InvalidInputError(
                f"{what}: expected string values in column {col} of {path}, found dtype {df[col].dtype}"
            )
    for col in ("original_wnid", "refined_wnid"):
        idx = df[col].map(taxonomy.lookup).replace(-1, np.nan)
        if idx.isna().any():
            raise InvalidInputError(
                f"{what}: expected winter21 wnids in column {col} of {path}, found {df[col][idx.isna()].iloc[0]!r}"
            )
        df[col.replace("wnid", "index")] = idx.astype(np.int64)
    split = df["sample_id"].str.split("/", n=1).str[0]
    if not split.isin(["train", "val"]).all():
        raise InvalidInputError(
            f"{what}: expected sample ids starting with train/ or val/ in {path}, found "
            f"{df['sample_id'][~split.isin(['train', 'val'])].iloc[0]!r}"
        )
    if df["sample_id"].duplicated().any():
        raise InvalidInputError(
            f"{what}: expected unique sample ids in {path}, found duplicates such as "
            f"{df['sample_id'][df['sample_id'].duplicated()].iloc[0]!r}"
        )
    df["split"] = split
    return df


def build_hzr(taxonomy, *, inputs: dict[str, str | Path], mode: str, **rule):
    df = read_relabels(inputs["relabels"], taxonomy, f"{mode} relabels")
    df = df.sort_values(["split", "original_index", "sample_id"], kind="stable")
    label_classes, label_of = np.unique(df["refined_index"].to_numpy(), return_inverse=True)
    df["label"] = label_of.astype(np.int32)
    meta = rule_metadata(dict(rule, mode=mode))
    is_val = (df["split"] == "val").to_numpy()
    ntrain = np.bincount(label_of[~is_val], minlength=len(label_classes))
    nval = np.bincount(label_of[is_val], minlength=len(label_classes))
    labels = pa.table(
        {
            "label": pa.array(np.arange(len(label_classes), dtype=np.int32)),
            "wnid": pa.array(taxonomy.wnids[label_classes].tolist(), pa.string()),
            "name": pa.array(taxonomy.names[label_classes].tolist(), pa.string()),
            "depth": pa.array(taxonomy.depth[label_classes].astype(np.int16)),
            "num_train": pa.array(ntrain.astype(np.int64)),
            "num_val": pa.array(nval.astype(np.int64)),
        },
        metadata=meta,
    )
    out = {"labels": labels}
    for split in ("train", "val"):
        part = df[df["split"] == split]
        out[split] = pa.table(
            {
                "sample_id": pa.array(part["sample_id"].tolist(), pa.string()),
                "original_index": pa.array(part["original_index"].to_numpy().astype(np.int32)),
                "label": pa.array(part["label"].to_numpy()),
            },
            metadata=meta,
        )
    return out
