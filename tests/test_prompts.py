"""Prompt templates and lemma handling against the real lemma table."""

from __future__ import annotations

from pathlib import Path

import pytest

from in21k_bench.errors import In21kError
from in21k_bench.zeroshot.prompts import (
    PROMPT_TEMPLATES,
    class_lemmas,
    fill_prompts,
    prompts_version,
    read_lemma_table,
    split_lemmas,
)


@pytest.fixture(scope="module")
def lemma_table_path(sources_dir) -> Path:
    return sources_dir / "timm" / "imagenet_synset_to_lemma.txt"


def test_the_seven_documented_prompts_exactly():
    assert PROMPT_TEMPLATES == (
        "itap of a {}.",
        "a bad photo of the {}.",
        "a origami {}.",
        "a photo of the large {}.",
        "a {} in a video game.",
        "art of the {}.",
        "a photo of the small {}.",
    )
    assert fill_prompts("domestic dog") == [
        "itap of a domestic dog.",
        "a bad photo of the domestic dog.",
        "a origami domestic dog.",
        "a photo of the large domestic dog.",
        "a domestic dog in a video game.",
        "art of the domestic dog.",
        "a photo of the small domestic dog.",
    ]
    assert len(prompts_version()) == 12
    with pytest.raises(In21kError, match="non-empty lemma"):
        fill_prompts("  ")


def test_real_lemma_table(lemma_table_path):
    table = read_lemma_table(lemma_table_path)
    assert len(table) == 21844
    assert table["n01440764"] == ["tench", "Tinca tinca"]  # case kept
    assert table["n02084071"] == ["dog", "domestic dog", "Canis familiaris"]
    assert table["n00007846"] == ["person", "individual", "someone", "somebody", "mortal", "soul"]
    assert all(lst for lst in table.values())
    assert all(s == s.strip() and s for lst in table.values() for s in lst)


def test_lemmas_agree_with_the_taxonomy(lemma_table_path):
    from test_hzr import taxonomy

    tax = taxonomy()
    table = read_lemma_table(lemma_table_path)
    from_table = class_lemmas(list(tax.wnids), table, list(tax.names))
    from_tax = class_lemmas(list(tax.wnids), tax.lemmas, list(tax.names))
    assert from_table == from_tax
    assert len(from_tax) == 10450
    assert from_tax[tax.index("n02226429")] == ["grasshopper", "hopper"]
    multi = sum(len(x) > 1 for x in from_tax)
    assert 3000 < multi < 10450  # many synsets need the lemma vote


def test_split_and_fallbacks(tmp_path):
    assert split_lemmas("a, b,  a , c") == ["a", "b", "c"]
    assert class_lemmas(["n1", "n2"], {"n1": ["x"]}, ["one", "two_name"]) == [["x"], ["two_name"]]
    assert class_lemmas(["n1"], [["y", "y", " z "]]) == [["y", "z"]]
    with pytest.raises(In21kError, match="at least one lemma"):
        class_lemmas(["n9"], {}, None)
    bad = tmp_path / "lemmas.txt"
    bad.write_text("n00000001\tok\nthis line has no tab\n")
    with pytest.raises(In21kError, match="line 2"):
        read_lemma_table(bad)
    with pytest.raises(In21kError, match="expected a file"):
        read_lemma_table(tmp_path / "missing.txt")
