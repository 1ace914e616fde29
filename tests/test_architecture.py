"""Package shape: the import graph (function-local imports included) has no cycle, and no module
is longer than 600 lines. Both keep the one-way data flow of docs/design.md honest."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "in21k_bench"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(importer: str, is_pkg: bool, level: int, name: str | None) -> str:
    base = importer.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node.level, node.module) if node.level else (node.module or "")
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                # the most specific module that exists; a package's __init__ is not an edge target
                # (importing a.b runs a/__init__ first, but that is the package's public face, not a
                # dependency of the importer on a's siblings)
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != mod and mods[t].name != "__init__.py":
                    graph[mod].add(t)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_checker_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 30 and sum(map(len, graph.values())) > 50  # the walk saw the package
    assert find_cycles(graph) == []


def test_no_module_longer_than_limit():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


MAX_TOP_LEVEL_MODULES = 8
MAX_FUNCTION_LINES = 150


def test_top_level_keeps_only_the_public_face():
    flat = sorted(p.name for p in PKG.glob("*.py"))
    assert len(flat) <= MAX_TOP_LEVEL_MODULES, flat


def test_no_function_longer_than_limit():
    long = {}
    for mod, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{mod}.{node.name}:{node.lineno}"] = n
    assert long == {}


def test_no_alias_modules():
    """Every module that is not a package's ``__init__`` defines something (a function, a class or a
    constant); a file that only re-imports names from elsewhere is an old import path left behind."""
    aliases = []
    for mod, path in _modules().items():
        if path.name == "__init__.py":
            continue
        body = ast.parse(path.read_text(), str(path)).body
        defines = [
            n
            for n in body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign))
            and not (isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["__all__"])
        ]
        if not defines:
            aliases.append(mod)
    assert aliases == []


def test_subpackages_form_no_cycle():
    """Collapsed to the first level (``registry``, ``manifests``, ``evaluation``, ``benchmark``, ...), the
    import graph is still acyclic: data flows one way between the concerns, not only between modules."""
    graph = import_graph()
    top: dict[str, set[str]] = {}
    for mod, targets in graph.items():
        a = mod.split(".")[1] if "." in mod else mod
        top.setdefault(a, set()).update(t.split(".")[1] for t in targets if "." in t and t.split(".")[1] != a)
    for targets in list(top.values()):
        for t in targets:
            top.setdefault(t, set())
    assert {"registry", "manifests", "evaluation", "scoring"} <= set(top)
    assert find_cycles(top) == []
