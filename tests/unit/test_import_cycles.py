"""No module of src/dialwave imports itself back through other modules, counting every import in every file."""

from __future__ import annotations

import ast
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
SKIPPED = ("dialwave.store.migrations",)  # Alembic scripts, loaded by Alembic rather than imported


@dataclass(frozen=True)
class Import:
    """One import statement of `importer` that brings in `target`, where it is and what it says."""

    importer: str
    target: str
    path: Path
    line: int
    statement: str
    where: str  # "" at module level, else "in def f", "under if TYPE_CHECKING", ...


Graph = dict[str, dict[str, list[Import]]]  # importer -> target -> the statements that import it


def modules_of(src: Path, package: str, skipped: Collection[str] = ()) -> dict[str, Path]:
    """Every module of `package` under `src` by dotted name; a package's __init__.py is the package itself."""
    modules: dict[str, Path] = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not any(name == skip or name.startswith(skip + ".") for skip in skipped):
            modules[name] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_with_place(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement of a file, wherever it is, with the innermost function or TYPE_CHECKING block."""
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node, where))
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            where = f"in def {node.name}"
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                visit(statement, "under if TYPE_CHECKING")
            for statement in node.orelse:
                visit(statement, where)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, where)

    visit(tree, "")
    return found


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules: Collection[str]) -> set[str]:
    """The modules among `modules` that one import statement of `importer` names: for `from a.b import c`,
    a.b.c when that is a module, else a.b."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            package = importer if is_package else importer.rpartition(".")[0]
            base_parts = package.split(".")
            base_parts = base_parts[: len(base_parts) - (node.level - 1)]
            base = ".".join(base_parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    return {name for name in names if name in modules and name != importer}


def import_graph(src: Path, package: str, skipped: Collection[str] = ()) -> Graph:
    """Who imports whom among the modules of `package`, counting imports at any depth of a file."""
    modules = modules_of(src, package, skipped)
    graph: Graph = {name: {} for name in modules}
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        for node, where in _imports_with_place(ast.parse(source, filename=str(path))):
            text = " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())
            statement = text.replace("( ", "(").replace(", )", ")").replace(" )", ")")
            for target in _targets(node, name, path.name == "__init__.py", modules):
                graph[name].setdefault(target, []).append(Import(name, target, path, node.lineno, statement, where))
    return graph


def find_cycles(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """The strongly connected components that contain a cycle (Tarjan, iterative), each sorted, in order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def enter(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in sorted(graph):
        if root in index:
            continue
        enter(root)
        work = [(root, iter(sorted(graph.get(root, ()))))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    enter(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while not component or component[-1] != node:
                        component.append(stack.pop())
                        on_stack.discard(component[-1])
                    if len(component) > 1 or node in graph.get(node, ()):
                        cycles.append(sorted(component))
    return sorted(cycles)


def describe(cycles: list[list[str]], graph: Graph, root: Path) -> str:
    """Each cycle's modules, then the import statements that tie them, as file:line: statement -> modules."""
    lines = [f"{len(cycles)} import cycle(s) among the modules of src/dialwave:"]
    for number, cycle in enumerate(cycles, 1):
        lines.append(f"\ncycle {number}: {', '.join(cycle)}")
        ties: dict[tuple[str, int], list[Import]] = {}
        for importer in cycle:
            for target, imports in graph[importer].items():
                for imp in imports if target in cycle else []:
                    ties.setdefault((imp.importer, imp.line), []).append(imp)
        for _, imports in sorted(ties.items()):
            imp = imports[0]
            targets = ", ".join(sorted(other.target for other in imports))
            place = f"  [{imp.where}]" if imp.where else ""
            lines.append(f"  {imp.path.relative_to(root)}:{imp.line}: {imp.statement}  -> {targets}{place}")
    return "\n".join(lines)


def test_the_cycle_finder_reports_every_cycle_with_only_the_modules_on_it() -> None:
    graph = {
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "d"},  # a -> b -> c -> a; d hangs off the cycle but is not on it
        "d": set(),
        "e": {"a", "f"},
        "f": {"e"},  # e <-> f, a second cycle that also reaches the first
        "g": {"g"},  # a module that imports itself
    }
    assert find_cycles(graph) == [["a", "b", "c"], ["e", "f"], ["g"]]


def test_the_cycle_finder_finds_nothing_in_an_acyclic_graph() -> None:
    graph = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set(), "e": {"a", "d"}}
    assert find_cycles(graph) == []


def test_imports_at_any_depth_and_relative_ones_resolve_to_the_modules_they_load(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg.a import A\n",
        "pkg/a.py": (
            "from typing import TYPE_CHECKING\n"
            "from pkg import b, VALUE\n"  # b is a module, VALUE lives in pkg/__init__.py
            "if TYPE_CHECKING:\n"
            "    from .sub.c import C\n"
            "A = 1\n"
        ),
        "pkg/b.py": "def later():\n    import pkg.sub.c\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "from ..a import A\nfrom . import missing\n",  # no pkg/sub/missing.py: pkg.sub
        "pkg/migrations/env.py": "from pkg.a import A\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    graph = import_graph(tmp_path, "pkg", skipped=["pkg.migrations"])

    assert {importer: set(targets) for importer, targets in graph.items()} == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg", "pkg.b", "pkg.sub.c"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.a", "pkg.sub"},
    }
    cycles = find_cycles(graph)
    assert cycles == [["pkg", "pkg.a", "pkg.b", "pkg.sub.c"]]
    message = describe(cycles, graph, tmp_path)
    assert "pkg/a.py:4: from .sub.c import C  -> pkg.sub.c  [under if TYPE_CHECKING]" in message
    assert "pkg/b.py:2: import pkg.sub.c  -> pkg.sub.c  [in def later]" in message


def test_src_dialwave_has_no_import_cycles() -> None:
    graph = import_graph(SRC, "dialwave", SKIPPED)
    assert "dialwave.engine.dispatcher" in graph  # the walk found the sources
    cycles = find_cycles(graph)
    if cycles:
        pytest.fail(describe(cycles, graph, ROOT), pytrace=False)
