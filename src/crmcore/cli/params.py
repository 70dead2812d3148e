"""Click parameter types for dates, times and durations."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import click

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1w`` → timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 3d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


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
                return ("absolute", datetime.combine(date.fromisoformat(text), datetime.min.time()))
            return ("absolute", datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            self.fail(f"{text!r} is not a date (2026-11-23), a date and time "
                      "(2026-11-23T14:30) or a relative time (+2d, -3h)", param, ctx)


DURATION = Duration()
WHEN = When()
