"""structlog set up once, with a processor that masks personal data before anything renders.

crmcore is a library first: its loggers print nothing until logging is configured, by
``configure_logging`` or by a host application that configures structlog itself. The ``crm``
command calls ``defer_logging``: the same set-up, made when the first event at or above the
level is logged, so a command that logs nothing never imports structlog (nor the rich and
asyncio it pulls in).

Values under personal keys (the fields declared ``personal=True`` in core and plugin schemas)
are replaced whole; e-mail addresses and phone numbers are also masked wherever they appear in
any logged string, so a message built carelessly still leaks nothing.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Protocol

from crmcore.entities import Customer, Interaction, Task
from crmcore.schema import personal_fields

MASK = "***"
_configured = False  # by configure_logging; until then crmcore's loggers are silent
# (level, format) that ``defer_logging`` asked for and the first event will set up
_deferred: tuple[str, str] | None = None
_LEVELS = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
    "fatal": 50,
}
logging.getLogger("crmcore").addHandler(logging.NullHandler())  # the library convention
# Every field the core's entities declare personal (the one list: ``crmcore.schema.field``),
# so an event logged before a CRM is opened is masked too; plus two plugin field names that
# hold a person's contact. Opening a CRM adds every declared field of every collection.
_personal_keys: set[str] = {
    *personal_fields(Customer),
    *personal_fields(Interaction),
    *personal_fields(Task),
    "contact",
    "complainant",
}
# The local part takes every character RFC 5322 allows unquoted.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# Separators people and systems put inside a phone number: spaces of every width, dots,
# hyphens and dashes (ASCII and full-width), parentheses and slashes.
_SEP = r"[\s.\-\u2010-\u2015\u2212\uff0d()\uff08\uff09/]"
# A run of 7-15 digits with at most three separators between two digits, optionally after a
# "+". Not inside a word, an identifier, a path or a decimal number (a letter, digit, "_", "/",
# "-" or a digit's "." just before, a letter, digit or "_" after); a label glued with ":",
# "=" or "." (``phone:138…``, ``Tel.138…``) or CJK text (``手机138…``) does not protect it.
_PHONE = re.compile(rf"(?<![\dA-Za-z_/\-])(?<!\d\.)\+?\d(?:{_SEP}{{0,3}}\d){{6,14}}(?![\dA-Za-z_])")
_NOT_PHONE = (
    re.compile(r"^\d{4}([-/.])\d{1,2}\1\d{1,2}$|^\d{1,2}([-/.])\d{1,2}\2\d{4}$|^\d{8}$"),  # dates
    re.compile(r"^\d+\.\d+$"),  # a decimal number (an amount, a fraction of a second)
    re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$"),  # an IPv4 address
)


def register_personal_keys(keys: Iterable[str]) -> None:
    """Add field names whose values are always masked (the core adds every declared field)."""
    _personal_keys.update(keys)


def personal_keys() -> frozenset[str]:
    """The field names whose values are masked in every log event."""
    return frozenset(_personal_keys)


def _phone_or_not(match: re.Match[str]) -> str:
    text = match.group(0)
    return text if any(p.match(text) for p in _NOT_PHONE) else MASK


def mask_text(text: str) -> str:
    """Mask e-mail addresses and phone-like digit runs in ``text`` (dates, decimal amounts and
    IPv4 addresses are left alone)."""
    return _PHONE.sub(_phone_or_not, _EMAIL.sub(MASK, text))


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {
            k: MASK if k in _personal_keys and v not in (None, "") else _mask(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal keys and contact details anywhere in the event."""
    for key, value in list(event.items()):
        if key in _personal_keys and value not in (None, ""):
            event[key] = MASK
        elif key == "exc_info":
            continue
        else:
            event[key] = _mask(value)
    return event


class TextSink(Protocol):
    """Where log lines go: anything with ``write`` and ``flush`` (a text stream will do)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the moment (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _level(level: str) -> int:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    return numeric


def defer_logging(level: str = "warning", fmt: str = "console") -> None:
    """``configure_logging(level, fmt)``, made when a crmcore logger first logs an event at or
    above ``level`` (or when ``configure_logging()`` is called without a level)."""
    _level(level)
    global _configured, _deferred
    _configured, _deferred = True, (level, fmt)


def configure_logging(
    level: str | None = None, fmt: str | None = None, stream: TextSink | None = None
) -> None:
    """Configure structlog (idempotent). ``fmt`` is ``console`` or ``json``; logs go to stderr.
    A level or format not given is the one ``defer_logging`` asked for, else warning and
    console."""
    import structlog

    global _configured, _deferred
    level = level or (_deferred[0] if _deferred else "warning")
    fmt = fmt or (_deferred[1] if _deferred else "console")
    numeric = _level(level)
    _deferred = None
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    _configured = True
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal,  # last before rendering: nothing unmasked reaches the output
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # structlog annotates TextIO; it only calls write and flush
        logger_factory=structlog.PrintLoggerFactory(stream or _Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def is_configured() -> bool:
    """Whether crmcore's loggers write anywhere: ``configure_logging`` was called (the CLI
    does), or the host application configured structlog itself."""
    structlog = sys.modules.get("structlog")  # a host that configured it has imported it
    return _configured or (structlog is not None and structlog.is_configured())


def _drop(*_args: Any, **_kwargs: Any) -> None:
    return None


class LibraryLogger:
    """A crmcore logger: silent until logging is configured (the library convention, as a
    ``logging.NullHandler`` gives), then a structlog logger under the configuration of the
    moment, so one made at import time follows a configuration made later. What it passes on
    is masked first, also into a host application's own structlog set-up."""

    __slots__ = ("_bound",)

    def __init__(self, bound: dict[str, Any]) -> None:
        self._bound = bound

    def bind(self, **values: Any) -> LibraryLogger:
        return LibraryLogger({**self._bound, **values})

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        if not is_configured():
            return _drop
        if _deferred is not None:
            if _LEVELS.get(method, 100) < _level(_deferred[0]):
                return _drop  # filtered out: not worth importing structlog for
            configure_logging()
        import structlog

        target = getattr(structlog.get_logger("crmcore"), method)

        def log(event: Any = None, *args: Any, **values: Any) -> Any:
            masked = mask_personal(None, method, {**self._bound, **values})
            return target(mask_text(event) if isinstance(event, str) else event, *args, **masked)

        return log


def get_logger(plugin: str, **bound: Any) -> Any:
    """A logger bound with the plugin's name (and any operation context); it writes nothing
    until logging is configured (``configure_logging``, or structlog by the host)."""
    return LibraryLogger({"plugin": plugin, **bound})
