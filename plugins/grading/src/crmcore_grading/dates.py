"""Calendar arithmetic for the pipeline grade: months are calendar months, not 30 days."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months; a day past the end of the target month is
    clamped to its last day (2026-01-31 + 1 month = 2026-02-28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo | None:
    """The time zone called ``name``, or None if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_day(now: datetime, timezone: str | None, fallback: str) -> date:
    """The calendar day at ``now`` in ``timezone`` (else ``fallback``, else UTC)."""
    tz = zone(timezone) if timezone else None
    if tz is None:
        tz = zone(fallback)
    return now.astimezone(tz).date() if tz is not None else now.date()
