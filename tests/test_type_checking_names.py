"""Names imported only for type checking (under ``if TYPE_CHECKING:``) must not be used at
run time: ruff and mypy do not see it, and the first call raises ``NameError``. Hooks import
their modules when they run (start-up, issue 24), which makes the mistake easy: a hook
written against a module-level name that moved under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
SOURCES = [
    ROOT / "src",
    *sorted((ROOT / "plugins").glob("*/src")),
    *sorted((ROOT / "examples").glob("*/src")),
]


def _names(node: ast.AST) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for a in getattr(node, "names", ())}


def _annotation_ids(tree: ast.AST) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        annotations: list[ast.AST | None] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            annotations += [a.annotation for a in every if a is not None]
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            annotations.append(node.annotation)
        for annotation in annotations:
            if annotation is not None:
                ids.update(id(n) for n in ast.walk(annotation))
    return ids


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


class Finder(ast.NodeVisitor):
    """Run-time uses of ``type_only`` names not bound again in an enclosing function."""

    def __init__(self, type_only: set[str], skip: set[int]) -> None:
        self.type_only = type_only
        self.skip = skip
        self.scopes: list[set[str]] = []
        self.found: list[tuple[int, str]] = []

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node):
            self.generic_visit(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        bound: set[str] = set()
        args = node.args
        bound.update(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs])
        bound.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                bound |= _names(inner)
            elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                bound.add(inner.id)
        self.scopes.append(bound)
        if isinstance(node, ast.Lambda):
            self.visit(node.body)
        else:
            for statement in node.body:
                self.visit(statement)
            for decorator in node.decorator_list:
                self.visit(decorator)
        self.scopes.pop()

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function
    visit_Lambda = _function

    def visit_Name(self, node: ast.Name) -> None:
        if (
            isinstance(node.ctx, ast.Load)
            and node.id in self.type_only
            and id(node) not in self.skip
            and not any(node.id in scope for scope in self.scopes)
        ):
            self.found.append((node.lineno, node.id))


def problems(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only: set[str] = set()
    runtime: set[str] = set()
    for node in tree.body:
        if _is_type_checking(node):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    type_only |= _names(inner)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            runtime |= _names(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            runtime.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.If, ast.Try)):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    runtime.add(inner.id)
                elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                    runtime |= _names(inner)
    type_only -= runtime
    if not type_only:
        return []
    finder = Finder(type_only, _annotation_ids(tree))
    finder.visit(tree)
    return [f"{path.relative_to(root)}:{line}: {name}" for line, name in finder.found]


def test_no_name_imported_for_type_checking_is_used_at_run_time():
    found = [
        problem
        for source in SOURCES
        for path in sorted(source.rglob("*.py"))
        for problem in problems(path)
    ]
    assert not found, "imported under TYPE_CHECKING, used at run time:\n" + "\n".join(found)


def test_the_check_finds_such_a_use(tmp_path):
    module = tmp_path / "mod.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from crmcore import Effects\n"
        "def hook(x: Effects) -> Effects:\n"  # annotations are fine
        "    return Effects.run(x)\n"  # this is not
        "def other() -> None:\n"
        "    from crmcore import Effects\n"
        "    def inner() -> Effects:\n"
        "        return Effects()\n"  # bound by the enclosing function: fine
        "    inner()\n",
        encoding="utf-8",
    )
    assert problems(module, tmp_path) == ["mod.py:5: Effects"]
