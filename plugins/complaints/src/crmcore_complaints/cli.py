"""``crm complaints …``: the whole complaint flow from the command line."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click

from crmcore import Priority
from crmcore.cli.context import (
    WHEN_HELP,
    actor,
    as_json,
    open_crm_from,
    out_record,
    out_table,
    print_json,
    resolve_when,
    say,
    state,
)
from crmcore.cli.params import WHEN
from crmcore.converter import to_doc
from crmcore.entities import Channel
from crmcore.errors import ValidationError
from crmcore_complaints.analysis import analyse, report_sections
from crmcore_complaints.api import Complaints
from crmcore_complaints.model import Claim, Emotion, Status, Ticket

PRIORITIES = [p.name.lower() for p in Priority]
LIST_COLUMNS = [
    ("id", "id"),
    ("opened", "opened"),
    ("status", "status"),
    ("category", "category"),
    ("owner", "owner"),
    ("escalates", "escalates"),
]
TRACE_COLUMNS = [
    ("at", "at"),
    ("actor", "actor"),
    ("action", "action"),
    ("change", "status"),
    ("details", "details"),
    ("note", "note"),
]


def _api(ctx: click.Context) -> Complaints:
    return Complaints(open_crm_from(ctx))


def _ticket(api: Complaints, ticket_id: str, if_version: int | None) -> Ticket:
    return api.get(ticket_id, version=if_version)


def _row(ticket: Ticket) -> dict[str, Any]:
    row = to_doc(ticket)
    row["priority"] = ticket.priority.name.lower()
    return row


def _list_row(api: Complaints, ticket: Ticket) -> dict[str, Any]:
    """A ticket for the list: every field in JSON, short local times for the table."""
    row = _row(ticket)

    def short(value: Any) -> str:
        return "" if value is None else value.astimezone(api.zone).strftime("%Y-%m-%d %H:%M")

    row["opened"] = short(ticket.opened_at)
    row["escalates"] = short(ticket.next_escalation_at)
    return row


def _done(ctx: click.Context, ticket: Ticket, what: str) -> None:
    say(
        ctx,
        f"ticket {ticket.id} {what} (status {ticket.status}, version {ticket.version})",
        id=ticket.id,
        status=str(ticket.status),
        version=ticket.version,
    )


def _versioned(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--if-version",
        type=int,
        metavar="N",
        help="Refuse if the ticket is no longer at version N (as you read it).",
    )(func)


@click.group("complaints")
def complaints_group() -> None:
    """Complaint tickets: register, judge, dispatch, resolve, close, reopen and analyse."""


@complaints_group.command("open")
@click.option("--customer", "customer_id", required=True, metavar="ID")
@click.option("--content", required=True, help="What the customer complains about.")
@click.option("--category", help="Default: [complaints] default_category.")
@click.option(
    "--channel", type=click.Choice([c.value for c in Channel]), default="other", show_default=True
)
@click.option(
    "--claim", type=click.Choice([c.value for c in Claim]), help="What the customer asks for."
)
@click.option(
    "--emotion",
    "emotions",
    multiple=True,
    type=click.Choice([e.value for e in Emotion]),
    help="Repeatable.",
)
@click.option("--priority", type=click.Choice(PRIORITIES))
@click.option("--owner", metavar="REP", help="Who took it (default: the actor); owns it.")
@click.option("--complainant", help="Who complained, if not the customer themself.")
@click.option("--contact", help="How to reach the complainant.")
@click.option("--received", type=WHEN, help="When it came in (default: now). " + WHEN_HELP)
@click.pass_context
def open_(
    ctx: click.Context,
    customer_id: str,
    content: str,
    category: str | None,
    channel: str,
    claim: str | None,
    emotions: tuple[str, ...],
    priority: str | None,
    owner: str | None,
    complainant: str | None,
    contact: str | None,
    received: Any,
) -> None:
    """Register a complaint."""
    api = _api(ctx)
    ticket = api.open(
        actor=actor(ctx),
        customer_id=customer_id,
        content=content,
        category=category,
        channel=channel,
        claim=claim,
        emotions=emotions,
        priority=priority,
        owner=owner,
        complainant=complainant,
        contact=contact,
        received_at=resolve_when(api.crm, received),
    )
    _done(ctx, ticket, "registered")


@complaints_group.command("show")
@click.argument("ticket_id")
@click.pass_context
def show(ctx: click.Context, ticket_id: str) -> None:
    """One ticket with its trail of traces."""
    api = _api(ctx)
    ticket = api.get(ticket_id)
    traces = []
    for trace in api.history(ticket_id):
        row = to_doc(trace)
        row["change"] = (
            f"{trace.from_status} -> {trace.to_status}"
            if trace.from_status
            else trace.to_status or ""
        )
        traces.append(row)
    if as_json(ctx):
        print_json(ctx, {**_row(ticket), "traces": traces})
        return
    record = _row(ticket)
    record["proposals"] = [
        f"#{p.number} {p.state}: {p.solution}"
        + (f" (compensation {p.compensation:g})" if p.compensation else "")
        + (f" (refund {p.refund:g} of {p.purchase_id})" if p.refund else "")
        for p in ticket.proposals
    ]
    record["pauses"] = [f"{p.start.isoformat()} - {p.end.isoformat()}" for p in ticket.pauses]
    out_record(ctx, record, title=f"complaint {ticket.id}", skip=("version",))
    out_table(ctx, traces, TRACE_COLUMNS, title="trail")


@complaints_group.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in Status]),
    help="Repeatable. Default: every status.",
)
@click.option("--open", "only_open", is_flag=True, help="Only tickets not yet closed.")
@click.option("--department")
@click.option("--owner", metavar="REP")
@click.option("--category")
@click.option("--customer", "customer_id", metavar="ID")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def list_(
    ctx: click.Context,
    statuses: tuple[str, ...],
    only_open: bool,
    department: str | None,
    owner: str | None,
    category: str | None,
    customer_id: str | None,
    limit: int,
) -> None:
    """Tickets, oldest first."""
    wanted: list[str] | None = list(statuses) or None
    if only_open:
        wanted = [
            s.value
            for s in Status
            if s is not Status.CLOSED and (not statuses or s.value in statuses)
        ]
    api = _api(ctx)
    tickets = api.find(
        status=wanted,
        department=department,
        owner=owner,
        category=category,
        customer_id=customer_id,
        limit=limit,
    )
    out_table(ctx, [_list_row(api, t) for t in tickets], LIST_COLUMNS, empty="no tickets")


@complaints_group.command("judge")
@click.argument("ticket_id")
@click.argument("verdict", type=click.Choice(["valid", "invalid"]))
@click.option("--explanation", help="Required for invalid: the polite explanation given.")
@click.option("--department", help="The responsible department (valid complaints).")
@_versioned
@click.pass_context
def judge(
    ctx: click.Context,
    ticket_id: str,
    verdict: str,
    explanation: str | None,
    department: str | None,
    if_version: int | None,
) -> None:
    """Judge a registered complaint valid or invalid (invalid ones are closed)."""
    api = _api(ctx)
    ticket = api.judge(
        _ticket(api, ticket_id, if_version),
        actor=actor(ctx),
        valid=verdict == "valid",
        explanation=explanation,
        department=department,
    )
    _done(ctx, ticket, f"judged {verdict}")


@complaints_group.command("dispatch")
@click.argument("ticket_id")
@click.option("--department", help="Default: by category mapping and free capacity.")
@click.option("--handler", metavar="PERSON", help="Who in the department handles it.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Change the urgency.")
@click.option("--force", is_flag=True, help="Dispatch even to a department at capacity.")
@_versioned
@click.pass_context
def dispatch(
    ctx: click.Context,
    ticket_id: str,
    department: str | None,
    handler: str | None,
    priority: str | None,
    force: bool,
    if_version: int | None,
) -> None:
    """Send a valid ticket to a department; you become its dispatcher and chase it."""
    api = _api(ctx)
    ticket = api.dispatch(
        _ticket(api, ticket_id, if_version),
        actor=actor(ctx),
        department=department,
        handler=handler,
        priority=priority,
        force=force,
    )
    _done(ctx, ticket, f"dispatched to {ticket.department}")


@complaints_group.command("respond")
@click.argument("ticket_id")
@click.option("--message", required=True, help="What the customer was told.")
@_versioned
@click.pass_context
def respond(ctx: click.Context, ticket_id: str, message: str, if_version: int | None) -> None:
    """Record a reply to the customer (the first one meets the first-response target)."""
    api = _api(ctx)
    ticket = api.respond(_ticket(api, ticket_id, if_version), actor=actor(ctx), message=message)
    _done(ctx, ticket, "answered")


@complaints_group.command("chase")
@click.argument("ticket_id")
@click.option("--note", default="")
@click.pass_context
def chase(ctx: click.Context, ticket_id: str, note: str) -> None:
    """Chase the department on a dispatched ticket (leaves a trace)."""
    ticket = _api(ctx).chase(ticket_id, actor=actor(ctx), note=note)
    _done(ctx, ticket, f"chased ({ticket.chases} chase(s) so far)")


@complaints_group.command("propose")
@click.argument("ticket_id")
@click.option("--solution", required=True)
@click.option("--compensation", type=click.FloatRange(min=0), help="Goodwill amount.")
@click.option(
    "--refund",
    type=click.FloatRange(min=0, min_open=True),
    help="Money returned for --purchase (logged as a refund when resolved).",
)
@click.option(
    "--purchase", "purchase_id", metavar="INTERACTION_ID", help="The purchase the refund returns."
)
@_versioned
@click.pass_context
def propose(
    ctx: click.Context,
    ticket_id: str,
    solution: str,
    compensation: float | None,
    refund: float | None,
    purchase_id: str | None,
    if_version: int | None,
) -> None:
    """Propose a solution for the department manager to approve."""
    api = _api(ctx)
    ticket = api.propose(
        _ticket(api, ticket_id, if_version),
        actor=actor(ctx),
        solution=solution,
        compensation=compensation,
        refund=refund,
        purchase_id=purchase_id,
    )
    _done(ctx, ticket, f"has proposal {len(ticket.proposals)}")


@complaints_group.command("approve")
@click.argument("ticket_id")
@click.option("--proposal", "number", type=int, help="Default: the one waiting.")
@click.option("--reject", is_flag=True, help="Reject instead of approving.")
@click.option("--reason", default="")
@_versioned
@click.pass_context
def approve(
    ctx: click.Context,
    ticket_id: str,
    number: int | None,
    reject: bool,
    reason: str,
    if_version: int | None,
) -> None:
    """Approve (or reject) a proposed solution, as the department manager."""
    api = _api(ctx)
    ticket = api.approve(
        _ticket(api, ticket_id, if_version),
        actor=actor(ctx),
        number=number,
        approve=not reject,
        reason=reason,
    )
    _done(ctx, ticket, "proposal rejected" if reject else "proposal approved")


@complaints_group.command("resolve")
@click.argument("ticket_id")
@click.option("--resolution", help="Default: the approved solution.")
@click.option(
    "--compensation",
    type=click.FloatRange(min=0),
    help="Default: the approved amount (never more).",
)
@click.option("--cause", help="Root cause, for analysis (e.g. late_delivery).")
@click.option(
    "--refund",
    type=click.FloatRange(min=0, min_open=True),
    help="Default: the approved refund (never more); logged as a refund.",
)
@click.option(
    "--purchase",
    "purchase_id",
    metavar="INTERACTION_ID",
    help="Default: the approved refund's purchase.",
)
@_versioned
@click.pass_context
def resolve(
    ctx: click.Context,
    ticket_id: str,
    resolution: str | None,
    compensation: float | None,
    cause: str | None,
    refund: float | None,
    purchase_id: str | None,
    if_version: int | None,
) -> None:
    """Feed the solution back to the customer; the ticket then awaits their answer."""
    api = _api(ctx)
    ticket = api.resolve(
        _ticket(api, ticket_id, if_version),
        actor=actor(ctx),
        resolution=resolution,
        compensation=compensation,
        cause=cause,
        refund=refund,
        purchase_id=purchase_id,
    )
    _done(ctx, ticket, "resolved")


@complaints_group.command("close")
@click.argument("ticket_id")
@click.option("--note", default="")
@_versioned
@click.pass_context
def close(ctx: click.Context, ticket_id: str, note: str, if_version: int | None) -> None:
    """Close and archive a resolved ticket (the callback follows)."""
    api = _api(ctx)
    ticket = api.close(_ticket(api, ticket_id, if_version), actor=actor(ctx), note=note)
    _done(ctx, ticket, "closed")


@complaints_group.command("reopen")
@click.argument("ticket_id")
@click.option("--reason", required=True)
@_versioned
@click.pass_context
def reopen(ctx: click.Context, ticket_id: str, reason: str, if_version: int | None) -> None:
    """Reopen a resolved or closed ticket: the customer is not satisfied."""
    api = _api(ctx)
    ticket = api.reopen(_ticket(api, ticket_id, if_version), actor=actor(ctx), reason=reason)
    _done(ctx, ticket, "reopened")


@complaints_group.command("wait")
@click.argument("ticket_id")
@click.option("--reason", default="")
@click.pass_context
def wait(ctx: click.Context, ticket_id: str, reason: str) -> None:
    """Pause the SLA clocks while waiting on the customer."""
    ticket = _api(ctx).wait_on_customer(ticket_id, actor=actor(ctx), reason=reason)
    _done(ctx, ticket, "waits on the customer")


@complaints_group.command("resume")
@click.argument("ticket_id")
@click.option("--note", default="")
@click.pass_context
def resume(ctx: click.Context, ticket_id: str, note: str) -> None:
    """Restart the SLA clocks (the pause does not count)."""
    ticket = _api(ctx).resume(ticket_id, actor=actor(ctx), note=note)
    _done(ctx, ticket, "resumed")


@complaints_group.command("callback")
@click.argument("ticket_id")
@click.option("--score", type=click.IntRange(1, 5), help="Satisfaction, 1 to 5.")
@click.option("--satisfied/--not-satisfied", default=None)
@click.option("--note", default="")
@click.pass_context
def callback(
    ctx: click.Context, ticket_id: str, score: int | None, satisfied: bool | None, note: str
) -> None:
    """Record the post-close callback answer (not satisfied reopens the ticket)."""
    ticket = _api(ctx).record_callback(
        ticket_id, actor=actor(ctx), score=score, satisfied=satisfied, note=note
    )
    _done(ctx, ticket, "callback recorded")


@complaints_group.command("note")
@click.argument("ticket_id")
@click.argument("text")
@click.pass_context
def note(ctx: click.Context, ticket_id: str, text: str) -> None:
    """Add a note to a ticket's trail."""
    trace = _api(ctx).note(ticket_id, actor=actor(ctx), note=text)
    say(ctx, f"noted on {ticket_id}", id=trace.id)


@complaints_group.command("escalations")
@click.option("--ticket", "ticket_id", metavar="ID")
@click.option("--since", type=WHEN, help=WHEN_HELP)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def escalations(ctx: click.Context, ticket_id: str | None, since: Any, limit: int) -> None:
    """Escalations that happened, newest first (who got each one, and why)."""
    api = _api(ctx)
    rows = []
    for trace in api.escalation_traces(
        ticket_id=ticket_id, since=resolve_when(api.crm, since), limit=limit
    ):
        rows.append(
            {
                "at": trace.at,
                "ticket_id": trace.ticket_id,
                **trace.details,
                "when": trace.at.astimezone(api.zone).strftime("%Y-%m-%d %H:%M"),
            }
        )
    out_table(
        ctx,
        rows,
        [
            ("when", "at"),
            ("ticket_id", "ticket"),
            ("level", "level"),
            ("target", "role"),
            ("assignee", "to"),
            ("how", "why"),
        ],
        empty="no escalations",
    )


@complaints_group.command("outbox")
@click.option("--ticket", "ticket_id", metavar="ID")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def outbox(ctx: click.Context, ticket_id: str | None, limit: int) -> None:
    """Notifications the default notifier kept, newest first."""
    query = {"ticket_id": ticket_id} if ticket_id else None
    found = _api(ctx).outbox.find(query, sort=[("created_at", -1)], limit=limit)
    out_table(
        ctx,
        [to_doc(n) for n in found],
        [
            ("created_at", "at"),
            ("kind", "kind"),
            ("recipient", "to"),
            ("role", "role"),
            ("subject", "subject"),
        ],
        empty="the outbox is empty",
    )


@complaints_group.command("report")
@click.option("--since", type=WHEN, help="Tickets opened from (default: 8 weeks ago). " + WHEN_HELP)
@click.option("--until", type=WHEN, help="Tickets opened before (default: now).")
@click.option(
    "--weeks",
    default=8,
    show_default=True,
    type=click.IntRange(1, 104),
    help="Weeks in the week-over-week trend.",
)
@click.pass_context
def report(ctx: click.Context, since: Any, until: Any, weeks: int) -> None:
    """Complaint analysis: categories, causes, departments, SLA, escalations, reopen rate,
    satisfaction, complaint rate, weekly trend and improvement actions."""
    from crmcore.render import render_terminal

    api = _api(ctx)
    end = resolve_when(api.crm, until) or api.crm.now()
    start = resolve_when(api.crm, since) or end - timedelta(weeks=weeks)
    if start >= end:
        raise ValidationError("--since must come before --until")
    result = analyse(api, start, end, weeks=weeks)
    if as_json(ctx):
        print_json(ctx, result.as_dict())
        return
    render_terminal(state(ctx).console, report_sections(result))


@complaints_group.group("actions")
def actions_group() -> None:
    """Improvement actions from complaint analysis, tracked to closure."""


@actions_group.command("add")
@click.option("--what", required=True)
@click.option("--owner", required=True, metavar="PERSON")
@click.option("--due", "due_at", type=WHEN, required=True, help=WHEN_HELP)
@click.option("--category", help="The complaint category it addresses.")
@click.option("--cause", help="The root cause it addresses.")
@click.pass_context
def actions_add(
    ctx: click.Context, what: str, owner: str, due_at: Any, category: str | None, cause: str | None
) -> None:
    """Plan an improvement action (its owner gets a task)."""
    api = _api(ctx)
    action = api.add_action(
        actor=actor(ctx),
        what=what,
        owner=owner,
        due_at=resolve_when(api.crm, due_at),
        category=category,
        cause=cause,
    )
    say(ctx, f"improvement action {action.id} planned, due {action.due_at.date()}", id=action.id)


@actions_group.command("list")
@click.pass_context
def actions_list(ctx: click.Context) -> None:
    """Every improvement action with its status and measured effect."""
    from crmcore_complaints.analysis import action_rows

    api = _api(ctx)
    out_table(
        ctx,
        action_rows(api, api.crm.now()),
        [
            ("id", "id"),
            ("what", "what"),
            ("owner", "owner"),
            ("due", "due"),
            ("status", "status"),
            ("overdue", "overdue"),
            ("addresses", "addresses"),
            ("before_per_week", "per week before"),
            ("after_per_week", "per week after"),
            ("effect", "effect"),
        ],
        empty="no improvement actions",
    )


@actions_group.command("done")
@click.argument("action_id")
@click.option("--effect", required=True, help="The measured effect.")
@click.pass_context
def actions_done(ctx: click.Context, action_id: str, effect: str) -> None:
    """Close an improvement action with its measured effect."""
    action = _api(ctx).close_action(action_id, actor=actor(ctx), effect=effect)
    say(ctx, f"improvement action {action.id} done", id=action.id, status=str(action.status))
