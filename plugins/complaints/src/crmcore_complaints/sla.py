"""SLA policies and the ticket's schedule: when each target falls due, when the next
escalation happens, and when the worker should next look at the ticket (``wake_at``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore_complaints.business_time import BusinessClock, CalendarClock, Interval, SlaClock
from crmcore_complaints.model import Status, Ticket
from crmcore_complaints.settings import ComplaintsSettings, SlaPolicy

CALENDAR = CalendarClock()


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def match_policy(
    settings: ComplaintsSettings,
    *,
    category: str,
    priority: str,
    tier: str | None,
    channel: str,
    perks: Iterable[str] = (),
) -> SlaPolicy:
    """The first policy whose non-empty criteria all hold (the last one matches all); a
    policy's ``perks`` hold when the customer has any of them."""
    held = set(perks)
    for policy in settings.sla:
        if policy.perks and not held & set(policy.perks):
            continue
        if policy.channels and channel not in policy.channels:
            continue
        if policy.categories and category not in policy.categories:
            continue
        if policy.priorities and priority not in policy.priorities:
            continue
        if policy.tiers and tier not in policy.tiers:
            continue
        return policy
    return settings.sla[-1]  # validated to be a catch-all; reached only if it was removed


def policy_named(settings: ComplaintsSettings, name: str) -> SlaPolicy:
    """The policy a ticket recorded (the last one if the configuration dropped it)."""
    return next((p for p in settings.sla if p.name == name), settings.sla[-1])


def tier_of(ext: Mapping[str, Any], path: str) -> str | None:
    """The customer's tier at ``path`` (dotted, inside ``customer.ext``), if any; several
    paths separated by commas are tried in order (``grading.grades.hospital,
    grading.grades.pyramid``)."""
    if "," in path:
        for one in path.split(","):
            found = tier_of(ext, one.strip())
            if found is not None:
                return found
        return None
    value: Any = ext
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, str) else None


class Scheduler:
    """Computes a ticket's SLA schedule from the settings."""

    def __init__(self, settings: ComplaintsSettings, core_timezone: str) -> None:
        self.settings = settings
        self.business: BusinessClock = settings.business_clock(core_timezone)

    def clock(self, name: str) -> SlaClock:
        return self.business if name == "business" else CALENDAR

    def pauses(self, ticket: Ticket) -> list[Interval]:
        return [(p.start, p.end) for p in ticket.pauses]

    def elapsed(self, ticket: Ticket, since: datetime, now: datetime) -> timedelta:
        """SLA-clock time from ``since`` to ``now`` (a pause still running counts up to its
        start only)."""
        pauses = self.pauses(ticket)
        if ticket.waiting_since is not None:
            pauses.append((ticket.waiting_since, max(now, ticket.waiting_since)))
        return self.clock(ticket.sla_clock).elapsed(since, now, pauses)

    def schedule(self, ticket: Ticket) -> Ticket:
        """``ticket`` with its due instants, next escalation and ``wake_at`` recomputed.

        While the ticket waits on the customer no SLA instant is due. Breached targets and
        passed levels are not scheduled again; the auto-close instant counts calendar time.
        """
        policy = policy_named(self.settings, ticket.sla_policy)
        clock = self.clock(ticket.sla_clock)
        pauses = self.pauses(ticket)
        waiting = ticket.waiting_since is not None
        cycle_start = ticket.cycle_started_at or ticket.opened_at
        responded = ticket.first_response_at is not None
        first_due = ticket.first_response_due_at if responded else None
        resolution_due = None if ticket.is_unresolved else ticket.resolution_due_at
        next_escalation = auto_close = None
        if not responded and not waiting and ticket.is_unresolved:
            first_due = clock.add(ticket.opened_at, hours(policy.first_response_hours), pauses)
        if ticket.is_unresolved and not waiting:
            resolution_due = clock.add(cycle_start, hours(policy.resolution_hours), pauses)
            ladder = self.settings.escalation
            if ticket.escalation_level < len(ladder):
                level = ladder[ticket.escalation_level]
                next_escalation = clock.add(cycle_start, hours(level.after_hours), pauses)
        if (
            ticket.status is Status.RESOLVED
            and ticket.resolved_at is not None
            and self.settings.auto_close_after_days > 0
        ):
            auto_close = ticket.resolved_at + timedelta(days=self.settings.auto_close_after_days)
        wakes = [
            t
            for t in (
                None if responded or ticket.first_response_breached else first_due,
                None if not ticket.is_unresolved or ticket.resolution_breached else resolution_due,
                next_escalation,
                auto_close,
            )
            if t is not None
        ]
        return attrs.evolve(
            ticket,
            first_response_due_at=first_due,
            resolution_due_at=resolution_due,
            next_escalation_at=next_escalation,
            auto_close_at=auto_close,
            wake_at=min(wakes) if wakes else None,
        )
