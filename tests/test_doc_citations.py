"""Docstrings and docs cite the project's own documents only, and the cited sections exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("in21k_bench", "docs", "tests", "benchmarks", "leaderboard")
PRIVATE_NOTE = "SP" + "EC"  # the name of a working note that is not part of the repository


def _text_files():
    for folder in FOLDERS:
        for p in sorted((REPO / folder).rglob("*")):
            if p.is_file() and p.suffix in (".py", ".md", ".html", ".txt", ".json", ".toml", ".yml"):
                yield p
    yield REPO / "README.md"


def test_no_citation_of_a_document_outside_the_repository():
    bad = []
    for p in _text_files():
        for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if re.search(rf"\b{PRIVATE_NOTE}\b", line):
                bad.append(f"{p.relative_to(REPO)}:{i}: {line.strip()[:80]}")
    assert not bad, "state the definition in docs/ and cite that instead:\n" + "\n".join(bad)


def test_cited_doc_sections_exist():
    """A docstring citing a page of docs/ and a "Section" in quotes names a real heading (or a bold paragraph lead,
    e.g. **Losses**) of that page; a heading may continue after a colon."""
    cited = 0
    for p in _text_files():
        if p.suffix != ".py":
            continue
        for doc, heading in re.findall(r'docs/([\w-]+\.md),? "([^"]+)"', p.read_text(encoding="utf-8")):
            page = REPO / "docs" / doc
            assert page.is_file(), f"{p.relative_to(REPO)} cites docs/{doc}, which does not exist"
            text = page.read_text(encoding="utf-8")
            headings = [
                h.strip() for h in re.findall(r"^#+\s+(.+)$", text, re.M) + re.findall(r"^\*\*([^*]+)\*\*", text, re.M)
            ]
            assert any(h == heading or h.startswith(heading + ":") for h in headings), (
                f'{p.relative_to(REPO)} cites docs/{doc} "{heading}"; headings: {headings}'
            )
            cited += 1
    assert cited >= 10
