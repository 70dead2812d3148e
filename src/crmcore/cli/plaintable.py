"""Tables and messages written without rich, exactly as rich writes them off a terminal.

Off a terminal (a pipe, a file, a test) rich prints plain text: no colours, the box drawn with
the same characters, each column as wide as its widest cell. Importing rich and laying the
table out costs more than many commands' own work (``crm customer list`` to a pipe spent a
sixth of its CPU on it), so for the simple case this module writes the same characters itself
and says ``None`` whenever it cannot promise rich's output byte for byte: text whose width on
screen it does not know, a line break, a table or message wider than the output (rich would
wrap it), a title wider than its table, an empty column. The caller prints those
through rich, as before; ``tests/test_plaintable.py`` compares both on random tables.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

# rich's box.HEAVY_HEAD, the default box of ``rich.table.Table``
_TOP = ("┏", "━", "┳", "┓")
_HEAD = ("┃", "┃", "┃")
_HEAD_RULE = ("┡", "━", "╇", "┩")
_ROW = ("│", "│", "│")
_BOTTOM = ("└", "─", "┴", "┘")

# Wide characters (two cells) whose width rich and every terminal agree on: CJK symbols and
# punctuation (but the tone marks U+302A-U+302F, which combine), the CJK ideographs and the
# full-width forms.
_WIDE = (
    (0x3000, 0x3029),
    (0x3030, 0x303E),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xFF01, 0xFF60),
)


def cell_width(text: str) -> int | None:
    """How many cells ``text`` takes on screen, when every character is one this module
    knows (printable ASCII and Latin-1, the wide CJK ranges above); else None."""
    if text.isascii():
        return len(text) if text.isprintable() else None
    width = 0
    for char in text:
        code = ord(char)
        if 0x20 <= code < 0x7F or (0xA0 <= code <= 0xFF and code != 0xAD):
            width += 1
        elif any(low <= code <= high for low, high in _WIDE):
            width += 2
        else:
            return None
    return width


def writes_plain(stream: Any) -> bool:
    """Whether rich would write plain text to ``stream``: not a terminal (and not told to
    act as one through ``FORCE_COLOR`` or ``TTY_COMPATIBLE``), UTF-8 (rich draws ASCII
    boxes on other encodings)."""
    if "FORCE_COLOR" in os.environ or os.environ.get("TTY_COMPATIBLE", "") == "1":
        return False
    if any(name in os.environ for name in ("JUPYTER_COLUMNS", "JUPYTER_LINES")):
        return False
    try:
        if stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
    return encoding in ("utf-8", "utf8")


def columns() -> int:
    """The width of output that is not a terminal: ``$COLUMNS`` (20 to 10,000), else 120."""
    try:
        return max(20, min(int(os.environ.get("COLUMNS", "120")), 10_000))
    except ValueError:
        return 120


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int, title: str | None = None
) -> str | None:
    """The table rich prints for ``Table(title=title, title_justify="left")`` with these
    columns and rows on an output ``width`` cells wide (without the final line break);
    None when it might differ."""
    if not headers:
        return None
    widths: list[int] = []
    for index, header in enumerate(headers):
        column = [header, *(row[index] for row in rows)]
        sizes = [cell_width(text) if text else 0 for text in column]
        if any(size is None for size in sizes):
            return None
        widths.append(max(size or 0 for size in sizes))
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or any(w == 0 for w in widths):
        return None
    lines: list[str] = []
    if title:
        size = cell_width(title)
        if size is None or size > total:
            return None
        lines.append(title + " " * (total - size))  # rich pads the title to the table's width
    lines.append(_rule(_TOP, widths))
    lines.append(_line(_HEAD, headers, widths))
    lines.append(_rule(_HEAD_RULE, widths))
    lines.extend(_line(_ROW, row, widths) for row in rows)
    lines.append(_rule(_BOTTOM, widths))
    return "\n".join(lines)


def message(text: str, width: int) -> str | None:
    """A line as rich prints it (``console.print(text)``); None when rich might wrap it or
    show it otherwise."""
    size = cell_width(text) if text else 0
    if size is None or size > width:
        return None
    return text


def _rule(box: tuple[str, str, str, str], widths: Sequence[int]) -> str:
    left, fill, cross, right = box
    return left + cross.join(fill * (w + 2) for w in widths) + right


def _line(box: tuple[str, str, str], cells: Sequence[str], widths: Sequence[int]) -> str:
    left, middle, right = box
    parts = [
        f" {cell}{' ' * (w - (cell_width(cell) or 0))} "
        for cell, w in zip(cells, widths, strict=True)
    ]
    return left + middle.join(parts) + right
