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


def test_design_tree_lists_every_module():
    """docs/design.md's package tree has one line per module: every file of the package is named there
    under its folder, and nothing that no longer exists is."""
    text = (DOCS / "design.md").read_text(encoding="utf-8")
    tree = re.search(r"^```\nin21k_bench/\n(.*?)^```", text, flags=re.S | re.M).group(1)
    named: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in tree.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        indent, name = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([p for _, p in stack] + [name.rstrip("/")])
        if name.endswith("/"):
            stack.append((indent, name.rstrip("/")))
        named.add(path)
    pkg = DOCS.parent / "in21k_bench"
    files = {str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if p.name != "__init__.py" or p.parent == pkg}
    assert sorted(files - named) == []  # every module has its line
    assert sorted(n for n in named if n.endswith(".py") and n not in files) == []  # no stale line


def test_every_doc_example_imports_what_exists():
    """The other pages' examples need a user's data (a download, a run folder), so they are not run;
    but each parses, and every ``in21k_bench`` name they import exists."""
    import ast
    import importlib
    import importlib.util

    checked = 0
    for page in sorted(DOCS.glob("*.md")):
        for i, code in enumerate(python_blocks(page.read_text(encoding="utf-8")), 1):
            tree = ast.parse(code, f"docs/{page.name} (python block {i})")
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("in21k_bench"):
                    mod = importlib.import_module(node.module)
                    for alias in node.names:
                        assert hasattr(mod, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                            f"docs/{page.name} block {i}: {node.module} has no {alias.name}"
                        )
                        checked += 1
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("in21k_bench"):
                            importlib.import_module(alias.name)
                            checked += 1
    assert checked > 5
