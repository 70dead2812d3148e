"""``crm demo``: one simulated day of complaint handling.

Staff judge new tickets (mostly valid), dispatch them, answer, propose solutions (some with
compensation) that a manager approves, resolve, close and, without the followup plugin, take
the callback answers. Each ticket moves at a pace drawn from ``rng``: most go several steps a
day, some one, some none, so real escalations and SLA breaches happen on the worker's sweep.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from crmcore import CrmError
from crmcore.entities import Priority
from crmcore.i18n import N_, store_gettext
from crmcore_complaints.api import Complaints
from crmcore_complaints.model import ActionStatus, Claim, Status, Ticket

CAUSES = {
    "product_quality": ["defective_batch", "wrong_item_shipped", "damaged_in_transit"],
    "service": ["rude_staff", "long_wait", "broken_promise"],
    "price": ["price_changed_after_order", "unclear_fees"],
    "false_advertising": ["misleading_ad", "unclear_terms"],
    "billing_dispute": ["double_charge", "wrong_plan_billed"],
    "other": ["miscommunication"],
}
CATEGORY_WEIGHTS = {
    "product_quality": 5,
    "service": 4,
    "price": 2,
    "false_advertising": 1,
    "other": 1,
    "billing_dispute": 3,
}
INVALID_REASONS = [
    N_("The warranty period ended before the fault appeared; we explained the paid repair option."),
    N_("The price shown was correct for the plan chosen; we walked the customer through it."),
]
SOLUTIONS = [
    N_("replace the item"),
    N_("refund the fee"),
    N_("apologise and redo the service"),
    N_("repair free of charge"),
]


def said(api: Complaints, text: str) -> str:
    """What the demo's staff write, in the store's own language (a Chinese store's people
    type Chinese): shown as typed, in every reader's language, as real notes are."""
    return store_gettext(api.crm)(text)


def simulate_day(api: Complaints, now: datetime, rng: random.Random, actor: str) -> None:
    """Act out one day of complaint handling at ``now`` (only ``rng`` draws chances)."""
    for ticket in api.find(
        status=[
            Status.REGISTERED,
            Status.VALID,
            Status.DISPATCHED,
            Status.IN_PROGRESS,
            Status.RESOLVED,
        ]
    ):
        pace = rng.random()
        steps = 8 if pace < 0.6 else (1 if pace < 0.85 else 0)
        current: Ticket | None = ticket
        for _ in range(steps):
            if current is None:  # it waits for something else today
                break
            before = current
            try:
                current = _step(api, before, rng, actor)
            except CrmError as exc:  # a full department, a rule: staff try again tomorrow
                api.log.debug("simulated step refused", ticket=before.id, reason=str(exc))
                break
    if not api.crm.has_plugin("followup"):
        _answer_callbacks(api, now, rng, actor)
    _improve(api, now, rng, actor)


def _step(api: Complaints, ticket: Ticket, rng: random.Random, actor: str) -> Ticket | None:
    """One step forward; None when the ticket waits for something else today."""
    status = ticket.status
    if status is Status.REGISTERED:
        category = None
        if ticket.category == api.settings.default_category:  # filed loosely at intake
            known = list(api.settings.all_categories)
            category = rng.choices(known, [CATEGORY_WEIGHTS.get(c, 1) for c in known])[0]
        if rng.random() < 0.9:
            return api.judge(ticket, actor=ticket.owner, valid=True, category=category)
        api.judge(
            ticket,
            actor=ticket.owner,
            valid=False,
            category=category,
            explanation=said(api, rng.choice(INVALID_REASONS)),
        )
        return None
    if status is Status.VALID:
        urgent = rng.random() < 0.1
        return api.dispatch(
            ticket, actor=ticket.owner, handler=actor, priority=Priority.HIGH if urgent else None
        )
    if status is Status.DISPATCHED:
        return api.respond(
            ticket,
            actor=actor,
            message=said(
                api, N_("We are looking into it and will come back to you within two days.")
            ),
        )
    if status is Status.IN_PROGRESS:
        return _work(api, ticket, rng, actor)
    if status is Status.RESOLVED:
        if rng.random() < 0.5:
            api.close(
                ticket, actor=ticket.owner, note=said(api, N_("customer accepted the solution"))
            )
        return None
    return None


def _work(api: Complaints, ticket: Ticket, rng: random.Random, actor: str) -> Ticket | None:
    if ticket.waiting_since is not None:
        if rng.random() < 0.6:
            return api.resume(
                ticket, actor=actor, note=said(api, N_("customer sent the documents"))
            )
        return None
    if rng.random() < 0.04:
        api.wait_on_customer(
            ticket, actor=actor, reason=said(api, N_("waiting for photos of the fault"))
        )
        return None
    if ticket.dispatched_by and rng.random() < 0.12:
        ticket = api.chase(ticket, actor=ticket.dispatched_by, note=said(api, N_("any news?")))
    pending = ticket.pending_proposal
    if pending is not None:
        department = ticket.department or ""
        dept = api.settings.departments.get(department)
        manager = dept.manager if dept and dept.manager else "duty-manager"
        return api.approve(
            ticket,
            actor=manager,
            approve=rng.random() < 0.93,
            reason="" if rng.random() < 0.9 else said(api, N_("too costly")),
        )
    approved = ticket.approved_proposal
    if approved is None or not api.settings.require_approval:
        wants_money = ticket.claim in (Claim.COMPENSATION, Claim.NON_MATERIAL_COMPENSATION)
        amount = round(rng.uniform(10, 200), 2) if wants_money or rng.random() < 0.2 else None
        solution = said(api, rng.choice(SOLUTIONS))
        ticket = api.propose(ticket, actor=actor, solution=solution, compensation=amount)
        if not api.settings.require_approval:
            return api.resolve(ticket, actor=actor, cause=_cause(ticket, rng))
        return ticket
    return api.resolve(ticket, actor=actor, cause=_cause(ticket, rng))


def _cause(ticket: Ticket, rng: random.Random) -> str:
    return rng.choice(CAUSES.get(ticket.category, ["other"]))


def _answer_callbacks(api: Complaints, now: datetime, rng: random.Random, actor: str) -> None:
    """Without followup, staff make the post-close callbacks themselves."""
    for ticket in api.tickets.find(
        {
            "status": Status.CLOSED,
            "satisfied": None,
            "closed_at": {"$lte": now - timedelta(hours=20)},
        }
    ):
        if rng.random() > 0.85:
            continue
        score = rng.choices([5, 4, 3, 2, 1], [40, 30, 14, 10, 6])[0]
        api.record_callback(
            ticket,
            actor=ticket.owner,
            score=score,
            note=said(api, N_("callback after the complaint")),
        )


def _improve(api: Complaints, now: datetime, rng: random.Random, actor: str) -> None:
    """Now and then a manager plans an improvement for the most common category, and owners
    close the actions that fall due."""
    for action in api.actions.find({"status": ActionStatus.OPEN, "due_at": {"$lte": now}}):
        if rng.random() < 0.5:
            api.close_action(
                action.id, actor=action.owner, effect="done; see complaints per week after closure"
            )
    if rng.random() < 0.06:
        recent = api.tickets.find({"opened_at": {"$gte": now - timedelta(weeks=2)}})
        if recent:
            counts: dict[str, int] = {}
            for t in recent:
                counts[t.category] = counts.get(t.category, 0) + 1
            top = max(sorted(counts), key=lambda c: counts[c])
            api.add_action(
                actor=actor,
                what=f"Root-cause review of {top.replace('_', ' ')} complaints",
                owner="quality-lead",
                due_at=now + timedelta(days=14),
                category=top,
            )
