"""structlog set up once, with a processor that masks personal data before anything renders.

crmcore is a library first: its loggers print nothing until logging is configured, by
``configure_logging`` (the ``crm`` command does it, writing to stderr) or by a host application
that configures structlog itself.

Values under personal keys (the fields declared ``personal=True`` in core and plugin schemas)
are replaced whole; e-mail addresses and phone numbers are also masked wherever they appear in
any logged string, so a message built carelessly still leaks nothing.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

MASK = "***"
_configured = False  # by configure_logging; until then crmcore's loggers are silent
logging.getLogger("crmcore").addHandler(logging.NullHandler())  # the library convention
_personal_keys: set[str] = {"name", "phone", "email", "address", "birth_date", "chat_handles",
                            "summary", "notes", "contact", "complainant"}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w/:.-])\+?\d(?:[ \-()]{0,2}\d){6,14}(?![\w/:-])")
_DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$|^\d{8}$")


def register_personal_keys(keys: Iterable[str]) -> None:
    """Add field names whose values are always masked (the core adds every declared field)."""
    _personal_keys.update(keys)


def mask_text(text: str) -> str:
    """Mask e-mail addresses and phone-like digit runs in ``text``."""
    text = _EMAIL.sub(MASK, text)
    return _PHONE.sub(lambda m: m.group(0) if _DATE_LIKE.match(m.group(0)) else MASK, text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: MASK if k in _personal_keys and v not in (None, "") else _mask(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal(_logger: Any, _method: str, event: MutableMapping[str, Any]
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


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the moment (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "warning", fmt: str = "console",
                      stream: TextIO | None = None) -> None:
    """Configure structlog (idempotent). ``fmt`` is ``console`` or ``json``; logs go to stderr."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    renderer: Any = (structlog.processors.JSONRenderer() if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    global _configured
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
        logger_factory=structlog.PrintLoggerFactory(stream or _Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


def is_configured() -> bool:
    """Whether crmcore's loggers write anywhere: ``configure_logging`` was called (the CLI
    does), or the host application configured structlog itself."""
    return _configured or structlog.is_configured()


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
        target = getattr(structlog.get_logger("crmcore"), method)

        def log(event: Any = None, *args: Any, **values: Any) -> Any:
            masked = mask_personal(None, method, {**self._bound, **values})
            return target(mask_text(event) if isinstance(event, str) else event, *args,
                          **masked)

        return log


def get_logger(plugin: str, **bound: Any) -> Any:
    """A logger bound with the plugin's name (and any operation context); it writes nothing
    until logging is configured (``configure_logging``, or structlog by the host)."""
    return LibraryLogger({"plugin": plugin, **bound})
