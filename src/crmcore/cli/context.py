"""What every command shares: the open CRM, the actor, output as JSON or tables, progress."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload
from zoneinfo import ZoneInfo

import attrs
import click

from crmcore.cli import plaintable
from crmcore.errors import PermissionDenied
from crmcore.security import check_actor_name, reserved_actor
from crmcore.text import for_terminal, json_text

if TYPE_CHECKING:
    from rich.console import Console

    from crmcore.app import CRM
    from crmcore.plugins import PluginManager

T = TypeVar("T")


@attrs.define
class CliState:
    """Held in ``ctx.obj`` for the whole invocation. The consoles are made (and rich
    imported) the first time something is printed through them."""

    config_path: str | None
    as_json: bool
    actor: str | None
    plugins: PluginManager | None = None
    crm: CRM | None = None
    _out: Console | None = attrs.field(default=None, init=False)
    _err: Console | None = attrs.field(default=None, init=False)

    @property
    def console(self) -> Console:
        """stdout's console."""
        if self._out is None:
            from crmcore.cli.console import console_for

            self._out = console_for(sys.stdout)
        return self._out

    @property
    def err_console(self) -> Console:
        """stderr's console (progress bars)."""
        if self._err is None:
            from crmcore.cli.console import console_for

            self._err = console_for(sys.stderr)
        return self._err


def state(ctx: click.Context) -> CliState:
    return ctx.find_root().obj


def open_crm_from(ctx: click.Context) -> CRM:
    """The CRM for this command, opened once from ``--config`` and closed when the CLI exits."""
    from crmcore.app import open_crm  # the core's whole graph: only for commands that open

    st = state(ctx)
    if st.crm is None:
        st.crm = open_crm(st.config_path, plugin_manager=st.plugins)
        ctx.find_root().call_on_close(st.crm.close)
    return st.crm


def terminal_locale() -> str | None:
    """The language of the terminal (``$LANGUAGE``, ``$LC_ALL``, ``$LC_MESSAGES``, ``$LANG``,
    the first one set, as gettext reads them), when crmcore ships it; else None."""
    from crmcore.i18n import normalize_locale

    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            tag = value.split(":", 1)[0].split(".", 1)[0].split("@", 1)[0]
            return None if tag in ("C", "POSIX") else normalize_locale(tag)
    return None


def data_text(ctx: click.Context) -> Callable[[str], str]:
    """How tables show text written as data (a task's ``title_message``, a reason given as a
    message): in the terminal's language (:func:`terminal_locale`); as stored (English) under
    ``--json``, whose records also carry the message ids."""
    from crmcore import i18n

    st = state(ctx)
    locale = None if st.as_json else terminal_locale()
    if locale is None or locale == i18n.FALLBACK:
        return str
    gettext = i18n.gettext(locale, st.crm.plugins if st.crm is not None else st.plugins)
    return lambda value: i18n.translate(value, gettext)


def actor(ctx: click.Context) -> str:
    """Who is acting: ``--as``, else ``$CRM_ACTOR``, else ``[core] default_actor``; refused
    when empty, not plain text, or a system actor's name (``crmcore.security``)."""
    st = state(ctx)
    if st.actor is not None:
        name, source, claimed = st.actor, "--as", True
    elif os.environ.get("CRM_ACTOR"):
        name, source, claimed = os.environ["CRM_ACTOR"], "$CRM_ACTOR", True
    else:
        name, source, claimed = None, "[core] default_actor", False
    if name is not None:
        name = check_actor_name(name, source)
    crm = open_crm_from(ctx)
    security = crm.config.security
    if name is None:
        name = check_actor_name(crm.config.core.default_actor, source)
    # A name claimed at the command line is never a system actor's; the configured default
    # may be one (``system``) only while permissions are not enforced.
    why = reserved_actor(security, name, source) if claimed or security.enforce else None
    if why is not None:
        raise PermissionDenied(why)
    return name


def as_json(ctx: click.Context) -> bool:
    return state(ctx).as_json


@overload
def resolve_when(crm: CRM, when: tuple[str, Any]) -> datetime: ...
@overload
def resolve_when(crm: CRM, when: None) -> None: ...
def resolve_when(crm: CRM, when: tuple[str, Any] | None) -> datetime | None:
    """Turn a ``When`` parameter into an aware UTC datetime (naive → business time zone)."""
    if when is None:
        return None
    kind, value = when
    if kind == "relative":
        return crm.now() + value
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(crm.config.core.timezone))
    return value


def to_doc(value: Any) -> dict[str, Any]:
    """``crmcore.converter.to_doc``, imported by the first command that converts a record."""
    from crmcore.converter import to_doc as convert

    return convert(value)


def plain(value: Any) -> Any:
    """A value fit for JSON output or a table cell."""
    if attrs.has(type(value)):
        return to_doc(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def print_json(ctx: click.Context, data: Any) -> None:
    """``data`` as JSON on stdout (text stored before the text rules comes out escaped)."""
    click.echo(json_text(plain(data), indent=2, sort_keys=False))


def out_table(
    ctx: click.Context,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Rows as JSON (``--json``: every key) or as a table of ``columns`` (key, header)."""
    if as_json(ctx):
        print_json(ctx, list(rows))
        return
    cells = [[_cell(row.get(key)) for key, _header in columns] for row in rows]
    if _print_plain(
        lambda width: (
            plaintable.table(
                [for_terminal(header) for _key, header in columns],
                [[for_terminal(cell) for cell in line] for line in cells],
                width,
                None if title is None else for_terminal(title),
            )
            if rows
            else plaintable.message(
                for_terminal(empty if title is None else f"{title}: {empty}"), width
            )
        )
    ):
        return
    from rich.table import Table
    from rich.text import Text

    console = state(ctx).console
    if not rows:
        console.print(Text(empty, style="dim") if title is None else f"{title}: {empty}")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    for _key, header in columns:
        table.add_column(header, overflow="fold")
    for line in cells:
        table.add_row(*line)
    console.print(table)


def out_record(
    ctx: click.Context,
    record: dict[str, Any],
    *,
    title: str | None = None,
    skip: Iterable[str] = (),
) -> None:
    """One record as JSON or as a two-column field/value table."""
    if as_json(ctx):
        print_json(ctx, record)
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    hidden = set(skip)
    for key, value in record.items():
        if key not in hidden and value not in (None, "", [], {}, ()):
            table.add_row(key, _cell(value))
    state(ctx).console.print(table)


def say(ctx: click.Context, message: str, **data: Any) -> None:
    """A confirmation: a line of text, or ``{"message": …, **data}`` with ``--json``."""
    if as_json(ctx):
        print_json(ctx, {"message": message, **data})
    elif not _print_plain(lambda width: plaintable.message(for_terminal(message), width)):
        state(ctx).console.print(message)


def _print_plain(render: Callable[[int], str | None]) -> bool:
    """Print ``render(width)`` to stdout when rich would print the same there (off a
    terminal: ``crmcore.cli.plaintable``), so that rich is not imported for it; False when
    rich must print it."""
    if not plaintable.writes_plain(sys.stdout):
        return False
    text = render(plaintable.columns())
    if text is None:
        return False
    sys.stdout.write(text + "\n")
    return True


class Advance(Protocol):
    """Move a progress bar on by ``n`` (default one)."""

    def __call__(self, n: int = 1) -> None: ...


@contextlib.contextmanager
def progress_bar(ctx: click.Context, *, total: int | None, description: str) -> Iterator[Advance]:
    """A progress bar on stderr (hidden with ``--json`` or off a terminal); yields
    ``advance(n)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    st = state(ctx)
    hidden = st.as_json or not st.err_console.is_terminal
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=st.err_console, disable=hidden, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def progress(
    ctx: click.Context, items: Iterable[T], *, total: int | None, description: str
) -> Iterator[T]:
    """Iterate with a progress bar (see ``progress_bar``)."""
    with progress_bar(ctx, total=total, description=description) as advance:
        for item in items:
            yield item
            advance(1)


WHEN_HELP = (
    "A date (2026-11-23), a date and time (2026-11-23T14:30, read in the business "
    "time zone unless it has an offset), or relative to now (+2d, -3h)."
)


def fresh_group(group: click.Group) -> click.Group:
    """A copy of a module-level group with its own command table, so that one CLI's plugins
    adding or replacing subcommands never change another CLI built in the same process."""
    copy = click.Group(
        group.name,
        commands=dict(group.commands),
        help=group.help,
        invoke_without_command=group.invoke_without_command,
        no_args_is_help=group.no_args_is_help,
    )
    copy.params = list(group.params)
    copy.callback = group.callback
    return copy
