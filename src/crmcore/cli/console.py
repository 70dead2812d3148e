"""The rich consoles ``crm`` prints through; imported the first time a command prints, so a
command that only lists its help (or prints JSON) never loads rich."""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.text import Text

from crmcore.text import for_terminal


class SafeConsole(Console):
    """A rich console that prints text as it is stored: no markup or emoji codes are read in
    it (a customer named ``[/b]`` or ``:smile:`` shows as such), and control, bidi and invalid
    characters show as escapes (``crmcore.text.for_terminal``), in tables and messages alike."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(for_terminal(text), **kwargs)


def columns() -> int:
    """The width of output that is not a terminal: ``$COLUMNS`` (20 to 10,000), else 120."""
    try:
        return max(20, min(int(os.environ.get("COLUMNS", "120")), 10_000))
    except ValueError:
        return 120


def console_for(stream: Any) -> Console:
    """A ``SafeConsole`` on ``stream``: the terminal's width, else ``columns()``."""
    width = None if stream.isatty() else columns()
    return SafeConsole(
        file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False
    )
