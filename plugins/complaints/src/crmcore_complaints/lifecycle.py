"""The status machine of a ticket, from judging validity to archive (DOMAIN §5), and the
post-close callback.

Pass the ``Ticket`` you read (rather than its id) to have your read version checked. Each
change leaves a trace in ``complaints.traces`` and runs in one store transaction with the
hooks it fires.
"""

from __future__ import annotations

from typing import Any

import attrs

from crmcore import (
    Effects,
    NotFoundError,
    PermissionDenied,
    Priority,
    TaskUpdate,
    ValidationError,
)
from crmcore.customers import require_actor
from crmcore.entities import Channel, Interaction
from crmcore.i18n import N_, msg, term
from crmcore_complaints.model import (
    OPEN,
    Pause,
    Proposal,
    ProposalState,
    Status,
    Ticket,
    Trace,
    Validity,
)
from crmcore_complaints.names import (
    SECTION,
    TASK_SOURCE,
    approval_key,
    callback_key,
    cause_label,
)
from crmcore_complaints.outbox import Notifier
from crmcore_complaints.refunds import check_refund, refund_logged
from crmcore_complaints.roles import department_of, resolve_role
from crmcore_complaints.sla import hours, match_policy
from crmcore_complaints.tickets import TicketBook, as_priority
from crmcore_complaints.words import PROPOSAL_WORDS


def callback_answer(score: int | None, satisfied: bool | None) -> str:
    """The outcome a callback task is completed with: ``"not satisfied, score 2"``."""
    parts = []
    if satisfied is not None:
        parts.append("satisfied" if satisfied else "not satisfied")
    if score is not None:
        parts.append(f"score {score}")
    return ", ".join(parts)


class Lifecycle:
    """Judge, dispatch, respond, chase, propose, approve, resolve, close, reopen, wait and
    resume; hand a leaver's tickets over; record the callback's answer."""

    def __init__(self, book: TicketBook, notifier: Notifier) -> None:
        self.book = book
        self.crm = book.crm
        self.settings = book.settings
        self.zone = book.zone
        self.log = book.log
        self.notifier = notifier

    def judge(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        valid: bool,
        explanation: str | None = None,
        department: str | None = None,
        category: str | None = None,
    ) -> Ticket:
        """Judge validity. An invalid complaint is closed with the polite explanation given to
        the customer; a valid one may name its department. ``category`` corrects how intake
        filed it (the SLA policy is matched again). Either answer counts as the first response
        to the customer."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "judge", actor)
        if category is not None:
            self.book.known_category(category)
        if not valid and not (explanation or "").strip():
            raise ValidationError(
                msg(
                    "an invalid complaint is closed with a polite explanation for "
                    "the customer: give one"
                ),
                field="explanation",
            )
        if department is not None:
            self.book.known_department(department)
        now = self.crm.now()
        changes: dict[str, Any] = {
            "validity": Validity.VALID if valid else Validity.INVALID,
            "judged_by": actor,
            "judged_at": now,
            "explanation": (explanation or "").strip() or None,
        }
        if current.first_response_at is None:
            changes["first_response_at"] = now
        if category is not None and category != current.category:
            policy = match_policy(
                self.settings,
                category=category,
                priority=current.priority.name.lower(),
                tier=current.tier,
                channel=current.channel.value,
                perks=current.perks,
            )
            changes.update(category=category, sla_policy=policy.name, sla_clock=policy.clock)
        if valid:
            changes["status"] = Status.VALID
            if department is not None:
                changes["department"] = department
        else:
            changes.update(status=Status.CLOSED, closed_at=now, closed_by=actor)
        with self.crm.transaction(actor):
            updated = self.book.change(
                current,
                actor,
                "judged",
                changes,
                {
                    "validity": changes["validity"].value,
                    "department": department,
                    "category": changes.get("category"),
                },
                note=explanation or "",
            )
            if not valid:
                self._closed(updated, actor)
        return updated

    def dispatch(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        department: str | None = None,
        handler: str | None = None,
        priority: Priority | int | str | None = None,
        force: bool = False,
    ) -> Ticket:
        """Send a valid ticket to a department (again, to move it elsewhere).

        Without ``department`` the choice follows the category-to-department mapping and the
        departments' free capacity. A department at capacity takes a ticket only if it is high
        or urgent priority, or with ``force``. ``actor`` becomes the dispatcher who chases it.
        """
        actor = require_actor(actor)
        current = self.book.require(ticket, "dispatch", actor)
        prio = current.priority if priority is None else as_priority(priority, "normal")
        urgent = prio >= Priority.HIGH
        if department is not None:
            self.book.known_department(department)
            load = self.book.department_load(department, excluding=current.id)
            capacity = self.settings.departments[department].capacity
            if capacity and load >= capacity and not (urgent or force):
                raise ValidationError(
                    msg(
                        "department %(department)s is at capacity (%(load)s of %(capacity)s "
                        "tickets); choose another, raise the priority, or force it",
                        department=department,
                        load=load,
                        capacity=capacity,
                    )
                )
            chosen = department
        else:
            chosen, load, capacity = self._choose_department(current, urgent or force)
        changes: dict[str, Any] = {
            "status": Status.DISPATCHED,
            "department": chosen,
            "handler": handler,
            "dispatched_by": actor,
            "dispatched_at": self.crm.now(),
        }
        if prio != current.priority:
            policy = match_policy(
                self.settings,
                category=current.category,
                priority=prio.name.lower(),
                tier=current.tier,
                channel=current.channel.value,
                perks=current.perks,
            )
            changes.update(priority=prio, sla_policy=policy.name, sla_clock=policy.clock)
        details = {
            "department": chosen,
            "handler": handler,
            "load": load,
            "capacity": capacity,
            "over_capacity": bool(capacity and load >= capacity),
            "priority": prio.name.lower(),
        }
        with self.crm.transaction(actor):
            return self.book.change(current, actor, "dispatched", changes, details)

    def _choose_department(self, ticket: Ticket, may_overfill: bool) -> tuple[str, int, int]:
        candidates = (
            [ticket.department]
            if ticket.department
            else self.settings.departments_for(ticket.category)
        )
        ranked = []
        for name in candidates:
            capacity = self.settings.departments[name].capacity
            load = self.book.department_load(name, excluding=ticket.id)
            free = float("inf") if capacity == 0 else capacity - load
            ranked.append((free, name, load, capacity))
        best = max(ranked, key=lambda r: r[0])  # first in configuration order on ties
        if best[0] <= 0 and not may_overfill:
            full = ", ".join(f"{n} {ld}/{c}" for _f, n, ld, c in ranked)
            raise ValidationError(
                msg(
                    "every department that handles %(category)s is at capacity (%(full)s); "
                    "raise the priority, name a department or force it",
                    category=repr(ticket.category),
                    full=full,
                )
            )
        return best[1], best[2], best[3]

    def respond(self, ticket: Ticket | str, *, actor: str, message: str) -> Ticket:
        """Record a reply to the customer (the first one stops the first-response clock); a
        dispatched ticket moves to in progress."""
        actor = require_actor(actor)
        if not (message or "").strip():
            raise ValidationError(msg("say what the customer was told"), field="message")
        current = self.book.require(ticket, "respond", actor)
        changes: dict[str, Any] = {}
        if current.first_response_at is None:
            changes["first_response_at"] = self.crm.now()
        if current.status is Status.DISPATCHED:
            changes["status"] = Status.IN_PROGRESS
        with self.crm.transaction(actor):
            return self.book.change(
                current,
                actor,
                "responded",
                changes,
                {"first": current.first_response_at is None},
                note=message,
            )

    def chase(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """The dispatcher (or anyone) chases the department; every chase leaves a trace and
        notifies the handler (else the department manager)."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "chase", actor)
        number = current.chases + 1
        role = "handler" if current.handler else "department_manager"
        who = resolve_role(self.settings, self.zone, current, role, self.crm.now())
        with self.crm.transaction(actor):
            updated = self.book.change(
                current,
                actor,
                "chased",
                {"chases": number},
                {
                    "chase": number,
                    "by_dispatcher": actor == current.dispatched_by,
                    "asked": who.person,
                    "role": role,
                },
                note=note,
            )
            self.notifier.send(
                updated,
                "chase",
                who.person,
                role,
                f"Complaint {updated.id} chased (chase {number}) by {actor}",
                f"status {updated.status}; open since {updated.opened_at.isoformat()}",
            )
        return updated

    def propose(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        solution: str,
        compensation: float | None = None,
        refund: float | None = None,
        purchase_id: str | None = None,
    ) -> Ticket:
        """Propose a solution (with any goodwill amount, and any refund of ``purchase_id``);
        with ``require_approval`` the department manager gets a task to approve it."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "propose", actor)
        if refund is not None or purchase_id is not None:
            refund, purchase_id = check_refund(
                self.crm, self.settings, current, refund, purchase_id
            )
        pending = current.pending_proposal
        if pending is not None:
            raise ValidationError(
                msg(
                    "ticket %(ticket)s: proposal %(number)s still waits for a decision; "
                    "approve or reject it first",
                    ticket=current.id,
                    number=pending.number,
                )
            )
        now = self.crm.now()
        proposal = Proposal(
            number=len(current.proposals) + 1,
            solution=(solution or "").strip(),
            proposed_by=actor,
            proposed_at=now,
            compensation=compensation,
            refund=refund,
            purchase_id=purchase_id,
        )
        changes: dict[str, Any] = {
            "proposals": (*current.proposals, proposal),
            "status": Status.IN_PROGRESS,
        }
        with self.crm.transaction(actor):
            updated = self.book.change(
                current,
                actor,
                "proposed",
                changes,
                {
                    "proposal": proposal.number,
                    "compensation": compensation,
                    "refund": refund,
                    "purchase_id": purchase_id,
                },
                note=solution,
            )
            if self.settings.require_approval:
                who = resolve_role(self.settings, self.zone, updated, "department_manager", now)
                self.book.flow_task(
                    actor,
                    kind="complaint",
                    due_at=now,
                    customer_id=updated.customer_id,
                    title=msg(
                        "Approve solution %(number)s for complaint %(ticket)s",
                        number=proposal.number,
                        ticket=updated.id,
                    ),
                    assignee=who.person,
                    priority=updated.priority,
                    dedupe_key=approval_key(updated.id, proposal.number),
                    source=TASK_SOURCE,
                    ref=updated.id,
                    ext={SECTION: {"purpose": "approval", "proposal": proposal.number}},
                )
                self.notifier.send(
                    updated,
                    "approval",
                    who.person,
                    "department_manager",
                    f"Solution {proposal.number} for complaint {updated.id} awaits your approval",
                    f"compensation: {compensation if compensation is not None else 0}"
                    + (f"; refund: {refund:g} of purchase {purchase_id}" if refund else ""),
                )
        return updated

    def approve(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        number: int | None = None,
        approve: bool = True,
        reason: str = "",
    ) -> Ticket:
        """A manager approves (or rejects) a proposed solution.

        When the department has a manager, only they decide; otherwise anyone but the proposer.
        """
        actor = require_actor(actor)
        current = self.book.require(ticket, "approve", actor)
        proposal = (
            current.pending_proposal
            if number is None
            else next((p for p in current.proposals if p.number == number), None)
        )
        if proposal is None:
            raise ValidationError(
                msg("ticket %(ticket)s has no proposal waiting for a decision", ticket=current.id)
                if number is None
                else msg(
                    "ticket %(ticket)s has no proposal %(number)s",
                    ticket=current.id,
                    number=number,
                )
            )
        if proposal.state is not ProposalState.PENDING:
            raise ValidationError(
                msg(
                    "proposal %(number)s of ticket %(ticket)s is already %(state)s",
                    number=proposal.number,
                    ticket=current.id,
                    state=term(PROPOSAL_WORDS.get(proposal.state, proposal.state.value)),
                )
            )
        department = department_of(self.settings, current)
        dept = self.settings.departments.get(department or "")
        if dept is not None and dept.manager and actor != dept.manager:
            raise PermissionDenied(
                msg(
                    "only %(manager)s, manager of %(department)s, decides on solutions for "
                    "ticket %(ticket)s",
                    manager=dept.manager,
                    department=department,
                    ticket=current.id,
                )
            )
        if (dept is None or not dept.manager) and actor == proposal.proposed_by:
            raise PermissionDenied(
                msg(
                    "%(actor)s proposed solution %(number)s; someone else must approve it",
                    actor=actor,
                    number=proposal.number,
                )
            )
        decided = attrs.evolve(
            proposal,
            state=ProposalState.APPROVED if approve else ProposalState.REJECTED,
            decided_by=actor,
            decided_at=self.crm.now(),
            reason=reason,
        )
        proposals = tuple(decided if p.number == proposal.number else p for p in current.proposals)
        with self.crm.transaction(actor):
            updated = self.book.change(
                current,
                actor,
                "approved" if approve else "rejected",
                {"proposals": proposals},
                {"proposal": proposal.number},
                note=reason,
            )
            task = self.crm.tasks.open_by_key(approval_key(current.id, proposal.number))
            if task is not None:
                self.crm.tasks.complete(
                    task.id, actor=actor, outcome="approved" if approve else "rejected"
                )
        return updated

    def resolve(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        resolution: str | None = None,
        compensation: float | None = None,
        cause: str | None = None,
        refund: float | None = None,
        purchase_id: str | None = None,
    ) -> Ticket:
        """Feed the solution back to the customer; the ticket awaits their answer.

        With ``require_approval`` the latest approved proposal is the solution, and
        ``compensation`` and ``refund`` (default: the approved amounts) may not exceed what
        was approved. A refund is money returned for ``purchase_id`` (default: the approved
        one): it is logged as a ``refund`` interaction of that amount referring to the
        purchase, so spend, value tiers and points follow; compensation stays goodwill.
        ``cause`` records the root cause for analysis. Fires ``crm_complaint_resolved``.
        """
        actor = require_actor(actor)
        current = self.book.require(ticket, "resolve", actor)
        approved = current.approved_proposal
        if self.settings.require_approval:
            if approved is None:
                raise ValidationError(
                    msg(
                        "ticket %(ticket)s has no approved solution: propose one and have "
                        "the department manager approve it first",
                        ticket=current.id,
                    )
                )
            allowed = approved.compensation or 0.0
            if compensation is None:
                compensation = approved.compensation
            elif compensation > allowed:
                raise ValidationError(
                    msg(
                        "%(amount)s exceeds the approved %(allowed)s",
                        amount=f"{compensation:g}",
                        allowed=f"{allowed:g}",
                    ),
                    field="compensation",
                )
            allowed_refund = approved.refund or 0.0
            if refund is None:
                refund = approved.refund
            elif refund > allowed_refund:
                raise ValidationError(
                    msg(
                        "a refund of %(amount)s exceeds the approved %(allowed)s",
                        amount=f"{refund:g}",
                        allowed=f"{allowed_refund:g}",
                    ),
                    field="refund",
                )
            if purchase_id is None:
                purchase_id = approved.purchase_id
            elif approved.purchase_id and purchase_id != approved.purchase_id:
                raise ValidationError(
                    msg(
                        "the approved refund is for purchase %(approved)s, not %(given)s",
                        approved=approved.purchase_id,
                        given=purchase_id,
                    ),
                    field="purchase_id",
                )
        logged_refund = refund_logged(self.crm, current, approved.number if approved else None)
        if refund and logged_refund is None:
            refund, purchase_id = check_refund(
                self.crm, self.settings, current, refund, purchase_id
            )
        text = (resolution or "").strip() or (approved.solution if approved else "")
        if not text:
            raise ValidationError(msg("say how the complaint was resolved"), field="resolution")
        if compensation is not None and (isinstance(compensation, bool) or compensation < 0):
            raise ValidationError(
                msg("expected zero or more, got %(value)s", value=repr(compensation)),
                field="compensation",
            )
        now = self.crm.now()
        changes: dict[str, Any] = {
            "status": Status.RESOLVED,
            "resolution": text,
            "compensation": compensation,
            "cause": cause_label(cause) if cause else current.cause,
            "resolved_by": actor,
            "resolved_at": now,
        }
        if current.first_response_at is None:
            changes["first_response_at"] = now
        with self.crm.transaction(actor):
            if refund and logged_refund is None:
                with self.crm.reacting():  # part of the resolution ``_require`` allowed
                    logged = self.crm.interactions.log(
                        actor=actor,
                        customer_id=current.customer_id,
                        kind="refund",
                        occurred_at=now,
                        amount=float(refund),
                        ref=purchase_id,
                        rep=actor,
                        summary=f"refund of {refund:g} for complaint {current.id}",
                        ext={
                            SECTION: {
                                "ticket_id": current.id,
                                "proposal": approved.number if approved else None,
                            }
                        },
                    )
                changes.update(refund=float(refund), refund_interaction_id=logged.id)
            elif logged_refund is not None:  # resolved again: the money went back already
                changes.update(refund=logged_refund.amount, refund_interaction_id=logged_refund.id)
            updated = self.book.change(
                current,
                actor,
                "resolved",
                changes,
                {
                    "compensation": compensation,
                    "cause": changes["cause"],
                    "refund": changes.get("refund"),
                    "purchase_id": purchase_id,
                    "proposal": approved.number if approved else None,
                },
            )
            self.crm.events.complaint_resolved(actor=actor, ticket=updated)
        return updated

    def close(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """Close and archive a resolved ticket; the post-close callback follows (followup's, or
        ours without it). Fires ``crm_complaint_closed``."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "close", actor)
        now = self.crm.now()
        with self.crm.transaction(actor):
            updated = self.book.change(
                current,
                actor,
                "closed",
                {"status": Status.CLOSED, "closed_at": now, "closed_by": actor},
                {},
                note=note,
            )
            self._closed(updated, actor)
        return updated

    def reopen(
        self, ticket: Ticket | str, *, actor: str, reason: str, cancel_callback: bool = True
    ) -> Ticket:
        """Reopen a resolved or closed ticket (the customer is not satisfied): it goes back to
        its department (an invalid one back to judging) with fresh SLA targets and ladder.
        A callback still pending is cancelled, unless the reopen comes from that very callback
        (whoever records it completes it). Fires ``crm_complaint_reopened``."""
        actor = require_actor(actor)
        if not (reason or "").strip():
            raise ValidationError(msg("say why the ticket is reopened"), field="reason")
        current = self.book.require(ticket, "reopen", actor)
        now = self.crm.now()
        back = Status.IN_PROGRESS if current.department else Status.REGISTERED
        changes: dict[str, Any] = {
            "status": back,
            "cycle": current.cycle + 1,
            "cycle_started_at": now,
            "escalation_level": 0,
            "resolution_breached": False,
            "reopen_count": current.reopen_count + 1,
            "resolved_at": None,
            "resolved_by": None,
            "closed_at": None,
            "closed_by": None,
        }
        if back is Status.REGISTERED:
            changes.update(validity=None, judged_by=None, judged_at=None)
        with self.crm.transaction(actor):
            updated = self.book.change(
                current, actor, "reopened", changes, {"cycle": current.cycle + 1}, note=reason
            )
            task = self.crm.tasks.open_by_key(callback_key(current.id))
            if task is not None and cancel_callback:
                self.crm.apply(
                    Effects(
                        task_updates=[
                            TaskUpdate(
                                task_id=task.id, cancel=True, reason=N_("complaint reopened")
                            )
                        ]
                    ),
                    actor=actor,
                )
            self.crm.events.complaint_reopened(actor=actor, ticket=updated)
        return updated

    def hand_over(self, rep: str, *, successor: str, actor: str) -> int:
        """``rep`` left: each open ticket they own or handle goes to the customer's current
        owner (already the new one), else to ``successor``; a trace records each move.
        Returns how many tickets moved."""
        actor = require_actor(actor)
        moved = 0
        query = {
            "status": {"$in": [s.value for s in OPEN]},
            "$or": [{"owner": rep}, {"handler": rep}],
        }
        with self.crm.transaction(actor):
            for ticket in self.book.tickets.find(query, sort=[("opened_at", 1)]):
                try:
                    owner = self.crm.customers.get_any(ticket.customer_id).owner
                except NotFoundError:
                    owner = None
                new = owner if owner and owner != rep else successor
                if not new:
                    self.log.warning("no one to take over a ticket", ticket=ticket.id)
                    continue
                changes = {
                    field: new for field in ("owner", "handler") if getattr(ticket, field) == rep
                }
                self.book.change(
                    ticket,
                    actor,
                    "handed_over",
                    changes,
                    {"from": rep, "to": new, "fields": sorted(changes)},
                    note=msg("%(rep)s left", rep=rep),
                )
                moved += 1
        return moved

    def wait_on_customer(self, ticket: Ticket | str, *, actor: str, reason: str = "") -> Ticket:
        """Stop the SLA clocks while waiting on the customer (documents, a visit …)."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "wait", actor)
        if current.waiting_since is not None:
            raise ValidationError(
                msg(
                    "ticket %(ticket)s already waits on the customer since %(since)s",
                    ticket=current.id,
                    since=current.waiting_since.isoformat(),
                )
            )
        with self.crm.transaction(actor):
            return self.book.change(
                current, actor, "waiting", {"waiting_since": self.crm.now()}, {}, note=reason
            )

    def resume(self, ticket: Ticket | str, *, actor: str, note: str = "") -> Ticket:
        """Restart the SLA clocks; the pause is subtracted from every target."""
        actor = require_actor(actor)
        current = self.book.require(ticket, "resume", actor)
        if current.waiting_since is None:
            raise ValidationError(
                msg("ticket %(ticket)s is not waiting on the customer", ticket=current.id)
            )
        now = self.crm.now()
        pause = Pause(current.waiting_since, now, note)
        with self.crm.transaction(actor):
            return self.book.change(
                current,
                actor,
                "resumed",
                {"waiting_since": None, "pauses": (*current.pauses, pause)},
                {"paused_hours": round((now - pause.start).total_seconds() / 3600, 4)},
                note=note,
            )

    def note(self, ticket: Ticket | str, *, actor: str, note: str) -> Trace:
        """Add a note to a ticket's trail."""
        actor = require_actor(actor)
        if not (note or "").strip():
            raise ValidationError(msg("must not be empty"), field="note")
        current = self.book.load(ticket)
        self.book.authorize(current, actor, "note")
        return self.book.trace(current, actor, "note", None, None, {}, note)

    # -- callbacks and satisfaction --------------------------------------------------------

    def record_callback(
        self,
        ticket: Ticket | str,
        *,
        actor: str,
        score: int | None = None,
        satisfied: bool | None = None,
        note: str = "",
    ) -> Ticket:
        """Record the post-close callback: logs a "callback" interaction (ref = ticket id),
        which stores the satisfaction answer and reopens the ticket if not satisfied."""
        actor = require_actor(actor)
        current = self.book.load(ticket)
        self.book.authorize(current, actor, "feedback")
        if score is None and satisfied is None:
            raise ValidationError(
                msg("give the customer's score (1-5) or whether they are satisfied"),
                field="score",
            )
        ext = {SECTION: {"satisfied": satisfied}} if satisfied is not None else {}
        with self.crm.transaction(actor):
            task = self.crm.tasks.open_by_key(callback_key(current.id))
            if task is not None:
                self.crm.tasks.complete(
                    task.id, actor=actor, outcome=callback_answer(score, satisfied)
                )
            self.crm.interactions.log(
                actor=actor,
                customer_id=current.customer_id,
                kind="callback",
                channel=Channel.PHONE,
                ref=current.id,
                satisfaction=score,
                summary=note,
                ext=ext,
            )
        return self.book.get(current.id)

    def apply_callback(self, interaction: Interaction, actor: str) -> Ticket | None:
        """Store a callback interaction's answer on its ticket; "not satisfied" reopens it."""
        ticket = self.book.tickets.find_one({"id": interaction.ref})
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
            score is not None and score <= self.settings.unsatisfied_at_or_below
        )
        satisfied = (not unsatisfied) if (flag is not None or score is not None) else None
        if satisfied is None:
            return ticket
        updated = self.book.change(
            ticket,
            actor,
            "callback",
            {
                "satisfaction": score if score is not None else ticket.satisfaction,
                "satisfied": satisfied,
            },
            {"score": score, "satisfied": satisfied, "interaction_id": interaction.id},
        )
        if not satisfied and updated.status in (Status.RESOLVED, Status.CLOSED):
            return self.reopen(
                updated,
                actor=actor,
                reason=msg(
                    "customer not satisfied at the callback (score %(score)s)",
                    score=score if score is not None else "-",
                ),
                cancel_callback=False,
            )
        return updated

    def _closed(self, ticket: Ticket, actor: str) -> None:
        self.crm.events.complaint_closed(actor=actor, ticket=ticket)
        if not self.crm.has_plugin("followup"):
            due = ticket.closed_at or self.crm.now()
            self.book.flow_task(
                actor,
                kind="callback",
                customer_id=ticket.customer_id,
                title=msg(
                    "Callback after complaint %(ticket)s: is the customer satisfied?",
                    ticket=ticket.id,
                ),
                due_at=due + hours(self.settings.callback_due_hours),
                assignee=ticket.owner,
                dedupe_key=callback_key(ticket.id),
                source=TASK_SOURCE,
                ref=ticket.id,
                ext={SECTION: {"purpose": "callback"}},
            )
