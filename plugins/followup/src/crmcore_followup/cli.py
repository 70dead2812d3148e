"""The plugin's commands: ``crm reps``, ``crm callbacks``, ``crm handover``, ``crm followup``,
and ``crm tasks due`` (with ``--grade``) plus ``crm tasks overdue-by-grade``."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from crmcore.cli.context import (
    WHEN_HELP,
    actor,
    as_json,
    data_text,
    fresh_group,
    open_crm_from,
    out_record,
    out_table,
    print_json,
    resolve_when,
    say,
)
from crmcore.cli.params import DURATION, NAME, WHEN
from crmcore.cli.tasks import render_tasks
from crmcore.converter import to_doc
from crmcore.entities import Channel, TaskStatus

REP_COLUMNS = [
    ("name", "name"),
    ("team", "team"),
    ("skills", "skills"),
    ("ability", "ability"),
    ("capacity", "capacity"),
    ("available", "available"),
    ("shift", "shift"),
    ("open_tasks", "open tasks"),
]

if TYPE_CHECKING:
    from crmcore_followup.records import Rep


# -- crm reps ------------------------------------------------------------------------------------


@click.group("reps")
def reps_group() -> None:
    """The rep roster: who shares the customers and tasks, by ability and capacity."""


def _rep_row(crm: Any, rep: Rep) -> dict[str, Any]:
    row = to_doc(rep)
    row["open_tasks"] = crm.tasks.count({"assignee": rep.name, "status": TaskStatus.OPEN.value})
    return row


@reps_group.command("add")
@click.argument("name")
@click.option("--team", help="The rep's team.")
@click.option("--skill", "skills", multiple=True, help="A skill (repeatable).")
@click.option("--ability", type=int, default=3, show_default=True, help="1 (junior) to 5.")
@click.option(
    "--capacity",
    type=int,
    default=50,
    show_default=True,
    help="Most open tasks the rep should hold.",
)
@click.option("--shift", help="The rep's shift (free text, e.g. 'day' or '08:00-16:00').")
@click.option("--unavailable", is_flag=True, help="Add as unavailable.")
@click.pass_context
def reps_add(
    ctx: click.Context,
    name: str,
    team: str | None,
    skills: tuple[str, ...],
    ability: int,
    capacity: int,
    shift: str | None,
    unavailable: bool,
) -> None:
    """Put NAME on the roster (NAME is what tasks and customers are assigned to)."""
    from crmcore_followup.reps import Roster

    crm = open_crm_from(ctx)
    rep = Roster(crm).add(
        name,
        actor=actor(ctx),
        team=team,
        skills=list(skills),
        ability=ability,
        capacity=capacity,
        shift=shift,
        available=not unavailable,
    )
    say(ctx, f"rep {rep.name} added", name=rep.name, id=rep.id)


@reps_group.command("list")
@click.option("--team", help="Only this team.")
@click.pass_context
def reps_list(ctx: click.Context, team: str | None) -> None:
    """The roster with each rep's open load."""
    from crmcore_followup.reps import Roster

    crm = open_crm_from(ctx)
    reps = [r for r in Roster(crm).all() if team is None or r.team == team]
    out_table(
        ctx,
        [_rep_row(crm, r) for r in reps],
        REP_COLUMNS,
        empty="the roster is empty (add reps with 'crm reps add NAME')",
    )


@reps_group.command("update")
@click.argument("name")
@click.option("--team")
@click.option("--skill", "skills", multiple=True, help="Replace the skills (repeatable).")
@click.option("--ability", type=int)
@click.option("--capacity", type=int)
@click.option("--shift")
@click.option(
    "--available/--unavailable",
    default=None,
    help="Availability; --unavailable reassigns the rep's open tasks.",
)
@click.pass_context
def reps_update(
    ctx: click.Context,
    name: str,
    team: str | None,
    skills: tuple[str, ...],
    ability: int | None,
    capacity: int | None,
    shift: str | None,
    available: bool | None,
) -> None:
    """Change a rep's team, skills, ability, capacity, shift or availability."""
    from crmcore_followup.reps import Roster

    crm = open_crm_from(ctx)
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("team", team),
            ("ability", ability),
            ("capacity", capacity),
            ("shift", shift),
            ("available", available),
        )
        if v is not None
    }
    if skills:
        changes["skills"] = list(skills)
    rep, moved = Roster(crm).update(name, actor=actor(ctx), **changes)
    say(
        ctx,
        f"rep {rep.name} updated" + (f"; {moved} open task(s) reassigned" if moved else ""),
        name=rep.name,
        reassigned=moved,
    )


@reps_group.command("unavailable")
@click.argument("name")
@click.pass_context
def reps_unavailable(ctx: click.Context, name: str) -> None:
    """Mark NAME unavailable (off sick, on leave); their open tasks go to the others."""
    from crmcore_followup.reps import Roster

    rep, moved = Roster(open_crm_from(ctx)).update(name, actor=actor(ctx), available=False)
    say(
        ctx,
        f"rep {rep.name} is unavailable; {moved} open task(s) reassigned",
        name=rep.name,
        reassigned=moved,
    )


@reps_group.command("available")
@click.argument("name")
@click.pass_context
def reps_available(ctx: click.Context, name: str) -> None:
    """Mark NAME available again (new tasks may go to them)."""
    from crmcore_followup.reps import Roster

    rep, _moved = Roster(open_crm_from(ctx)).update(name, actor=actor(ctx), available=True)
    say(ctx, f"rep {rep.name} is available", name=rep.name)


@reps_group.command("remove")
@click.argument("name")
@click.pass_context
def reps_remove(ctx: click.Context, name: str) -> None:
    """Take NAME off the roster; their open tasks are reassigned."""
    from crmcore_followup.reps import Roster

    moved = Roster(open_crm_from(ctx)).remove(name, actor=actor(ctx))
    say(ctx, f"rep {name} removed; {moved} open task(s) reassigned", name=name, reassigned=moved)


@reps_group.command("leave")
@click.argument("name")
@click.option("--to", "to", metavar="REP", help="Hand everything to this rep.")
@click.option(
    "--rebalance",
    is_flag=True,
    help="Share the customers and tasks among the available reps by ability.",
)
@click.pass_context
def reps_leave(ctx: click.Context, name: str, to: str | None, rebalance: bool) -> None:
    """NAME leaves: their customers, open tasks and open tickets move (--to REP or
    --rebalance), and NAME comes off the roster."""
    from crmcore_followup.leave import leave

    done = leave(open_crm_from(ctx), name, actor=actor(ctx), to=to, rebalance=rebalance)
    if as_json(ctx):
        print_json(
            ctx,
            {
                "rep": done.rep,
                "customers": done.customers,
                "customers_moved": done.customers_moved,
                "tasks_moved": done.tasks,
                "other_moved": done.other,
            },
        )
        return
    say(
        ctx,
        f"rep {name} left: {done.customers_moved} customer(s), {done.tasks} open "
        f"task(s) and {done.other} other open record(s) moved",
    )
    out_table(
        ctx,
        [{"rep": r or "(no one)", "customers": n} for r, n in sorted(done.customers.items())],
        [("rep", "new owner"), ("customers", "customers")],
        title="customers moved",
        empty="none",
    )


# -- crm callbacks -------------------------------------------------------------------------------


@click.group("callbacks")
def callbacks_group() -> None:
    """Callbacks (回访): within 3 days of business handled, a purchase or a closed complaint."""


@callbacks_group.command("list")
@click.option("--rep", "assignee", metavar="REP", type=NAME, help="Only callbacks assigned to REP.")
@click.option("--key", "key_only", is_flag=True, help="Only key customers' callbacks.")
@click.option("--overdue", is_flag=True, help="Only those past due.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def callbacks_list(
    ctx: click.Context, assignee: str | None, key_only: bool, overdue: bool, limit: int
) -> None:
    """Open callbacks, most urgent first."""
    from crmcore_followup import api

    crm = open_crm_from(ctx)
    found = api.open_callbacks(
        crm, assignee=assignee, key_only=key_only, overdue=overdue, limit=limit, actor=actor(ctx)
    )
    render_tasks(ctx, found, empty="no open callbacks")


@callbacks_group.command("done")
@click.argument("task_id")
@click.option("--satisfied/--unsatisfied", default=None, help="The customer's answer (required).")
@click.option("--score", type=int, help="Satisfaction score, 1 (worst) to 5.")
@click.option("--notes", default="", help="What was said.")
@click.option(
    "--channel", type=click.Choice([c.value for c in Channel]), default="phone", show_default=True
)
@click.pass_context
def callbacks_done(
    ctx: click.Context,
    task_id: str,
    satisfied: bool | None,
    score: int | None,
    notes: str,
    channel: str,
) -> None:
    """Record a callback's outcome and complete it (logs a 'callback' interaction)."""
    from crmcore_followup import api

    if satisfied is None:
        raise click.UsageError("say --satisfied or --unsatisfied")
    crm = open_crm_from(ctx)
    interaction, task = api.record_callback(
        crm,
        task_id,
        satisfied=satisfied,
        score=score,
        notes=notes,
        channel=channel,
        actor=actor(ctx),
    )
    say(
        ctx,
        f"callback {task.id} recorded ({'satisfied' if satisfied else 'unsatisfied'})",
        id=task.id,
        interaction_id=interaction.id,
    )


# -- crm handover --------------------------------------------------------------------------------


@click.command("handover")
@click.option(
    "--shift-end",
    "shift_end",
    type=WHEN,
    help=f"End of the next shift. {WHEN_HELP} Default: [followup] shift_hours from now.",
)
@click.option("--rep", metavar="REP", type=NAME, help="Only items assigned to REP.")
@click.option("--team", help="Only items assigned to reps of this team.")
@click.pass_context
def handover_command(ctx: click.Context, shift_end: Any, rep: str | None, team: str | None) -> None:
    """What this shift hands to the next: urgent open items and prospects to contact."""
    from crmcore_followup import api

    crm = open_crm_from(ctx)
    result = api.handover(
        crm, until=resolve_when(crm, shift_end), rep=rep, team=team, actor=actor(ctx)
    )
    urgent = []
    shown = data_text(ctx)
    for task in result.urgent:
        row = to_doc(task)
        if not ctx.find_root().obj.as_json:
            row["title"] = shown(task.title_message)
        row["priority"] = task.priority.name.lower()
        row["overdue"] = "yes" if task.due_at < result.now else ""
        urgent.append(row)
    prospects = [to_doc(p) for p in result.prospects]
    if ctx.find_root().obj.as_json:
        from crmcore.cli.context import print_json

        print_json(
            ctx,
            {"now": result.now, "until": result.until, "urgent": urgent, "prospects": prospects},
        )
        return
    out_table(
        ctx,
        urgent,
        [
            ("id", "id"),
            ("due_at", "due"),
            ("overdue", "overdue"),
            ("priority", "priority"),
            ("kind", "kind"),
            ("title", "title"),
            ("customer_id", "customer"),
            ("assignee", "assignee"),
        ],
        title=f"Urgent open items (until {result.until.isoformat()})",
        empty="none",
    )
    out_table(
        ctx,
        prospects,
        [
            ("customer_id", "customer"),
            ("name", "name"),
            ("grade", "grade"),
            ("kind", "kind"),
            ("due_at", "due"),
            ("assignee", "assignee"),
            ("task_id", "task"),
        ],
        title="Prospects to contact",
        empty="none",
    )


# -- crm tasks due / overdue-by-grade -----------------------------------------------------------


@click.command("due")
@click.option("--rep", "assignee", metavar="REP", type=NAME, help="Only tasks assigned to REP.")
@click.option("--kind", "kinds", multiple=True, type=NAME, help="Only these kinds (repeatable).")
@click.option("--customer", "customer_id", metavar="ID", type=NAME)
@click.option(
    "--grade",
    "grades",
    multiple=True,
    metavar="G",
    help="Only customers whose pipeline grade is G (repeatable; 'ungraded' for none).",
)
@click.option("--overdue", is_flag=True, help="Only tasks whose due time has passed.")
@click.option("--within", type=DURATION, help="Also tasks due within this long (e.g. 1d).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def due_command(
    ctx: click.Context,
    assignee: str | None,
    kinds: tuple[str, ...],
    customer_id: str | None,
    grades: tuple[str, ...],
    overdue: bool,
    within: timedelta | None,
    limit: int,
) -> None:
    """Open tasks due now, most urgent first."""
    from crmcore_followup import api

    crm = open_crm_from(ctx)
    found = api.due_tasks(
        crm,
        assignee=assignee,
        kinds=list(kinds) or None,
        customer_id=customer_id,
        grades=list(grades) or None,
        overdue=overdue,
        within=within,
        limit=limit,
        actor=actor(ctx),
    )
    render_tasks(ctx, found)


@click.command("overdue-by-grade")
@click.pass_context
def overdue_by_grade_command(ctx: click.Context) -> None:
    """Follow-ups due and overdue per pipeline grade (DOMAIN §7)."""
    from crmcore_followup import api

    rows = [to_doc(r) for r in api.overdue_by_grade(open_crm_from(ctx))]
    out_table(
        ctx,
        rows,
        [
            ("grade", "grade"),
            ("cadence_days", "every (days)"),
            ("customers", "customers"),
            ("open_follow_ups", "open follow-ups"),
            ("due_now", "due now"),
            ("overdue", "overdue"),
            ("overdue_over_a_day", "overdue > 1 day"),
            ("overdue_tasks", "overdue tasks (all kinds)"),
        ],
        empty="no customers",
    )


# -- crm followup --------------------------------------------------------------------------------


@click.group("followup")
def followup_group() -> None:
    """The follow-up schedule behind the sweep."""


@followup_group.command("show")
@click.argument("customer_id")
@click.pass_context
def followup_show(ctx: click.Context, customer_id: str) -> None:
    """A customer's follow-up schedule (cadence, last follow-up, next sweep look)."""
    from crmcore_followup.records import SCHEDULE, Schedule, schedule_id

    crm = open_crm_from(ctx)
    crm.customers.get_any(customer_id)
    # every field, those stored blank (left out) included
    record = to_doc(crm.records(SCHEDULE, Schedule).get(schedule_id(customer_id)))
    out_record(
        ctx,
        record,
        title=f"follow-up schedule of {customer_id}",
        skip=("lease_owner", "lease_until"),
    )


@followup_group.command("resync")
@click.pass_context
def followup_resync(ctx: click.Context) -> None:
    """Look at every customer again over the next sweeps (after the plugin was disabled, or
    to apply changed settings to everyone)."""
    from crmcore_followup import api

    api.resync(open_crm_from(ctx))
    say(ctx, "every customer will be looked at again by the next worker sweeps")


def __getattr__(name: str) -> click.Group:
    """``tasks_group``: the core's ``crm tasks`` with ``due`` replaced (``--grade``) and
    ``overdue-by-grade`` added; a new copy for each CLI that loads it, so that the core's
    module-level group is never changed for other CLIs in the process."""
    if name != "tasks_group":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from crmcore.cli.tasks import tasks_group

    extended = fresh_group(tasks_group)
    extended.add_command(due_command, "due")
    extended.add_command(overdue_by_grade_command, "overdue-by-grade")
    return extended
