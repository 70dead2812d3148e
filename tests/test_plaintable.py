"""``crmcore.cli.plaintable`` writes what rich writes off a terminal, or says it cannot."""

from __future__ import annotations

import io
import random

import click
import pytest
from click.testing import CliRunner
from rich.table import Table

from crmcore.cli import plaintable
from crmcore.cli.console import SafeConsole
from crmcore.cli.context import CliState, out_table, say

# ASCII, Latin-1, CJK ideographs and punctuation (two cells), full-width forms; and a few
# characters the module does not measure (an emoji, a combining accent, a line break)
KNOWN = "abc XYZ 019-_.:,@|[/b]é中文\uff0c\u3001ñ"  # full-width comma, ideographic comma
UNKNOWN = "😀\u0301\n\u200b"


def _rich_table(headers, rows, width, title) -> str:
    out = io.StringIO()
    console = SafeConsole(
        file=out, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False
    )
    table = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return out.getvalue()


def _rich_message(text: str, width: int) -> str:
    out = io.StringIO()
    console = SafeConsole(
        file=out, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False
    )
    console.print(text)
    return out.getvalue()


def _word(rng: random.Random, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 1, 3, 8, 25])))


@pytest.mark.parametrize("seed", range(4))
def test_tables_are_rich_tables_byte_for_byte_or_left_to_rich(seed) -> None:
    rng = random.Random(seed)
    written = 0
    for _ in range(400):
        alphabet = KNOWN if rng.random() < 0.9 else KNOWN + UNKNOWN
        headers = [_word(rng, alphabet) or "h" for _ in range(rng.randint(1, 6))]
        rows = [[_word(rng, alphabet) for _ in headers] for _ in range(rng.randint(0, 4))]
        width = rng.choice([20, 40, 80, 120, 200])
        title = rng.choice([None, "", "Customers", _word(rng, alphabet)])
        mine = plaintable.table(headers, rows, width, title)
        if mine is not None:
            assert mine + "\n" == _rich_table(headers, rows, width, title)
            written += 1
        elif all(
            c in KNOWN for c in "".join([*headers, *(c for r in rows for c in r), title or ""])
        ):
            # only a layout rich would wrap (or an empty column) is left to it
            cells = [
                (plaintable.cell_width(h), *(plaintable.cell_width(r[i]) for r in rows))
                for i, h in enumerate(headers)
            ]
            too_wide = sum(max(c) for c in cells) + 3 * len(headers) + 1 > width
            assert too_wide or 0 in [max(c) for c in cells] or (title or "") != ""
    assert written > 100  # the fast path is the common one, not a rarity


# Text that wraps: words of every length (folded when longer than their column), runs of
# spaces and a no-break space (rich splits words on both), wide characters that may be cut.
WRAPPING = "abcdefghij XYZ  019-_.:,@é中文\uff0c\u3001\u00a0"


@pytest.mark.parametrize("seed", range(3))
def test_tables_wider_than_the_output_are_wrapped_as_rich_wraps_them(seed) -> None:
    rng = random.Random(seed)
    wide = 0
    for _ in range(400):

        def cell() -> str:
            size = rng.choice([0, 1, 2, 5, 9, 14, 30, 60])
            return "".join(rng.choice(WRAPPING) for _ in range(size))

        headers = [cell() or "h" for _ in range(rng.randint(1, 9))]
        rows = [[cell() for _ in headers] for _ in range(rng.randint(1, 4))]
        width = rng.choice([20, 30, 50, 80, 120])
        title = rng.choice([None, "", "Customers"])
        natural = [
            max(plaintable.cell_width(text) or 0 for text in (h, *(r[i] for r in rows)))
            for i, h in enumerate(headers)
        ]
        mine = plaintable.table(headers, rows, width, title)
        if mine is None:
            continue
        assert mine + "\n" == _rich_table(headers, rows, width, title)
        wide += sum(natural) + 3 * len(headers) + 1 > width
    assert wide > 150  # most tables here are wider than the output, and written plain


def test_the_w9_table_is_written_plain_when_rich_would_fold_it() -> None:
    headers = ["id", "name", "phone", "e-mail", "region", "owner", "tags"]
    rows = [
        [
            "cus_01M98WTGFX13S1BY44G9ZKRZ27",
            "Customer 000000",
            "+8613862143795",
            "c000000@example.com",
            "Central",
            "rep17",
            "new, online",
        ],
        ["cus_2", "张三丰", "", "", "", "", "vip, wholesale, returning"],
    ]
    mine = plaintable.table(headers, rows, 80)
    assert mine is not None and mine + "\n" == _rich_table(headers, rows, 80, None)
    assert "│ cus_01M98 │" in mine and "│ WTGFX13S1 │" in mine  # the id folded


@pytest.mark.parametrize("seed", range(2))
def test_messages_are_rich_messages_or_left_to_rich(seed) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        text = _word(rng, KNOWN if rng.random() < 0.8 else KNOWN + UNKNOWN)
        width = rng.choice([20, 40, 120])
        mine = plaintable.message(text, width)
        if mine is not None:
            assert mine + "\n" == _rich_message(text, width)
        else:
            assert any(c in UNKNOWN for c in text) or plaintable.cell_width(text) > width


def test_wide_characters_are_measured_as_rich_measures_them() -> None:
    from rich.cells import cell_len

    for low, high in plaintable._WIDE:
        for code in range(low - 8, high + 9):  # each range and what borders it
            width = plaintable.cell_width(chr(code))
            assert width is None or width == cell_len(chr(code)), hex(code)
    for code in [*range(0x20, 0x7F), *range(0xA0, 0x100)]:
        width = plaintable.cell_width(chr(code))
        assert width is None or width == cell_len(chr(code)), hex(code)


def _run(print_it, state: CliState | None = None) -> str:
    @click.command()
    @click.pass_context
    def command(ctx: click.Context) -> None:
        print_it(ctx)

    state = state or CliState(None, False, None)
    return CliRunner().invoke(command, obj=state, catch_exceptions=False).output


ROWS = [{"id": "cus_1", "name": "Anna Berg"}, {"id": "cus_2", "name": "李四"}]
COLUMNS = [("id", "id"), ("name", "name")]


def test_out_table_and_say_print_plain_off_a_terminal(monkeypatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    state = CliState(None, False, None)
    out = _run(lambda ctx: out_table(ctx, ROWS, COLUMNS, title="Customers"), state)
    assert out == _rich_table(
        ["id", "name"], [["cus_1", "Anna Berg"], ["cus_2", "李四"]], 120, "Customers"
    )
    assert _run(lambda ctx: say(ctx, "added cus_1"), state) == "added cus_1\n"
    assert state._out is None  # written without a rich console


def test_forced_colour_is_left_to_rich(monkeypatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = _run(lambda ctx: out_table(ctx, ROWS, COLUMNS))
    assert "\x1b[" in out and "Anna Berg" in out  # rich's styled header
    assert not plaintable.writes_plain(io.StringIO())
    monkeypatch.delenv("FORCE_COLOR")
    assert plaintable.writes_plain(io.StringIO())
    ascii_stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    assert not plaintable.writes_plain(ascii_stream)  # rich would draw an ASCII box there
