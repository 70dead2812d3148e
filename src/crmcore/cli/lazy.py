"""The root ``crm`` group: plugins' commands named by ``LazyCommand`` and imported on first use.

``crm --help`` lists a lazy command from its ``LazyCommand`` (name and help line) without
importing the plugin's CLI module; the module is imported when the command runs or its own
``--help`` is asked. A module that fails to import is a ``PluginError`` (one line, exit 7).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import click

from crmcore.errors import PluginError
from crmcore.registry import LazyCommand


class CrmGroup(click.Group):
    """A click group that also holds ``LazyCommand`` registrations (by plugin)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lazy: dict[str, tuple[str, LazyCommand]] = {}
        # called on each lazy command once it is imported (``crm`` adds its ``--json``)
        self.on_load: Callable[[click.Command], None] | None = None
        super().__init__(*args, **kwargs)

    def add_lazy(self, plugin: str, spec: LazyCommand) -> None:
        """Register ``spec`` for ``plugin``; like ``add_command``, a later one wins a name."""
        self.commands.pop(spec.name, None)
        self.lazy[spec.name] = (plugin, spec)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        self.lazy.pop(name or cmd.name or "", None)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            self.load(cmd_name)
        return self.commands.get(cmd_name)

    def load(self, name: str) -> click.Command:
        """Import the lazy command ``name`` and put it in place of its registration."""
        plugin, spec = self.lazy[name]
        module_name, _, attribute = spec.target.partition(":")
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except Exception as exc:  # ImportError, or anything the module raises while loading
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise PluginError(
                plugin, f"command {name!r} could not be loaded from {spec.target} ({reason})"
            ) from exc
        if not isinstance(command, click.Command):
            raise PluginError(
                plugin,
                f"command {name!r}: {spec.target} is not a click "
                f"command but {type(command).__name__}",
            )
        if self.on_load is not None:
            self.on_load(command)
        self.add_command(command, name)
        return command

    def load_all(self) -> None:
        """Import every lazy command (for tools that walk the whole tree)."""
        for name in list(self.lazy):
            self.load(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing, with lazy commands' help lines taken from their registration."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name in self.lazy:  # a stand-in that only carries the help line
                rows.append((name, click.Command(name, help=self.lazy[name][1].help)))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name]))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])
