"""Hooks the complaints plugin offers to other plugins.

Implement them with ``@crmcore.hookimpl(optionalhook=True)`` so a stack without complaints
still loads. The event hooks are fired through ``crm.emit``: return ``crmcore.Effects`` (tasks,
ext patches, records) and the core applies them in the same transaction as the ticket change.
The ``ticket`` argument is a ``crmcore_complaints.model.Ticket`` (attrs, frozen); its ``status``
is a ``StrEnum`` and compares equal to its string value.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, Effects
    from crmcore_complaints.business_time import SlaClock
    from crmcore_complaints.model import Notification, Ticket


class ComplaintHookSpecs:
    """``crm_complaint_*`` hooks."""

    @hookspec
    def crm_complaint_registered(self, crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
        """A ticket was registered (by hand, or from a "complaint" interaction). Every plugin
        is called; return ``Effects`` or None."""

    @hookspec
    def crm_complaint_escalated(self, crm: CRM, ticket: Ticket, level: int, target: str,
                                actor: str) -> Effects | None:
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
        ``callback:<ticket id>``); without it, complaints creates that task itself. Every
        plugin is called."""

    @hookspec
    def crm_complaint_sla_breached(self, crm: CRM, ticket: Ticket, target: str,
                                   due_at: datetime, actor: str) -> Effects | None:
        """An SLA target passed unmet: ``target`` is "first_response" or "resolution". Called
        once per ticket and target (resolution: once per cycle). Every plugin is called."""

    @hookspec(firstresult=True)
    def crm_complaint_notify(self, crm: CRM, notification: Notification) -> bool | None:
        """Deliver a notification to staff (escalation, breach, chase, approval request).

        Stops at the first implementation that returns True. The plugin's own notifier runs
        last (``trylast``): it stores the message in ``complaints.outbox`` and logs it.
        """

    @hookspec(firstresult=True)
    def crm_business_clock(self, crm: CRM) -> SlaClock | None:
        """The business-time calculator of this stack (``[complaints.calendar]``: working hours
        per weekday in the business time zone, holidays skipped), for other plugins' SLAs.

        The answer has ``add(start, amount, pauses=()) -> datetime`` (the instant ``amount``, a
        ``timedelta`` of working time, after ``start``) and ``elapsed(start, end, pauses=())
        -> timedelta`` (working time between two instants). Callers fall back to calendar time
        when no plugin answers. Stops at the first non-None result; complaints answers.
        """
