"""Hierarchical zero-shot label refining (docs/zeroshot.md, "The rule"): ``leaf-hzr`` and ``p-hzr``.

The rule, for a sample whose label c is a non-leaf class of the MIIL tree:

* ``leaf-hzr``: score the image against the children of c, move to the best child, repeat until a
  leaf is reached.
* ``p-hzr``: score the image against c itself and its children; stop when c wins, else move to the
  best child and repeat (a leaf always stops).

Tie-breaking (exact equality of scores): candidates are ordered ``[c] + children(c)`` (p-HZR) or
``children(c)`` (leaf-HZR), children by ascending class index, and the FIRST maximum wins. So in
p-HZR the current class wins every tie (a sample only moves when a child is strictly better), and
among tied children the one with the lowest class index wins.

Margin: best minus second-best score at the final decision, i.e. the last step that had at least two
candidates (a node with a single child is a forced move in leaf-HZR, not a decision). NaN when no
decision was made (leaf classes, single-child chains). Scores are cosine similarities.

Work is batched by tree node: within a chunk of samples, all samples currently at the same node are
scored against that node's candidate set with one matrix product; the walk proceeds one tree level
per round. Chunks are written atomically to a work area, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInputError
from ..fileio import atomic_path, write_json
from ..runtime.distributed import FAULT_ENV, fault_point  # noqa: F401  (FAULT_ENV re-exported for tests)

log = logging.getLogger(__name__)

MODES = ("leaf-hzr", "p-hzr")
METADATA_KEY = b"in21k_bench"
MANIFEST_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("original_wnid", pa.string()),
        ("refined_wnid", pa.string()),
        ("path", pa.list_(pa.string())),
        ("margin", pa.float64()),
    ]
)
_fault_point = fault_point  # test hook (see in21k_bench.runtime.distributed.FAULT_ENV)


# --------------------------------------------------------------------------------------------------
# Tree and walk (pure)
# --------------------------------------------------------------------------------------------------


class Tree:
    """Children lists (ascending class index) from a parent array (-1 for roots)."""

    def __init__(self, parent: np.ndarray):
        parent = np.asarray(parent, dtype=np.int64)
        n = len(parent)
        if np.any(parent >= n) or np.any(parent < -1):
            raise InvalidInputError(f"tree: expected parent indices in [-1, {n}), found {parent.min()}..{parent.max()}")
        self.parent = parent
        self.num_classes = n
        has = np.flatnonzero(parent >= 0)
        order = has[np.argsort(parent[has], kind="stable")]  # stable: children stay in index order
        counts = np.bincount(parent[has], minlength=n)
        self.ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.idx = order.astype(np.int64)
        self.is_leaf = counts == 0

    @classmethod
    def from_taxonomy(cls, taxonomy) -> "Tree":
        return cls(np.asarray(taxonomy.parent))

    def children(self, i: int) -> np.ndarray:
        return self.idx[self.ptr[i] : self.ptr[i + 1]]


@dataclass
class WalkResult:
    refined: np.ndarray  # (n,) int64 final class
    paths: list[list[int]]  # per sample: classes visited, starting at the original
    margin: np.ndarray  # (n,) float64, NaN when no decision was made


ScoreFn = Callable[[np.ndarray, int, np.ndarray], np.ndarray]


def walk(start: np.ndarray, tree: Tree, score: ScoreFn, mode: str) -> WalkResult:
    """Run the HZR rule for every sample.

    ``start``: original class per sample. ``score(rows, node, candidates)`` returns a
    ``(len(rows), len(candidates))`` array of scores of samples ``rows`` (positions in ``start``)
    against ``candidates`` (class indices); it is called once per (round, node).
    """
    if mode not in MODES:
        raise InvalidInputError(f"hzr: expected mode in {MODES}, found {mode!r}")
    current = np.asarray(start, dtype=np.int64).copy()
    n = len(current)
    steps: list[np.ndarray] = []  # per round: class moved to, -1 if the sample did not move
    margin = np.full(n, np.nan)
    active = ~tree.is_leaf[current]
    while active.any():
        step = np.full(n, -1, np.int64)
        rows_all = np.flatnonzero(active)
        nodes = current[rows_all]
        order = np.argsort(nodes, kind="stable")
        uniq, first = np.unique(nodes[order], return_index=True)
        bounds = np.append(first, len(order))
        for node, a, b in zip(uniq, bounds[:-1], bounds[1:]):
            rows = rows_all[order[a:b]]
            kids = tree.children(int(node))
            cands = np.concatenate([[node], kids]) if mode == "p-hzr" else kids
            s = np.asarray(score(rows, int(node), cands), dtype=np.float64)
            if s.shape != (len(rows), len(cands)):
                raise InvalidInputError(f"hzr: expected scores of shape {(len(rows), len(cands))}, found {s.shape}")
            best = s.argmax(axis=1)  # first maximum: current class (p-HZR) / lowest child index wins ties
            if len(cands) >= 2:
                top2 = np.partition(s, -2, axis=1)[:, -2:]
                margin[rows] = top2[:, 1] - top2[:, 0]
            chosen = cands[best]
            moved = chosen != node
            step[rows[moved]] = chosen[moved]
            current[rows] = chosen
            active[rows] = moved & ~tree.is_leaf[chosen]
        steps.append(step)
    trail = (
        np.column_stack([np.asarray(start, dtype=np.int64), *steps])
        if steps
        else np.asarray(start, dtype=np.int64)[:, None]
    )
    paths = [row[row >= 0].tolist() for row in trail]
    return WalkResult(current, paths, margin)


# --------------------------------------------------------------------------------------------------
# Samples, embeddings, text
# --------------------------------------------------------------------------------------------------


def scan_samples(root: str | os.PathLike, splits: Sequence[str], taxonomy) -> pd.DataFrame:
    """Images of ``splits`` under ``root`` in canonical order (split after split): sample_id, path,
    class_index, split."""
    from ..images.folder import scan_split

    frames = []
    for split in splits:
        if not (Path(root) / split).is_dir():
            raise InvalidInputError(
                f"image folder: expected {Path(root) / split}/<wnid>/<file>, found no {split}/ folder"
            )
        df = scan_split(root, split, classes=list(taxonomy.wnids))
        df["class_index"] = df["class_dir"].map(taxonomy._index).astype(np.int64) if len(df) else np.zeros(0, np.int64)
        df["split"] = split
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    if not len(out):
        raise InvalidInputError(
            f"image folder: expected images in {root}/{{{','.join(splits)}}}/<wnid>/ for winter21 wnids, found none"
        )
    return out


def shared_samples(dist, work: Path, make) -> pd.DataFrame:
    """The sample table, made once by rank 0 (``make()``) and read by the other ranks from
    ``<work>/samples.parquet`` (one folder scan, not one per process)."""
    box = {}

    def listing():
        box["df"] = make()
        if dist.enabled:
            work.mkdir(parents=True, exist_ok=True)
            with atomic_path(work / "samples.parquet") as tmp:
                pq.write_table(pa.Table.from_pandas(box["df"], preserve_index=False), tmp)

    dist.main_first(listing)
    return box["df"] if dist.is_main else pq.read_table(work / "samples.parquet").to_pandas()


def _embedding_source(
    samples: pd.DataFrame,
    clip,
    work: Path,
    chunk_rows: int,
    resume: bool,
    batch_size: int,
    num_workers: int,
    features: str | None,
    dist=None,
):
    """Return an object with ``num_chunks``, ``rows(k)``, ``read(k)`` over all samples.

    Under torchrun (``dist``) every rank fills its round-robin share of the missing chunks; all
    chunks are on disk when this returns (on every rank)."""
    from ..runtime.distributed import Dist, my_units
    from .clip import EmbeddingChunks

    dist = dist or Dist(device=clip.device)
    ids = samples["sample_id"].tolist()

    def open_store(resume_flag):
        return EmbeddingChunks(
            work / "emb", ids, clip.embed_dim, clip.identity, chunk_rows=chunk_rows, resume=resume_flag
        )

    dist.main_first(lambda: (open_store(resume), None)[1])  # rank 0 creates or checks the work area
    store = open_store(True)
    todo = dist.main_first(store.missing)  # rank 0's view of the shared folder, the same list on every rank
    mine = my_units(todo, dist)
    if features is not None and mine:
        from .clip import open_feature_store_embeddings

        # copy rows from a feature store in the same canonical order (split after split)
        offset = 0
        sources = []
        for split, part in samples.groupby("split", sort=False):
            st = open_feature_store_embeddings(features, split, part["sample_id"].tolist())
            if st.dim != clip.embed_dim:
                raise InvalidInputError(
                    f"features: expected dim {clip.embed_dim} (the model's), found {st.dim} in {features}/{split}"
                )
            sources.append((offset, st))
            offset += len(part)
        for k in mine:
            a, b = store.rows(k)
            parts = []
            for off, st in sources:
                lo, hi = max(a, off), min(b, off + st.num_rows)
                if lo < hi:
                    parts.extend(
                        x for _, x in st.iter_chunks(chunk_rows=hi - lo, normalize=True, start=lo - off, stop=hi - off)
                    )
            store.write(k, np.concatenate(parts))
            _fault_point("embed", k)
    elif mine:
        store.fill(
            clip,
            samples["path"].tolist(),
            batch_size=batch_size,
            num_workers=num_workers,
            on_chunk=lambda k: _fault_point("embed", k),
            chunks=mine,
            progress=dist.is_main,
        )
    dist.barrier()  # every chunk is on disk
    if dist.is_main:
        from ..runtime.distributed import wait_for

        wait_for([store.chunk_path(k) for k in todo])  # other nodes' files may show up late
    return store


def prepare_text(clip, taxonomy, classes: np.ndarray, cache_dir, emb_store, sample_class: np.ndarray):
    """Text matrix (len(classes), D) for ``classes`` with lemma choice by majority vote over each
    class's own images in ``emb_store``; returns (matrix, chosen lemma strings, vote counts)."""
    from tqdm import tqdm

    from .clip import TextEmbeddingCache, choose_lemmas, class_text_matrix, vote_lemmas
    from .prompts import class_lemmas

    classes = np.asarray(classes, dtype=np.int64)
    wnids = [str(taxonomy.wnids[c]) for c in classes]
    lemmas = class_lemmas(wnids, [taxonomy.lemmas[c] for c in classes], [taxonomy.names[c] for c in classes])
    cache = TextEmbeddingCache(clip, getattr(taxonomy, "version", "unknown"), cache_dir)
    lemma_emb, ptr = cache.lemma_embeddings(wnids, lemmas)
    counts = [np.zeros(len(lst), np.int64) for lst in lemmas]
    pos = np.full(taxonomy.num_classes if hasattr(taxonomy, "num_classes") else len(taxonomy.wnids), -1, np.int64)
    multi = np.array([len(lst) > 1 for lst in lemmas])
    pos[classes[multi]] = np.flatnonzero(multi)
    if multi.any():
        for k in tqdm(range(emb_store.num_chunks), desc="lemma vote", unit="chunk", disable=None):
            a, b = emb_store.rows(k)
            cp = pos[sample_class[a:b]]
            if (cp >= 0).any():
                vote_lemmas(lemma_emb, ptr, cp, emb_store.read(k), counts)
    cache.save_votes(wnids, counts, source="relabel image votes")
    choice = choose_lemmas(counts)
    return class_text_matrix(lemma_emb, ptr, choice), [lst[c] for lst, c in zip(lemmas, choice)], counts


# --------------------------------------------------------------------------------------------------
# Relabel pipeline
# --------------------------------------------------------------------------------------------------


def relabel(
    root: str | os.PathLike,
    mode: str,
    out: str | os.PathLike,
    *,
    model: str,
    pretrained: str | None,
    device: str = "auto",
    splits: Sequence[str] = ("train", "val"),
    batch_size: int = 256,
    num_workers: int = 0,
    chunk_rows: int = 65536,
    work_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    resume: bool = False,
    features: str | None = None,
    taxonomy=None,
    clip=None,
    seed: int = 0,
    dist=None,
) -> dict | None:
    """Relabel every image under ``root`` with ``mode``; write the manifest ``out`` (parquet) and
    ``<out>.summary.json``; return the summary.

    Under torchrun (same command on every rank) the images are encoded by all ranks, each its share
    of the embedding chunks; the tree walk and the manifest run on rank 0, which returns the summary
    (the other ranks return None)."""
    from ..runtime.distributed import init
    from .clip import load_clip

    if mode not in MODES:
        raise InvalidInputError(f"relabel: expected --mode in {', '.join(MODES)}, found {mode!r}")
    out = Path(out)
    if out.suffix != ".parquet":
        raise InvalidInputError(f"relabel: expected --out to end in .parquet, found {out.name}")
    if taxonomy is None:
        from ..registry.taxonomy import load_taxonomy

        taxonomy = load_taxonomy()
    t0 = time.time()
    dist = dist or init(device if clip is None else clip.device)
    work = Path(work_dir) if work_dir is not None else out.with_name(out.name + ".work")
    samples = shared_samples(dist, work, lambda: scan_samples(root, splits, taxonomy))
    if clip is None:
        clip = load_clip(model, pretrained, device=dist.device, seed=seed)
    emb = _embedding_source(samples, clip, work, chunk_rows, resume, batch_size, num_workers, features, dist)
    if not dist.is_main:
        return None

    tree = Tree.from_taxonomy(taxonomy)
    sample_class = samples["class_index"].to_numpy()
    classes = _walk_classes(tree, taxonomy, sample_class)
    if len(classes):
        text, chosen, _counts = prepare_text(clip, taxonomy, classes, cache_dir, emb, sample_class)
    else:
        text, chosen, _counts = np.zeros((0, clip.embed_dim), np.float32), [], []
    wdir = work / f"walk-{mode}"
    wnids = np.asarray(taxonomy.wnids, dtype=object)
    _walk_chunks(emb, samples, tree, classes, text, clip, mode, wdir, wnids)

    meta = {
        "mode": mode,
        "model": clip.name,
        "pretrained": clip.pretrained,
        "device": clip.device,
        "taxonomy_version": getattr(taxonomy, "version", "unknown"),
        "splits": list(splits),
        "score": "cosine similarity of L2-normalised image and class text embeddings",
        "ties": "first maximum in candidate order: p-hzr [current] + children by class index, leaf-hzr children by "
        "class index",
        "margin": "best - second best score at the last step with >= 2 candidates; NaN if none",
    }
    summary = _write_manifest(out, wdir, emb.num_chunks, meta, wnids)
    summary.update(meta)
    summary["lemma_choice"] = {str(wnids[c]): chosen[j] for j, c in enumerate(classes) if len(taxonomy.lemmas[c]) > 1}
    summary["seconds"] = round(time.time() - t0, 3)
    write_json(summary_path(out), summary)
    return summary


def _walk_classes(tree: Tree, taxonomy, sample_class: np.ndarray) -> np.ndarray:
    """Every class a walk can visit (sorted): each non-leaf start class and everything below it."""
    starts = np.unique(sample_class[~tree.is_leaf[sample_class]])
    needed: set[int] = set()
    for c in starts:
        needed.add(int(c))
        needed.update(int(d) for d in taxonomy.descendants(int(c)))
    return np.array(sorted(needed), dtype=np.int64)


def _walk_chunks(emb, samples, tree: Tree, classes: np.ndarray, text: np.ndarray, clip, mode: str, wdir: Path, wnids):
    """Walk the samples of every embedding chunk down the tree; one manifest part per chunk in
    ``wdir`` (written atomically, skipped when it exists, so an interrupted run resumes)."""
    import torch
    from tqdm import tqdm

    pos = np.full(tree.num_classes, -1, np.int64)
    pos[classes] = np.arange(len(classes))
    text_t = torch.from_numpy(text).to(clip.device)
    sample_class = samples["class_index"].to_numpy()
    wdir.mkdir(parents=True, exist_ok=True)
    ids = samples["sample_id"].to_numpy(dtype=object)
    for k in tqdm(range(emb.num_chunks), desc=f"{mode} walk", unit="chunk", disable=None):
        cp = wdir / f"chunk-{k:05d}.parquet"
        if cp.is_file():
            continue
        a, b = emb.rows(k)
        start = sample_class[a:b]
        walking = ~tree.is_leaf[start]
        x_t = torch.from_numpy(emb.read(k)).to(clip.device) if walking.any() else None

        def score(rows, node, cands, x_t=x_t):
            with torch.inference_mode():
                return (
                    (
                        x_t[torch.from_numpy(rows).to(clip.device)]
                        @ text_t[torch.from_numpy(pos[cands]).to(clip.device)].T
                    )
                    .cpu()
                    .numpy()
                )

        res = walk(start, tree, score, mode)
        table = pa.table(
            {
                "sample_id": pa.array(ids[a:b].tolist(), pa.string()),
                "original_wnid": pa.array(wnids[start].tolist(), pa.string()),
                "refined_wnid": pa.array(wnids[res.refined].tolist(), pa.string()),
                "path": pa.array([wnids[p].tolist() for p in res.paths], pa.list_(pa.string())),
                "margin": pa.array(res.margin, pa.float64()),
            },
            schema=MANIFEST_SCHEMA,
        )
        with atomic_path(cp) as tmp:
            pq.write_table(table, tmp)
        _fault_point("walk", k)


def summary_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".summary.json")


def _write_manifest(out: Path, wdir: Path, num_chunks: int, meta: dict, wnids: np.ndarray) -> dict:
    schema = MANIFEST_SCHEMA.with_metadata({METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    moved = {}
    total = {}
    with atomic_path(out) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            for k in range(num_chunks):
                t = pq.read_table(wdir / f"chunk-{k:05d}.parquet").cast(MANIFEST_SCHEMA)
                writer.write_table(t.replace_schema_metadata(schema.metadata))
                o = t.column("original_wnid").to_numpy(zero_copy_only=False)
                r = t.column("refined_wnid").to_numpy(zero_copy_only=False)
                split = np.array([s.split("/", 1)[0] for s in t.column("sample_id").to_pylist()], dtype=object)
                for name, arr in (("before", o), ("after", r)):
                    u, c = np.unique(arr, return_counts=True) if len(arr) else ([], [])
                    d = before if name == "before" else after
                    for w, n in zip(u, c):
                        d[str(w)] = d.get(str(w), 0) + int(n)
                for s in np.unique(split):
                    m = split == s
                    moved[s] = moved.get(s, 0) + int((o[m] != r[m]).sum())
                    total[s] = total.get(s, 0) + int(m.sum())
    vanished = sorted(w for w in before if w not in after)
    appeared = sorted(w for w in after if w not in before)
    return {
        "manifest": str(out),
        "num_samples": int(sum(total.values())),
        "samples_per_split": total,
        "samples_moved": int(sum(moved.values())),
        "samples_moved_per_split": moved,
        "num_classes_before": len(before),
        "num_classes_after": len(after),
        "classes_vanished": vanished,
        "classes_appeared": appeared,
        "class_counts_before": dict(sorted(before.items())),
        "class_counts_after": dict(sorted(after.items())),
    }


def read_manifest_metadata(path: str | os.PathLike) -> dict:
    """The JSON stored under ``b"in21k_bench"`` in a relabel manifest's schema metadata."""
    md = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in md:
        raise InvalidInputError(f"relabel manifest: expected schema metadata key 'in21k_bench' in {path}, found none")
    return json.loads(md[METADATA_KEY])
