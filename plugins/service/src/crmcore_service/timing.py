"""Counting a step's SLA time: calendar hours, or business hours through a contract.

Business time belongs to the complaints plugin (``[complaints.calendar]``). This plugin never
imports it: it calls the ``crm_business_clock`` contract (``crmcore.contracts``,
docs/contracts.md) that complaints answers. In a stack without it, business hours count as
calendar hours and the order's history says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore.contracts import BusinessClock

if TYPE_CHECKING:
    from crmcore import CRM

Interval = tuple[datetime, datetime]
SlaClock = BusinessClock  # what ``crm_business_clock`` returns (and calendar time offers too)


class Calendar:
    """Every hour counts."""

    def add(self, start: datetime, amount: timedelta, pauses: Iterable[Interval] = ()) -> datetime:
        return start + amount

    def elapsed(self, start: datetime, end: datetime, pauses: Iterable[Interval] = ()) -> timedelta:
        return max(end - start, timedelta(0))


CALENDAR = Calendar()


def business_clock(crm: CRM) -> SlaClock | None:
    """The stack's business clock, or None when no plugin offers one."""
    return crm.plugins.crm_business_clock(crm=crm)


def clock_for(crm: CRM, name: str) -> tuple[SlaClock, str]:
    """The clock for a step's ``clock`` setting and the name of what actually counts."""
    if name == "business":
        found = business_clock(crm)
        if found is not None:
            return found, "business"
    return CALENDAR, "calendar"
