"""Prompt templates and lemma handling for CLIP text embeddings (docs/zeroshot.md, "Text embeddings and lemma choice").

Text embedding of a synset: for every lemma, the 7 prompts below are filled in, encoded,
L2-normalised and averaged; the lemma used for the class is then chosen by a majority vote of
zero-shot predictions over that class's images (see :mod:`in21k_bench.zeroshot.clip`).

Lemmas come from the taxonomy (``Taxonomy.lemmas``, built from timm's
``imagenet_synset_to_lemma.txt``: ``<wnid>\\t<lemma>, <lemma>, ...``). The strings are used as
written (case and underscores kept); a synset without lemmas falls back to its short name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import InvalidInputError

#: The paper's 7 prompt templates (docs/zeroshot.md), exact strings (including "a origami").
PROMPT_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)


def prompts_version() -> str:
    """Short hash of the template set (part of every text-embedding cache key)."""
    return hashlib.sha256("\n".join(PROMPT_TEMPLATES).encode()).hexdigest()[:12]


def fill_prompts(lemma: str, templates: Sequence[str] = PROMPT_TEMPLATES) -> list[str]:
    """The prompts for one lemma, in template order."""
    lemma = lemma.strip()
    if not lemma:
        raise InvalidInputError("prompts: expected a non-empty lemma, found an empty string")
    return [t.format(lemma) for t in templates]


def split_lemmas(field: str) -> list[str]:
    """Split a lemma field of the lemma table (``"organism, being"`` -> ``["organism", "being"]``).

    Duplicates are dropped (first occurrence kept), order is preserved."""
    out: list[str] = []
    for part in field.split(","):
        s = part.strip()
        if s and s not in out:
            out.append(s)
    return out


def read_lemma_table(path: str | os.PathLike) -> dict[str, list[str]]:
    """Parse ``imagenet_synset_to_lemma.txt`` (tab-separated ``wnid<TAB>lemma, lemma``)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"lemma table: expected a file at {path}, found none")
    out: dict[str, list[str]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        wnid, sep, field = line.partition("\t")
        if not sep or not wnid.startswith("n"):
            raise InvalidInputError(
                f"lemma table {path}: expected 'wnid<TAB>lemmas' on line {lineno}, found {line[:60]!r}"
            )
        out[wnid.strip()] = split_lemmas(field)
    return out


def class_lemmas(
    wnids: Sequence[str],
    lemmas: Mapping[str, Sequence[str]] | Sequence[Sequence[str]],
    names: Sequence[str] | None = None,
) -> list[list[str]]:
    """Lemma lists for ``wnids``.

    ``lemmas`` is either a mapping wnid -> lemmas (the lemma table) or a list aligned with ``wnids``
    (``Taxonomy.lemmas``). A class with no lemma falls back to ``names[i]``; with neither, an error.
    """
    out: list[list[str]] = []
    for i, w in enumerate(wnids):
        raw = lemmas.get(w, []) if isinstance(lemmas, Mapping) else lemmas[i]
        lst: list[str] = []
        for s in raw:
            s = str(s).strip()
            if s and s not in lst:
                lst.append(s)
        if not lst and names is not None and str(names[i]).strip():
            lst = [str(names[i]).strip()]
        if not lst:
            raise InvalidInputError(f"prompts: expected at least one lemma or a name for class {w}, found none")
        out.append(lst)
    return out
