"""``crm service …``: open, show, advance and list service orders; list the order types."""

from __future__ import annotations

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
from crmcore_service.model import Order

LIST_COLUMNS = [("id", "id"), ("type", "type"), ("state", "step"), ("assignee", "acts"),
                ("due", "step due"), ("escalation_level", "esc."), ("outcome", "outcome")]
HISTORY_COLUMNS = [("at", "at"), ("actor", "actor"), ("action", "action"), ("change", "change"),
                   ("details", "details"), ("note", "note")]
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
    row["due"] = ("" if order.step_due_at is None
                  else order.step_due_at.strftime("%Y-%m-%d %H:%M"))
    return row


def _done(ctx: click.Context, order: Order, what: str) -> None:
    say(ctx, f"order {order.id} {what} (step {order.state}, version {order.version})",
        id=order.id, state=order.state, outcome=order.outcome, assignee=order.assignee,
        version=order.version)


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
        rows.append({"name": name, "title": order_type.title, "category": order_type.category,
                     "steps": " → ".join(s.name for s in order_type.steps if not s.terminal),
                     "ends": ", ".join(s.name for s in order_type.steps if s.terminal),
                     "definition": to_doc(order_type)})
    if as_json(ctx):
        print_json(ctx, rows)
        return
    out_table(ctx, rows, [("name", "type"), ("title", "title"), ("steps", "steps"),
                          ("ends", "ends")])


@service_group.command("open")
@click.argument("order_type", metavar="TYPE")
@click.option("--customer", "customer_id", required=True, metavar="ID")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--summary", default="", help="What the customer asks for, in a line.")
@click.option("--owner", metavar="REP", help="Who took it (default: you); tracks it to the end.")
@click.option("--assignee", metavar="PERSON", help="Who acts at the first step.")
@click.pass_context
def open_(ctx: click.Context, order_type: str, customer_id: str, sets: tuple[str, ...],
          summary: str, owner: str | None, assignee: str | None) -> None:
    """Open an order of TYPE (see 'crm service types')."""
    api = _api(ctx)
    order = api.open(actor=actor(ctx), type=order_type, customer_id=customer_id,
                     fields=parse_sets(sets), summary=summary, owner=owner, assignee=assignee)
    _done(ctx, order, "opened")


@service_group.command("advance")
@click.argument("order_id")
@click.argument("to", metavar="STEP")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help=SET_HELP)
@click.option("--note", default="", help="A line for the order's history.")
@click.option("--assignee", metavar="PERSON", help="Who acts at the new step.")
@click.option("--if-version", type=int, metavar="N",
              help="Refuse if the order is no longer at version N (as you read it).")
@click.pass_context
def advance(ctx: click.Context, order_id: str, to: str, sets: tuple[str, ...], note: str,
            assignee: str | None, if_version: int | None) -> None:
    """Move an order to STEP (one its current step leads to)."""
    api = _api(ctx)
    order = api.advance(api.get(order_id, actor=actor(ctx)), actor=actor(ctx), to=to,
                        fields=parse_sets(sets), note=note, assignee=assignee,
                        expected_version=if_version)
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
        row["change"] = (f"{line.from_state} -> {line.to_state}" if line.from_state
                         else line.to_state or "")
        history.append(row)
    task = api.crm.tasks.open_by_key(step_key(order.id, order.visit))
    record = {**_row(order), "next": api.allowed_next(order),
              "task": task.id if task else None,
              "charges": [to_doc(c) for c in api.charges_for(order.id)]}
    if as_json(ctx):
        print_json(ctx, {**record, "history": history})
        return
    record["charges"] = [f"{c.kind} {c.amount:+.2f} {c.reason}".strip()
                         for c in api.charges_for(order.id)]
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
def list_(ctx: click.Context, order_type: str | None, state: str | None,
          customer_id: str | None, assignee: str | None, only_open: bool, limit: int) -> None:
    """Orders, oldest first."""
    api = _api(ctx)
    orders = api.find(type=order_type, state=state, customer_id=customer_id,
                      assignee=assignee, open_only=only_open, limit=limit,
                      actor=actor(ctx))
    out_table(ctx, [_row(o) for o in orders], LIST_COLUMNS, empty="no service orders")
