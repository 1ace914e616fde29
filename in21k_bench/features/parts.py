"""Building ONE feature store from shards written by several processes (or one).

The store's layout depends only on the sample list and ``shard_rows``: shard ``i`` holds rows
``[i * shard_rows, (i + 1) * shard_rows)`` of the canonical list (the last one fewer) -- exactly what
:class:`~in21k_bench.features.store.FeatureStoreWriter` produces in one process. So every shard can be
computed by any process, and the result does not depend on how many there were:

1. rank 0 :meth:`prepares <ShardedBuild.prepare>` the directory: a ``meta.json`` marked incomplete
   that records the build (number of rows, sha256 of the sample-id list, ``shard_rows``);
2. each rank computes its share of the unfinished shards (:func:`in21k_bench.runtime.distributed.my_units`)
   and :meth:`writes <ShardedBuild.write_shard>` each as ``shard-NNNNN.npy`` + ``shard-NNNNN.ids.parquet``
   + a small ``shard-NNNNN.done.json`` (rows, sha256), each atomically, the marker last;
3. after a barrier, rank 0 :meth:`assembles <ShardedBuild.assemble>` ``meta.json`` and
   ``index.parquet`` from the markers and id files (the shard files stay where they are: feature
   bytes are written once and never copied).

A killed run leaves only finished shards (a shard without its marker is redone). A re-run -- with any
number of processes -- recomputes the missing shards only; a re-run for another sample list, model or
``shard_rows`` is refused with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInputError
from ..fileio import atomic_path, ensure_dir, save_npy, sha256_file, write_json
from .store import FORMAT_VERSION, INDEX, META, FeatureStore, finish_store, ids_name, read_meta, shard_name


def done_name(i: int) -> str:
    return f"shard-{i:05d}.done.json"


def ids_digest(sample_ids: Sequence[str]) -> str:
    """sha256 of the sample-id list (one id per line): the identity of a build's image list."""
    h = hashlib.sha256()
    for s in sample_ids:
        h.update(str(s).encode())
        h.update(b"\n")
    return h.hexdigest()


class ShardedBuild:
    """The shards of one store under construction (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, num_rows: int, shard_rows: int):
        if shard_rows < 1:
            raise InvalidInputError(f"feature store build: expected shard_rows >= 1, found {shard_rows}")
        self.path = Path(path)
        self.num_rows = int(num_rows)
        self.shard_rows = int(shard_rows)

    @property
    def num_shards(self) -> int:
        return (self.num_rows + self.shard_rows - 1) // self.shard_rows

    def rows(self, i: int) -> tuple[int, int]:
        return i * self.shard_rows, min(self.num_rows, (i + 1) * self.shard_rows)

    # --- rank 0 -------------------------------------------------------------------------------------
    def prepare(
        self,
        sample_ids: Sequence[str],
        dim: int,
        backbone: str | dict,
        *,
        has_labels: bool = True,
        preprocessing: dict | None = None,
        **fields,
    ) -> bool:
        """Create or check ``meta.json``; True when the store is already complete (nothing to do).

        ``backbone``: a name or the backbone record (``name, spec, loader, weights, checkpoint_sha256,
        pretrained, dim``); ``preprocessing``: the preprocessing record. Both must match on resume (another
        preprocessing is another store). ``fields``: split, benchmark, version and any extra meta keys
        (written on creation)."""
        ensure_dir(self.path, "feature store")
        name = backbone["name"] if isinstance(backbone, dict) else backbone
        want_record = dict(backbone) if isinstance(backbone, dict) else {"name": backbone}
        want = {
            "dim": int(dim),
            "backbone": backbone,
            "preprocessing": preprocessing,
            "shard_rows": self.shard_rows,
            "build_rows": self.num_rows,
            "sample_ids_sha256": ids_digest(sample_ids),
        }
        meta_file = self.path / META
        if meta_file.is_file():
            meta = read_meta(self.path)
            if meta.get("complete"):
                store = FeatureStore.open(self.path)
                ids = store.sample_ids
                skipped = int((meta.get("skipped") or {}).get("count", 0))
                if store.num_rows != self.num_rows - skipped or not _is_subsequence(ids, sample_ids):
                    raise InvalidInputError(
                        f"extract: {self.path} is a complete store of {store.num_rows:,} rows for another image list "
                        f"(this one has {self.num_rows:,}); use another --out"
                    )
                if store.dim != want["dim"] or store.backbone != name:
                    raise InvalidInputError(
                        f"extract: {self.path} is a complete store of {store.backbone} (dim {store.dim}), expected "
                        f"{name} (dim {dim}); use another --out"
                    )
                if store.backbone_record != want_record:
                    raise InvalidInputError(
                        f"extract: {self.path} is a complete store of {name} with other weights "
                        f"({_diff(want_record, store.backbone_record)}); use another --out"
                    )
                if store.preprocessing != preprocessing:
                    raise InvalidInputError(
                        f"extract: {self.path} is a complete store made with another preprocessing "
                        f"({_diff(preprocessing, store.preprocessing)}): a different preprocessing is a different "
                        "store; use another --out"
                    )
                return True
            for key, value in want.items():
                if key in ("backbone", "preprocessing") and meta.get(key) != value:
                    raise InvalidInputError(
                        f"extract: resuming {self.path} needs the same {key} ({_diff(value, meta.get(key))}); "
                        "re-run with the original arguments, or use another --out"
                    )
                if meta.get(key) != value:
                    what = "image list" if key in ("build_rows", "sample_ids_sha256") else key
                    raise InvalidInputError(
                        f"extract: resuming {self.path} needs the same {what}; expected {value!r}, found "
                        f"{meta.get(key)!r} (re-run with the original arguments, or use another --out)"
                    )
            return False
        meta = {
            "format_version": FORMAT_VERSION,
            "backbone": backbone,
            **({"preprocessing": preprocessing} if preprocessing is not None else {}),
            "dim": int(dim),
            "dtype": "float16",
            "shard_rows": self.shard_rows,
            "split": fields.pop("split", None),
            "benchmark": fields.pop("benchmark", None),
            "version": fields.pop("version", None),
            "shards": [],
            "num_rows": 0,
            "has_labels": bool(has_labels),
            "complete": False,
            "build_rows": self.num_rows,
            "sample_ids_sha256": want["sample_ids_sha256"],
            **fields,
        }
        for f in self.path.glob("shard-*"):  # leftovers of an unrelated, never-recorded build
            f.unlink()
        write_json(meta_file, meta)
        return False

    def assemble(self, timeout: float = 120.0) -> FeatureStore:
        """Write ``meta.json`` (shard list in order) and ``index.parquet``; remove the markers.
        Waits up to ``timeout`` seconds for shards other nodes have just written to become visible."""
        from ..runtime.distributed import wait_for

        files = [self.path / f(i) for i in self.missing() for f in (done_name, shard_name, ids_name)]
        wait_for(files, timeout if self.missing() else 0.0)
        missing = self.missing()
        if missing:
            raise InvalidInputError(
                f"extract: expected every shard of {self.path} finished before assembly, found {len(missing)} missing "
                f"(first: {shard_name(missing[0])}); re-run the same command to finish them"
            )
        meta = json.loads((self.path / META).read_text(encoding="utf-8"))
        shards, skipped = [], []
        for i in range(self.num_shards):
            rec = json.loads((self.path / done_name(i)).read_text(encoding="utf-8"))
            shards.append({"file": shard_name(i), "rows": int(rec["rows"]), "sha256": rec["sha256"]})
            skipped.extend(rec.get("skipped", []))
        meta["shards"] = shards
        damaged = meta.pop("damaged_files", None)
        if skipped or damaged or meta.get("skip_bad"):  # --skip-bad: never a silent drop
            meta["skipped"] = {"count": len(skipped), "examples": skipped[:10], "damaged_files": damaged or []}
        meta = finish_store(self.path, meta)
        for i in range(self.num_shards):
            (self.path / done_name(i)).unlink(missing_ok=True)
        return FeatureStore.open(self.path)

    # --- any rank -----------------------------------------------------------------------------------
    def is_done(self, i: int) -> bool:
        return (
            (self.path / done_name(i)).is_file()
            and (self.path / shard_name(i)).is_file()
            and (self.path / ids_name(i)).is_file()
        )

    def missing(self) -> list[int]:
        return [i for i in range(self.num_shards) if not self.is_done(i)]

    def check_done_ids(self, sample_ids: np.ndarray) -> None:
        """Finished shards must hold the ids the current list puts there (a resumed run continues the same list)."""
        for i in range(self.num_shards):
            if not self.is_done(i):
                continue
            a, b = self.rows(i)
            want = sample_ids[a:b]
            rec = json.loads((self.path / done_name(i)).read_text(encoding="utf-8"))
            if rec.get("skipped"):
                gone = {s["sample_id"] for s in rec["skipped"]}
                want = np.asarray([s for s in want if s not in gone], dtype=object)
            got = (
                pq.read_table(self.path / ids_name(i), columns=["sample_id"])
                .column("sample_id")
                .to_numpy(zero_copy_only=False)
            )
            if len(got) != len(want) or not np.array_equal(got.astype(object), want):
                raise InvalidInputError(
                    f"extract: {self.path / shard_name(i)} holds other sample ids than rows {a:,}-{b:,} of this image "
                    "list; use another --out"
                )

    def write_shard(
        self,
        i: int,
        x: np.ndarray,
        sample_ids: Sequence[str],
        labels: Sequence[int] | None,
        skipped: Sequence[dict] = (),
    ) -> None:
        """Write shard ``i``: rows ``rows(i)`` of the list except ``skipped`` (``{"sample_id", "error"}``
        of images that could not be read under ``--skip-bad``; recorded in the marker, then meta.json)."""
        a, b = self.rows(i)
        x = np.asarray(x)
        n = b - a - len(skipped)
        if x.ndim != 2 or len(x) != n or len(sample_ids) != n:
            raise InvalidInputError(
                f"feature store build: expected shard {i} with {n} rows, found {x.shape} and {len(sample_ids)} ids"
            )
        if not np.isfinite(x).all():
            raise InvalidInputError(f"feature store build: expected finite features, found NaN or inf in shard {i}")
        cols = {"sample_id": pa.array([str(s) for s in sample_ids], type=pa.string())}
        if labels is not None:
            cols["label"] = pa.array(np.asarray(labels, dtype=np.int64), type=pa.int64())
        with atomic_path(self.path / ids_name(i)) as tmp:
            pq.write_table(pa.table(cols), tmp)
        save_npy(self.path / shard_name(i), np.ascontiguousarray(x.astype(np.float16)))
        rec = {"rows": int(n), "sha256": sha256_file(self.path / shard_name(i))}
        if skipped:
            rec["skipped"] = [{"sample_id": str(s["sample_id"]), "error": str(s["error"])} for s in skipped]
        write_json(self.path / done_name(i), rec)


def _is_subsequence(ids: np.ndarray, sample_ids: Sequence[str]) -> bool:
    """``ids`` are ``sample_ids`` in order with some left out (the images --skip-bad skipped)."""
    import pandas as pd

    pos = pd.Index(np.asarray(sample_ids, dtype=object)).get_indexer(np.asarray(ids, dtype=object))
    return bool((pos >= 0).all() and (np.diff(pos) > 0).all())


def _diff(want, found) -> str:
    """``key: expected X, found Y`` for the fields of two records that differ (one line)."""
    if not isinstance(want, dict) or not isinstance(found, dict):
        return f"expected {want!r}, found {found!r}"
    keys = [k for k in dict.fromkeys([*want, *found]) if want.get(k) != found.get(k)]
    return "; ".join(f"{k}: expected {want.get(k)!r}, found {found.get(k)!r}" for k in keys)


__all__ = ["ShardedBuild", "done_name", "ids_digest", "INDEX"]
