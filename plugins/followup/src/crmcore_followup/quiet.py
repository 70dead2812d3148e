"""Quiet hours: contact tasks are never due while the customer rests, in their own time zone.

A due time strictly inside a window moves to the window's end (the next moment the customer may
be contacted). When that would break the task's deadline ("within 3 days", "at least every N
days"), it moves back to the window's start instead, so the deadline still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from crmcore_followup.settings import QuietWindow

# windows may chain (one ends inside the next); more steps than this means misconfiguration
_MAX_STEPS = 16


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name (cached; the core validated the name)."""
    return ZoneInfo(name)


def local_at(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz``."""
    return datetime.combine(day, at, tzinfo=zone(tz)).astimezone(UTC)


def _containing(window: QuietWindow, local: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) wall-clock datetimes of the occurrence of ``window`` that strictly
    contains ``local``, or None."""
    tod = local.time().replace(tzinfo=None)
    day = local.date()
    if window.start < window.end:
        if window.start < tod < window.end:
            return (datetime.combine(day, window.start), datetime.combine(day, window.end))
        return None
    if tod > window.start:
        return (
            datetime.combine(day, window.start),
            datetime.combine(day + timedelta(days=1), window.end),
        )
    if tod < window.end:
        return (
            datetime.combine(day - timedelta(days=1), window.start),
            datetime.combine(day, window.end),
        )
    return None


def quiet_window_at(
    when: datetime, tz: str, windows: Sequence[QuietWindow]
) -> tuple[datetime, datetime] | None:
    """The quiet window occurrence (start, end as UTC instants) containing ``when``, if any."""
    local = when.astimezone(zone(tz))
    for window in windows:
        found = _containing(window, local)
        if found is not None:
            start, end = found
            return (
                start.replace(tzinfo=zone(tz)).astimezone(UTC),
                end.replace(tzinfo=zone(tz)).astimezone(UTC),
            )
    return None


def is_quiet(when: datetime, tz: str, windows: Sequence[QuietWindow]) -> bool:
    """Whether ``when`` falls strictly inside one of the windows in the zone ``tz``."""
    return quiet_window_at(when, tz, windows) is not None


def _walk(when: datetime, tz: str, windows: Sequence[QuietWindow], forward: bool) -> datetime:
    for _ in range(_MAX_STEPS):
        found = quiet_window_at(when, tz, windows)
        if found is None:
            return when
        start, end = found
        # a DST shift can make a wall-clock boundary land on the instant we started from
        if forward:
            when = end if end > when else when + timedelta(hours=1)
        else:
            when = start if start < when else when - timedelta(hours=1)
    raise ValueError("quiet-hour windows chain without end; check [followup] quiet_hours")


def place(
    due: datetime, tz: str, windows: Sequence[QuietWindow], *, deadline: datetime | None = None
) -> datetime:
    """``due`` moved out of quiet hours: to the end of the window, or, if that passes
    ``deadline``, back to the window's start. Returns ``due`` unchanged when it is not quiet."""
    if not windows or not is_quiet(due, tz, windows):
        return due
    later = _walk(due, tz, windows, forward=True)
    if deadline is None or later <= deadline:
        return later
    return _walk(due, tz, windows, forward=False)


def quiet_until(when: datetime, tz: str, windows: Sequence[QuietWindow]) -> datetime | None:
    """If ``when`` is inside quiet hours (chained windows followed), the first moment after
    them; None when the customer may be contacted at ``when``. Remembered per (moment, zone,
    windows): a page of a rep's week asks it for hundreds of customers at one moment, most of
    them in the same zone."""
    return _quiet_until(when, tz, tuple(windows))


@lru_cache(maxsize=512)
def _quiet_until(when: datetime, tz: str, windows: tuple[QuietWindow, ...]) -> datetime | None:
    if quiet_window_at(when, tz, windows) is None:
        return None
    return _walk(when, tz, windows, forward=True)
