"""Click parameter types for dates, times and durations."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import click

from crmcore.errors import ValidationError
from crmcore.text import check_name

_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(s|m|h|d|w)\s*$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_DURATION = timedelta(days=36_525)  # a hundred years: further is a typing mistake
# Dates a command accepts: wide enough for any record, narrow enough that time zones and the
# plugins' date arithmetic (cadences, SLAs, expiry) never leave what a datetime can hold.
EARLIEST = date(1900, 1, 1)
LATEST = date(2999, 12, 31)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1w`` → timedelta (at most a hundred years); ValueError
    otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 3d or 1w")
    try:
        delta = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        delta = None
    if delta is None or delta > MAX_DURATION:
        raise ValueError(f"{text!r} is longer than a hundred years")
    return delta


class Duration(click.ParamType):
    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class When(click.ParamType):
    """An ISO date or date-time (naive ones are read in the business time zone later), or a
    relative ``+2d`` / ``-3h`` from now. Converted to a ``(kind, value)`` pair."""

    name = "when"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        if text[:1] in "+-" and len(text) > 1:
            try:
                delta = parse_duration(text[1:])
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
            return ("relative", delta if text[0] == "+" else -delta)
        try:
            if len(text) == 10:
                when = datetime.combine(date.fromisoformat(text), datetime.min.time())
            else:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(
                f"{text!r} is not a date (2026-11-23), a date and time "
                "(2026-11-23T14:30) or a relative time (+2d, -3h)",
                param,
                ctx,
            )
        if not EARLIEST <= when.date() <= LATEST:
            self.fail(
                f"{text!r} is outside the dates crmcore accepts ({EARLIEST.isoformat()} "
                f"to {LATEST.isoformat()})",
                param,
                ctx,
            )
        return ("absolute", when)


class Name(click.ParamType):
    """A one-line name (a rep, a customer id, a kind): blank ones and control characters are
    refused, so ``--rep ""`` is a mistake to fix, never a filter that silently matches
    nothing or everything."""

    name = "name"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        if not text.strip():
            self.fail("must not be empty", param, ctx)
        try:
            check_name(text, "value")
        except ValidationError as exc:
            self.fail(str(exc).removeprefix("value: "), param, ctx)
        return text


DURATION = Duration()
NAME = Name()
WHEN = When()
