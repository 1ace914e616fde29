"""Helpers shared by the builders: turning "which classes, which label" into manifest tables.

Every IN-21K-derived class-level benchmark is written as two tables:

- ``classes``: one row per original class in the benchmark, in class-index order (= canonical
  sample order): ``class_index``, ``wnid``, ``label``, ``num_train`` (estimated), ``num_val``.
- ``labels``: one row per label: ``label`` (0..C-1), ``wnid``, ``name``, ``depth``,
  ``num_train``, ``num_val``. Label ids follow the order of the label's wnid (= class-index order when
  every label is a class). A label may be an extra synset of a v2 taxonomy (a WordNet hypernym that is
  not a class); its ``depth`` is the number of classes above it (see :mod:`in21k_bench.registry.taxonomy`).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa


def rule_metadata(rule: dict) -> dict[bytes, bytes]:
    return {b"in21k_bench": json.dumps({"rule": rule}, sort_keys=True).encode()}


def class_level_tables(taxonomy, class_idx: np.ndarray, target_idx: np.ndarray, rule: dict) -> dict[str, pa.Table]:
    """``class_idx``: the benchmark's original classes; ``target_idx``: for each, the node index of
    the label it gets (itself for a plain subset, an ancestor or hypernym for coarse relabelings)."""
    class_idx = np.asarray(class_idx, dtype=np.int64)
    target_idx = np.asarray(target_idx, dtype=np.int64)
    order = np.argsort(class_idx, kind="stable")
    class_idx, target_idx = class_idx[order], target_idx[order]
    if len(np.unique(class_idx)) != len(class_idx):
        raise ValueError("class_level_tables: duplicate classes")
    nodes, node_of = np.unique(target_idx, return_inverse=True)
    by_wnid = np.argsort(taxonomy.node_wnids[nodes].astype(str), kind="stable")  # label order = wnid order
    rank = np.empty(len(nodes), dtype=np.int64)
    rank[by_wnid] = np.arange(len(nodes))
    label_classes, label_of = nodes[by_wnid], rank[node_of]
    ntrain = taxonomy.train_count[class_idx]
    nval = taxonomy.val_count[class_idx]
    meta = rule_metadata(rule)
    classes = pa.table(
        {
            "class_index": pa.array(class_idx.astype(np.int32)),
            "wnid": pa.array(taxonomy.wnids[class_idx].tolist(), pa.string()),
            "label": pa.array(label_of.astype(np.int32)),
            "num_train": pa.array(ntrain.astype(np.int64)),
            "num_val": pa.array(nval.astype(np.int64)),
        },
        metadata=meta,
    )
    labels = pa.table(
        {
            "label": pa.array(np.arange(len(label_classes), dtype=np.int32)),
            "wnid": pa.array(taxonomy.node_wnids[label_classes].tolist(), pa.string()),
            "name": pa.array(taxonomy.node_names[label_classes].tolist(), pa.string()),
            "depth": pa.array(taxonomy.node_depth[label_classes].astype(np.int16)),
            "num_train": pa.array(np.bincount(label_of, weights=ntrain, minlength=len(label_classes)).astype(np.int64)),
            "num_val": pa.array(np.bincount(label_of, weights=nval, minlength=len(label_classes)).astype(np.int64)),
        },
        metadata=meta,
    )
    return {"classes": classes, "labels": labels}


def subset_tables(taxonomy, class_idx: np.ndarray, rule: dict) -> dict[str, pa.Table]:
    class_idx = np.asarray(class_idx, dtype=np.int64)
    return class_level_tables(taxonomy, class_idx, class_idx, rule)
