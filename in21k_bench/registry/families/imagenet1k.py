"""ImageNet-1K benchmarks: ``imagenet-1k``, ``imagenet-1k-odd``, ``real1k``.

Val order is the standard file order ``ILSVRC2012_val_00000001 .. 00050000``. Per-class train counts
are not part of the raw sources; the manifest stores them as unknown (-1) and the published total
(1,281,167) where it is known; ``Benchmark.materialize(root)`` counts them from a local copy.

- ``imagenet-1k-odd``: classes with odd index keep half of their train samples: the files at even
  positions (0, 2, 4, ...) of the class's canonical (sorted) file list, i.e. ceil(n/2); val unchanged.
- ``real1k``: the val images with a non-empty ReaL set (46,837); S_L = the ReaL set.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .common import rule_metadata


def _labels_table(imagenet1k, meta):
    n = len(imagenet1k.wnids)
    nval = np.bincount(imagenet1k.val_labels, minlength=n)
    return pa.table(
        {
            "label": pa.array(np.arange(n, dtype=np.int32)),
            "wnid": pa.array(imagenet1k.wnids.tolist(), pa.string()),
            "name": pa.array(imagenet1k.names.tolist(), pa.string()),
            "in21k_index": pa.array(imagenet1k.in21k_index.astype(np.int32)),
            "num_train": pa.array(np.full(n, -1, dtype=np.int64)),
            "num_val": pa.array(nval.astype(np.int64)),
        },
        metadata=meta,
    )


def build_imagenet1k(taxonomy, imagenet1k, *, odd_keep: str | None = None, real: bool = False, **rule):
    rule = dict(rule)
    if odd_keep:
        rule["odd_keep"] = odd_keep
    if real:
        rule["real"] = True
    meta = rule_metadata(rule)
    labels = _labels_table(imagenet1k, meta)
    rows = np.arange(len(imagenet1k.val_labels))
    cols = {
        "sample_id": pa.array(imagenet1k.val_sample_ids.tolist(), pa.string()),
        "label": pa.array(imagenet1k.val_labels.astype(np.int32)),
    }
    if real:
        sets = imagenet1k.real_sets
        keep = np.diff(sets.indptr) > 0
        rows = rows[keep]
        cols = {k: v.take(pa.array(rows)) for k, v in cols.items()}
        cols["source_row"] = pa.array(rows.astype(np.int32))
        cols["real"] = pa.array(
            [sets.indices[sets.indptr[r] : sets.indptr[r + 1]].astype(np.int16).tolist() for r in rows],
            pa.list_(pa.int16()),
        )
    val = pa.table(cols, metadata=meta)
    return {"labels": labels, "val": val}
