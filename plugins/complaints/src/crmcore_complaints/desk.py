"""Read models of the complaint desk: a ticket's SLA countdown, the desk's queue for a person
(mine, my team's, everything I may read) and a ticket's chase trail (who was asked, when, by
whom). Built on ``Complaints``' public reads; nothing here writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from crmcore_complaints.api import Complaints
from crmcore_complaints.model import UNRESOLVED, Status, Ticket

SCOPES = ("mine", "team", "all")


@attrs.frozen
class Countdown:
    """The SLA target running now for a ticket and the time left to it.

    ``target`` is ``"first_response"`` until the customer has had a first answer, then
    ``"resolution"``; None once resolved (nothing runs) and while waiting on the customer
    (``waiting``: the clocks are stopped). ``seconds_left`` is negative past the due time.
    ``breached``: a target of the current cycle was missed, now or earlier."""

    target: str | None
    due_at: datetime | None
    seconds_left: float | None
    breached: bool
    waiting: bool

    @property
    def overdue(self) -> bool:
        return self.seconds_left is not None and self.seconds_left < 0


def countdown(ticket: Ticket, now: datetime) -> Countdown:
    """Where ``ticket`` stands against the SLA target running at ``now``."""
    breached = ticket.first_response_breached or ticket.resolution_breached
    if ticket.status not in UNRESOLVED:
        return Countdown(None, None, None, breached, False)
    waiting = ticket.waiting_since is not None
    if ticket.first_response_at is None:
        target, due = "first_response", ticket.first_response_due_at
    else:
        target, due = "resolution", ticket.resolution_due_at
    if waiting or due is None:
        return Countdown(target, None, None, breached, waiting)
    left = (due - now).total_seconds()
    return Countdown(target, due, left, breached or left < 0, False)


@attrs.frozen
class DeskRow:
    """One line of the desk: the ticket, its countdown and why it is in my queue."""

    ticket: Ticket
    countdown: Countdown
    escalated_to: str | None  # the person the latest escalation of this cycle went to


def _urgency(row: DeskRow) -> tuple[Any, ...]:
    left = row.countdown.seconds_left
    return (
        left is None,
        left if left is not None else 0.0,
        -int(row.ticket.priority),
        row.ticket.opened_at,
    )


class TeamOf:
    """Memoised team of each person, as the CRM describes them (``crm.actor``: the security
    directory, or a plugin such as followup's roster)."""

    def __init__(self, api: Complaints) -> None:
        self.crm = api.crm
        self.known: dict[str, str | None] = {}

    def __call__(self, person: str | None) -> str | None:
        if not person:
            return None
        if person not in self.known:
            who = self.crm.actor(person)
            self.known[person] = who.team if who is not None else None
        return self.known[person]


def desk(
    api: Complaints,
    actor: str,
    *,
    scope: str = "mine",
    status: str | None = None,
    category: str | None = None,
    overdue: bool = False,
    now: datetime | None = None,
    limit: int = 200,
) -> list[DeskRow]:
    """Open tickets for the desk, most urgent first (least time left; breached first).

    ``scope``: ``mine`` (I own, handle or dispatched it, or it was escalated to me),
    ``team`` (the same for anyone in my team, plus the departments I manage) or ``all``
    (every open ticket I may read). ``status`` narrows to one status; ``overdue`` to
    tickets past a target they have not met."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r} (allowed: {', '.join(SCOPES)})")
    when = now or api.crm.now()
    statuses = [status] if status else [s.value for s in Status if s is not Status.CLOSED]
    tickets = api.find(status=statuses, category=category, overdue=overdue, now=when, actor=actor)
    raised = {t.id: _latest_escalation(api, t) for t in tickets if t.escalation_level}
    if scope != "all":
        team_of = TeamOf(api)
        team = team_of(actor) if scope == "team" else None
        managed = (
            {n for n, d in api.settings.departments.items() if d.manager == actor}
            if scope == "team"
            else set()
        )

        def ours(person: str | None) -> bool:
            return bool(person) and (
                person == actor or (team is not None and team_of(person) == team)
            )

        tickets = [
            t
            for t in tickets
            if any(ours(p) for p in (t.owner, t.handler, t.dispatched_by, raised.get(t.id)))
            or t.department in managed
        ]
    rows = [DeskRow(t, countdown(t, when), raised.get(t.id)) for t in tickets]
    rows.sort(key=_urgency)
    return rows[:limit]


def _latest_escalation(api: Complaints, ticket: Ticket) -> str | None:
    if not ticket.escalation_level:
        return None
    for trace in api.escalation_traces(ticket_id=ticket.id):
        if trace.details.get("cycle", 0) == ticket.cycle:
            assignee = trace.details.get("assignee")
            return assignee if isinstance(assignee, str) else None
    return None


@attrs.frozen
class Chase:
    """One time someone was asked to act on a ticket: a chase (``asked`` the handler, else the
    department manager) or an escalation (``asked`` the ladder's person; ``level``)."""

    at: datetime
    kind: str  # "chase" or "escalation"
    by: str  # who chased (for an escalation: the worker)
    asked: str | None  # None when no one held the role
    role: str | None  # handler, department_manager, shift_lead …
    level: int | None = None
    number: int | None = None  # the chase's number
    cycle: int = 0
    note: str = ""


def chase_trail(api: Complaints, ticket: Ticket) -> list[Chase]:
    """Every chase and escalation of ``ticket``, oldest first, naming who was asked."""
    out: list[Chase] = []
    for trace in api.history(ticket.id):
        details = trace.details
        if trace.action == "chased":
            out.append(
                Chase(
                    trace.at,
                    "chase",
                    trace.actor,
                    details.get("asked"),
                    details.get("role"),
                    number=details.get("chase"),
                    note=trace.note_message,
                )
            )
        elif trace.action == "escalated":
            out.append(
                Chase(
                    trace.at,
                    "escalation",
                    trace.actor,
                    details.get("assignee"),
                    details.get("target"),
                    level=details.get("level"),
                    cycle=int(details.get("cycle", 0)),
                )
            )
    return out
