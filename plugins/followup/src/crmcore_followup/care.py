"""Care dates (DOMAIN §3: holiday and birthday greetings): which occurrence comes next, and when
its task is due to be created. Pure functions over dates in the customer's own time zone."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, timedelta

from crmcore_followup.settings import Holiday


def birthday_in(year: int, birth: date) -> date:
    """The birthday's date in ``year``; 29 February falls on the 28th in other years."""
    if birth.month == 2 and birth.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birth.replace(year=year)


def next_birthday(birth: date, today: date, *, after_year: int | None) -> date | None:
    """The first birthday on or after ``today`` in a year later than ``after_year`` (the last
    year already greeted). None if the customer is not born yet."""
    year = today.year
    if after_year is not None:
        year = max(year, after_year + 1)
    for candidate_year in (year, year + 1):
        if candidate_year < birth.year:
            continue
        day = birthday_in(candidate_year, birth)
        if day >= today and day > birth:
            return day
    return None


def upcoming_holidays(
    holidays: Sequence[Holiday], today: date, *, after: date | None
) -> list[Holiday]:
    """Configured holidays on or after ``today`` and later than ``after`` (already handled)."""
    return [h for h in holidays if h.day >= today and (after is None or h.day > after)]


def creation_day(occasion: date, days_ahead: int) -> date:
    """The day a care task for ``occasion`` is created."""
    return occasion - timedelta(days=days_ahead)
