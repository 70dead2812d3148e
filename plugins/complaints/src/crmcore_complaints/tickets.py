"""The ticket book: tickets and their traces, read with permission checks and written with
the version read, and what every change shares (traces, late-target breaches, flow tasks).

Every change reads the ticket, checks the status machine (``require``), and writes with the
version it read: if someone else changed the ticket meanwhile the write raises
``ConflictError`` naming the ticket, and nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from crmcore import (
    CRM,
    ConflictError,
    Effects,
    NotFoundError,
    Priority,
    Task,
    TaskDraft,
    ValidationError,
)
from crmcore.i18n import joined, msg, term
from crmcore.logs import get_logger
from crmcore.messages import message_doc
from crmcore.schema import enum_converter
from crmcore.security import Resource
from crmcore_complaints.model import (
    ALLOWED_FROM,
    TICKETS,
    TRACES,
    UNRESOLVED,
    Status,
    Ticket,
    Trace,
)
from crmcore_complaints.names import SECTION
from crmcore_complaints.outbox import Notifier
from crmcore_complaints.roles import department_of
from crmcore_complaints.settings import ComplaintsSettings
from crmcore_complaints.sla import Scheduler
from crmcore_complaints.words import ACTION_WORDS, STATUS_WORDS

UNRESOLVED_STATUSES = tuple(s.value for s in Status if s in UNRESOLVED)


def note_fields(note: str | None) -> dict[str, Any]:
    """A trace's ``note`` (the English) with its message id and parameters when the plugin
    wrote it as a message (``msg(...)``); a person's note as typed."""
    doc = message_doc(note)
    if doc is not None and "key" in doc:
        return {"note": str(note), "note_key": doc["key"], "note_args": doc.get("args") or {}}
    return {"note": str(note or "")}


def as_priority(value: Priority | int | str | None, default: str) -> Priority:
    """A ``Priority`` from a member, its number or its name (``"high"``)."""
    if value is None:
        value = default
    if isinstance(value, str) and not value.isdigit():
        try:
            return Priority[value.upper()]
        except KeyError:
            allowed = ", ".join(p.name.lower() for p in Priority)
            raise ValidationError(
                f"unknown priority {value!r} (allowed: {allowed})", field="priority"
            ) from None
    return enum_converter(Priority, "priority")(int(value))


class TicketBook:
    """Tickets and traces of one CRM, with the settings, schedule and notifier every part of
    the flow shares."""

    def __init__(self, crm: CRM, notifier: Notifier) -> None:
        self.crm = crm
        self.settings: ComplaintsSettings = crm.settings(SECTION)
        self.tickets = crm.records(TICKETS, Ticket)
        self.traces = crm.records(TRACES, Trace)
        self.zone = ZoneInfo(self.settings.timezone(crm.config.core.timezone))
        self.scheduler = Scheduler(self.settings, crm.config.core.timezone)
        self.notifier = notifier
        self.log = get_logger(SECTION)

    # -- reading ---------------------------------------------------------------------------

    def get(
        self, ticket_id: str, *, actor: str | None = None, version: int | None = None
    ) -> Ticket:
        """The ticket with this id, or ``NotFoundError``. With ``actor``, the read is checked
        (``complaint.read``, see ``authorize``); with ``version``, a ticket changed since that
        version is a ``ConflictError`` (pass the result to a change to have it checked again
        when written)."""
        try:
            ticket = self.tickets.get(ticket_id)
        except NotFoundError:
            raise NotFoundError(f"no complaint ticket {ticket_id!r}") from None
        if actor is not None:
            self.authorize(ticket, actor, "read")
        if version is not None and ticket.version != version:
            raise ConflictError(
                f"ticket {ticket_id} is at version {ticket.version} "
                f"({ticket.status}), not {version}: someone changed it; "
                "reload it"
            )
        return ticket

    def involved(self, ticket: Ticket) -> set[str]:
        """Who is on the ticket: whoever registered and owns it, its dispatcher and handler,
        and the manager of the department that has it (or would get it)."""
        people = {ticket.registered_by, ticket.owner, ticket.dispatched_by, ticket.handler}
        department = department_of(self.settings, ticket)
        dept = self.settings.departments.get(department or "")
        if dept is not None and dept.manager:
            people.add(dept.manager)
        return {p for p in people if p}

    def authorize(self, ticket: Ticket, actor: str, action: str) -> None:
        """Check ``complaint.<action>`` under ``[security] enforce``: the people on the ticket
        (``involved``) may read and work it; anyone else is asked to the role policy as for a
        resource owned by the ticket's owner (an admin may, a manager of the owner's
        department may, another agent may not). ``PermissionDenied`` otherwise."""
        if not self.crm.config.security.enforce or actor in self.involved(ticket):
            return
        self.crm.authorize(
            actor,
            f"complaint.{action}",
            Resource("complaint", ticket.id, ticket.owner, ticket.customer_id),
        )

    def find(
        self,
        *,
        status: Iterable[str] | str | None = None,
        department: str | None = None,
        owner: str | None = None,
        category: str | None = None,
        customer_id: str | None = None,
        overdue: bool = False,
        now: datetime | None = None,
        limit: int | None = None,
        actor: str | None = None,
    ) -> list[Ticket]:
        """Tickets matching every given criterion, oldest first.

        ``overdue``: unresolved tickets past an SLA target they have not met (the first
        response or the resolution of the current cycle; none while waiting on the customer).
        With ``actor`` under enforced permissions, only the tickets that actor may read: those
        they are on (``involved``) and those the role policy lets them read.
        """
        query: dict[str, Any] = {}
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                enum_converter(Status, "status")(s)
            query["status"] = {"$in": [str(s) for s in statuses]}
        for key, value in (
            ("department", department),
            ("owner", owner),
            ("category", category),
            ("customer_id", customer_id),
        ):
            if value is not None:
                query[key] = value
        parts = [query] if query else []
        if overdue:
            when = now or self.crm.now()
            parts.append(
                {
                    "status": {"$in": list(UNRESOLVED_STATUSES)},
                    "$or": [
                        {"resolution_due_at": {"$lt": when}},
                        {"first_response_at": None, "first_response_due_at": {"$lt": when}},
                    ],
                }
            )
        if actor is not None and self.crm.config.security.enforce:
            scope = self.crm.readable_filter(actor, {})
            if scope:  # empty for those who read everything
                on_it: list[dict[str, Any]] = [
                    scope,
                    {"registered_by": actor},
                    {"handler": actor},
                    {"dispatched_by": actor},
                ]
                managed = [n for n, d in self.settings.departments.items() if d.manager == actor]
                if managed:
                    on_it.append({"department": {"$in": managed}})
                parts.append({"$or": on_it})
        combined = parts[0] if len(parts) == 1 else ({"$and": parts} if parts else {})
        return self.tickets.find(combined, sort=[("opened_at", 1)], limit=limit)

    def history(self, ticket_id: str) -> list[Trace]:
        """A ticket's traces, oldest first."""
        return self.traces.find({"ticket_id": ticket_id}, sort=[("at", 1), ("id", 1)])

    def department_load(self, department: str, *, excluding: str | None = None) -> int:
        """Tickets a department holds now (dispatched or in progress)."""
        query: dict[str, Any] = {
            "department": department,
            "status": {"$in": [Status.DISPATCHED, Status.IN_PROGRESS]},
        }
        if excluding is not None:
            query["id"] = {"$ne": excluding}
        return self.tickets.count(query)

    # -- checks ----------------------------------------------------------------------------

    def load(self, ticket: Ticket | str) -> Ticket:
        """``ticket`` as given, or read by its id."""
        if isinstance(ticket, Ticket):
            return ticket
        if not isinstance(ticket, str) or not ticket:
            raise ValidationError("name a ticket by its id", field="ticket")
        return self.get(ticket)

    def require(self, ticket: Ticket | str, action: str, actor: str) -> Ticket:
        """The ticket, if ``actor`` may ``action`` it and its status allows that action."""
        current = self.load(ticket)
        self.authorize(current, actor, action)
        allowed = ALLOWED_FROM[action]
        if current.status not in allowed:
            states = joined(*(term(STATUS_WORDS[s]) for s in Status if s in allowed), sep=", ")
            raise ValidationError(
                msg(
                    "ticket %(ticket)s is %(status)s: cannot %(action)s it (only when %(states)s)",
                    ticket=current.id,
                    status=term(STATUS_WORDS[current.status]),
                    action=term(ACTION_WORDS.get(action, action)),
                    states=states,
                )
            )
        return current

    def known_category(self, category: str) -> None:
        """``ValidationError`` unless ``category`` is configured."""
        if category not in self.settings.all_categories:
            raise ValidationError(
                f"unknown category {category!r} (allowed: "
                f"{', '.join(self.settings.all_categories)})",
                field="category",
            )

    def known_department(self, department: str) -> None:
        """``ValidationError`` unless ``department`` is configured."""
        if department not in self.settings.departments:
            raise ValidationError(
                f"unknown department {department!r} (known: "
                f"{', '.join(self.settings.departments)})",
                field="department",
            )

    # -- writing ---------------------------------------------------------------------------

    def write(self, current: Ticket, changes: Mapping[str, Any]) -> Ticket:
        """Store ``changes`` and the recomputed schedule, checking the version read."""
        new = self.scheduler.schedule(attrs.evolve(current, **changes))
        diff = {
            a.name: getattr(new, a.name)
            for a in attrs.fields(Ticket)
            if a.name not in ("id", "version") and getattr(new, a.name) != getattr(current, a.name)
        }
        try:
            return self.tickets.update(current, **diff)
        except ConflictError:
            fresh = self.tickets.find_one({"id": current.id})
            now = f"version {fresh.version}, {fresh.status}" if fresh else "gone"
            raise ConflictError(
                f"ticket {current.id} was changed by someone else since you read "
                f"it (you read version {current.version}; it is now {now}); "
                "reload it and try again"
            ) from None
        except NotFoundError:
            raise NotFoundError(f"no complaint ticket {current.id!r}") from None

    def change(
        self,
        current: Ticket,
        actor: str,
        action: str,
        changes: Mapping[str, Any],
        details: Mapping[str, Any],
        note: str = "",
    ) -> Ticket:
        """Write a change with its trace; SLA targets missed by now are recorded as breaches
        the moment a late response or resolution settles them (with or without a worker)."""
        now = self.crm.now()
        changes = dict(changes)
        late: list[tuple[str, datetime]] = []
        due = current.first_response_due_at
        if (
            changes.get("first_response_at")
            and current.first_response_at is None
            and not current.first_response_breached
            and due is not None
            and due < now
        ):
            changes["first_response_breached"] = True
            late.append(("first_response", due))
        due = current.resolution_due_at
        if (
            changes.get("status") is Status.RESOLVED
            and not current.resolution_breached
            and due is not None
            and due < now
        ):
            changes.update(
                resolution_breached=True, resolution_breaches=current.resolution_breaches + 1
            )
            late.append(("resolution", due))
        updated = self.write(current, changes)
        before = current.status if updated.status != current.status else None
        self.trace(
            updated,
            actor,
            action,
            before and str(before),
            str(updated.status) if before else None,
            {k: v for k, v in details.items() if v is not None},
            note,
        )
        for target, due_at in late:
            self.record_breach(updated, target, due_at, actor)
        return updated

    def trace(
        self,
        ticket: Ticket,
        actor: str,
        action: str,
        from_status: str | None,
        to_status: str | None,
        details: Mapping[str, Any],
        note: str = "",
    ) -> Trace:
        """Add a line to the ticket's trail (``complaints.traces``)."""
        return self.traces.insert(
            Trace(
                id=self.crm.new_id("trc_"),
                ticket_id=ticket.id,
                customer_id=ticket.customer_id,
                at=self.crm.now(),
                actor=actor,
                action=action,
                from_status=from_status,
                to_status=to_status,
                details=dict(details),
                **note_fields(note),
            )
        )

    def record_breach(self, ticket: Ticket, target: str, due_at: datetime, actor: str) -> None:
        """A missed SLA target (``first_response`` or ``resolution``): a trace, the
        ``crm_complaint_sla_breached`` hook, and a notice to the ticket's owner."""
        self.trace(
            ticket,
            actor,
            "sla_breached",
            None,
            None,
            {"target": target, "due_at": due_at.isoformat(), "policy": ticket.sla_policy},
        )
        self.crm.events.complaint_sla_breached(
            actor=actor, ticket=ticket, target=target, due_at=due_at
        )
        label = "first response" if target == "first_response" else "resolution"
        self.notifier.send(
            ticket,
            "sla_breach",
            ticket.owner,
            "owner",
            f"Complaint {ticket.id}: {label} target missed",
            f"due {due_at.isoformat()} ({ticket.sla_policy} policy, "
            f"{ticket.sla_clock} hours); status {ticket.status}",
        )
        self.log.info("complaint SLA breached", ticket=ticket.id, target=target)

    def flow_task(self, actor: str, **fields: Any) -> Task:
        """Create a task the complaint flow calls for (an approval for the manager, an
        escalation, the callback for the owner). It is part of an action already allowed
        (``authorize``), so it is not checked again as the actor's own ``task.create`` of a
        task for someone else; it is applied as hooks' effects are."""
        draft = TaskDraft(**fields)
        created = self.crm.apply(Effects(tasks=[draft]), actor=actor)
        if created:
            return created[0]
        existing = self.crm.tasks.open_by_key(draft.dedupe_key) if draft.dedupe_key else None
        if existing is None:  # pragma: no cover - a draft without a key is always created
            raise ConflictError(f"task {draft.dedupe_key} was not created")
        return existing
