"""The layout stays readable: no import cycles between modules, and no module imports the
package that contains it (a child calling up into its parent's ``__init__``)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "mila_bench"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the mila_bench modules it imports (at any depth of the file, lazy imports included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import sub` imports the submodule; `from pkg import name` reads pkg itself
                subs = [f"{node.module}.{a.name}" for a in node.names]
                targets = [s if s in modules else node.module for s in subs]
            for target in targets:
                if target in modules and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "mila_bench.training.engine" in graph["mila_bench.pipeline"]
    assert "mila_bench.errors" in graph["mila_bench.config"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_between_modules() -> None:
    graph = import_graph()
    # A package's __init__ may re-export from its children; that edge alone is not a cycle.
    without_reexports = {
        v: {w for w in ws if not w.startswith(v + ".")} for v, ws in graph.items()
    }
    assert cycles(without_reexports) == []


def test_no_module_imports_a_package_above_it() -> None:
    graph = import_graph()
    upward = [
        (v, w) for v, ws in graph.items() for w in ws
        if v.startswith(w + ".") and w != "mila_bench"  # the top package holds only __version__
    ]
    assert upward == []


def test_no_import_cycles_between_subpackages() -> None:
    """Collapsed to top-level units (``report``, ``records``, ``launch``, ...), the imports still form no cycle:
    e.g. ``launch`` (reproduce) renders its section with ``report``, so ``report`` must not need ``launch`` back."""
    graph = import_graph()

    def unit(name: str) -> str:
        return ".".join(name.split(".")[:2])

    units: dict[str, set[str]] = {}
    for v, ws in graph.items():
        units.setdefault(unit(v), set()).update(unit(w) for w in ws if unit(w) != unit(v))
    assert cycles(units) == []


def test_report_imports_no_launcher() -> None:
    """``report`` reads what the launchers leave (run records, ``records.jobs``, ``suites``), never ``launch``."""
    graph = import_graph()
    assert graph["mila_bench.launch"] == set()  # the package is a docstring: importing it stays cheap
    reached = {v for v in graph if v.startswith("mila_bench.report")}
    frontier = set(reached)
    while frontier:  # everything report imports, directly or through other modules
        frontier = {w for v in frontier for w in graph[v]} - reached
        reached |= frontier
    assert sorted(v for v in reached if v.startswith("mila_bench.launch")) == []
