"""``crm service …``: open, show, advance and list service orders; list the order types."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from crmcore.cli.context import (
    actor,
    as_json,
    open_crm_from,
    out_record,
    out_table,
    print_json,
    say,
)
from crmcore.converter import to_doc
from crmcore.errors import ValidationError
from crmcore_service.api import Service, step_key
from crmcore_service.campaigns import Campaigns
from crmcore_service.model import Order
from crmcore_service.qa import QualityAssurance, month_of
from crmcore_service.response import ResponseTimes
from crmcore_service.surveys import Surveys

LIST_COLUMNS = [
    ("id", "id"),
    ("type", "type"),
    ("state", "step"),
    ("assignee", "acts"),
    ("due", "step due"),
    ("escalation_level", "esc."),
    ("outcome", "outcome"),
]
HISTORY_COLUMNS = [
    ("at", "at"),
    ("actor", "actor"),
    ("action", "action"),
    ("change", "change"),
    ("details", "details"),
    ("note", "note"),
]
SET_HELP = "A field as NAME=VALUE (repeatable): what the step requires, e.g. contract_no=C-1."


def _api(ctx: click.Context) -> Service:
    return Service(open_crm_from(ctx))


def parse_sets(values: tuple[str, ...]) -> dict[str, Any]:
    """``("amount=-20", "reason=double charge")`` → a dict of fields (numbers stay text)."""
    fields: dict[str, Any] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--set {item!r}: write it as NAME=VALUE", field="set")
        fields[name.strip()] = value
    return fields


def _row(order: Order) -> dict[str, Any]:
    row = to_doc(order)
    row["due"] = "" if order.step_due_at is None else order.step_due_at.strftime("%Y-%m-%d %H:%M")
    return row


def _done(ctx: click.Context, order: Order, what: str) -> None:
    say(
        ctx,
        f"order {order.id} {what} (step {order.state}, version {order.version})",
        id=order.id,
        state=order.state,
        outcome=order.outcome,
        assignee=order.assignee,
        version=order.version,
    )


@click.group("service")
def service_group() -> None:
    """Service orders: business acceptance, changes, cancellations, billing, faults, 工单."""


@service_group.command("types")
@click.pass_context
def types_(ctx: click.Context) -> None:
    """The order types in force with their steps."""
    api = _api(ctx)
    rows = []
    for name, order_type in api.types.items():
        rows.append(
            {
                "name": name,
                "title": order_type.title,
                "category": order_type.category,
                "steps": " → ".join(s.name for s in order_type.steps if not s.terminal),
                "ends": ", ".join(s.name for s in order_type.steps if s.terminal),
                "definition": to_doc(order_type),
            }
        )
    if as_json(ctx):
        print_json(ctx, rows)
        return
    out_table(
        ctx, rows, [("name", "type"), ("title", "title"), ("steps", "steps"), ("ends", "ends")]
    )


@service_group.command("open")
@click.argument("order_type", metavar="TYPE")
@click.option("--customer", "customer_id", required=True, metavar="ID")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--summary", default="", help="What the customer asks for, in a line.")
@click.option("--owner", metavar="REP", help="Who took it (default: you); tracks it to the end.")
@click.option("--assignee", metavar="PERSON", help="Who acts at the first step.")
@click.pass_context
def open_(
    ctx: click.Context,
    order_type: str,
    customer_id: str,
    sets: tuple[str, ...],
    summary: str,
    owner: str | None,
    assignee: str | None,
) -> None:
    """Open an order of TYPE (see 'crm service types')."""
    api = _api(ctx)
    order = api.open(
        actor=actor(ctx),
        type=order_type,
        customer_id=customer_id,
        fields=parse_sets(sets),
        summary=summary,
        owner=owner,
        assignee=assignee,
    )
    _done(ctx, order, "opened")


@service_group.command("advance")
@click.argument("order_id")
@click.argument("to", metavar="STEP")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--note", default="", help="A line for the order's history.")
@click.option("--assignee", metavar="PERSON", help="Who acts at the new step.")
@click.option(
    "--if-version",
    type=int,
    metavar="N",
    help="Refuse if the order is no longer at version N (as you read it).",
)
@click.pass_context
def advance(
    ctx: click.Context,
    order_id: str,
    to: str,
    sets: tuple[str, ...],
    note: str,
    assignee: str | None,
    if_version: int | None,
) -> None:
    """Move an order to STEP (one its current step leads to)."""
    api = _api(ctx)
    order = api.advance(
        api.get(order_id, actor=actor(ctx)),
        actor=actor(ctx),
        to=to,
        fields=parse_sets(sets),
        note=note,
        assignee=assignee,
        expected_version=if_version,
    )
    _done(ctx, order, f"moved to {to}" if order.is_open else f"ended ({order.outcome})")


@service_group.command("show")
@click.argument("order_id")
@click.pass_context
def show(ctx: click.Context, order_id: str) -> None:
    """One order with what may come next, its charges and its history."""
    api = _api(ctx)
    order = api.get(order_id, actor=actor(ctx))
    history = []
    for line in api.history(order.id):
        row = to_doc(line)
        row["change"] = (
            f"{line.from_state} -> {line.to_state}" if line.from_state else line.to_state or ""
        )
        history.append(row)
    task = api.crm.tasks.open_by_key(step_key(order.id, order.visit))
    record = {
        **_row(order),
        "next": api.allowed_next(order),
        "task": task.id if task else None,
        "charges": [to_doc(c) for c in api.charges_for(order.id)],
    }
    if as_json(ctx):
        print_json(ctx, {**record, "history": history})
        return
    record["charges"] = [
        f"{c.kind} {c.amount:+.2f} {c.reason}".strip() for c in api.charges_for(order.id)
    ]
    record["fields"] = ", ".join(f"{k}={v}" for k, v in order.fields.items())
    out_record(ctx, record, title=f"service order {order.id}", skip=("version", "due"))
    out_table(ctx, history, HISTORY_COLUMNS, title="history")


@service_group.command("list")
@click.option("--type", "order_type", metavar="TYPE")
@click.option("--step", "state", metavar="STEP")
@click.option("--customer", "customer_id", metavar="ID")
@click.option("--assignee", metavar="PERSON")
@click.option("--open", "only_open", is_flag=True, help="Only orders that have not ended.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def list_(
    ctx: click.Context,
    order_type: str | None,
    state: str | None,
    customer_id: str | None,
    assignee: str | None,
    only_open: bool,
    limit: int,
) -> None:
    """Orders, oldest first."""
    api = _api(ctx)
    orders = api.find(
        type=order_type,
        state=state,
        customer_id=customer_id,
        assignee=assignee,
        open_only=only_open,
        limit=limit,
        actor=actor(ctx),
    )
    out_table(ctx, [_row(o) for o in orders], LIST_COLUMNS, empty="no service orders")


def _window(api: Service, days: int) -> tuple[Any, Any]:
    now = api.crm.now()
    return now - timedelta(days=days), now


@service_group.group("survey")
def survey_group() -> None:
    """Satisfaction surveys defined under [service.surveys.<name>]."""


@survey_group.command("run")
@click.argument("name")
@click.pass_context
def survey_run(ctx: click.Context, name: str) -> None:
    """Ask every customer of the survey's audience not yet asked this period."""
    result = Surveys(_api(ctx)).run(name, actor=actor(ctx))
    say(
        ctx,
        f"survey {name}: {result.asked} customers asked, {result.already} already asked "
        f"this period",
        survey=name,
        period=result.period,
        asked=result.asked,
        already=result.already,
    )


@survey_group.command("answer")
@click.argument("name")
@click.option("--customer", "customer_id", required=True, metavar="ID")
@click.option(
    "--score",
    "scores",
    multiple=True,
    metavar="QUESTION=N",
    required=True,
    help="A score per question (repeatable).",
)
@click.option("--comment", default="", help="What the customer said.")
@click.option("--channel", default="phone", show_default=True)
@click.pass_context
def survey_answer(
    ctx: click.Context,
    name: str,
    customer_id: str,
    scores: tuple[str, ...],
    comment: str,
    channel: str,
) -> None:
    """Record a customer's answers (stored as a "survey" interaction with the scores)."""
    parsed = parse_sets(scores)
    logged = Surveys(_api(ctx)).answer(
        name,
        actor=actor(ctx),
        customer_id=customer_id,
        scores=parsed,
        comment=comment,
        channel=channel,
    )
    say(
        ctx,
        f"answers stored as interaction {logged.id} (satisfaction {logged.satisfaction}/5)",
        id=logged.id,
        satisfaction=logged.satisfaction,
    )


@survey_group.command("results")
@click.argument("name")
@click.option(
    "--by",
    type=click.Choice(["department", "category", "rep"]),
    default="department",
    show_default=True,
)
@click.option("--days", type=click.IntRange(min=1), default=365, show_default=True)
@click.pass_context
def survey_results(ctx: click.Context, name: str, by: str, days: int) -> None:
    """Mean scores of a survey's answers over the last DAYS, by department, category or rep."""
    api = _api(ctx)
    since, until = _window(api, days)
    rows = [to_doc(r) for r in Surveys(api).results(name, by, since=since, until=until)]
    out_table(
        ctx,
        rows,
        [("group", by), ("answers", "answers"), ("mean", "mean score")],
        empty="no answers",
    )


@service_group.command("reply")
@click.argument("enquiry_id")
@click.option("--summary", default="", help="What the customer was told.")
@click.option("--channel", help="Default: the enquiry's channel.")
@click.pass_context
def reply(ctx: click.Context, enquiry_id: str, summary: str, channel: str | None) -> None:
    """Log the answer to an enquiry (its first answer sets the first-response time)."""
    logged = ResponseTimes(_api(ctx)).reply(
        enquiry_id, actor=actor(ctx), summary=summary, channel=channel
    )
    say(ctx, f"reply logged as interaction {logged.id}", id=logged.id)


@service_group.command("response")
@click.option("--days", type=click.IntRange(min=1), default=30, show_default=True)
@click.pass_context
def response(ctx: click.Context, days: int) -> None:
    """First-response time of every enquiry per channel and rep, with breaches counted."""
    api = _api(ctx)
    since, until = _window(api, days)
    rows = [to_doc(r) for r in ResponseTimes(api).by_channel_and_rep(since, until)]
    out_table(
        ctx,
        rows,
        [
            ("channel", "channel"),
            ("rep", "rep"),
            ("enquiries", "enquiries"),
            ("answered", "answered"),
            ("mean_seconds", "mean s"),
            ("worst_seconds", "worst s"),
            ("breaches", "breaches"),
        ],
        empty="no enquiries",
    )


@service_group.group("campaign")
def campaign_group() -> None:
    """Care campaigns defined under [service.campaigns.<name>]."""


@campaign_group.command("run")
@click.argument("name")
@click.option(
    "--customer",
    "customers",
    multiple=True,
    metavar="ID",
    help="Also reach this customer (repeatable): a list of those affected.",
)
@click.pass_context
def campaign_run(ctx: click.Context, name: str, customers: tuple[str, ...]) -> None:
    """Give every customer the campaign reaches a care task with its offer."""
    result = Campaigns(_api(ctx)).run(name, actor=actor(ctx), customers=list(customers))
    say(
        ctx,
        f"campaign {name}: {result.targeted} customers targeted, {result.already} reached before",
        campaign=name,
        targeted=result.targeted,
        already=result.already,
    )


@campaign_group.command("contact")
@click.argument("name")
@click.option("--customer", "customer_id", required=True, metavar="ID")
@click.option("--satisfaction", required=True, type=click.IntRange(1, 5))
@click.option("--accepted", is_flag=True, help="The customer took the offer.")
@click.option("--summary", default="", help="What was said.")
@click.pass_context
def campaign_contact(
    ctx: click.Context, name: str, customer_id: str, satisfaction: int, accepted: bool, summary: str
) -> None:
    """Record the care contact with a targeted customer."""
    target = Campaigns(_api(ctx)).contact(
        name,
        actor=actor(ctx),
        customer_id=customer_id,
        satisfaction=satisfaction,
        accepted=accepted,
        summary=summary,
    )
    say(
        ctx,
        f"care contact recorded for {customer_id}"
        + (" (offer points granted)" if target.points_entry else ""),
        id=target.id,
        points_entry=target.points_entry,
    )


@campaign_group.command("effect")
@click.argument("name")
@click.pass_context
def campaign_effect(ctx: click.Context, name: str) -> None:
    """Reach, satisfaction of the care contacts, offers taken and churn-risk change."""
    effect = Campaigns(_api(ctx)).effect(name)
    out_record(ctx, to_doc(effect), title=f"campaign {name}")


@service_group.group("qa")
def qa_group() -> None:
    """Quality assurance: sample contacts, score them, the monthly quality report."""


def _month(qa: QualityAssurance, month: str | None) -> str:
    return month or month_of(qa.crm.now(), qa.zone)


@qa_group.command("sample")
@click.option("--month", metavar="YYYY-MM", help="Default: this month.")
@click.pass_context
def qa_sample(ctx: click.Context, month: str | None) -> None:
    """Draw each rep's contacts of the month into the review queue ([service.qa])."""
    qa = QualityAssurance(_api(ctx))
    month = _month(qa, month)
    added = qa.sample(month, actor=actor(ctx))
    say(ctx, f"{added} contacts of {month} added to the QA queue", month=month, added=added)


@qa_group.command("queue")
@click.option("--month", metavar="YYYY-MM")
@click.pass_context
def qa_queue(ctx: click.Context, month: str | None) -> None:
    """Sampled contacts waiting for their scorecard."""
    qa = QualityAssurance(_api(ctx))
    rows = [to_doc(r) for r in qa.queue(month=month)]
    out_table(
        ctx,
        rows,
        [("id", "review"), ("month", "month"), ("rep", "rep"), ("interaction_id", "contact")],
        empty="nothing to review",
    )


@qa_group.command("review")
@click.argument("review_id")
@click.option(
    "--score",
    "scores",
    multiple=True,
    metavar="CRITERION=N",
    required=True,
    help="A score per scorecard criterion (repeatable).",
)
@click.option("--comment", default="")
@click.pass_context
def qa_review(ctx: click.Context, review_id: str, scores: tuple[str, ...], comment: str) -> None:
    """Score a sampled contact on the scorecard."""
    done = QualityAssurance(_api(ctx)).review(
        review_id, actor=actor(ctx), scores=parse_sets(scores), comment=comment
    )
    say(ctx, f"QA review {done.id} scored {done.score}", id=done.id, score=done.score)


@qa_group.command("complaint")
@click.argument("interaction_id")
@click.option("--staff", required=True, help="Who the complaint is about.")
@click.pass_context
def qa_complaint(ctx: click.Context, interaction_id: str, staff: str) -> None:
    """Record that a complaint names the staff member it is about."""
    record = QualityAssurance(_api(ctx)).name_staff(interaction_id, staff, actor=actor(ctx))
    say(ctx, f"complaint {interaction_id} names {record.staff}", id=record.id)


@qa_group.command("report")
@click.option("--month", metavar="YYYY-MM", help="Default: this month.")
@click.pass_context
def qa_report(ctx: click.Context, month: str | None) -> None:
    """The monthly service-quality report: QA scores, complaints, satisfaction per rep."""
    qa = QualityAssurance(_api(ctx))
    month = _month(qa, month)
    rows = [to_doc(r) for r in qa.monthly(month)]
    for row in rows:
        row["criteria"] = ", ".join(f"{k} {v}" for k, v in row["criteria"].items())
    out_table(
        ctx,
        rows,
        [
            ("rep", "rep"),
            ("contacts", "contacts"),
            ("reviewed", "reviewed"),
            ("qa_score", "QA score"),
            ("criteria", "scorecard"),
            ("complaints", "complaints"),
            ("survey_mean", "satisfaction"),
        ],
        title=f"service quality {month}",
        empty="no contacts",
    )
