"""Counting SLA time: calendar hours, or business hours with a holiday list, minus pauses.

Pure functions over aware datetimes; nothing here reads a clock or the configuration.

- ``CalendarClock`` counts every hour of the day.
- ``BusinessClock`` counts only working spans per weekday (local to a time zone), skipping
  holidays.

Both answer ``add(start, amount, pauses)`` ("the instant ``amount`` of counted time after
``start``") and ``elapsed(start, end, pauses)`` ("counted time between two instants"); pause
intervals (time spent waiting on the customer) never count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from crmcore.calendars import HolidayCalendar, calendar_named

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_FAR = datetime.max.replace(tzinfo=UTC) - timedelta(days=2)
#: A business calendar with no working time in this many days is refused (a sure config error).
MAX_IDLE_DAYS = 3700

Interval = tuple[datetime, datetime]


def parse_hhmm(text: str, *, allow_end_of_day: bool = False) -> int:
    """``"09:30"`` → minutes after midnight (``"24:00"`` → 1440 when ``allow_end_of_day``)."""
    if allow_end_of_day and text == "24:00":
        return 24 * 60
    match = _HHMM.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return int(match.group(1)) * 60 + int(match.group(2))


def parse_spans(text: str) -> tuple[tuple[int, int], ...]:
    """``"09:00-12:00, 13:00-18:00"`` → ``((540, 720), (780, 1080))``; ``""`` or ``"closed"``
    → no spans. Spans must be increasing and must not overlap."""
    if not isinstance(text, str):
        raise ValueError(f"expected text such as '09:00-18:00', got {text!r}")
    if text.strip().lower() in ("", "closed"):
        return ()
    spans: list[tuple[int, int]] = []
    for part in text.split(","):
        start_text, sep, end_text = part.strip().partition("-")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not a span such as '09:00-18:00'")
        start = parse_hhmm(start_text.strip())
        end = parse_hhmm(end_text.strip(), allow_end_of_day=True)
        if end <= start:
            raise ValueError(f"span {part.strip()!r} ends before it starts")
        if spans and start < spans[-1][1]:
            raise ValueError(f"span {part.strip()!r} overlaps or precedes the span before it")
        spans.append((start, end))
    return tuple(spans)


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping union of ``intervals`` (empty ones dropped)."""
    ordered = sorted((a, b) for a, b in intervals if b > a)
    merged: list[Interval] = []
    for a, b in ordered:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _minus(segment: Interval, pauses: Sequence[Interval]) -> Iterator[Interval]:
    """``segment`` without the (merged, sorted) ``pauses``."""
    a, b = segment
    for p, q in pauses:
        if q <= a:
            continue
        if p >= b:
            break
        if p > a:
            yield a, p
        a = max(a, q)
        if a >= b:
            return
    if a < b:
        yield a, b


class SlaClock(Protocol):
    """What the SLA logic needs from a way of counting time."""

    def add(
        self, start: datetime, amount: timedelta, pauses: Iterable[Interval] = ()
    ) -> datetime: ...

    def elapsed(
        self, start: datetime, end: datetime, pauses: Iterable[Interval] = ()
    ) -> timedelta: ...


class _Counting:
    """Shared arithmetic over the working segments a subclass yields."""

    def segments(self, start: datetime) -> Iterator[Interval]:  # pragma: no cover - abstract
        raise NotImplementedError

    def add(self, start: datetime, amount: timedelta, pauses: Iterable[Interval] = ()) -> datetime:
        """The instant at which ``amount`` of counted time has passed since ``start``.

        A zero amount is ``start`` itself; the result of a positive amount is the moment the
        budget runs out, so it can be the very end of a working span (Friday 18:00), never the
        start of the next one.
        """
        if amount < timedelta(0):
            raise ValueError("cannot add a negative amount of time")
        if amount == timedelta(0):
            return start
        cuts = merge_intervals(pauses)
        remaining = amount
        for segment in self.segments(start):
            for a, b in _minus(segment, cuts):
                if b - a >= remaining:
                    return a + remaining
                remaining -= b - a
        raise ValueError("the amount runs past the end of the calendar")  # pragma: no cover

    def elapsed(self, start: datetime, end: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        """Counted time in ``[start, end)``, pauses excluded (zero if ``end <= start``)."""
        total = timedelta(0)
        if end <= start:
            return total
        cuts = merge_intervals(pauses)
        for seg_a, seg_b in self.segments(start):
            if seg_a >= end:
                break
            for a, b in _minus((seg_a, min(seg_b, end)), cuts):
                total += b - a
        return total


class CalendarClock(_Counting):
    """Every hour counts (24/7)."""

    def segments(self, start: datetime) -> Iterator[Interval]:
        yield start, _FAR

    def __repr__(self) -> str:
        return "CalendarClock()"


class BusinessClock(_Counting):
    """Only working hours count: spans per weekday in ``zone``, holidays skipped.

    ``hours`` maps ``mon`` … ``sun`` to spans in minutes after local midnight (days missing or
    empty are closed). Local spans are turned into real instants day by day, so a daylight
    saving change shortens or lengthens that day's span as the wall clock does.
    """

    def __init__(
        self,
        zone: str | ZoneInfo,
        hours: Mapping[str, Sequence[tuple[int, int]]],
        holidays: Iterable[date] = (),
        calendar: HolidayCalendar | None = None,
    ) -> None:
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        unknown = sorted(set(hours) - set(DAYS))
        if unknown:
            raise ValueError(f"unknown weekday(s) {', '.join(unknown)} (use {', '.join(DAYS)})")
        self.hours = tuple(tuple(hours.get(day, ())) for day in DAYS)
        if not any(self.hours):
            raise ValueError("a business calendar needs working hours on at least one weekday")
        self.holidays = frozenset(holidays)
        self.calendar = calendar
        # a make-up working day (调休) works the first weekday's hours that has any
        self.makeup_hours = next(spans for spans in self.hours if spans)

    @classmethod
    def from_text(
        cls,
        zone: str,
        hours: Mapping[str, str],
        holidays: Iterable[str | date] = (),
        calendar: str | None = None,
    ) -> BusinessClock:
        """Build from configuration text (``{"mon": "09:00-18:00"}``, ``["2026-10-01"]``,
        a calendar name such as ``"cn"``)."""
        days = {day: parse_spans(text) for day, text in hours.items()}
        dates = [d if isinstance(d, date) else date.fromisoformat(d) for d in holidays]
        return cls(zone, days, dates, calendar_named(calendar) if calendar else None)

    def spans(self, day: date) -> Sequence[tuple[int, int]]:
        """The working spans of local ``day``: none on a listed holiday or a statutory day off
        of the calendar, the weekday's hours on a make-up working day, else the weekday's."""
        if day in self.holidays:
            return ()
        if self.calendar is not None and self.calendar.covers(day):
            if self.calendar.day_off(day) is not None:
                return ()
            if self.calendar.makeup_workday(day) is not None and not self.hours[day.weekday()]:
                return self.makeup_hours
        return self.hours[day.weekday()]

    def _local(self, day: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)

    def segments(self, start: datetime) -> Iterator[Interval]:
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        idle = 0
        while True:
            spans = self.spans(day)
            found = False
            for lo, hi in spans:
                a = self._local(day, lo).astimezone(UTC)
                b = self._local(day, hi).astimezone(UTC)
                if b <= start or b <= a:
                    continue
                found = True
                yield max(a, start), b
            idle = 0 if found else idle + 1
            if idle > MAX_IDLE_DAYS:
                raise ValueError(
                    f"no working hours within {MAX_IDLE_DAYS} days of "
                    f"{start.isoformat()}: check the holiday list"
                )
            day += timedelta(days=1)

    def is_working(self, when: datetime) -> bool:
        """Whether ``when`` falls inside working hours."""
        for a, b in self.segments(when):
            return a <= when < b
        return False  # pragma: no cover - segments never ends

    def __repr__(self) -> str:
        calendar = f", calendar {self.calendar.name!r}" if self.calendar else ""
        return f"BusinessClock({self.zone.key!r}, {len(self.holidays)} holidays{calendar})"
