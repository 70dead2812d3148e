"""Complaints' contract: the ticket lifecycle events, staff notification, business time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.effects import Effects


def callback_key(ref: str) -> str:
    """The dedupe key of the callback task after a ticket (or other work) ``ref`` closed.

    Whoever creates the callback (followup, else complaints itself) uses this key, so there is
    never a second one and complaints can find and cancel it on reopen."""
    return f"callback:{ref}"


class Ticket(Protocol):
    """A complaint ticket as the ``crm_complaint_*`` events pass it (read-only; the
    complaints plugin's ``Ticket`` is a frozen attrs class with more fields)."""

    @property
    def id(self) -> str: ...

    @property
    def customer_id(self) -> str: ...

    @property
    def category(self) -> str: ...

    @property
    def status(self) -> str:
        """registered, accepted, dispatched, in_progress, resolved, closed (a ``StrEnum``)."""

    @property
    def owner(self) -> str: ...

    @property
    def department(self) -> str | None: ...

    @property
    def handler(self) -> str | None: ...

    @property
    def opened_at(self) -> datetime: ...

    @property
    def closed_at(self) -> datetime | None: ...

    @property
    def cycle(self) -> int:
        """0 at first; +1 at every reopen."""

    @property
    def compensation(self) -> float | None:
        """Goodwill granted at resolution (None: none)."""

    @property
    def refund(self) -> float | None:
        """Money returned at resolution (logged as a "refund" interaction already)."""

    @property
    def refund_interaction_id(self) -> str | None: ...


class Notification(Protocol):
    """A message to staff about a ticket (escalation, SLA breach, chase, approval request)."""

    @property
    def id(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def ticket_id(self) -> str: ...

    @property
    def customer_id(self) -> str: ...

    @property
    def created_at(self) -> datetime: ...

    @property
    def recipient(self) -> str | None:
        """A person, or None when no one could be resolved for the role."""

    @property
    def role(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def body(self) -> str: ...


class BusinessClock(Protocol):
    """Working-time arithmetic (``[complaints.calendar]``); ``pauses`` are ``(start, end)``
    intervals that do not count."""

    def add(
        self, start: datetime, amount: timedelta, pauses: Iterable[tuple[datetime, datetime]] = ()
    ) -> datetime:
        """The instant ``amount`` of working time after ``start``."""
        ...

    def elapsed(
        self, start: datetime, end: datetime, pauses: Iterable[tuple[datetime, datetime]] = ()
    ) -> timedelta:
        """The working time between two instants."""
        ...


class ComplaintsContract:
    """``crm_complaint_*`` and ``crm_business_clock``."""

    @hookspec
    def crm_complaint_registered(self, crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
        """A ticket was registered (by hand, or from a "complaint" interaction). Every plugin
        is called; return ``Effects`` or None."""

    @hookspec
    def crm_complaint_escalated(
        self, crm: CRM, ticket: Ticket, level: int, target: str, actor: str
    ) -> Effects | None:
        """The worker raised an unresolved ticket to ladder ``level`` (1-based); ``target`` is
        the person it went to (or the role name when no one could be resolved). Called once per
        ticket, cycle and level, whatever the number of workers. Every plugin is called."""

    @hookspec
    def crm_complaint_resolved(self, crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
        """A ticket was resolved and fed back to the customer; ``ticket.compensation`` holds
        the goodwill amount granted (None: none), ``ticket.refund`` the money returned, which
        is logged as a ``refund`` interaction already (``ticket.refund_interaction_id``; do
        not treat it as goodwill). Every plugin is called."""

    @hookspec
    def crm_complaint_reopened(self, crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
        """A resolved or closed ticket was reopened because the customer is not satisfied
        (``ticket.compensation`` still holds what had been granted). Every plugin is called."""

    @hookspec
    def crm_complaint_closed(self, crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
        """A ticket was closed and archived (also when judged invalid). The followup plugin
        answers with the callback task (kind "callback", ref = ticket id, dedupe key
        ``callback_key(ticket.id)``); without it, complaints creates that task itself. Every
        plugin is called."""

    @hookspec
    def crm_complaint_sla_breached(
        self, crm: CRM, ticket: Ticket, target: str, due_at: datetime, actor: str
    ) -> Effects | None:
        """An SLA target passed unmet: ``target`` is "first_response" or "resolution". Called
        once per ticket and target (resolution: once per cycle). Every plugin is called."""

    @hookspec(firstresult=True)
    def crm_complaint_notify(self, crm: CRM, notification: Notification) -> bool | None:
        """Deliver a notification to staff (escalation, breach, chase, approval request).

        Stops at the first implementation that returns True. The complaints plugin's own
        notifier runs last (``trylast``): it stores the message in ``complaints.outbox`` and
        logs it.
        """

    @hookspec(firstresult=True)
    def crm_business_clock(self, crm: CRM) -> BusinessClock | None:
        """The business-time calculator of this stack (working hours per weekday in the
        business time zone, holidays skipped), for other plugins' SLAs. Callers fall back to
        calendar time when no plugin answers. Stops at the first non-None result."""
