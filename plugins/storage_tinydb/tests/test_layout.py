"""The package's shape: its modules import one another without a loop (issue 19).

Every import counts, including those under ``TYPE_CHECKING`` and inside functions: a module
that needs another only for a type annotation still leans on it. The store is built bottom
up (files → journal → table → collection → store), each part reaching the next only through
public names; ruff's SLF001, enabled in this package's ``pyproject.toml``, checks the latter.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crmcore_storage_tinydb

PACKAGE = "crmcore_storage_tinydb"
ROOT = Path(crmcore_storage_tinydb.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from package import module``
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    modules = {f"{PACKAGE}.{p.stem}" for p in ROOT.glob("*.py") if p.stem != "__init__"}
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    return {
        f"{PACKAGE}.{p.stem}": imported_modules(p)
        for p in sorted(ROOT.glob("*.py"))
        if p.stem != "__init__"
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop in ``graph`` (as a path that ends where it starts), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle is not None:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle is not None:
            return cycle
    return None


def test_the_finder_sees_a_loop_through_any_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_counts_type_checking_and_function_level_imports(tmp_path):
    graph = import_graph()
    # store.py imports collection.py at the top; topk.py imports table.py for a type
    assert f"{PACKAGE}.collection" in graph[f"{PACKAGE}.store"]
    assert f"{PACKAGE}.table" in graph[f"{PACKAGE}.topk"]
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        f"    from {PACKAGE}.store import TinyStore\n"
        f"def f():\n    from {PACKAGE} import recovery\n"
    )
    assert imported_modules(probe) == {f"{PACKAGE}.store", f"{PACKAGE}.recovery"}


def test_no_module_of_the_store_imports_another_in_a_loop():
    assert find_cycle(import_graph()) is None
