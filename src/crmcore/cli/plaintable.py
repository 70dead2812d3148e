"""Tables and messages written without rich, exactly as rich writes them off a terminal.

Off a terminal (a pipe, a file, a test) rich prints plain text: no colours, the box drawn with
the same characters, each column as wide as its widest cell, a table wider than the output
narrowed and its cells word-wrapped (words longer than their column folded). Importing rich
and laying the table out costs more than many commands' own work (``crm customer list`` to a
pipe spent a sixth of its CPU on it, a third when the table was folded), so this module writes
the same characters itself, rich's layout rules ported (column narrowing, word wrapping,
folding), and says ``None`` whenever it cannot promise rich's output byte for byte: text whose
width on screen it does not know, a line break, a title wider than its table, an empty column,
a column narrowed below one cell of text. The caller prints those through rich, as before;
``tests/test_plaintable.py`` compares both on random tables, wide ones included.
"""

from __future__ import annotations

import itertools
import os
import re
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
    columns (``overflow="fold"``) and rows on an output ``width`` cells wide (without the
    final line break); None when it might differ.

    A table wider than the output is narrowed as rich narrows it (its widest columns first,
    then all evenly) and its cells are word-wrapped, words longer than their column folded."""
    if not headers:
        return None
    measured: list[int] = []
    for index, header in enumerate(headers):
        sizes = [cell_width(text) for text in (header, *(row[index] for row in rows))]
        if any(size is None for size in sizes):
            return None
        measured.append(max(size or 0 for size in sizes))
    available = width - len(headers) - 1  # the borders take one cell each
    if available < 3:
        return None
    widths = _column_widths(measured, available)
    if any(w < 3 for w in widths) or 0 in measured:
        return None  # a column narrower than one cell of text (or empty): rich's corner cases
    total = sum(widths) + len(widths) + 1
    lines: list[str] = []
    if title:
        size = cell_width(title)
        if size is None or size > total:
            return None
        lines.append(title + " " * (total - size))  # rich pads the title to the table's width
    lines.append(_rule(_TOP, widths))
    lines.extend(_row(_HEAD, headers, widths, header=True))
    lines.append(_rule(_HEAD_RULE, widths))
    for row in rows:
        lines.extend(_row(_ROW, row, widths))
    lines.append(_rule(_BOTTOM, widths))
    return "\n".join(lines)


def _column_widths(measured: Sequence[int], available: int) -> list[int]:
    """Each column's width with its padding, as ``rich.table.Table`` computes it for
    columns whose widest cells are ``measured`` cells wide, in ``available`` cells."""
    widths = [min(size + 2, available) for size in measured]  # one cell of padding each side
    if sum(widths) > available:
        widths = _collapse(widths, available)
        if sum(widths) > available:  # last resort: every column loses the same
            excess = sum(widths) - available
            widths = _ratio_reduce(excess, [1] * len(widths), widths, widths)
        # measured again in the narrowed width
        widths = [
            0 if w < 1 else (w if w < 3 else min(m + 2, w))
            for w, m in zip(widths, measured, strict=True)
        ]
    return widths


def _collapse(widths: list[int], available: int) -> list[int]:
    """rich's ``Table._collapse_widths``: the widest columns shrink to the next widest until
    the table fits or they are all as wide."""
    total = sum(widths)
    excess = total - available
    while total and excess > 0:
        widest = max(widths)
        second = max((w for w in widths if w != widest), default=0)
        ratios = [1 if w == widest else 0 for w in widths]
        if not widest - second:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, widest - second)] * len(widths), widths)
        total = sum(widths)
        excess = total - available
    return widths


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    """rich's ``_ratio.ratio_reduce``: ``total`` taken from ``values`` in proportion to
    ``ratios``, at most ``maximums`` from each."""
    ratios = [ratio if maximum else 0 for ratio, maximum in zip(ratios, maximums, strict=True)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return values[:]
    remaining = total
    result: list[int] = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and total_ratio > 0:
            taken = min(maximum, round(ratio * remaining / total_ratio))
            result.append(value - taken)
            remaining -= taken
            total_ratio -= ratio
        else:
            result.append(value)
    return result


_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


def _wrap(text: str, width: int) -> list[str]:
    """``text`` word-wrapped into lines of exactly ``width`` cells (padded with spaces), as
    rich wraps a table cell with ``overflow="fold"``."""
    bounds = [0, *_breaks(text, width), len(text)]
    lines = []
    for start, end in itertools.pairwise(bounds):
        line = text[start:end]
        if len(line) > width:  # rich drops trailing space counted in characters
            space = _TRAILING_SPACE.search(line)
            if space is not None:
                line = line[: len(line) - min(len(space.group(0)), len(line) - width)]
        line = _crop(line, width)
        lines.append(line + " " * (width - (cell_width(line) or 0)))
    return lines


def _breaks(text: str, width: int) -> list[int]:
    """rich's ``_wrap.divide_line`` with folding: where the lines of ``text`` start."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        size = cell_width(word.rstrip()) or 0
        if width - offset >= size:
            offset += cell_width(word) or 0
        elif size > width:
            pieces = _chop(word, width)
            for number, piece in enumerate(pieces, start=1):
                if start:
                    breaks.append(start)
                if number == len(pieces):
                    offset = cell_width(piece) or 0
                else:
                    start += len(piece)
        elif offset and start:
            breaks.append(start)
            offset = cell_width(word) or 0
    return breaks


def _chop(text: str, width: int) -> list[str]:
    """rich's ``cells.chop_cells``: ``text`` cut into pieces at most ``width`` cells wide."""
    pieces: list[str] = []
    size = begin = 0
    for index, char in enumerate(text):
        char_size = cell_width(char) or 0
        if size + char_size > width:
            pieces.append(text[begin:index])
            begin, size = index, 0
        size += char_size
    if size:
        pieces.append(text[begin:])
    return pieces


def _crop(text: str, width: int) -> str:
    """rich's ``cells.set_cell_size`` for text wider than ``width``: cut at ``width`` cells,
    a wide character cut in half shown as a space."""
    if (cell_width(text) or 0) <= width:
        return text
    size = 0
    for index, char in enumerate(text):
        char_size = cell_width(char) or 0
        if size + char_size > width:
            return text[:index] + " " * (width - size)
        size += char_size
    return text


def message(text: str, width: int) -> str | None:
    """A line as rich prints it (``console.print(text)``); None when rich might wrap it or
    show it otherwise."""
    size = cell_width(text) if text else 0
    if size is None or size > width:
        return None
    return text


def _rule(box: tuple[str, str, str, str], widths: Sequence[int]) -> str:
    left, fill, cross, right = box
    return left + cross.join(fill * w for w in widths) + right


def _row(
    box: tuple[str, str, str], cells: Sequence[str], widths: Sequence[int], header: bool = False
) -> list[str]:
    """The lines of one row: each cell wrapped to its column, the row as tall as its tallest
    cell, shorter cells padded below (a header's above: rich aligns headers to the bottom)."""
    left, middle, right = box
    wrapped = [_wrap(cell, w - 2) for cell, w in zip(cells, widths, strict=True)]
    height = max(len(lines) for lines in wrapped)
    for lines, w in zip(wrapped, widths, strict=True):
        blank = [" " * (w - 2)] * (height - len(lines))
        lines[:] = [*blank, *lines] if header else [*lines, *blank]
    return [left + middle.join(f" {lines[n]} " for lines in wrapped) + right for n in range(height)]
