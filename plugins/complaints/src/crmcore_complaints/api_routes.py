"""The complaints plugin's JSON API routes (``crm_api_routes``), served under ``/api/v1``.

Each handler calls ``Complaints`` acting as the request's actor: the status machine, the SLA,
the approval rule and the permission checks (``Complaints.authorize``) all stay in the API.
A change with an ``If-Match: <version>`` header is refused (409) when the ticket is no longer
at that version, and is written checking the version it read in any case.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from crmcore import ApiParam, ApiRequest, ApiRoute, Channel, Priority
from crmcore.api import query_bool, query_int, query_text
from crmcore_complaints.api import Complaints
from crmcore_complaints.model import Claim, Emotion, Status, Ticket, Trace
from crmcore_complaints.state import TicketState

TAG = "complaints"
TICKET = "/complaints/{ticket_id}"
STATUSES = tuple(s.value for s in Status)


@attrs.frozen
class TicketView:
    """A ticket, where it stands against its SLA and escalation ladder, and its trail (every
    judgement, dispatch, chase, escalation … oldest first)."""

    ticket: Ticket
    state: TicketState
    traces: tuple[Trace, ...]


@attrs.frozen
class OpenBody:
    """The complaint form (DOMAIN §5). ``owner`` (default: the caller) took it and owns it to
    the end; ``priority`` is 1 low, 2 normal, 3 high, 4 urgent."""

    customer_id: str
    content: str
    category: str | None = None
    channel: Channel = Channel.OTHER
    claim: Claim | None = None
    emotions: list[Emotion] = attrs.field(factory=list)
    priority: Priority | None = None
    owner: str | None = None
    complainant: str | None = None
    contact: str | None = None
    received_at: datetime | None = None


@attrs.frozen
class JudgeBody:
    """Valid or not; an invalid complaint is closed with the polite ``explanation``."""

    valid: bool
    explanation: str | None = None
    department: str | None = None
    category: str | None = None


@attrs.frozen
class DispatchBody:
    """Without ``department``, by category and free capacity; ``force`` overfills one."""

    department: str | None = None
    handler: str | None = None
    priority: Priority | None = None
    force: bool = False


@attrs.frozen
class RespondBody:
    message: str


@attrs.frozen
class NoteBody:
    note: str = ""


@attrs.frozen
class ProposeBody:
    """A solution, with any goodwill ``compensation`` and any ``refund`` of the purchase
    ``purchase_id`` (a return or refund: logged as a refund when the ticket is resolved)."""

    solution: str
    compensation: float | None = None
    refund: float | None = None
    purchase_id: str | None = None


@attrs.frozen
class ApproveBody:
    """Decide on the waiting proposal (or proposal number ``proposal``); ``approve`` false
    rejects it."""

    proposal: int | None = None
    approve: bool = True
    reason: str = ""


@attrs.frozen
class ResolveBody:
    """``resolution`` defaults to the approved solution, ``compensation`` to the approved
    amount (never above it); ``cause`` is the root cause, for analysis."""

    resolution: str | None = None
    compensation: float | None = None
    cause: str | None = None
    refund: float | None = None
    purchase_id: str | None = None


@attrs.frozen
class FeedbackBody:
    """The customer's answer after the resolution: a score 1-5 and/or satisfied; not
    satisfied (or a low score) reopens the ticket."""

    score: int | None = None
    satisfied: bool | None = None
    note: str = ""


@attrs.frozen
class ReopenBody:
    reason: str


@attrs.frozen
class WaitBody:
    reason: str = ""


def view(api: Complaints, ticket: Ticket) -> TicketView:
    return TicketView(ticket, api.state(ticket), tuple(api.history(ticket.id)))


def open_ticket(request: ApiRequest) -> TicketView:
    body: OpenBody = request.body
    api = Complaints.of(request.crm)
    ticket = api.open(
        actor=request.actor,
        customer_id=body.customer_id,
        content=body.content,
        category=body.category,
        channel=body.channel,
        claim=body.claim,
        emotions=body.emotions,
        priority=body.priority,
        owner=body.owner,
        complainant=body.complainant,
        contact=body.contact,
        received_at=body.received_at,
    )
    return view(api, ticket)


def list_tickets(request: ApiRequest) -> list[Ticket]:
    q = request.query
    statuses = [s.strip() for s in (query_text(q, "status") or "").split(",") if s.strip()]
    for status in statuses:
        query_text({"status": status}, "status", choices=STATUSES)
    return Complaints.of(request.crm).find(
        status=statuses or None,
        category=query_text(q, "category"),
        owner=query_text(q, "owner"),
        department=query_text(q, "department"),
        customer_id=query_text(q, "customer_id"),
        overdue=bool(query_bool(q, "overdue")),
        limit=query_int(q, "limit", 100, minimum=1, maximum=1000),
        actor=request.actor,
    )


def show(request: ApiRequest) -> TicketView:
    api = Complaints.of(request.crm)
    return view(api, api.get(request.path["ticket_id"], actor=request.actor))


def _change(
    act: Callable[[Complaints, Ticket, Any, str], Ticket],
) -> Callable[[ApiRequest], TicketView]:
    """A handler that reads the ticket as the caller (checked against ``If-Match``), lets
    ``act`` change it through the API, and answers the ticket's view."""

    def handler(request: ApiRequest) -> TicketView:
        api = Complaints.of(request.crm)
        ticket = api.get(request.path["ticket_id"], actor=request.actor, version=request.if_match)
        return view(api, act(api, ticket, request.body, request.actor))

    handler.__doc__ = act.__doc__
    return handler


def _judge(api: Complaints, t: Ticket, b: JudgeBody, actor: str) -> Ticket:
    return api.judge(
        t,
        actor=actor,
        valid=b.valid,
        explanation=b.explanation,
        department=b.department,
        category=b.category,
    )


def _dispatch(api: Complaints, t: Ticket, b: DispatchBody, actor: str) -> Ticket:
    return api.dispatch(
        t,
        actor=actor,
        department=b.department,
        handler=b.handler,
        priority=b.priority,
        force=b.force,
    )


def _respond(api: Complaints, t: Ticket, b: RespondBody, actor: str) -> Ticket:
    return api.respond(t, actor=actor, message=b.message)


def _chase(api: Complaints, t: Ticket, b: NoteBody, actor: str) -> Ticket:
    return api.chase(t, actor=actor, note=b.note)


def _propose(api: Complaints, t: Ticket, b: ProposeBody, actor: str) -> Ticket:
    return api.propose(
        t,
        actor=actor,
        solution=b.solution,
        compensation=b.compensation,
        refund=b.refund,
        purchase_id=b.purchase_id,
    )


def _approve(api: Complaints, t: Ticket, b: ApproveBody, actor: str) -> Ticket:
    return api.approve(t, actor=actor, number=b.proposal, approve=b.approve, reason=b.reason)


def _resolve(api: Complaints, t: Ticket, b: ResolveBody, actor: str) -> Ticket:
    return api.resolve(
        t,
        actor=actor,
        resolution=b.resolution,
        compensation=b.compensation,
        cause=b.cause,
        refund=b.refund,
        purchase_id=b.purchase_id,
    )


def _close(api: Complaints, t: Ticket, b: NoteBody, actor: str) -> Ticket:
    return api.close(t, actor=actor, note=b.note)


def _feedback(api: Complaints, t: Ticket, b: FeedbackBody, actor: str) -> Ticket:
    return api.record_callback(t, actor=actor, score=b.score, satisfied=b.satisfied, note=b.note)


def _reopen(api: Complaints, t: Ticket, b: ReopenBody, actor: str) -> Ticket:
    return api.reopen(t, actor=actor, reason=b.reason)


def _wait(api: Complaints, t: Ticket, b: WaitBody, actor: str) -> Ticket:
    return api.wait_on_customer(t, actor=actor, reason=b.reason)


def _resume(api: Complaints, t: Ticket, b: NoteBody, actor: str) -> Ticket:
    return api.resume(t, actor=actor, note=b.note)


def add_note(request: ApiRequest) -> Trace:
    body: NoteBody = request.body
    return Complaints.of(request.crm).note(
        request.path["ticket_id"], actor=request.actor, note=body.note
    )


#: (path segment, body, what it does, the change)
ACTIONS: tuple[tuple[str, type, str, Callable[..., Ticket]], ...] = (
    (
        "judge",
        JudgeBody,
        "Judge validity: valid (optionally naming the department), or "
        "invalid with the polite explanation given to the customer (closes it)",
        _judge,
    ),
    (
        "dispatch",
        DispatchBody,
        "Send a valid ticket to a department (by category and free "
        "capacity unless named), optionally to a handler; the caller becomes the dispatcher",
        _dispatch,
    ),
    (
        "respond",
        RespondBody,
        "Record a reply to the customer (the first one meets the "
        "first-response target); a dispatched ticket moves to in progress",
        _respond,
    ),
    (
        "chase",
        NoteBody,
        "Chase the department (every chase is a trace and notifies the "
        "handler, else the department manager)",
        _chase,
    ),
    (
        "propose",
        ProposeBody,
        "Propose a solution with any goodwill amount; the department "
        "manager gets a task to approve it",
        _propose,
    ),
    (
        "approve",
        ApproveBody,
        "Approve or reject the waiting proposal (only the department's "
        "manager; without one, anyone but the proposer)",
        _approve,
    ),
    (
        "resolve",
        ResolveBody,
        "Feed the approved solution back to the customer; the ticket awaits their answer",
        _resolve,
    ),
    (
        "close",
        NoteBody,
        "Close and archive a resolved ticket; the satisfaction callback follows",
        _close,
    ),
    (
        "feedback",
        FeedbackBody,
        "Record the customer's satisfaction (score 1-5 and/or "
        "satisfied); not satisfied reopens the ticket",
        _feedback,
    ),
    (
        "reopen",
        ReopenBody,
        "Reopen a resolved or closed ticket with fresh SLA targets and escalation ladder",
        _reopen,
    ),
    ("wait", WaitBody, "Stop the SLA clocks while waiting on the customer", _wait),
    ("resume", NoteBody, "Restart the SLA clocks (the pause is not counted)", _resume),
)


def routes() -> list[ApiRoute]:
    """Every complaints route."""
    out = [
        ApiRoute(
            "POST",
            "/complaints",
            open_ticket,
            "Register a complaint (the complaint form); logs a 'complaint' interaction",
            body=OpenBody,
            response=TicketView,
            status=201,
            tag=TAG,
        ),
        ApiRoute(
            "GET",
            "/complaints",
            list_tickets,
            "Tickets, oldest first, within what the caller may read",
            response=list[Ticket],
            tag=TAG,
            query=[
                ApiParam("status", f"only these statuses, comma-separated ({', '.join(STATUSES)})"),
                ApiParam("category", "only this category"),
                ApiParam("owner", "only tickets this rep owns"),
                ApiParam("department", "only tickets this department has"),
                ApiParam("customer_id", "only this customer's tickets"),
                ApiParam(
                    "overdue",
                    "only unresolved tickets past an SLA target they have not met",
                    type="boolean",
                ),
                ApiParam("limit", "at most this many (default 100)", type="integer"),
            ],
        ),
        ApiRoute(
            "GET",
            TICKET,
            show,
            "A ticket with its SLA state, escalation ladder and trail (chases, escalations …)",
            response=TicketView,
            tag=TAG,
        ),
        ApiRoute(
            "POST",
            f"{TICKET}/notes",
            add_note,
            "Add a note to the ticket's trail",
            body=NoteBody,
            response=Trace,
            status=201,
            tag=TAG,
        ),
    ]
    for name, body, summary, act in ACTIONS:
        out.append(
            ApiRoute(
                "POST",
                f"{TICKET}/{name}",
                _change(act),
                summary,
                body=body,
                response=TicketView,
                tag=TAG,
            )
        )
    return out
