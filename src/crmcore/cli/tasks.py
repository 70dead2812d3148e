"""``crm tasks …`` and ``crm worker``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import click

from crmcore.cli.context import (
    WHEN_HELP,
    actor,
    data_text,
    fresh_group,
    open_crm_from,
    out_record,
    out_table,
    resolve_when,
    say,
    to_doc,
)
from crmcore.cli.params import DURATION, NAME, WHEN
from crmcore.entities import Priority, Task
from crmcore.errors import TransientConflict, ValidationError

TASK_COLUMNS = [
    ("id", "id"),
    ("due_at", "due"),
    ("priority", "priority"),
    ("kind", "kind"),
    ("title", "title"),
    ("customer_id", "customer"),
    ("assignee", "assignee"),
]
PRIORITIES = [p.name.lower() for p in Priority]


def render_tasks(
    ctx: click.Context,
    tasks: Sequence[Task],
    *,
    title: str | None = None,
    empty: str = "nothing is due",
) -> None:
    """The standard task table (plugins that extend ``crm tasks`` reuse it)."""
    rows = []
    shown = data_text(ctx)
    for task in tasks:
        row = to_doc(task)
        row["priority"] = task.priority.name.lower()
        row["title"] = shown(task.title_message)
        rows.append(row)
    out_table(ctx, rows, TASK_COLUMNS, title=title, empty=empty)


@click.group("tasks")
def tasks_group() -> None:
    """Work queues: what is due, and marking it done."""


@tasks_group.command("due")
@click.option("--rep", "assignee", metavar="REP", type=NAME, help="Only tasks assigned to REP.")
@click.option("--kind", "kinds", multiple=True, type=NAME, help="Only these kinds (repeatable).")
@click.option("--customer", "customer_id", metavar="ID", type=NAME)
@click.option("--overdue", is_flag=True, help="Only tasks whose due time has passed.")
@click.option("--within", type=DURATION, help="Also tasks due within this long (e.g. 1d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def due(
    ctx: click.Context,
    assignee: str | None,
    kinds: tuple[str, ...],
    customer_id: str | None,
    overdue: bool,
    within: timedelta | None,
    limit: int,
) -> None:
    """Open tasks due now, most urgent first."""
    crm = open_crm_from(ctx)
    found = crm.tasks.due(
        assignee=assignee,
        kinds=list(kinds) or None,
        customer_id=customer_id,
        overdue=overdue,
        within=within,
        limit=limit,
        actor=actor(ctx),
    )
    render_tasks(ctx, found)


@tasks_group.command("show")
@click.argument("task_id")
@click.pass_context
def show(ctx: click.Context, task_id: str) -> None:
    """One task in full."""
    task = open_crm_from(ctx).tasks.get(task_id, actor=actor(ctx))
    out_record(ctx, to_doc(task), title=f"task {task.id}")


@tasks_group.command("add")
@click.option("--kind", required=True)
@click.option("--title", required=True)
@click.option("--due", "due_at", type=WHEN, required=True, help=WHEN_HELP)
@click.option("--customer", "customer_id", metavar="ID")
@click.option("--rep", "assignee", metavar="REP")
@click.option("--priority", type=click.Choice(PRIORITIES), default="normal", show_default=True)
@click.option("--notes", default="")
@click.pass_context
def add(
    ctx: click.Context,
    kind: str,
    title: str,
    due_at: Any,
    customer_id: str | None,
    assignee: str | None,
    priority: str,
    notes: str,
) -> None:
    """Create a task."""
    crm = open_crm_from(ctx)
    task = crm.tasks.create(
        actor=actor(ctx),
        kind=kind,
        title=title,
        due_at=resolve_when(crm, due_at),
        customer_id=customer_id,
        assignee=assignee,
        priority=Priority[priority.upper()],
        notes=notes,
    )
    say(ctx, f"created task {task.id}", id=task.id)


@tasks_group.command("done")
@click.argument("task_id")
@click.option("--outcome", help="What came of it.")
@click.pass_context
def done(ctx: click.Context, task_id: str, outcome: str | None) -> None:
    """Mark a task done (plugins react: the next follow-up, a re-grade …)."""
    task = open_crm_from(ctx).tasks.complete(task_id, actor=actor(ctx), outcome=outcome)
    say(ctx, f"done: {task.title}", id=task.id)


@tasks_group.command("assign")
@click.argument("task_id")
@click.argument("rep", type=NAME)
@click.pass_context
def assign(ctx: click.Context, task_id: str, rep: str) -> None:
    """Give a task to REP."""
    task = open_crm_from(ctx).tasks.assign(task_id, rep, actor=actor(ctx))
    say(ctx, f"task {task.id} assigned to {rep}", id=task.id)


@tasks_group.command("reschedule")
@click.argument("task_id")
@click.argument("when", type=WHEN)
@click.pass_context
def reschedule(ctx: click.Context, task_id: str, when: Any) -> None:
    """Move a task's due time (WHEN: 2026-11-23T14:30, +2d …)."""
    crm = open_crm_from(ctx)
    task = crm.tasks.reschedule(task_id, resolve_when(crm, when), actor=actor(ctx))
    say(ctx, f"task {task.id} now due {task.due_at.isoformat()}", id=task.id)


@tasks_group.command("cancel")
@click.argument("task_id")
@click.option("--reason", required=True)
@click.pass_context
def cancel(ctx: click.Context, task_id: str, reason: str) -> None:
    """Cancel an open task."""
    task = open_crm_from(ctx).tasks.cancel(task_id, actor=actor(ctx), reason=reason)
    say(ctx, f"task {task.id} cancelled", id=task.id)


@click.command("worker")
@click.option("--once", is_flag=True, help="One sweep, then exit.")
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between sweeps.",
)
@click.option("--iterations", type=click.IntRange(min=1), help="Stop after this many sweeps.")
@click.option("--name", type=NAME, help="Worker name (default: host-pid); several may run at once.")
@click.pass_context
def worker(
    ctx: click.Context, once: bool, interval: float, iterations: int | None, name: str | None
) -> None:
    """Run the plugins' periodic sweeps (due follow-ups, SLA timers, expiry …)."""
    from crmcore import retry

    crm = open_crm_from(ctx)
    worker_name = name or f"{socket.gethostname()}-{os.getpid()}"
    if not worker_name.strip():
        raise ValidationError("--name must not be empty")
    limit = 1 if once else iterations
    count = 0
    while True:
        count += 1
        try:
            report = crm.tick(worker_name)  # run again by itself after a collision
        except TransientConflict:
            # Concurrent writers kept winning (MongoDB replica sets): nothing of this sweep
            # was kept, and the next one does its work. A worker does not stop for that.
            say(
                ctx,
                f"sweep {count}: rolled back by concurrent writes {retry.ATTEMPTS} times; "
                "the next sweep does its work",
                rolled_back=True,
            )
        else:
            say(
                ctx,
                f"{report.now.isoformat()} sweep {count}: {report.tasks_created} task(s) "
                f"created, {report.tasks_updated} updated",
                tasks_created=report.tasks_created,
                tasks_updated=report.tasks_updated,
            )
        if limit is not None and count >= limit:
            return
        time.sleep(interval)


def register(cli: click.Group) -> None:
    cli.add_command(fresh_group(tasks_group))
    cli.add_command(worker)
