"""Model-based subsets (``clip-1k``, ``dinov2-1k``, ``sup-1k``, ``union-1k``).

Input: a per-class score file per model -- parquet (or csv) with columns ``wnid`` and ``score``
(per-class linear-probe val accuracy, as written by ``in21k-bench probe``); extra columns are
ignored. The benchmark keeps the ``top_k`` classes with the highest score; ties are broken by
class index (lower first). ``union-1k`` is the union of the three model sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import InvalidInputError
from .common import subset_tables


def read_scores(path: str | Path, taxonomy, what: str) -> np.ndarray:
    """Read a per-class score file into a (num_classes,) float array (NaN = class absent)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{what}: expected a per-class score file at {path}, found none")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise InvalidInputError(
            f"{what}: expected a parquet/csv score file at {path}, found an unreadable file ({type(exc).__name__})"
        ) from None
    missing = {"wnid", "score"} - set(df.columns)
    if missing:
        raise InvalidInputError(f"{what}: expected columns wnid and score in {path}, found {sorted(df.columns)}")
    scores = np.full(taxonomy.num_classes, np.nan)
    idx = np.array([taxonomy.lookup(w) if isinstance(w, str) else -1 for w in df["wnid"]])
    if (idx < 0).any():
        bad = df["wnid"][idx < 0].iloc[0]
        raise InvalidInputError(f"{what}: expected winter21 wnids in {path}, found unknown wnid {bad!r}")
    vals = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(vals).all():
        raise InvalidInputError(f"{what}: expected finite numeric scores in {path}, found NaN/inf or text")
    if len(np.unique(idx)) != len(idx):
        raise InvalidInputError(f"{what}: expected one row per class in {path}, found duplicate wnids")
    scores[idx] = vals
    return scores


def top_classes(scores: np.ndarray, top_k: int, what: str) -> np.ndarray:
    present = np.flatnonzero(np.isfinite(scores))
    if len(present) < top_k:
        raise InvalidInputError(f"{what}: expected scores for at least {top_k} classes, found {len(present)}")
    order = present[np.lexsort((present, -scores[present]))]
    return np.sort(order[:top_k])


def build_model_based(taxonomy, *, top_k: int, inputs: dict[str, str | Path], models: list[str], **rule):
    chosen: set[int] = set()
    for m in models:
        if m not in inputs:
            raise InvalidInputError(
                f"model-based subset: expected a score file for model {m!r}, found inputs for {sorted(inputs)}"
            )
        chosen |= set(top_classes(read_scores(inputs[m], taxonomy, f"scores[{m}]"), top_k, f"scores[{m}]").tolist())
    return subset_tables(taxonomy, np.array(sorted(chosen)), dict(rule, top_k=top_k, models=models))
