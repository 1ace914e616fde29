"""The open_clip scorer: image embeddings, per-synset text embeddings (cached) and lemma voting.

* :func:`load_clip` -- any open_clip model by name + pretrained tag (weights fetched the way
  open_clip fetches them on the user's machine), a local checkpoint file as ``pretrained``, or
  ``pretrained=None`` for randomly initialised weights (tests). :data:`TEST_ARCH` names a tiny
  architecture (random weights only) that runs in milliseconds on a CPU.
* :func:`embed_images` -- L2-normalised image embeddings streamed from a list of files (DataLoader).
* :class:`EmbeddingChunks` -- a resumable, chunked on-disk store of image embeddings (one atomic
  ``.npy`` per chunk), used as the work area of ``relabel`` / ``zeroshot``.
* :class:`TextEmbeddingCache` -- for every lemma of a synset, the mean of its 7 normalised prompt
  embeddings (:data:`~in21k_bench.zeroshot.prompts.PROMPT_TEMPLATES`); cached on disk keyed by
  model + pretrained + taxonomy version + prompt set; only missing synsets are encoded.
* :func:`vote_lemmas` / :func:`choose_lemmas` / :func:`class_text_matrix` -- lemma choice per synset
  by majority vote of zero-shot predictions (over that synset's lemmas) on the synset's own images.

Scoring is cosine similarity: the lemma mean is re-normalised to unit length before it is compared
with image embeddings (CLIP's usual prompt ensembling).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import ClipError, InvalidInputError  # ClipError re-exported: importable from here as before
from ..fileio import save_npy, write_json
from ..runtime.device import resolve_device
from .prompts import PROMPT_TEMPLATES, fill_prompts, prompts_version

log = logging.getLogger(__name__)

#: Name of a tiny architecture for tests and smoke runs (random weights only).
TEST_ARCH = "in21k-test-tiny"
#: A small architecture with a realistic cost per image (~0.7 GMAC at 64 px; random weights only),
#: for timing the image pipelines (``benchmarks/scale.py``) without downloads.
BENCH_ARCH = "in21k-test-small"
_TEST_ARCH_CFGS = {
    TEST_ARCH: dict(
        base="ViT-B-32",
        embed_dim=64,
        vision_cfg=dict(image_size=32, layers=2, width=64, patch_size=8, head_width=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=64, heads=2, layers=2),
    ),
    BENCH_ARCH: dict(
        base="ViT-B-32",
        embed_dim=128,
        vision_cfg=dict(image_size=64, layers=6, width=384, patch_size=8, head_width=64),
        text_cfg=dict(context_length=77, vocab_size=49408, width=128, heads=2, layers=2),
    ),
}


@dataclass
class ClipModel:
    """A loaded open_clip model with its preprocessing and tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    name: str
    pretrained: str | None
    identity: str  # model + weights identity used in cache keys
    embed_dim: int

    @property
    def logit_scale(self) -> float:
        ls = getattr(self.model, "logit_scale", None)
        return float(ls.exp().item()) if ls is not None else 100.0

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """L2-normalised text embeddings (len(texts), D), float32."""
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                tok = self.tokenizer(list(texts[s : s + batch_size])).to(self.device)
                e = self.model.encode_text(tok).float()
                out.append(torch.nn.functional.normalize(e, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.embed_dim), np.float32)

    def encode_image_tensor(self, x) -> np.ndarray:
        """L2-normalised image embeddings of a preprocessed batch, float32 numpy."""
        import torch

        with torch.inference_mode():
            e = self.model.encode_image(x.to(self.device, non_blocking=True)).float()
            return torch.nn.functional.normalize(e, dim=-1).cpu().numpy()


def _weights_identity(pretrained: str | None, seed: int) -> str:
    if pretrained is None:
        return f"random-seed{seed}"
    p = Path(pretrained)
    if p.is_file():
        st = p.stat()
        return f"file:{p.resolve()}:{st.st_size}:{int(st.st_mtime)}"
    return pretrained


def load_clip(
    model: str, pretrained: str | None = None, device: str = "auto", seed: int = 0, precision: str = "fp32"
) -> ClipModel:
    """Load an open_clip model.

    ``pretrained``: an open_clip tag (``laion2b_s34b_b88k``), a local checkpoint file, or None
    for random weights (seeded with ``seed``). ``model`` may also be ``hf-hub:org/repo`` or
    ``local-dir:/path`` (open_clip schemas) or :data:`TEST_ARCH` / :data:`BENCH_ARCH`.
    """
    import open_clip
    import torch

    dev = resolve_device(device)
    kwargs: dict[str, Any] = {}
    base = model
    if model in _TEST_ARCH_CFGS:
        if pretrained is not None:
            raise ClipError(f"clip: {model} has no pretrained weights, expected pretrained=None, found {pretrained!r}")
        cfg = dict(_TEST_ARCH_CFGS[model])
        base = cfg.pop("base")
        kwargs = cfg
    elif ":" not in model and model not in open_clip.list_models():
        import difflib

        close = difflib.get_close_matches(model, open_clip.list_models(), n=3)
        raise ClipError(
            f"clip: expected an open_clip model name, found {model!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else "")
        )
    if pretrained is not None and not Path(pretrained).is_file() and ":" not in model:
        tags = [t for m, t in open_clip.list_pretrained() if m == model]
        if pretrained not in tags:
            raise ClipError(
                f"clip: expected a pretrained tag of {model} ({', '.join(tags) or 'none known'}) or a checkpoint file, "
                f"found {pretrained!r}"
            )
    torch.manual_seed(seed)
    # open_clip warns on the root logger that random weights are random; that is the point here
    previous = logging.root.manager.disable
    if pretrained is None:
        logging.disable(logging.WARNING)
    try:
        m, _, preprocess = open_clip.create_model_and_transforms(
            base, pretrained=pretrained, device=dev, precision=precision, **kwargs
        )
    except pickle.UnpicklingError:
        raise ClipError(
            f"clip: expected {pretrained!r} to be a plain weights checkpoint for {model}, found a file "
            "torch.load(weights_only=True) refuses (never unpickled)"
        ) from None
    except (RuntimeError, OSError, ValueError, EOFError, KeyError) as exc:
        raise ClipError(
            f"clip: expected to load {model} with weights {pretrained!r}, found {type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None
    finally:
        logging.disable(previous)
    m.eval()
    tokenizer = open_clip.get_tokenizer(base)
    with torch.inference_mode():
        dim = int(m.encode_text(tokenizer(["a"]).to(dev)).shape[-1])
    identity = f"{model}|{_weights_identity(pretrained, seed)}|{precision}"
    return ClipModel(m, preprocess, tokenizer, dev, model, pretrained, identity, dim)


# --------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------


class ImageFiles:
    """A map-style dataset of image files -> preprocessed tensors (RGB)."""

    def __init__(self, paths: Sequence[str], preprocess):
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[i]) as im:
                return self.preprocess(im.convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise InvalidInputError(
                f"image folder: expected a readable image at {self.paths[i]}, found {type(exc).__name__}: {exc}"
            ) from None


def embed_images(
    clip: ClipModel, paths: Sequence[str], batch_size: int = 256, num_workers: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, embeddings)`` batches of L2-normalised image embeddings, in ``paths`` order."""
    import torch

    if not len(paths):
        return
    loader = torch.utils.data.DataLoader(
        ImageFiles(paths, clip.preprocess),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=clip.device.startswith("cuda"),
    )
    start = 0
    for x in loader:
        e = clip.encode_image_tensor(x)
        yield start, e
        start += len(e)


def _ids_digest(sample_ids: Sequence[str]) -> str:
    h = hashlib.sha256()
    for s in sample_ids:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()


class EmbeddingChunks:
    """Chunked, resumable embedding store: ``<dir>/meta.json`` + ``chunk-00000.npy`` ... (float16).

    Chunk k holds rows ``[k*chunk_rows, (k+1)*chunk_rows)`` of the sample list. Every chunk is written
    atomically, so after a kill only complete chunks exist; :meth:`missing` lists the rest. Opening an
    existing directory made for another sample list or model is an error.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        sample_ids: Sequence[str],
        dim: int,
        identity: str,
        chunk_rows: int = 65536,
        resume: bool = True,
    ):
        if chunk_rows < 1:
            raise InvalidInputError(f"embeddings: expected chunk_rows >= 1, found {chunk_rows}")
        self.dir = Path(directory)
        self.num_rows = len(sample_ids)
        self.dim = int(dim)
        self.chunk_rows = int(chunk_rows)
        meta = {
            "identity": identity,
            "num_rows": self.num_rows,
            "dim": self.dim,
            "chunk_rows": self.chunk_rows,
            "sample_ids_sha256": _ids_digest(sample_ids),
            "dtype": "float16",
        }
        mp = self.dir / "meta.json"
        if mp.is_file():
            old = json.loads(mp.read_text())
            if old != meta:
                diff = sorted(k for k in meta if old.get(k) != meta[k])
                raise InvalidInputError(
                    f"embeddings: expected the work area {self.dir} to belong to this run, found different "
                    f"{', '.join(diff)}; delete it or choose another work dir"
                )
            if not resume and self.done():
                raise InvalidInputError(
                    f"embeddings: found finished chunks in {self.dir}; pass --resume to reuse them or delete the folder"
                )
        else:
            write_json(mp, meta)
        self.meta = meta

    @property
    def num_chunks(self) -> int:
        return (self.num_rows + self.chunk_rows - 1) // self.chunk_rows

    def rows(self, k: int) -> tuple[int, int]:
        return k * self.chunk_rows, min(self.num_rows, (k + 1) * self.chunk_rows)

    def chunk_path(self, k: int) -> Path:
        return self.dir / f"chunk-{k:05d}.npy"

    def done(self) -> list[int]:
        return [k for k in range(self.num_chunks) if self.chunk_path(k).is_file()]

    def missing(self) -> list[int]:
        return [k for k in range(self.num_chunks) if not self.chunk_path(k).is_file()]

    def write(self, k: int, x: np.ndarray) -> None:
        a, b = self.rows(k)
        if x.shape != (b - a, self.dim):
            raise InvalidInputError(f"embeddings: expected chunk {k} of shape {(b - a, self.dim)}, found {x.shape}")
        save_npy(self.chunk_path(k), x.astype(np.float16))

    def read(self, k: int) -> np.ndarray:
        """Chunk k as float32, re-normalised (fp16 storage rounds the norm)."""
        x = np.load(self.chunk_path(k), allow_pickle=False).astype(np.float32)
        a, b = self.rows(k)
        if x.shape != (b - a, self.dim):
            raise InvalidInputError(
                f"embeddings: expected {self.chunk_path(k)} of shape {(b - a, self.dim)}, found {x.shape}"
            )
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(n, 1e-12)

    def iter_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        for k in range(self.num_chunks):
            yield self.rows(k)[0], self.read(k)

    def fill(
        self,
        clip: ClipModel,
        paths: Sequence[str],
        batch_size: int = 256,
        num_workers: int = 0,
        on_chunk=None,
        chunks: Sequence[int] | None = None,
        progress: bool = True,
    ) -> int:
        """Embed the missing chunks (or the given ``chunks``: this process's share under torchrun) from
        ``paths`` (same order as the sample ids); returns chunks written."""
        from tqdm import tqdm

        todo = self.missing() if chunks is None else list(chunks)
        if not todo:
            return 0
        total = sum(self.rows(k)[1] - self.rows(k)[0] for k in todo)
        with tqdm(total=total, desc="embed images", unit="img", disable=None if progress else True, file=None) as bar:
            for k in todo:
                a, b = self.rows(k)
                parts = []
                for _, e in embed_images(clip, paths[a:b], batch_size=batch_size, num_workers=num_workers):
                    parts.append(e)
                    bar.update(len(e))
                self.write(k, np.concatenate(parts))
                if on_chunk is not None:
                    on_chunk(k)
        return len(todo)


def open_feature_store_embeddings(features_dir: str | os.PathLike, split: str, sample_ids: Sequence[str]):
    """Image embeddings from a feature store (``features/store`` contract) made with the same model.

    Returns a float32 array view iterator ``(start, x)`` over rows aligned with ``sample_ids``;
    the store's sample ids must equal ``sample_ids`` (same canonical order)."""
    try:
        from ..features.store import FeatureStore  # type: ignore
    except ImportError as exc:  # pragma: no cover - depends on the features module
        raise InvalidInputError(f"features: expected the feature store module, found {exc}") from None
    store = FeatureStore.open(Path(features_dir) / split)
    ids = np.asarray(store.sample_ids, dtype=object)
    if len(ids) != len(sample_ids) or not np.array_equal(ids, np.asarray(sample_ids, dtype=object)):
        raise InvalidInputError(
            f"features: expected the {split} store in {features_dir} to hold the {len(sample_ids)} images of the "
            f"folder in canonical order, found {len(ids)} rows with different sample ids"
        )
    return store


# --------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    env = os.environ.get("IN21K_BENCH_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "in21k_bench"
    return base / "clip_text"


class TextEmbeddingCache:
    """Per-lemma text embeddings of synsets for one model, cached on disk.

    Directory ``<cache_dir>/<key>/`` with ``emb.npy`` (float32, one row per lemma: the mean of the
    7 normalised prompt embeddings, NOT re-normalised) and ``index.json``
    (``{"key_info": {...}, "classes": {wnid: [first_row, [lemma, ...]]}}``). ``emb.npy`` is
    rewritten before ``index.json`` (both atomic), so the index never points past the array.
    The key is a hash of model identity, taxonomy version and the prompt templates.
    """

    def __init__(self, clip: ClipModel, taxonomy_version: str, cache_dir: str | os.PathLike | None = None):
        self.clip = clip
        info = {
            "model": clip.identity,
            "taxonomy": taxonomy_version,
            "prompts": prompts_version(),
            "templates": list(PROMPT_TEMPLATES),
        }
        key = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:16]
        self.dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.dir = self.dir / key
        self.key_info = info
        self._emb = np.zeros((0, clip.embed_dim), np.float32)
        self._classes: dict[str, list] = {}
        ip, ep = self.dir / "index.json", self.dir / "emb.npy"
        if ip.is_file() and ep.is_file():
            idx = json.loads(ip.read_text())
            emb = np.load(ep, allow_pickle=False)
            if idx.get("key_info") == info and emb.ndim == 2 and emb.shape[1] == clip.embed_dim:
                self._emb, self._classes = emb.astype(np.float32), idx["classes"]

    def _save(self) -> None:
        save_npy(self.dir / "emb.npy", self._emb)
        write_json(self.dir / "index.json", {"key_info": self.key_info, "classes": self._classes})

    def lemma_embeddings(
        self, wnids: Sequence[str], lemmas: Sequence[Sequence[str]], batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-lemma embeddings for ``wnids`` (lemma lists aligned): returns ``(emb, ptr)`` with the lemmas of
        class j in rows ``ptr[j]:ptr[j+1]`` (float32, each row the mean of 7 normalised prompt embeddings)."""
        from tqdm import tqdm

        todo = [j for j, w in enumerate(wnids) if w not in self._classes or self._classes[w][1] != list(lemmas[j])]
        if todo:
            n_prompts = len(PROMPT_TEMPLATES)
            pending_rows: list[np.ndarray] = []
            new_classes: dict[str, list] = {}
            row = len(self._emb)
            step = max(1, batch_size // n_prompts)
            with tqdm(total=len(todo), desc="text embeddings", unit="class", disable=None) as bar:
                for s in range(0, len(todo), step):
                    group = todo[s : s + step]
                    texts, owners = [], []
                    for j in group:
                        for lem in lemmas[j]:
                            texts.extend(fill_prompts(lem))
                            owners.append(j)
                    e = self.clip.encode_texts(texts, batch_size=batch_size)
                    means = e.reshape(len(owners), n_prompts, -1).mean(axis=1)
                    pending_rows.append(means.astype(np.float32))
                    for j in group:
                        new_classes[wnids[j]] = [row, list(lemmas[j])]
                        row += len(lemmas[j])
                    bar.update(len(group))
            self._emb = np.concatenate([self._emb, *pending_rows])
            self._classes.update(new_classes)
            self._save()
        ptr = np.zeros(len(wnids) + 1, np.int64)
        rows = []
        for j, w in enumerate(wnids):
            first, lems = self._classes[w]
            rows.append(np.arange(first, first + len(lems)))
            ptr[j + 1] = ptr[j] + len(lems)
        return self._emb[np.concatenate(rows)] if rows else self._emb[:0], ptr

    # lemma votes recorded by relabel runs, reused by zero-shot classification
    def save_votes(self, wnids: Sequence[str], counts: Sequence[np.ndarray], source: str) -> None:
        p = self.dir / "lemma_votes.json"
        votes = json.loads(p.read_text()) if p.is_file() else {}
        for w, c in zip(wnids, counts):
            votes[w] = {"counts": [int(v) for v in c], "source": source}
        write_json(p, votes)

    def load_votes(self) -> dict[str, dict]:
        p = self.dir / "lemma_votes.json"
        return json.loads(p.read_text()) if p.is_file() else {}


def normalize_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def vote_lemmas(
    lemma_emb: np.ndarray, ptr: np.ndarray, class_pos: np.ndarray, x: np.ndarray, counts: list[np.ndarray]
) -> None:
    """Add one chunk of votes: image i (embedding ``x[i]``, class position ``class_pos[i]``, -1 = not
    voting) votes for the lemma of its own class with the highest cosine score (first lemma on ties).
    ``counts[j]`` (length = number of lemmas of class j) is updated in place."""
    emb = normalize_rows(lemma_emb)
    valid = np.flatnonzero(class_pos >= 0)
    if not len(valid):
        return
    cp = class_pos[valid]
    order = np.argsort(cp, kind="stable")
    cp_sorted = cp[order]
    cls, starts = np.unique(cp_sorted, return_index=True)
    bounds = np.append(starts, len(cp_sorted))
    for j, a, b in zip(cls, bounds[:-1], bounds[1:]):
        lo, hi = ptr[j], ptr[j + 1]
        rows = valid[order[a:b]]
        if hi - lo == 1:
            counts[j][0] += len(rows)
            continue
        s = x[rows] @ emb[lo:hi].T
        counts[j] += np.bincount(s.argmax(axis=1), minlength=hi - lo)


def choose_lemmas(counts: Sequence[np.ndarray]) -> np.ndarray:
    """Index of the winning lemma per class: most votes, ties (and classes without images) -> the
    earliest lemma in WordNet order."""
    return np.array([int(np.argmax(c)) if len(c) else 0 for c in counts], dtype=np.int64)


def class_text_matrix(lemma_emb: np.ndarray, ptr: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """(n_classes, D) unit-norm text embedding per class: the chosen lemma's prompt mean, re-normalised."""
    rows = ptr[:-1] + choice
    if np.any(rows >= ptr[1:]):
        raise InvalidInputError(
            "text embeddings: expected a lemma choice within each class's lemmas, found one outside"
        )
    return normalize_rows(lemma_emb[rows])
