"""The SLA sweep and the escalation ladder: where a ticket stands against its targets, and
the worker that records breaches, escalates and auto-closes what has come due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore import ConflictError
from crmcore.i18n import N_, msg, term
from crmcore_complaints.lifecycle import Lifecycle
from crmcore_complaints.model import Status, Ticket, Trace
from crmcore_complaints.names import SECTION, TASK_SOURCE, escalation_key
from crmcore_complaints.outbox import Notifier
from crmcore_complaints.roles import escalation_target
from crmcore_complaints.state import LadderState, LadderStep, SlaState, SlaTarget, TicketState
from crmcore_complaints.tickets import TicketBook, as_priority

#: The ladder's roles as an escalation task's title names them (in the reader's language).
ROLES = {"shift_lead": N_("shift lead"), "department_manager": N_("department manager")}

WAKE_BATCH = 500


class Escalation:
    """SLA state, the escalation ladder and the worker's sweep."""

    def __init__(self, book: TicketBook, lifecycle: Lifecycle, notifier: Notifier) -> None:
        self.book = book
        self.crm = book.crm
        self.settings = book.settings
        self.scheduler = book.scheduler
        self.zone = book.zone
        self.log = book.log
        self.lifecycle = lifecycle
        self.notifier = notifier

    def state(self, ticket: Ticket, now: datetime | None = None) -> TicketState:
        """Where ``ticket`` stands at ``now`` against its SLA targets and escalation ladder."""
        when = now or self.crm.now()
        unresolved = ticket.is_unresolved

        def target(
            name: str, due: datetime | None, met: datetime | None, breached: bool
        ) -> SlaTarget:
            late = unresolved and met is None and due is not None and due < when
            return SlaTarget(name, due, met, breached, late)

        sla = SlaState(
            policy=ticket.sla_policy,
            clock=ticket.sla_clock,
            cycle=ticket.cycle,
            cycle_started_at=ticket.cycle_started_at,
            waiting_since=ticket.waiting_since,
            elapsed_hours=round(self.sla_elapsed(ticket, when).total_seconds() / 3600, 4),
            first_response=target(
                "first_response",
                ticket.first_response_due_at,
                ticket.first_response_at,
                ticket.first_response_breached,
            ),
            resolution=target(
                "resolution",
                ticket.resolution_due_at,
                None if unresolved else ticket.resolved_at,
                ticket.resolution_breached,
            ),
            resolution_breaches=ticket.resolution_breaches,
        )
        reached = {
            t.details.get("level"): t
            for t in self.escalation_traces(ticket_id=ticket.id)
            if t.details.get("cycle", 0) == ticket.cycle
        }
        steps = []
        for number, step in enumerate(self.settings.escalation, start=1):
            trace = reached.get(number)
            done = number <= ticket.escalation_level
            steps.append(
                LadderStep(
                    level=number,
                    after_hours=step.after_hours,
                    target=step.target,
                    reached=done,
                    escalated_at=trace.at if done and trace else None,
                    assignee=trace.details.get("assignee") if done and trace else None,
                    due_at=ticket.next_escalation_at
                    if number == ticket.escalation_level + 1
                    else None,
                )
            )
        ladder = LadderState(
            level=ticket.escalation_level,
            next_escalation_at=ticket.next_escalation_at,
            escalations=ticket.escalations,
            steps=tuple(steps),
        )
        return TicketState(when, sla, ladder)

    def escalation_traces(
        self,
        *,
        ticket_id: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Trace]:
        """Escalations that happened, newest first."""
        query: dict[str, Any] = {"action": "escalated"}
        if ticket_id is not None:
            query["ticket_id"] = ticket_id
        if since is not None:
            query["at"] = {"$gte": since}
        return self.book.traces.find(query, sort=[("at", -1), ("id", -1)], limit=limit)

    def sla_elapsed(self, ticket: Ticket, now: datetime | None = None) -> timedelta:
        """SLA-clock time the ticket has been unresolved in its current cycle."""
        when = now or self.crm.now()
        start = ticket.cycle_started_at or ticket.opened_at
        end = when if ticket.is_unresolved else (ticket.resolved_at or when)
        return self.scheduler.elapsed(ticket, start, end)

    def due_for_wake(self, now: datetime, limit: int = WAKE_BATCH) -> list[Ticket]:
        """Tickets whose schedule needs the worker at ``now`` (indexed on ``wake_at``)."""
        return self.book.tickets.find(
            {"wake_at": {"$lte": now}}, sort=[("wake_at", 1)], limit=limit
        )

    def sweep(self, now: datetime, worker: str) -> int:
        """Record breaches, escalate and auto-close what has come due; returns how many
        tickets this worker handled. Safe with several workers: each change is claimed by a
        version-checked write, and the loser of a race skips the ticket."""
        handled = 0
        for ticket in self.due_for_wake(now):
            try:
                if self.wake(ticket, now, worker):
                    handled += 1
            except ConflictError:
                self.log.debug("ticket taken by another worker", ticket=ticket.id, worker=worker)
        return handled

    def wake(self, ticket: Ticket, now: datetime, worker: str) -> bool:
        """Act on one ticket as read (``ConflictError`` if it changed since)."""
        actor = f"worker:{worker}"
        changes: dict[str, Any] = {}
        breaches: list[tuple[str, datetime]] = []
        if (
            ticket.is_unresolved
            and ticket.first_response_at is None
            and not ticket.first_response_breached
            and ticket.first_response_due_at
            and ticket.first_response_due_at <= now
        ):
            changes["first_response_breached"] = True
            breaches.append(("first_response", ticket.first_response_due_at))
        if (
            ticket.is_unresolved
            and not ticket.resolution_breached
            and ticket.resolution_due_at
            and ticket.resolution_due_at <= now
        ):
            changes.update(
                resolution_breached=True, resolution_breaches=ticket.resolution_breaches + 1
            )
            breaches.append(("resolution", ticket.resolution_due_at))
        levels: list[tuple[int, datetime]] = []
        probe = ticket
        while (
            probe.is_unresolved
            and probe.next_escalation_at is not None
            and probe.next_escalation_at <= now
        ):
            levels.append((probe.escalation_level + 1, probe.next_escalation_at))
            probe = self.scheduler.schedule(
                attrs.evolve(probe, escalation_level=probe.escalation_level + 1)
            )
        if levels:
            changes.update(
                escalation_level=levels[-1][0], escalations=ticket.escalations + len(levels)
            )
        auto_close = (
            ticket.status is Status.RESOLVED
            and ticket.auto_close_at is not None
            and ticket.auto_close_at <= now
        )
        if not changes and not auto_close:
            # nothing due (e.g. the schedule moved): just refresh wake_at
            refreshed = self.scheduler.schedule(ticket)
            if refreshed.wake_at != ticket.wake_at:
                self.book.write(ticket, {})
            return False
        with self.crm.transaction(actor):
            updated = self.book.write(ticket, changes) if changes else ticket
            for target, due_at in breaches:
                self.book.record_breach(updated, target, due_at, actor)
            for level, at in levels:
                self.escalate(updated, level, at, actor)
            if auto_close:
                days = self.settings.auto_close_after_days
                self.lifecycle.close(
                    updated,
                    actor=actor,
                    note=msg(
                        "no answer from the customer within %(days)s days of the resolution",
                        days=f"{days:g}",
                    ),
                )
        return True

    def escalate(self, ticket: Ticket, level: int, at: datetime, actor: str) -> None:
        """Take ``ticket`` to ``level`` of the ladder (due at ``at``): a task for whoever holds
        the step's role now, a trace, ``crm_complaint_escalated`` and a notice."""
        step = self.settings.escalation[level - 1]
        now = self.crm.now()
        who = escalation_target(self.settings, self.zone, ticket, level, now)
        role = step.target.replace("_", " ")
        if who.person is None:
            self.log.warning(
                "complaint escalation has no one to go to",
                ticket=ticket.id,
                level=level,
                role=step.target,
            )
        task = self.book.flow_task(
            actor,
            kind="complaint",
            due_at=now,
            customer_id=ticket.customer_id,
            title=msg(
                "Complaint %(ticket)s escalated to you (level %(level)s, %(role)s): decide and "
                "act now",
                ticket=ticket.id,
                level=level,
                role=term(ROLES.get(step.target, role)),
            ),
            assignee=who.person,
            priority=as_priority(step.priority, "high"),
            dedupe_key=escalation_key(ticket, level),
            source=TASK_SOURCE,
            ref=ticket.id,
            ext={SECTION: {"purpose": "escalation", "level": level, "role": step.target}},
        )
        self.book.trace(
            ticket,
            actor,
            "escalated",
            None,
            None,
            {
                "level": level,
                "target": step.target,
                "assignee": who.person,
                "how": who.how,
                "scheduled_at": at.isoformat(),
                "task_id": task.id,
                "cycle": ticket.cycle,
            },
        )
        self.crm.events.complaint_escalated(
            actor=actor,
            ticket=ticket,
            level=level,
            target=who.person or step.target,
        )
        opened_for = self.scheduler.elapsed(
            ticket, ticket.cycle_started_at or ticket.opened_at, now
        )
        self.notifier.send(
            ticket,
            "escalation",
            who.person,
            step.target,
            f"Complaint {ticket.id} escalated to level {level} ({role})",
            f"unresolved for {opened_for.total_seconds() / 3600:.1f} {ticket.sla_clock} "
            f"hours; category {ticket.category}; priority "
            f"{ticket.priority.name.lower()}; {who.how}",
        )
        self.log.info(
            "complaint escalated",
            ticket=ticket.id,
            level=level,
            role=step.target,
            assignee=who.person,
        )
