"""The complaints API: ``Complaints(crm)``, used by the CLI, the worker and host applications.

Every change reads the ticket, checks the status machine, and writes with the version it read:
if someone else changed the ticket meanwhile the write raises ``ConflictError`` naming the
ticket, and nothing is overwritten. Pass the ``Ticket`` you read (rather than its id) to have
your read version checked. Each change leaves a trace in ``complaints.traces`` and runs in one
store transaction with the hooks it fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from crmcore import (
    CRM,
    ConflictError,
    Effects,
    NotFoundError,
    PermissionDenied,
    Priority,
    Task,
    TaskDraft,
    TaskUpdate,
    ValidationError,
)
from crmcore.customers import require_actor
from crmcore.entities import Channel, CustomerStatus, Interaction
from crmcore.logs import get_logger
from crmcore.plugins import PluginManager
from crmcore.schema import enum_converter
from crmcore.security import Resource
from crmcore_complaints.hookspecs import ComplaintHookSpecs
from crmcore_complaints.model import (
    ACTIONS,
    ALLOWED_FROM,
    OPEN,
    OUTBOX,
    TICKETS,
    TRACES,
    UNRESOLVED,
    ActionStatus,
    Claim,
    ImprovementAction,
    Notification,
    Pause,
    Proposal,
    ProposalState,
    Status,
    Ticket,
    Trace,
    Validity,
)
from crmcore_complaints.roles import department_of, escalation_target, resolve_role
from crmcore_complaints.settings import ComplaintsSettings
from crmcore_complaints.sla import Scheduler, hours, match_policy, tier_of
from crmcore_complaints.state import LadderState, LadderStep, SlaState, SlaTarget, TicketState

SECTION = "complaints"
TASK_SOURCE = "complaints"
WAKE_BATCH = 500


def ensure_hookspecs(plugins: PluginManager) -> None:
    """Declare the ``crm_complaint_*`` hooks unless ``crm_addhooks`` already did."""
    caller = getattr(plugins.hook, "crm_complaint_registered", None)
    if caller is None or not caller.has_spec():
        plugins.add_hookspecs(ComplaintHookSpecs)


def callback_key(ticket_id: str) -> str:
    """The dedupe key of a ticket's post-close callback task (shared with followup)."""
    return f"callback:{ticket_id}"


def escalation_key(ticket: Ticket, level: int) -> str:
    return f"complaint-escalation:{ticket.id}:{ticket.cycle}:{level}"


def approval_key(ticket_id: str, number: int) -> str:
    return f"complaint-approval:{ticket_id}:{number}"


def improvement_key(action_id: str) -> str:
    return f"improvement:{action_id}"


def perks_of(crm: CRM, customer: Any) -> tuple[str, ...]:
    """The customer's perks from ``crm_customer_perks`` (loyalty's documented hook), called
    only when some plugin implements it; sorted, without repeats."""
    hook = getattr(crm.plugins.hook, "crm_customer_perks", None)
    if hook is None or not hook.get_hookimpls():
        return ()
    return tuple(sorted({p for part in hook(crm=crm, customer=customer) if part for p in part}))


def as_priority(value: Priority | int | str | None, default: str) -> Priority:
    """A ``Priority`` from a member, its number or its name (``"high"``)."""
    if value is None:
        value = default
    if isinstance(value, str) and not value.isdigit():
        try:
            return Priority[value.upper()]
        except KeyError:
            allowed = ", ".join(p.name.lower() for p in Priority)
            raise ValidationError(f"unknown priority {value!r} (allowed: {allowed})",
                                  field="priority") from None
    return enum_converter(Priority, "priority")(int(value))


class Complaints:
    """Complaint tickets from registration to archive (DOMAIN §5)."""

    def __init__(self, crm: CRM) -> None:
        ensure_hookspecs(crm.plugins)
        self.crm = crm
        self.settings: ComplaintsSettings = crm.settings(SECTION)
        self.tickets = crm.records(TICKETS, Ticket)
        self.traces = crm.records(TRACES, Trace)
        self.outbox = crm.records(OUTBOX, Notification)
        self.actions = crm.records(ACTIONS, ImprovementAction)
        self.zone = ZoneInfo(self.settings.timezone(crm.config.core.timezone))
        self.scheduler = Scheduler(self.settings, crm.config.core.timezone)
        self.log = get_logger(SECTION)

    # -- reading ---------------------------------------------------------------------------

    def get(self, ticket_id: str, *, actor: str | None = None,
            version: int | None = None) -> Ticket:
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
            raise ConflictError(f"ticket {ticket_id} is at version {ticket.version} "
                                f"({ticket.status}), not {version}: someone changed it; "
                                "reload it")
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
        self.crm.authorize(actor, f"complaint.{action}",
                           Resource("complaint", ticket.id, ticket.owner, ticket.customer_id))

    def find(self, *, status: Iterable[str] | str | None = None, department: str | None = None,
             owner: str | None = None, category: str | None = None,
             customer_id: str | None = None, overdue: bool = False,
             now: datetime | None = None, limit: int | None = None,
             actor: str | None = None) -> list[Ticket]:
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
        for key, value in (("department", department), ("owner", owner),
                           ("category", category), ("customer_id", customer_id)):
            if value is not None:
                query[key] = value
        parts = [query] if query else []
        if overdue:
            when = now or self.crm.now()
            parts.append({"status": {"$in": list(UNRESOLVED_STATUSES)}, "$or": [
                {"resolution_due_at": {"$lt": when}},
                {"first_response_at": None, "first_response_due_at": {"$lt": when}}]})
        if actor is not None and self.crm.config.security.enforce:
            scope = self.crm.readable_filter(actor, {})
            if scope:  # empty for those who read everything
                on_it: list[dict[str, Any]] = [scope, {"registered_by": actor},
                                               {"handler": actor}, {"dispatched_by": actor}]
                managed = [n for n, d in self.settings.departments.items() if d.manager == actor]
                if managed:
                    on_it.append({"department": {"$in": managed}})
                parts.append({"$or": on_it})
        combined = parts[0] if len(parts) == 1 else ({"$and": parts} if parts else {})
        return self.tickets.find(combined, sort=[("opened_at", 1)], limit=limit)

    def state(self, ticket: Ticket, now: datetime | None = None) -> TicketState:
        """Where ``ticket`` stands at ``now`` against its SLA targets and escalation ladder."""
        when = now or self.crm.now()
        unresolved = ticket.is_unresolved

        def target(name: str, due: datetime | None, met: datetime | None,
                   breached: bool) -> SlaTarget:
            late = unresolved and met is None and due is not None and due < when
            return SlaTarget(name, due, met, breached, late)

        sla = SlaState(
            policy=ticket.sla_policy, clock=ticket.sla_clock, cycle=ticket.cycle,
            cycle_started_at=ticket.cycle_started_at, waiting_since=ticket.waiting_since,
            elapsed_hours=round(self.sla_elapsed(ticket, when).total_seconds() / 3600, 4),
            first_response=target("first_response", ticket.first_response_due_at,
                                  ticket.first_response_at, ticket.first_response_breached),
            resolution=target("resolution", ticket.resolution_due_at,
                              None if unresolved else ticket.resolved_at,
                              ticket.resolution_breached),
            resolution_breaches=ticket.resolution_breaches)
        reached = {t.details.get("level"): t for t in self.escalation_traces(ticket_id=ticket.id)
                   if t.details.get("cycle", 0) == ticket.cycle}
        steps = []
        for number, step in enumerate(self.settings.escalation, start=1):
            trace = reached.get(number)
            done = number <= ticket.escalation_level
            steps.append(LadderStep(
                level=number, after_hours=step.after_hours, target=step.target, reached=done,
                escalated_at=trace.at if done and trace else None,
                assignee=trace.details.get("assignee") if done and trace else None,
                due_at=ticket.next_escalation_at if number == ticket.escalation_level + 1
                else None))
        ladder = LadderState(level=ticket.escalation_level,
                             next_escalation_at=ticket.next_escalation_at,
                             escalations=ticket.escalations, steps=tuple(steps))
        return TicketState(when, sla, ladder)

    def history(self, ticket_id: str) -> list[Trace]:
        """A ticket's traces, oldest first."""
        return self.traces.find({"ticket_id": ticket_id}, sort=[("at", 1), ("id", 1)])

    def escalation_traces(self, *, ticket_id: str | None = None, since: datetime | None = None,
                          limit: int | None = None) -> list[Trace]:
        """Escalations that happened, newest first."""
        query: dict[str, Any] = {"action": "escalated"}
        if ticket_id is not None:
            query["ticket_id"] = ticket_id
        if since is not None:
            query["at"] = {"$gte": since}
        return self.traces.find(query, sort=[("at", -1), ("id", -1)], limit=limit)

    def department_load(self, department: str, *, excluding: str | None = None) -> int:
        """Tickets a department holds now (dispatched or in progress)."""
        query: dict[str, Any] = {"department": department,
                                 "status": {"$in": [Status.DISPATCHED, Status.IN_PROGRESS]}}
        if excluding is not None:
            query["id"] = {"$ne": excluding}
        return self.tickets.count(query)

    def sla_elapsed(self, ticket: Ticket, now: datetime | None = None) -> timedelta:
        """SLA-clock time the ticket has been unresolved in its current cycle."""
        when = now or self.crm.now()
        start = ticket.cycle_started_at or ticket.opened_at
        end = when if ticket.is_unresolved else (ticket.resolved_at or when)
        return self.scheduler.elapsed(ticket, start, end)

    # -- registering -----------------------------------------------------------------------

    def open(self, *, actor: str, customer_id: str, content: str, category: str | None = None,
             channel: Channel | str = Channel.OTHER, claim: Claim | str | None = None,
             emotions: Iterable[str] | str = (), priority: Priority | int | str | None = None,
             owner: str | None = None, complainant: str | None = None,
             contact: str | None = None, received_at: datetime | None = None) -> Ticket:
        """Register a complaint (the complaint form) and log it as a "complaint" interaction.

        ``owner`` is whoever took the complaint (default: ``actor``): first-contact
        responsibility makes them own it to the end. Fires ``crm_complaint_registered``.
        """
        actor = require_actor(actor)
        with self.crm.transaction(actor):
            ticket = self._new_ticket(actor, customer_id=customer_id, content=content,
                                      category=category, channel=channel, claim=claim,
                                      emotions=emotions, priority=priority, owner=owner,
                                      complainant=complainant, contact=contact,
                                      received_at=received_at, interaction_id=None)
            interaction = self.crm.interactions.log(
                actor=actor, customer_id=ticket.customer_id, kind="complaint",
                occurred_at=ticket.opened_at, channel=ticket.channel, ref=ticket.id,
                rep=ticket.owner, summary=f"complaint ({ticket.category}): {ticket.content}"[:500],
                ext={SECTION: {"ticket_id": ticket.id, "category": ticket.category}})
            return self._register(attrs.evolve(ticket, interaction_id=interaction.id), actor)

    def register_from_interaction(self, interaction: Interaction, actor: str) -> Ticket:
        """A ticket for a "complaint" interaction someone logged (no second interaction).

        ``interaction.ext["complaints"]`` may carry ``category``, ``claim``, ``emotions`` and
        ``priority``; the summary becomes the content and the rep (else the actor) the owner.
        """
        extra = interaction.ext.get(SECTION, {})
        category = extra.get("category")
        if category not in self.settings.all_categories:
            category = self.settings.default_category
        ticket = self._new_ticket(
            actor, customer_id=interaction.customer_id,
            content=interaction.summary or "(complaint logged without a summary)",
            category=category, channel=interaction.channel, claim=extra.get("claim"),
            emotions=extra.get("emotions", ()), priority=extra.get("priority"),
            owner=interaction.rep or actor, complainant=None, contact=None,
            received_at=interaction.occurred_at, interaction_id=interaction.id)
        return self._register(ticket, actor)

    def _new_ticket(self, actor: str, *, customer_id: str, content: str,
                    category: str | None, channel: Channel | str, claim: Claim | str | None,
                    emotions: Iterable[str] | str, priority: Priority | int | str | None,
                    owner: str | None, complainant: str | None, contact: str | None,
                    received_at: datetime | None, interaction_id: str | None) -> Ticket:
        category = category or self.settings.default_category
        if category not in self.settings.all_categories:
            raise ValidationError(f"unknown category {category!r} (allowed: "
                                  f"{', '.join(self.settings.all_categories)})", field="category")
        if not isinstance(content, str) or not content.strip():
            raise ValidationError("must not be empty: say what the customer complains about",
                                  field="content")
        customer = self.crm.customers.get(customer_id)
        if customer.status is not CustomerStatus.ACTIVE:
            raise ValidationError(f"customer {customer_id} is {customer.status.value}")
        prio = as_priority(priority, self.settings.default_priority)
        perks = perks_of(self.crm, customer)
        if self.settings.priority_perk in perks and prio < Priority.HIGH:
            prio = Priority.HIGH  # priority handling: ahead in every queue
        tier = tier_of(customer.ext, self.settings.tier_path)
        policy = match_policy(self.settings, category=category, priority=prio.name.lower(),
                              tier=tier, channel=enum_converter(Channel, "channel")(channel).value,
                              perks=perks)
        now = self.crm.now()
        opened = min(received_at, now) if received_at is not None else now
        ticket = Ticket(
            id=self.crm.new_id("tkt_"), customer_id=customer_id, category=category,
            content=content.strip(), registered_by=actor, owner=(owner or actor).strip() or actor,
            opened_at=opened, channel=channel, complainant=complainant, contact=contact,
            claim=claim, emotions=emotions, priority=prio, tier=tier, perks=perks,
            interaction_id=interaction_id, sla_policy=policy.name, sla_clock=policy.clock,
            cycle_started_at=opened)
        return self.scheduler.schedule(ticket)

    def _register(self, ticket: Ticket, actor: str) -> Ticket:
        with self.crm.transaction(actor):
            stored = self.tickets.insert(ticket)
            self._trace(stored, actor, "registered", None, Status.REGISTERED, {
                "category": stored.category, "priority": stored.priority.name.lower(),
                "channel": stored.channel.value, "sla_policy": stored.sla_policy,
                "owner": stored.owner})
            self.crm.emit("crm_complaint_registered", actor=actor, ticket=stored)
        self.log.info("complaint registered", ticket=stored.id, category=stored.category,
                      priority=stored.priority.name.lower(), owner=stored.owner)
        return stored

    # -- the status machine ----------------------------------------------------------------

    def judge(self, ticket: Ticket | str, *, actor: str, valid: bool,
              explanation: str | None = None, department: str | None = None,
              category: str | None = None) -> Ticket:
        """Judge validity. An invalid complaint is closed with the polite explanation given to
        the customer; a valid one may name its department. ``category`` corrects how intake
        filed it (the SLA policy is matched again). Either answer counts as the first response
        to the customer."""
        actor = require_actor(actor)
        current = self._require(ticket, "judge", actor)
        if category is not None and category not in self.settings.all_categories:
            raise ValidationError(f"unknown category {category!r} (allowed: "
                                  f"{', '.join(self.settings.all_categories)})", field="category")
        if not valid and not (explanation or "").strip():
            raise ValidationError("an invalid complaint is closed with a polite explanation for "
                                  "the customer: give one", field="explanation")
        if department is not None:
            self._known_department(department)
        now = self.crm.now()
        changes: dict[str, Any] = {
            "validity": Validity.VALID if valid else Validity.INVALID, "judged_by": actor,
            "judged_at": now, "explanation": (explanation or "").strip() or None}
        if current.first_response_at is None:
            changes["first_response_at"] = now
        if category is not None and category != current.category:
            policy = match_policy(self.settings, category=category,
                                  priority=current.priority.name.lower(), tier=current.tier,
                                  channel=current.channel.value, perks=current.perks)
            changes.update(category=category, sla_policy=policy.name, sla_clock=policy.clock)
        if valid:
            changes["status"] = Status.VALID
            if department is not None:
                changes["department"] = department
        else:
            changes.update(status=Status.CLOSED, closed_at=now, closed_by=actor)
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "judged", changes,
                                   {"validity": changes["validity"].value,
                                    "department": department,
                                    "category": changes.get("category")},
                                   note=explanation or "")
            if not valid:
                self._closed(updated, actor)
        return updated

    def dispatch(self, ticket: Ticket | str, *, actor: str, department: str | None = None,
                 handler: str | None = None, priority: Priority | int | str | None = None,
                 force: bool = False) -> Ticket:
        """Send a valid ticket to a department (again, to move it elsewhere).

        Without ``department`` the choice follows the category-to-department mapping and the
        departments' free capacity. A department at capacity takes a ticket only if it is high
        or urgent priority, or with ``force``. ``actor`` becomes the dispatcher who chases it.
        """
        actor = require_actor(actor)
        current = self._require(ticket, "dispatch", actor)
        prio = current.priority if priority is None else as_priority(priority, "normal")
        urgent = prio >= Priority.HIGH
        if department is not None:
            self._known_department(department)
            load = self.department_load(department, excluding=current.id)
            capacity = self.settings.departments[department].capacity
            if capacity and load >= capacity and not (urgent or force):
                raise ValidationError(
                    f"department {department} is at capacity ({load} of {capacity} tickets); "
                    "choose another, raise the priority, or force it")
            chosen = department
        else:
            chosen, load, capacity = self._choose_department(current, urgent or force)
        changes: dict[str, Any] = {"status": Status.DISPATCHED, "department": chosen,
                                   "handler": handler, "dispatched_by": actor,
                                   "dispatched_at": self.crm.now()}
        if prio != current.priority:
            policy = match_policy(self.settings, category=current.category,
                                  priority=prio.name.lower(), tier=current.tier,
                                  channel=current.channel.value, perks=current.perks)
            changes.update(priority=prio, sla_policy=policy.name, sla_clock=policy.clock)
        details = {"department": chosen, "handler": handler, "load": load,
                   "capacity": capacity, "over_capacity": bool(capacity and load >= capacity),
                   "priority": prio.name.lower()}
        with self.crm.transaction(actor):
            return self._change(current, actor, "dispatched", changes, details)

    def _choose_department(self, ticket: Ticket, may_overfill: bool) -> tuple[str, int, int]:
        candidates = ([ticket.department] if ticket.department
                      else self.settings.departments_for(ticket.category))
        ranked = []
        for name in candidates:
            capacity = self.settings.departments[name].capacity
            load = self.department_load(name, excluding=ticket.id)
            free = float("inf") if capacity == 0 else capacity - load
            ranked.append((free, name, load, capacity))
        best = max(ranked, key=lambda r: r[0])  # first in configuration order on ties
        if best[0] <= 0 and not may_overfill:
            full = ", ".join(f"{n} {ld}/{c}" for _f, n, ld, c in ranked)
            raise ValidationError(f"every department that handles {ticket.category!r} is at "
                                  f"capacity ({full}); raise the priority, name a department "
                                  "or force it")
        return best[1], best[2], best[3]

    def respond(self, ticket: Ticket | str, *, actor: str, message: str) -> Ticket:
        """Record a reply to the customer (the first one stops the first-response clock); a
        dispatched ticket moves to in progress."""
        actor = require_actor(actor)
        if not (message or "").strip():
            raise ValidationError("say what the customer was told", field="message")
        current = self._require(ticket, "respond", actor)
        changes: dict[str, Any] = {}
        if current.first_response_at is None:
            changes["first_response_at"] = self.crm.now()
        if current.status is Status.DISPATCHED:
            changes["status"] = Status.IN_PROGRESS
        with self.crm.transaction(actor):
            return self._change(current, actor, "responded", changes,
                                {"first": current.first_response_at is None}, note=message)

    def chase(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """The dispatcher (or anyone) chases the department; every chase leaves a trace and
        notifies the handler (else the department manager)."""
        actor = require_actor(actor)
        current = self._require(ticket, "chase", actor)
        number = current.chases + 1
        role = "handler" if current.handler else "department_manager"
        who = resolve_role(self.settings, self.zone, current, role, self.crm.now())
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "chased", {"chases": number}, {
                "chase": number, "by_dispatcher": actor == current.dispatched_by,
                "asked": who.person, "role": role}, note=note)
            self._notify(updated, "chase", who.person, role,
                         f"Complaint {updated.id} chased (chase {number}) by {actor}",
                         f"status {updated.status}; open since {updated.opened_at.isoformat()}")
        return updated

    def propose(self, ticket: Ticket | str, *, actor: str, solution: str,
                compensation: float | None = None, refund: float | None = None,
                purchase_id: str | None = None) -> Ticket:
        """Propose a solution (with any goodwill amount, and any refund of ``purchase_id``);
        with ``require_approval`` the department manager gets a task to approve it."""
        actor = require_actor(actor)
        current = self._require(ticket, "propose", actor)
        if refund is not None or purchase_id is not None:
            refund, purchase_id = self._check_refund(current, refund, purchase_id)
        pending = current.pending_proposal
        if pending is not None:
            raise ValidationError(f"ticket {current.id}: proposal {pending.number} still waits "
                                  "for a decision; approve or reject it first")
        now = self.crm.now()
        proposal = Proposal(number=len(current.proposals) + 1, solution=(solution or "").strip(),
                            proposed_by=actor, proposed_at=now, compensation=compensation,
                            refund=refund, purchase_id=purchase_id)
        changes: dict[str, Any] = {"proposals": (*current.proposals, proposal),
                                   "status": Status.IN_PROGRESS}
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "proposed", changes, {
                "proposal": proposal.number, "compensation": compensation, "refund": refund,
                "purchase_id": purchase_id}, note=solution)
            if self.settings.require_approval:
                who = resolve_role(self.settings, self.zone, updated, "department_manager", now)
                self._flow_task(
                    actor, kind="complaint", due_at=now, customer_id=updated.customer_id,
                    title=f"Approve solution {proposal.number} for complaint {updated.id}",
                    assignee=who.person, priority=updated.priority,
                    dedupe_key=approval_key(updated.id, proposal.number), source=TASK_SOURCE,
                    ref=updated.id, ext={SECTION: {"purpose": "approval",
                                                   "proposal": proposal.number}})
                self._notify(updated, "approval", who.person, "department_manager",
                             f"Solution {proposal.number} for complaint {updated.id} awaits "
                             "your approval",
                             f"compensation: {compensation if compensation is not None else 0}"
                             + (f"; refund: {refund:g} of purchase {purchase_id}"
                                if refund else ""))
        return updated

    def approve(self, ticket: Ticket | str, *, actor: str, number: int | None = None,
                approve: bool = True, reason: str = "") -> Ticket:
        """A manager approves (or rejects) a proposed solution.

        When the department has a manager, only they decide; otherwise anyone but the proposer.
        """
        actor = require_actor(actor)
        current = self._require(ticket, "approve", actor)
        proposal = (current.pending_proposal if number is None else
                    next((p for p in current.proposals if p.number == number), None))
        if proposal is None:
            raise ValidationError(f"ticket {current.id} has no proposal "
                                  f"{'waiting for a decision' if number is None else number}")
        if proposal.state is not ProposalState.PENDING:
            raise ValidationError(f"proposal {proposal.number} of ticket {current.id} is "
                                  f"already {proposal.state}")
        department = department_of(self.settings, current)
        dept = self.settings.departments.get(department or "")
        if dept is not None and dept.manager and actor != dept.manager:
            raise PermissionDenied(f"only {dept.manager}, manager of {department}, decides on "
                                   f"solutions for ticket {current.id}")
        if (dept is None or not dept.manager) and actor == proposal.proposed_by:
            raise PermissionDenied(f"{actor} proposed solution {proposal.number}; someone else "
                                   "must approve it")
        decided = attrs.evolve(proposal, state=ProposalState.APPROVED if approve
                               else ProposalState.REJECTED, decided_by=actor,
                               decided_at=self.crm.now(), reason=reason)
        proposals = tuple(decided if p.number == proposal.number else p
                          for p in current.proposals)
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "approved" if approve else "rejected",
                                   {"proposals": proposals}, {"proposal": proposal.number},
                                   note=reason)
            task = self.crm.tasks.open_by_key(approval_key(current.id, proposal.number))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor,
                                        outcome="approved" if approve else "rejected")
        return updated

    def resolve(self, ticket: Ticket | str, *, actor: str, resolution: str | None = None,
                compensation: float | None = None, cause: str | None = None,
                refund: float | None = None, purchase_id: str | None = None) -> Ticket:
        """Feed the solution back to the customer; the ticket awaits their answer.

        With ``require_approval`` the latest approved proposal is the solution, and
        ``compensation`` and ``refund`` (default: the approved amounts) may not exceed what
        was approved. A refund is money returned for ``purchase_id`` (default: the approved
        one): it is logged as a ``refund`` interaction of that amount referring to the
        purchase, so spend, value tiers and points follow; compensation stays goodwill.
        ``cause`` records the root cause for analysis. Fires ``crm_complaint_resolved``.
        """
        actor = require_actor(actor)
        current = self._require(ticket, "resolve", actor)
        approved = current.approved_proposal
        if self.settings.require_approval:
            if approved is None:
                raise ValidationError(f"ticket {current.id} has no approved solution: propose "
                                      "one and have the department manager approve it first")
            allowed = approved.compensation or 0.0
            if compensation is None:
                compensation = approved.compensation
            elif compensation > allowed:
                raise ValidationError(f"{compensation:g} exceeds the approved {allowed:g}",
                                      field="compensation")
            allowed_refund = approved.refund or 0.0
            if refund is None:
                refund = approved.refund
            elif refund > allowed_refund:
                raise ValidationError(f"a refund of {refund:g} exceeds the approved "
                                      f"{allowed_refund:g}", field="refund")
            if purchase_id is None:
                purchase_id = approved.purchase_id
            elif approved.purchase_id and purchase_id != approved.purchase_id:
                raise ValidationError(f"the approved refund is for purchase "
                                      f"{approved.purchase_id}, not {purchase_id}",
                                      field="purchase_id")
        logged_refund = self._refund_logged(current, approved.number if approved else None)
        if refund and logged_refund is None:
            refund, purchase_id = self._check_refund(current, refund, purchase_id)
        text = (resolution or "").strip() or (approved.solution if approved else "")
        if not text:
            raise ValidationError("say how the complaint was resolved", field="resolution")
        if compensation is not None and (isinstance(compensation, bool) or compensation < 0):
            raise ValidationError(f"expected zero or more, got {compensation!r}",
                                  field="compensation")
        now = self.crm.now()
        changes: dict[str, Any] = {
            "status": Status.RESOLVED, "resolution": text, "compensation": compensation,
            "cause": _label(cause) if cause else current.cause, "resolved_by": actor,
            "resolved_at": now}
        if current.first_response_at is None:
            changes["first_response_at"] = now
        with self.crm.transaction(actor):
            if refund and logged_refund is None:
                with self.crm.reacting():  # part of the resolution ``_require`` allowed
                    logged = self.crm.interactions.log(
                        actor=actor, customer_id=current.customer_id, kind="refund",
                        occurred_at=now, amount=float(refund), ref=purchase_id, rep=actor,
                        summary=f"refund of {refund:g} for complaint {current.id}",
                        ext={SECTION: {"ticket_id": current.id,
                                       "proposal": approved.number if approved else None}})
                changes.update(refund=float(refund), refund_interaction_id=logged.id)
            elif logged_refund is not None:  # resolved again: the money went back already
                changes.update(refund=logged_refund.amount,
                               refund_interaction_id=logged_refund.id)
            updated = self._change(current, actor, "resolved", changes, {
                "compensation": compensation, "cause": changes["cause"],
                "refund": changes.get("refund"), "purchase_id": purchase_id,
                "proposal": approved.number if approved else None})
            self.crm.emit("crm_complaint_resolved", actor=actor, ticket=updated)
        return updated

    def _refund_logged(self, ticket: Ticket, proposal: int | None) -> Interaction | None:
        """The refund already logged for ``ticket``'s ``proposal`` (a resolution after a
        reopen with the same approved solution refunds nothing twice)."""
        for logged in self.crm.interactions.for_customer(ticket.customer_id, kinds=["refund"]):
            mine = logged.ext.get(SECTION, {})
            if mine.get("ticket_id") == ticket.id and mine.get("proposal") == proposal:
                return logged
        return None

    def _check_refund(self, ticket: Ticket, refund: float | None,
                      purchase_id: str | None) -> tuple[float, str]:
        """A refund must be positive and return part of a purchase of the ticket's customer
        that has not been refunded already."""
        if refund is None or isinstance(refund, bool) or refund <= 0:
            raise ValidationError(f"a refund needs an amount above zero, got {refund!r}",
                                  field="refund")
        if not purchase_id:
            raise ValidationError("name the purchase the refund returns (its interaction id)",
                                  field="purchase_id")
        try:
            purchase = self.crm.interactions.get(purchase_id)
        except NotFoundError:
            raise ValidationError(f"no purchase {purchase_id!r}", field="purchase_id") from None
        if purchase.kind not in self.settings.purchase_kinds or \
                purchase.customer_id != ticket.customer_id:
            raise ValidationError(f"{purchase_id} is not a purchase of customer "
                                  f"{ticket.customer_id}", field="purchase_id")
        refunded = sum(r.amount or 0.0 for r in self.crm.interactions.for_customer(
            ticket.customer_id, kinds=["refund"]) if r.ref == purchase_id)
        left = max(0.0, (purchase.amount or 0.0) - refunded)
        if refund > left + 1e-9:
            raise ValidationError(f"a refund of {refund:g} exceeds what is left of purchase "
                                  f"{purchase_id} ({left:g} of {purchase.amount or 0:g})",
                                  field="refund")
        return float(refund), purchase_id

    def close(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """Close and archive a resolved ticket; the post-close callback follows (followup's, or
        ours without it). Fires ``crm_complaint_closed``."""
        actor = require_actor(actor)
        current = self._require(ticket, "close", actor)
        now = self.crm.now()
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "closed", {
                "status": Status.CLOSED, "closed_at": now, "closed_by": actor}, {}, note=note)
            self._closed(updated, actor)
        return updated

    def reopen(self, ticket: Ticket | str, *, actor: str, reason: str,
               cancel_callback: bool = True) -> Ticket:
        """Reopen a resolved or closed ticket (the customer is not satisfied): it goes back to
        its department (an invalid one back to judging) with fresh SLA targets and ladder.
        A callback still pending is cancelled, unless the reopen comes from that very callback
        (whoever records it completes it). Fires ``crm_complaint_reopened``."""
        actor = require_actor(actor)
        if not (reason or "").strip():
            raise ValidationError("say why the ticket is reopened", field="reason")
        current = self._require(ticket, "reopen", actor)
        now = self.crm.now()
        back = Status.IN_PROGRESS if current.department else Status.REGISTERED
        changes: dict[str, Any] = {
            "status": back, "cycle": current.cycle + 1, "cycle_started_at": now,
            "escalation_level": 0, "resolution_breached": False,
            "reopen_count": current.reopen_count + 1, "resolved_at": None, "resolved_by": None,
            "closed_at": None, "closed_by": None}
        if back is Status.REGISTERED:
            changes.update(validity=None, judged_by=None, judged_at=None)
        with self.crm.transaction(actor):
            updated = self._change(current, actor, "reopened", changes,
                                   {"cycle": current.cycle + 1}, note=reason)
            task = self.crm.tasks.open_by_key(callback_key(current.id))
            if task is not None and cancel_callback:
                self.crm.apply(Effects(task_updates=[TaskUpdate(
                    task_id=task.id, cancel=True, reason="complaint reopened")]), actor=actor)
            self.crm.emit("crm_complaint_reopened", actor=actor, ticket=updated)
        return updated

    def hand_over(self, rep: str, *, successor: str, actor: str) -> int:
        """``rep`` left: each open ticket they own or handle goes to the customer's current
        owner (already the new one), else to ``successor``; a trace records each move.
        Returns how many tickets moved."""
        actor = require_actor(actor)
        moved = 0
        query = {"status": {"$in": [s.value for s in OPEN]},
                 "$or": [{"owner": rep}, {"handler": rep}]}
        with self.crm.transaction(actor):
            for ticket in self.tickets.find(query, sort=[("opened_at", 1)]):
                try:
                    owner = self.crm.customers.get_any(ticket.customer_id).owner
                except NotFoundError:
                    owner = None
                new = owner if owner and owner != rep else successor
                if not new:
                    self.log.warning("no one to take over a ticket", ticket=ticket.id)
                    continue
                changes = {field: new for field in ("owner", "handler")
                           if getattr(ticket, field) == rep}
                self._change(ticket, actor, "handed_over", changes,
                             {"from": rep, "to": new, "fields": sorted(changes)},
                             note=f"{rep} left")
                moved += 1
        return moved

    def wait_on_customer(self, ticket: Ticket | str, *, actor: str, reason: str = "") -> Ticket:
        """Stop the SLA clocks while waiting on the customer (documents, a visit …)."""
        actor = require_actor(actor)
        current = self._require(ticket, "wait", actor)
        if current.waiting_since is not None:
            raise ValidationError(f"ticket {current.id} already waits on the customer since "
                                  f"{current.waiting_since.isoformat()}")
        with self.crm.transaction(actor):
            return self._change(current, actor, "waiting", {"waiting_since": self.crm.now()},
                                {}, note=reason)

    def resume(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """Restart the SLA clocks; the pause is subtracted from every target."""
        actor = require_actor(actor)
        current = self._require(ticket, "resume", actor)
        if current.waiting_since is None:
            raise ValidationError(f"ticket {current.id} is not waiting on the customer")
        now = self.crm.now()
        pause = Pause(current.waiting_since, now, note)
        with self.crm.transaction(actor):
            return self._change(current, actor, "resumed", {
                "waiting_since": None, "pauses": (*current.pauses, pause)},
                {"paused_hours": round((now - pause.start).total_seconds() / 3600, 4)},
                note=note)

    def note(self, ticket: Ticket | str, *, actor: str, note: str) -> Trace:
        """Add a note to a ticket's trail."""
        actor = require_actor(actor)
        if not (note or "").strip():
            raise ValidationError("must not be empty", field="note")
        current = self._load(ticket)
        self.authorize(current, actor, "note")
        return self._trace(current, actor, "note", None, None, {}, note)

    # -- callbacks and satisfaction --------------------------------------------------------

    def record_callback(self, ticket: Ticket | str, *, actor: str, score: int | None = None,
                        satisfied: bool | None = None, note: str = "") -> Ticket:
        """Record the post-close callback: logs a "callback" interaction (ref = ticket id),
        which stores the satisfaction answer and reopens the ticket if not satisfied."""
        actor = require_actor(actor)
        current = self._load(ticket)
        self.authorize(current, actor, "feedback")
        if score is None and satisfied is None:
            raise ValidationError("give the customer's score (1-5) or whether they are "
                                  "satisfied", field="score")
        ext = {SECTION: {"satisfied": satisfied}} if satisfied is not None else {}
        with self.crm.transaction(actor):
            task = self.crm.tasks.open_by_key(callback_key(current.id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome=_answer(score, satisfied))
            self.crm.interactions.log(actor=actor, customer_id=current.customer_id,
                                      kind="callback", channel=Channel.PHONE, ref=current.id,
                                      satisfaction=score, summary=note, ext=ext)
        return self.get(current.id)

    def apply_callback(self, interaction: Interaction, actor: str) -> Ticket | None:
        """Store a callback interaction's answer on its ticket; "not satisfied" reopens it."""
        ticket = self.tickets.find_one({"id": interaction.ref})
        if ticket is None:
            return None
        flag = None
        for namespace in ("followup", SECTION):
            value = interaction.ext.get(namespace, {}).get("satisfied")
            if isinstance(value, bool):
                flag = value
                break
        score = interaction.satisfaction
        unsatisfied = flag is False or (
            score is not None and score <= self.settings.unsatisfied_at_or_below)
        satisfied = (not unsatisfied) if (flag is not None or score is not None) else None
        if satisfied is None:
            return ticket
        updated = self._change(ticket, actor, "callback", {
            "satisfaction": score if score is not None else ticket.satisfaction,
            "satisfied": satisfied}, {"score": score, "satisfied": satisfied,
                                      "interaction_id": interaction.id})
        if not satisfied and updated.status in (Status.RESOLVED, Status.CLOSED):
            return self.reopen(updated, actor=actor, reason="customer not satisfied at the "
                               f"callback (score {score if score is not None else '-'})",
                               cancel_callback=False)
        return updated

    def _closed(self, ticket: Ticket, actor: str) -> None:
        self.crm.emit("crm_complaint_closed", actor=actor, ticket=ticket)
        if not self.crm.has_plugin("followup"):
            due = ticket.closed_at or self.crm.now()
            self._flow_task(
                actor, kind="callback", customer_id=ticket.customer_id,
                title=f"Callback after complaint {ticket.id}: is the customer satisfied?",
                due_at=due + hours(self.settings.callback_due_hours), assignee=ticket.owner,
                dedupe_key=callback_key(ticket.id), source=TASK_SOURCE, ref=ticket.id,
                ext={SECTION: {"purpose": "callback"}})

    # -- the worker ------------------------------------------------------------------------

    def due_for_wake(self, now: datetime, limit: int = WAKE_BATCH) -> list[Ticket]:
        """Tickets whose schedule needs the worker at ``now`` (indexed on ``wake_at``)."""
        return self.tickets.find({"wake_at": {"$lte": now}}, sort=[("wake_at", 1)],
                                 limit=limit)

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
                self.log.debug("ticket taken by another worker", ticket=ticket.id,
                               worker=worker)
        return handled

    def wake(self, ticket: Ticket, now: datetime, worker: str) -> bool:
        """Act on one ticket as read (``ConflictError`` if it changed since)."""
        actor = f"worker:{worker}"
        changes: dict[str, Any] = {}
        breaches: list[tuple[str, datetime]] = []
        if (ticket.is_unresolved and ticket.first_response_at is None
                and not ticket.first_response_breached and ticket.first_response_due_at
                and ticket.first_response_due_at <= now):
            changes["first_response_breached"] = True
            breaches.append(("first_response", ticket.first_response_due_at))
        if (ticket.is_unresolved and not ticket.resolution_breached and ticket.resolution_due_at
                and ticket.resolution_due_at <= now):
            changes.update(resolution_breached=True,
                           resolution_breaches=ticket.resolution_breaches + 1)
            breaches.append(("resolution", ticket.resolution_due_at))
        levels: list[tuple[int, datetime]] = []
        probe = ticket
        while (probe.is_unresolved and probe.next_escalation_at is not None
               and probe.next_escalation_at <= now):
            levels.append((probe.escalation_level + 1, probe.next_escalation_at))
            probe = self.scheduler.schedule(attrs.evolve(
                probe, escalation_level=probe.escalation_level + 1))
        if levels:
            changes.update(escalation_level=levels[-1][0],
                           escalations=ticket.escalations + len(levels))
        auto_close = (ticket.status is Status.RESOLVED and ticket.auto_close_at is not None
                      and ticket.auto_close_at <= now)
        if not changes and not auto_close:
            # nothing due (e.g. the schedule moved): just refresh wake_at
            refreshed = self.scheduler.schedule(ticket)
            if refreshed.wake_at != ticket.wake_at:
                self._write(ticket, {})
            return False
        with self.crm.transaction(actor):
            updated = self._write(ticket, changes) if changes else ticket
            for target, due_at in breaches:
                self._breached(updated, target, due_at, actor)
            for level, at in levels:
                self._escalate(updated, level, at, actor)
            if auto_close:
                days = self.settings.auto_close_after_days
                self.close(updated, actor=actor, note=f"no answer from the customer within "
                           f"{days:g} days of the resolution")
        return True

    def _breached(self, ticket: Ticket, target: str, due_at: datetime, actor: str) -> None:
        self._trace(ticket, actor, "sla_breached", None, None,
                    {"target": target, "due_at": due_at.isoformat(), "policy": ticket.sla_policy})
        self.crm.emit("crm_complaint_sla_breached", actor=actor, ticket=ticket, target=target,
                      due_at=due_at)
        label = "first response" if target == "first_response" else "resolution"
        self._notify(ticket, "sla_breach", ticket.owner, "owner",
                     f"Complaint {ticket.id}: {label} target missed",
                     f"due {due_at.isoformat()} ({ticket.sla_policy} policy, "
                     f"{ticket.sla_clock} hours); status {ticket.status}")
        self.log.info("complaint SLA breached", ticket=ticket.id, target=target)

    def _escalate(self, ticket: Ticket, level: int, at: datetime, actor: str) -> None:
        step = self.settings.escalation[level - 1]
        now = self.crm.now()
        who = escalation_target(self.settings, self.zone, ticket, level, now)
        role = step.target.replace("_", " ")
        if who.person is None:
            self.log.warning("complaint escalation has no one to go to", ticket=ticket.id,
                             level=level, role=step.target)
        task = self._flow_task(
            actor, kind="complaint", due_at=now, customer_id=ticket.customer_id,
            title=f"Complaint {ticket.id} escalated to you (level {level}, {role}): decide and "
                  "act now", assignee=who.person, priority=as_priority(step.priority, "high"),
            dedupe_key=escalation_key(ticket, level), source=TASK_SOURCE, ref=ticket.id,
            ext={SECTION: {"purpose": "escalation", "level": level, "role": step.target}})
        self._trace(ticket, actor, "escalated", None, None, {
            "level": level, "target": step.target, "assignee": who.person, "how": who.how,
            "scheduled_at": at.isoformat(), "task_id": task.id, "cycle": ticket.cycle})
        self.crm.emit("crm_complaint_escalated", actor=actor, ticket=ticket, level=level,
                      target=who.person or step.target)
        opened_for = self.scheduler.elapsed(ticket, ticket.cycle_started_at or ticket.opened_at,
                                            now)
        self._notify(ticket, "escalation", who.person, step.target,
                     f"Complaint {ticket.id} escalated to level {level} ({role})",
                     f"unresolved for {opened_for.total_seconds() / 3600:.1f} {ticket.sla_clock} "
                     f"hours; category {ticket.category}; priority "
                     f"{ticket.priority.name.lower()}; {who.how}")
        self.log.info("complaint escalated", ticket=ticket.id, level=level, role=step.target,
                      assignee=who.person)

    # -- improvement actions (plan-do-check-act) -------------------------------------------

    def add_action(self, *, actor: str, what: str, owner: str, due_at: datetime,
                   category: str | None = None, cause: str | None = None) -> ImprovementAction:
        """Plan an improvement measure; its owner gets a task due at ``due_at``. The baseline
        (complaints per week it addresses, over the four weeks before) is kept to measure it."""
        actor = require_actor(actor)
        if category is not None and category not in self.settings.all_categories:
            raise ValidationError(f"unknown category {category!r} (allowed: "
                                  f"{', '.join(self.settings.all_categories)})", field="category")
        now = self.crm.now()
        action = ImprovementAction(
            id=self.crm.new_id("act_"), what=(what or "").strip(), owner=(owner or "").strip(),
            due_at=due_at, created_at=now, created_by=actor, category=category,
            cause=_label(cause) if cause else None)
        action = attrs.evolve(action, baseline_per_week=self.weekly_rate(
            action, now - timedelta(weeks=4), now))
        with self.crm.transaction(actor):
            stored = self.actions.insert(action)
            self.crm.tasks.create(actor=actor, kind="improvement", due_at=due_at,
                                  title=f"Improvement action: {stored.what}"[:200],
                                  assignee=stored.owner, dedupe_key=improvement_key(stored.id),
                                  source=TASK_SOURCE, ref=stored.id)
        return stored

    def close_action(self, action_id: str, *, actor: str, effect: str) -> ImprovementAction:
        """Close an improvement action with its measured effect (tracked to closure)."""
        actor = require_actor(actor)
        if not (effect or "").strip():
            raise ValidationError("state the measured effect", field="effect")
        try:
            action = self.actions.get(action_id)
        except NotFoundError:
            raise NotFoundError(f"no improvement action {action_id!r}") from None
        if action.status is ActionStatus.DONE:
            raise ValidationError(f"improvement action {action_id} is already done")
        with self.crm.transaction(actor):
            done = self.actions.update(action, status=ActionStatus.DONE, closed_at=self.crm.now(),
                                       closed_by=actor, effect=effect.strip())
            task = self.crm.tasks.open_by_key(improvement_key(action_id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome="done")
        return done

    def weekly_rate(self, action: ImprovementAction, since: datetime, until: datetime) -> float:
        """Complaints per week in ``[since, until)`` matching the action's category/cause."""
        query: dict[str, Any] = {"opened_at": {"$gte": since, "$lt": until}}
        if action.category:
            query["category"] = action.category
        if action.cause:
            query["cause"] = action.cause
        weeks = max((until - since) / timedelta(weeks=1), 1 / 7)
        return round(self.tickets.count(query) / weeks, 2)

    # -- plumbing --------------------------------------------------------------------------

    def _load(self, ticket: Ticket | str) -> Ticket:
        if isinstance(ticket, Ticket):
            return ticket
        if not isinstance(ticket, str) or not ticket:
            raise ValidationError("name a ticket by its id", field="ticket")
        return self.get(ticket)

    def _require(self, ticket: Ticket | str, action: str, actor: str) -> Ticket:
        current = self._load(ticket)
        self.authorize(current, actor, action)
        allowed = ALLOWED_FROM[action]
        if current.status not in allowed:
            states = ", ".join(s.value for s in Status if s in allowed)
            raise ValidationError(f"ticket {current.id} is {current.status}: cannot {action} it "
                                  f"(only when {states})")
        return current

    def _flow_task(self, actor: str, **fields: Any) -> Task:
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

    def _known_department(self, department: str) -> None:
        if department not in self.settings.departments:
            raise ValidationError(f"unknown department {department!r} (known: "
                                  f"{', '.join(self.settings.departments)})", field="department")

    def _write(self, current: Ticket, changes: Mapping[str, Any]) -> Ticket:
        """Store ``changes`` and the recomputed schedule, checking the version read."""
        new = self.scheduler.schedule(attrs.evolve(current, **changes))
        diff = {a.name: getattr(new, a.name) for a in attrs.fields(Ticket)
                if a.name not in ("id", "version")
                and getattr(new, a.name) != getattr(current, a.name)}
        try:
            return self.tickets.update(current, **diff)
        except ConflictError:
            fresh = self.tickets.find_one({"id": current.id})
            now = f"version {fresh.version}, {fresh.status}" if fresh else "gone"
            raise ConflictError(f"ticket {current.id} was changed by someone else since you read "
                                f"it (you read version {current.version}; it is now {now}); "
                                "reload it and try again") from None
        except NotFoundError:
            raise NotFoundError(f"no complaint ticket {current.id!r}") from None

    def _change(self, current: Ticket, actor: str, action: str, changes: Mapping[str, Any],
                details: Mapping[str, Any], note: str = "") -> Ticket:
        """Write a change with its trace; SLA targets missed by now are recorded as breaches
        the moment a late response or resolution settles them (with or without a worker)."""
        now = self.crm.now()
        changes = dict(changes)
        late: list[tuple[str, datetime]] = []
        due = current.first_response_due_at
        if (changes.get("first_response_at") and current.first_response_at is None
                and not current.first_response_breached and due is not None and due < now):
            changes["first_response_breached"] = True
            late.append(("first_response", due))
        due = current.resolution_due_at
        if (changes.get("status") is Status.RESOLVED and not current.resolution_breached
                and due is not None and due < now):
            changes.update(resolution_breached=True,
                           resolution_breaches=current.resolution_breaches + 1)
            late.append(("resolution", due))
        updated = self._write(current, changes)
        before = current.status if updated.status != current.status else None
        self._trace(updated, actor, action, before and str(before),
                    str(updated.status) if before else None,
                    {k: v for k, v in details.items() if v is not None}, note)
        for target, due_at in late:
            self._breached(updated, target, due_at, actor)
        return updated

    def _trace(self, ticket: Ticket, actor: str, action: str, from_status: str | None,
               to_status: str | None, details: Mapping[str, Any], note: str = "") -> Trace:
        return self.traces.insert(Trace(
            id=self.crm.new_id("trc_"), ticket_id=ticket.id, customer_id=ticket.customer_id,
            at=self.crm.now(), actor=actor, action=action, from_status=from_status,
            to_status=to_status, details=dict(details), note=note or ""))

    def _notify(self, ticket: Ticket, kind: str, recipient: str | None, role: str,
                subject: str, body: str) -> None:
        notification = Notification(
            id=self.crm.new_id("ntf_"), kind=kind, ticket_id=ticket.id,
            customer_id=ticket.customer_id, created_at=self.crm.now(), recipient=recipient,
            role=role, subject=subject, body=body)
        self.crm.plugins.call("crm_complaint_notify", crm=self.crm, notification=notification)

    def deliver_to_outbox(self, notification: Notification) -> bool:
        """The default notifier: keep the message in ``complaints.outbox`` and log it."""
        self.outbox.insert(notification)
        self.log.info("complaint notification", kind=notification.kind,
                      ticket=notification.ticket_id, recipient=notification.recipient,
                      role=notification.role, subject=notification.subject)
        return True


UNRESOLVED_STATUSES = tuple(s.value for s in Status if s in UNRESOLVED)


def _label(text: str) -> str:
    """A cause as a stable label: ``"Late Delivery "`` → ``"late_delivery"``."""
    return "_".join(text.strip().lower().split())


def _answer(score: int | None, satisfied: bool | None) -> str:
    parts = []
    if satisfied is not None:
        parts.append("satisfied" if satisfied else "not satisfied")
    if score is not None:
        parts.append(f"score {score}")
    return ", ".join(parts)
