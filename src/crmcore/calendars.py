"""Public-holiday calendars kept by others, for business hours and holiday care.

A stack names one (``holiday_calendar = "cn"`` in a plugin's settings) instead of typing dates
into its profile. ``cn`` is mainland China's statutory calendar from the maintained
`chinesecalendar <https://pypi.org/project/chinesecalendar/>`_ package: the festival days off
(Golden Week is seven days) and the make-up working days (调休, a Saturday or Sunday worked in
exchange). A year the package has no data for is *not covered*: callers fall back to their own
configuration for it, and ``covered`` lets them warn.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Protocol

import attrs

from crmcore.errors import ValidationError


@attrs.frozen
class Festival:
    """A run of consecutive days off for one festival: its first day, last day and name."""

    first: date
    last: date
    name: str


class HolidayCalendar(Protocol):
    """What the plugins ask of a holiday calendar."""

    name: str

    def covers(self, day: date) -> bool:
        """Whether the calendar has data for ``day``'s year."""

    def day_off(self, day: date) -> str | None:
        """The festival ``day`` is a statutory day off for (None: not one, or not covered)."""

    def makeup_workday(self, day: date) -> str | None:
        """The festival a weekend ``day`` is worked in exchange for (None: not one)."""

    def festivals(self, start: date, end: date) -> list[Festival]:
        """Festival runs that start within [start, end] (covered years only)."""


class ChinaCalendar:
    """Mainland China's statutory holidays and make-up working days (chinesecalendar)."""

    name = "cn"

    def __init__(self) -> None:
        from chinese_calendar import constants

        self._off = dict(constants.holidays)
        self._makeup = dict(constants.workdays)
        years = {d.year for d in self._off}
        self._years = range(min(years), max(years) + 1)

    def covers(self, day: date) -> bool:
        return day.year in self._years

    def day_off(self, day: date) -> str | None:
        return str(self._off[day]) if day in self._off else None

    def makeup_workday(self, day: date) -> str | None:
        return str(self._makeup[day]) if day in self._makeup else None

    def festivals(self, start: date, end: date) -> list[Festival]:
        return list(self._festivals(start, end))

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one instance per process (calendar_named)
    def _festivals(self, start: date, end: date) -> tuple[Festival, ...]:
        out: list[Festival] = []
        for day in _days(start - timedelta(days=1), end):
            name = self.day_off(day)
            if name is None or day < start or self.day_off(day - timedelta(days=1)) == name:
                continue
            last = day
            while self.day_off(last + timedelta(days=1)) == name:
                last += timedelta(days=1)
            out.append(Festival(day, last, name))
        return tuple(out)


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


CALENDARS = {"cn": ChinaCalendar}
_cache: dict[str, HolidayCalendar] = {}


def calendar_named(name: str) -> HolidayCalendar:
    """The calendar called ``name``; ValidationError naming the known ones otherwise."""
    if name not in CALENDARS:
        raise ValidationError(
            f"unknown holiday calendar {name!r} (known: {', '.join(sorted(CALENDARS))})"
        )
    if name not in _cache:
        _cache[name] = CALENDARS[name]()
    return _cache[name]
