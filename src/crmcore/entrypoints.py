"""Entry points and installed distributions, read as ``importlib.metadata`` reads them.

Every ``crm`` start reads the ``crmcore`` entry-point group and a few distributions' names
and versions. ``importlib.metadata`` costs more to import than that reading (it brings the
e-mail package with it), so the usual layout, ``*.dist-info`` and ``*.egg-info`` folders in
the directories on ``sys.path`` found by the standard path finder, is read here the way it
reads it: the same distributions in the same order, the first of each name winning, the same
parsing of ``entry_points.txt`` and the same ``load``. Anything else (a zip or an egg on
``sys.path``, another finder of distributions on ``sys.meta_path``, a metadata folder named
in an unusual case) is handed to ``importlib.metadata`` itself.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterator
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")
# importlib.metadata's EntryPoint.pattern
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class Unusual(Exception):
    """The installation is not laid out as this module reads it."""


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


class Distribution:
    """An installed distribution's metadata folder."""

    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_text(self, filename: str) -> str | None:
        try:
            return (self.path / filename).read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
            return None

    def _full(self) -> Any:
        from importlib import metadata

        return metadata.PathDistribution(self.path)

    @property
    def name(self) -> str:
        return str(self._full().name)

    @property
    def version(self) -> str:
        return str(self._full().version)


class EntryPoint:
    """One ``name = module:attribute`` line of a distribution's ``entry_points.txt``."""

    __slots__ = ("dist", "group", "name", "value")

    def __init__(self, name: str, value: str, group: str, dist: Distribution | None) -> None:
        self.name, self.value, self.group, self.dist = name, value, group, dist

    def load(self) -> Any:
        """Import the module and return the attribute named (or the module)."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: {self.value!r} is not module:attribute")
        module = importlib.import_module(match.group("module"))
        names = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, names, module)

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def _folders(paths: list[str]) -> Iterator[tuple[str, Path]]:
    """(normalized name, folder) of every metadata folder, in importlib.metadata's order."""
    for root in paths:
        if not isinstance(root, str):
            raise Unusual(f"{root!r} on sys.path")
        if os.path.basename(root).lower().endswith(".egg"):
            raise Unusual(f"an egg on sys.path: {root}")
        try:
            children = os.listdir(root or ".")
        except NotADirectoryError as exc:
            raise Unusual(f"a file on sys.path: {root}") from exc
        except OSError:
            continue  # not there: importlib.metadata finds nothing in it either
        by_name: dict[str, list[Path]] = {}
        for child in children:
            low = child.lower()
            if not low.endswith(_SUFFIXES):
                continue
            if not child.endswith(_SUFFIXES):
                raise Unusual(f"a metadata folder named in capitals: {child}")
            name = _normalize(low.rpartition(".")[0].partition("-")[0])
            by_name.setdefault(name, []).append(Path(root, child))
        for name, folders in by_name.items():
            for folder in folders:
                yield name, folder


def _check_finders() -> None:
    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            raise Unusual(f"another finder of distributions: {finder!r}")


def _distributions() -> Iterator[Distribution]:
    """Each installed distribution once (the first found of each name)."""
    _check_finders()
    seen: set[str] = set()
    for name, folder in _folders(list(sys.path)):
        if name not in seen:
            seen.add(name)
            yield Distribution(folder)


def _parse(text: str, dist: Distribution) -> Iterator[EntryPoint]:
    group = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line.strip("[]")
        elif group is not None:
            name, _, value = line.partition("=")
            if not _:
                raise ValueError(f"{dist.path}: entry_points.txt: {line!r} has no '='")
            yield EntryPoint(name.strip(), value.strip(), group, dist)


def entry_points(group: str) -> list[Any]:
    """The entry points of ``group``, as ``importlib.metadata.entry_points(group=...)``."""
    try:
        return [
            ep
            for dist in _distributions()
            for ep in _parse(dist.read_text("entry_points.txt") or "", dist)
            if ep.group == group
        ]
    except Unusual:
        from importlib import metadata

        return list(metadata.entry_points(group=group))


def distribution(name: str) -> Any | None:
    """The installed distribution ``name`` (None if there is none), as
    ``importlib.metadata.distribution``."""
    wanted = _normalize(name)
    try:
        _check_finders()
        for found, folder in _folders(list(sys.path)):
            if found == wanted:
                return Distribution(folder)
        return None
    except Unusual:
        from importlib import metadata

        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
