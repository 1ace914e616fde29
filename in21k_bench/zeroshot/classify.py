"""Zero-shot classification with the HZR machinery (docs/zeroshot.md).

Three candidate sets per image with true class t (all within a class *universe*, by default all
10,450 classes; ``classes="present"`` restricts it to the classes with images under the root):

* ``all``: every class of the universe;
* ``level``: the classes of the universe at the same hierarchy level as t;
* ``siblings``: t and its semantic siblings (same MIIL parent; the other roots for a root). When t
  has no sibling in the universe the image falls back to ``level`` (counted in ``num_fallback``).

Probabilities: softmax of ``logit_scale * cosine`` over the candidate set (the model's own
``logit_scale``); prediction = arg max (ties -> lowest class index); confidence = max probability.
Reported per mode: accuracy, mean confidence, ECE with 15 equal-width bins (bin b holds
confidences in ``[b/15, (b+1)/15)``, 1.0 in the last bin) and a reliability plot.

Lemma choice for the class text embeddings (``lemma_choice``): ``auto`` reuses the majority votes a
``relabel`` run with the same model stored in the text cache (first lemma for classes without a
vote), ``vote`` votes over the evaluated images themselves (uses their labels: optimistic),
``first`` takes the first WordNet lemma.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InvalidInputError
from ..evaluation.plots import reliability_diagram
from ..fileio import atomic_path, write_json

MODES = ("all", "level", "siblings")
ECE_BINS = 15


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> tuple[float, dict]:
    """ECE (equal-width bins) and per-bin counts / accuracy / mean confidence, from
    :func:`in21k_bench.scoring.metrics.reliability` (bins ``(lo, hi]``, the first also takes 0)."""
    from ..scoring.metrics import reliability

    rel = reliability(np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=bool), bins)
    return float(rel["ece"]), {k: rel[k] for k in ("count", "accuracy", "confidence", "edges")}


def candidate_groups(
    taxonomy, universe: np.ndarray, true: np.ndarray, mode: str
) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """Group samples by candidate set: list of ``(sample_positions, candidate_classes, is_fallback)``;
    candidates ascending by class index, always containing the true class."""
    universe = np.unique(np.asarray(universe, dtype=np.int64))
    true = np.asarray(true, dtype=np.int64)
    in_u = np.zeros(taxonomy.num_classes, bool)
    in_u[universe] = True
    if not in_u[true].all():
        bad = taxonomy.wnids[true[~in_u[true]][0]]
        raise InvalidInputError(
            f"zeroshot: expected every true class inside the candidate universe, found {bad} outside"
        )
    if mode == "all":
        return [(np.arange(len(true)), universe, False)]
    level = np.asarray(taxonomy.level)
    groups = []

    def by_level(rows):
        for lv in np.unique(level[true[rows]]):
            sel = rows[level[true[rows]] == lv]
            groups.append((sel, universe[level[universe] == lv], mode == "siblings"))

    if mode == "level":
        by_level(np.arange(len(true)))
        return groups
    if mode != "siblings":
        raise InvalidInputError(f"zeroshot: expected a mode in {MODES}, found {mode!r}")
    parent = np.asarray(taxonomy.parent, dtype=np.int64)
    roots = np.flatnonzero(parent < 0)
    fallback = []
    for p in np.unique(parent[true]):
        rows = np.flatnonzero(parent[true] == p)
        group = np.asarray(taxonomy.children(int(p)) if p >= 0 else roots, dtype=np.int64)
        group = np.sort(group[in_u[group]])
        if len(group) >= 2:
            groups.append((rows, group, False))
        else:  # the true class is alone under its parent
            fallback.append(rows)
    if fallback:
        by_level(np.concatenate(fallback))
    return groups


def score_modes(
    x: np.ndarray,
    true: np.ndarray,
    text: np.ndarray,
    pos: np.ndarray,
    taxonomy,
    universe: np.ndarray,
    modes: Sequence[str],
    logit_scale: float,
    device: str = "cpu",
    batch_rows: int = 4096,
) -> dict[str, dict[str, np.ndarray]]:
    """Predictions for one chunk: per mode ``pred`` (class index), ``confidence``, ``fallback`` (bool)."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    tt = torch.from_numpy(text).to(device)
    out = {}
    for mode in modes:
        pred = np.zeros(len(true), np.int64)
        conf = np.zeros(len(true), np.float64)
        fb = np.zeros(len(true), bool)
        for rows, cands, is_fb in candidate_groups(taxonomy, universe, true, mode):
            ct = tt[torch.from_numpy(pos[cands]).to(device)]
            for s in range(0, len(rows), batch_rows):
                r = rows[s : s + batch_rows]
                with torch.inference_mode():
                    logits = logit_scale * (xt[torch.from_numpy(r).to(device)] @ ct.T)
                    p = torch.softmax(logits.double(), dim=1)
                    c, j = p.max(dim=1)  # first maximum -> lowest class index
                pred[r] = cands[j.cpu().numpy()]
                conf[r] = c.cpu().numpy()
                fb[r] = is_fb
        out[mode] = {"pred": pred, "confidence": conf, "fallback": fb}
    return out


def zeroshot(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    model: str,
    pretrained: str | None,
    split: str = "val",
    modes: Sequence[str] = MODES,
    classes: str = "all",
    lemma_choice: str = "auto",
    device: str = "auto",
    batch_size: int = 256,
    num_workers: int = 0,
    chunk_rows: int = 65536,
    cache_dir: str | os.PathLike | None = None,
    resume: bool = False,
    features: str | None = None,
    taxonomy=None,
    clip=None,
    seed: int = 0,
    plots: bool = True,
    dist=None,
) -> dict | None:
    """Zero-shot classify the images of ``root/split``; writes ``results.json``, ``predictions.parquet``
    and ``reliability-<mode>.png`` into ``out_dir``; returns the results.

    Under torchrun the images are encoded by all ranks (each its share of the embedding chunks) and
    the scoring runs on rank 0, which returns the results (the other ranks return None)."""
    from ..runtime.distributed import init
    from .clip import load_clip
    from .hzr import _embedding_source, scan_samples, shared_samples

    _check_options(modes, classes, lemma_choice)
    if taxonomy is None:
        from ..registry.taxonomy import load_taxonomy

        taxonomy = load_taxonomy()
    t0 = time.time()
    out_dir = Path(out_dir)
    dist = dist or init(device if clip is None else clip.device)
    samples = shared_samples(dist, out_dir / "work", lambda: scan_samples(root, [split], taxonomy))
    if clip is None:
        clip = load_clip(model, pretrained, device=dist.device, seed=seed)
    emb = _embedding_source(
        samples, clip, out_dir / "work", chunk_rows, resume, batch_size, num_workers, features, dist
    )
    if not dist.is_main:
        return None
    true_all = samples["class_index"].to_numpy()
    universe = np.arange(taxonomy.num_classes) if classes == "all" else np.unique(true_all)
    text = _class_texts(clip, taxonomy, universe, lemma_choice, cache_dir, emb, true_all)
    preds = _predict_chunks(emb, true_all, text, taxonomy, universe, modes, clip)
    results = _write_results(
        out_dir, preds, samples, true_all, taxonomy, universe, modes, clip, split, classes, lemma_choice, plots
    )
    results["seconds"] = round(time.time() - t0, 3)
    write_json(out_dir / "results.json", results)
    return results


def _write_results(
    out_dir: Path, preds, samples, true_all, taxonomy, universe, modes, clip, split, classes, lemma_choice, plots
) -> dict:
    """Accuracy, ECE and reliability per mode; ``predictions.parquet`` and the reliability figures."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    wn = np.asarray(taxonomy.wnids, dtype=object)
    results: dict = {
        "model": clip.name,
        "pretrained": clip.pretrained,
        "split": split,
        "num_samples": int(len(samples)),
        "classes": classes,
        "num_candidates_all": int(len(universe)),
        "lemma_choice": lemma_choice,
        "logit_scale": clip.logit_scale,
        "ece_bins": ECE_BINS,
        "ece_implementation": "in21k_bench.scoring.metrics.reliability",
        "modes": {},
    }
    cols = {
        "sample_id": pa.array(samples["sample_id"].tolist(), pa.string()),
        "true_wnid": pa.array(wn[true_all].tolist(), pa.string()),
    }
    for m in modes:
        pred = np.concatenate(preds[m]["pred"])
        conf = np.concatenate(preds[m]["confidence"])
        fb = np.concatenate(preds[m]["fallback"])
        correct = pred == true_all
        ece, bins = expected_calibration_error(conf, correct)
        results["modes"][m] = {
            "accuracy": float(correct.mean()),
            "mean_confidence": float(conf.mean()),
            "ece": ece,
            "num_fallback": int(fb.sum()),
            "reliability": bins,
        }
        cols[f"pred_{m}"] = pa.array(wn[pred].tolist(), pa.string())
        cols[f"confidence_{m}"] = pa.array(conf)
        if plots:
            reliability_diagram(
                out_dir / f"reliability-{m}.png",
                bins,
                f"{clip.name} zero-shot ({m}): acc {correct.mean():.3f}, ECE {ece:.3f}",
            )
    with atomic_path(out_dir / "predictions.parquet") as tmp:
        pq.write_table(pa.table(cols), tmp)
    return results


def _check_options(modes: Sequence[str], classes: str, lemma_choice: str) -> None:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise InvalidInputError(f"zeroshot: expected modes from {', '.join(MODES)}, found {', '.join(bad) or 'none'}")
    if classes not in ("all", "present"):
        raise InvalidInputError(f"zeroshot: expected --classes all or present, found {classes!r}")
    if lemma_choice not in ("auto", "vote", "first"):
        raise InvalidInputError(f"zeroshot: expected --lemma-choice auto, vote or first, found {lemma_choice!r}")


def _class_texts(clip, taxonomy, universe: np.ndarray, lemma_choice: str, cache_dir, emb, true_all) -> np.ndarray:
    """The text embedding of every candidate class: lemmas chosen by image votes (``vote``), by votes
    cached from an earlier run (``auto``) or the first lemma (``first``)."""
    from .clip import TextEmbeddingCache, choose_lemmas, class_text_matrix
    from .hzr import prepare_text
    from .prompts import class_lemmas

    if lemma_choice == "vote":
        text, _, _ = prepare_text(clip, taxonomy, universe, cache_dir, emb, true_all)
        return text
    wnids = [str(taxonomy.wnids[c]) for c in universe]
    lemmas = class_lemmas(wnids, [taxonomy.lemmas[c] for c in universe], [taxonomy.names[c] for c in universe])
    cache = TextEmbeddingCache(clip, getattr(taxonomy, "version", "unknown"), cache_dir)
    lemma_emb, ptr = cache.lemma_embeddings(wnids, lemmas)
    votes = cache.load_votes() if lemma_choice == "auto" else {}
    counts = [
        np.asarray(votes[w]["counts"])
        if w in votes and len(votes[w]["counts"]) == len(lst)
        else np.zeros(len(lst), np.int64)
        for w, lst in zip(wnids, lemmas)
    ]
    return class_text_matrix(lemma_emb, ptr, choose_lemmas(counts))


def _predict_chunks(emb, true_all, text, taxonomy, universe, modes, clip) -> dict:
    """Per mode the lists of per-chunk ``pred``, ``confidence`` and ``fallback`` arrays."""
    from tqdm import tqdm

    pos = np.full(taxonomy.num_classes, -1, np.int64)
    pos[universe] = np.arange(len(universe))
    preds = {m: {"pred": [], "confidence": [], "fallback": []} for m in modes}
    for k in tqdm(range(emb.num_chunks), desc="zero-shot", unit="chunk", disable=None):
        a, b = emb.rows(k)
        res = score_modes(
            emb.read(k), true_all[a:b], text, pos, taxonomy, universe, modes, clip.logit_scale, clip.device
        )
        for m in modes:
            for key in preds[m]:
                preds[m][key].append(res[m][key])
    return preds
