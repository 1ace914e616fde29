"""The Python examples of docs/design.md and docs/api.md run as written (offline, on the committed
manifests), one namespace per page, blocks in page order, in a fresh working directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ["design.md", "api.md"]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_block_finder_sees_fenced_python_only():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert python_blocks(text) == ["x = 1\n", "y = 2\n"]


@pytest.mark.parametrize("page", PAGES)
def test_python_examples_run(page, tmp_path, monkeypatch, capsys):
    blocks = python_blocks((DOCS / page).read_text(encoding="utf-8"))
    assert blocks, f"docs/{page} has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.removesuffix('.md')}"}
    for i, code in enumerate(blocks, 1):
        exec(compile(code, f"docs/{page} (python block {i})", "exec"), namespace)
    assert capsys.readouterr().out  # the examples print what they show
