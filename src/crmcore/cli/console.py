"""The rich consoles ``crm`` prints through; imported the first time a command prints, so a
command that only lists its help (or prints JSON) never loads rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from crmcore.cli.plaintable import columns
from crmcore.text import for_terminal

__all__ = ["SafeConsole", "columns", "console_for"]


class SafeConsole(Console):
    """A rich console that prints text as it is stored: no markup or emoji codes are read in
    it (a customer named ``[/b]`` or ``:smile:`` shows as such), and control, bidi and invalid
    characters show as escapes (``crmcore.text.for_terminal``), in tables and messages alike."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(for_terminal(text), **kwargs)


def console_for(stream: Any) -> Console:
    """A ``SafeConsole`` on ``stream``: the terminal's width, else ``columns()``."""
    width = None if stream.isatty() else columns()
    return SafeConsole(
        file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False
    )
