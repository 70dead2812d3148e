"""Package exports imported on first use (PEP 562), for crmcore and for plugin packages.

A package lists which module holds each name it exports and assigns the function this
returns as its module ``__getattr__``; ``import crmcore_grading`` then costs nothing until a
name is used (registering a plugin imports only its ``plugin`` module)::

    __getattr__ = exports_on_first_use(__name__, {"Signals": "crmcore_grading.signals"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def exports_on_first_use(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``table[name]`` (a module path) is imported
    when ``name`` is first asked for, and the value kept in the package's namespace so later
    look-ups do not come back here; other names raise ``AttributeError``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
