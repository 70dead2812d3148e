"""No import loop in the core: the import graph of ``crmcore``, built from the source with
``ast``, has no cycle (docs/architecture.md).

Every ``import`` counts, at module level, inside a function or under ``if TYPE_CHECKING:``,
except the annotation-only imports listed in ``TYPES_OF_THE_HOST``: the hook specifications and
the API request name the types of the CRM and of the plugin manager that call them. Any other
annotation that reaches back up (a service naming ``CRM`` again) is a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crmcore

SRC = Path(crmcore.__file__).parent

#: The annotation-only imports allowed: the hook specifications (the core's and the
#: contracts plugins offer each other) and the typed facade that calls them name the CRM and
#: the plugin manager (``crm_addhooks``) that call them, and the API request the CRM it carries.
TYPES_OF_THE_HOST = frozenset(
    {
        ("crmcore.hookspecs", "crmcore.app"),
        ("crmcore.hookspecs", "crmcore.plugins"),
        ("crmcore.reportspecs", "crmcore.app"),
        ("crmcore.webspecs", "crmcore.app"),
        ("crmcore.hookcalls", "crmcore.app"),
        *{
            (f"crmcore.contracts.{name}", "crmcore.app")
            for name in ("complaints", "followup", "grading", "loyalty", "service")
        },
    }
)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of a module, each with whether it is under
    ``if TYPE_CHECKING:`` (annotation-only: it never runs)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node, typing_only))
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


Graph = dict[str, dict[str, set[str]]]


def import_graph(root: Path, package: str, *, typing_only: bool = True) -> Graph:
    """``{module: {imported module: names taken}}`` for every module under ``root`` (the
    folder of ``package``), only edges between modules of that package; with
    ``typing_only=False``, imports under ``if TYPE_CHECKING:`` are left out."""
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph: Graph = {m: {} for m in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, annotation in _imports(ast.parse(path.read_text("utf-8"), str(path))):
            if annotation and not typing_only:
                continue
            if isinstance(node, ast.Import):
                pairs = [(alias.name, alias.name) for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                pairs = [
                    (
                        f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base,
                        alias.name,
                    )
                    for alias in node.names
                ]
            for target, taken in pairs:
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]  # import a.b.c of a package a.b
                if target in modules and target != name:
                    graph[name].setdefault(target, set()).add(taken)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe(graph: Graph, loop: list[str]) -> str:
    members = set(loop)
    lines = [f"{len(loop)} modules import each other: {', '.join(loop)}"]
    for module in loop:
        for target, names in sorted(graph[module].items()):
            if target in members:
                lines.append(f"  {module} -> {target}: {', '.join(sorted(names))}")
    return "\n".join(lines)


def test_the_core_has_no_import_loop():
    graph = import_graph(SRC, "crmcore")
    assert len(graph) > 40  # the whole package was read
    for module, target in TYPES_OF_THE_HOST:
        del graph[module][target]
    loops = cycles(graph)
    assert not loops, "\n".join(describe(graph, loop) for loop in loops)


def test_the_allowed_references_to_the_host_are_annotations_only():
    running = import_graph(SRC, "crmcore", typing_only=False)
    everything = import_graph(SRC, "crmcore")
    for module, target in TYPES_OF_THE_HOST:
        assert target in everything[module], f"{module} no longer names {target}: drop it"
        assert target not in running[module], f"{module} imports {target} when it runs"
    assert not cycles(running)


def test_the_check_finds_a_loop_through_annotations_and_functions(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import g\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import pkg.a\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.e import x\n"
    )
    (pkg / "e.py").write_text("from pkg.d import y\n")
    graph = import_graph(pkg, "pkg")
    assert graph["pkg.b"] == {"pkg.sub.c": {"g"}}
    assert graph["pkg.d"] == {"pkg.e": {"x"}}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"], ["pkg.d", "pkg.e"]]
    assert "pkg.b -> pkg.sub.c: g" in describe(graph, cycles(graph)[0])
    running = import_graph(pkg, "pkg", typing_only=False)
    assert cycles(running) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
