"""Injected clocks: every time-dependent rule reads ``crm.clock.now()``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Source of the current time (timezone-aware, UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (may go backwards; simulations rarely should)."""
        with self._lock:
            self._now = ensure_aware(when)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new time."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("ManualClock.advance takes a non-negative step")
        with self._lock:
            self._now += step
            return self._now


def ensure_aware(value: datetime) -> datetime:
    """Return ``value`` in UTC; refuse naive datetimes rather than guess their zone."""
    if value.tzinfo is UTC:
        return value  # the clock's own datetimes: already there
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone")
    return value.astimezone(UTC)
