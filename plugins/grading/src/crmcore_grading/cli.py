"""``crm grade …``: set pipeline inputs, show grades with reasons, history, re-grade everyone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from crmcore import ValidationError
from crmcore.cli.context import (
    actor,
    as_json,
    data_text,
    open_crm_from,
    out_record,
    out_table,
    print_json,
    progress,
    resolve_when,
    say,
    state,
)
from crmcore.cli.params import WHEN
from crmcore.converter import to_doc
from crmcore_grading import api
from crmcore_grading.inputs import DEAL_STATUSES, DEMANDS, IMPORTANCE
from crmcore_grading.outcomes import CHURN_TYPES, mark_lost, measures

HISTORY_COLUMNS = [
    ("at", "when"),
    ("scheme", "scheme"),
    ("old", "from"),
    ("new", "to"),
    ("reason", "why"),
    ("actor", "by"),
]


@click.group("grade")
def grade_group() -> None:
    """Customer grades: the A-E pipeline grade, value tiers and churn risk."""


@grade_group.command("set")
@click.argument("customer_id")
@click.option(
    "--demand",
    type=click.Choice(DEMANDS),
    help="target: needs it now; potential: later; dead: never.",
)
@click.option(
    "--expected-close", metavar="YYYY-MM-DD", help="Expected closing date ('none' clears it)."
)
@click.option("--deal-status", type=click.Choice(DEAL_STATUSES))
@click.option("--importance", type=click.Choice(IMPORTANCE))
@click.pass_context
def set_inputs(
    ctx: click.Context,
    customer_id: str,
    demand: str | None,
    expected_close: str | None,
    deal_status: str | None,
    importance: str | None,
) -> None:
    """Record what grades a prospect (DOMAIN §2), then re-grade them."""
    crm = open_crm_from(ctx)
    given: dict[str, Any] = {
        k: v
        for k, v in (("demand", demand), ("deal_status", deal_status), ("importance", importance))
        if v is not None
    }
    if expected_close is not None:
        given["expected_close"] = None if expected_close.lower() == "none" else expected_close
    if not given:
        raise ValidationError(
            "nothing to set: give --demand, --expected-close, --deal-status or --importance"
        )
    grades = api.set_inputs(crm, customer_id, actor=actor(ctx), **given)
    lines = [f"{s}: {grades.line(s)}" for s in grades.grades]
    say(
        ctx,
        "\n".join([f"customer {customer_id} graded", *lines])
        if lines
        else f"customer {customer_id}: inputs stored, no grade yet",
        customer_id=customer_id,
        grades=grades.grades,
        reasons=grades.reasons,
        inputs=grades.inputs,
    )


@grade_group.command("show")
@click.argument("customer_id")
@click.option(
    "--history",
    "limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=0),
    help="Recent changes shown.",
)
@click.pass_context
def show(ctx: click.Context, customer_id: str, limit: int) -> None:
    """Grades with their reasons, inputs, churn risk, signals and recent changes."""
    crm = open_crm_from(ctx)
    info = api.explain(crm, customer_id, actor=actor(ctx))
    changes = (
        [to_doc(r) for r in api.history(crm, customer_id, limit=limit, actor=actor(ctx))]
        if limit
        else []
    )
    if as_json(ctx):
        print_json(ctx, {**info, "history": changes})
        return
    out_table(
        ctx,
        [
            {
                "scheme": g["scheme"],
                "grade": g["grade"],
                "reason": g["reason"],
                "details": _details(g["details"]),
            }
            for g in info["grades"]
        ],
        [("scheme", "scheme"), ("grade", "grade"), ("reason", "reason"), ("details", "details")],
        title=f"Grades of {customer_id}",
        empty="no grades yet (set the pipeline inputs with 'crm grade set')",
    )
    if info["inputs"]:
        out_record(ctx, info["inputs"], title="Pipeline inputs")
    churn = info["churn"]
    state(ctx).console.print(
        f"churn risk: {churn['level']}"
        + (f" ({'; '.join(churn['reasons'])})" if churn["reasons"] else "")
    )
    out_record(ctx, info["signals"], title="Signals")
    if limit:
        out_table(ctx, changes, HISTORY_COLUMNS, title="Recent changes", empty="none")


def _details(details: dict[str, Any]) -> str:
    parts = []
    for key, value in details.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


@grade_group.command("history")
@click.argument("customer_id")
@click.option("--scheme", help="Only this scheme ('churn' for churn levels).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def history(ctx: click.Context, customer_id: str, scheme: str | None, limit: int) -> None:
    """Every stored change of a customer's grades, newest first."""
    crm = open_crm_from(ctx)
    found = api.history(crm, customer_id, scheme=scheme, limit=limit, actor=actor(ctx))
    shown = data_text(ctx)  # reasons in the terminal's language (English under --json)
    rows = [{**to_doc(r), "reason": shown(r.reason)} for r in found]
    out_table(ctx, rows, HISTORY_COLUMNS, empty="no changes recorded")


@grade_group.command("all")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Fold every interaction again instead of continuing from the last run.",
)
@click.pass_context
def grade_all(ctx: click.Context, rebuild: bool) -> None:
    """Re-grade every customer now and recompute the population tiers (progress on stderr).

    Signals are updated from the interactions added since the last run (every interaction is
    read again when the store changed in a way that run cannot account for, or with
    --rebuild). Writes only the customers whose grading changed; the worker does the same once
    per population_interval_hours."""
    crm = open_crm_from(ctx)

    def bar(items: Any, total: int | None, description: str) -> Any:
        return progress(ctx, items, total=total, description=description)

    report = api.grade_all(crm, actor=actor(ctx), progress=bar, rebuild=rebuild)
    n = report.customers
    how = (
        f"full rebuild ({report.rebuild_reason})"
        if report.full_rebuild
        else f"incremental: signals of {report.signals_rebuilt:,} rebuilt"
    )
    say(
        ctx,
        f"re-graded {n:,} customer{'s' * (n != 1)} ({report.interactions:,} interactions) "
        f"in {report.seconds:.2f} s, {report.per_second:,.0f}/s: {report.changed:,} "
        f"written, {report.grade_changes:,} grade changes, {report.churn_rises:,} churn "
        f"risk rises; {how}, {report.interactions_read:,} interactions read",
        customers=report.customers,
        interactions=report.interactions,
        written=report.changed,
        grade_changes=report.grade_changes,
        churn_rises=report.churn_rises,
        seconds=round(report.seconds, 3),
        full_rebuild=report.full_rebuild,
        rebuild_reason=report.rebuild_reason,
        signals_rebuilt=report.signals_rebuilt,
        interactions_read=report.interactions_read,
    )


@grade_group.command("list")
@click.option("--scheme", default="pipeline", show_default=True)
@click.option("--grade", "grades", multiple=True, help="Only this grade or tier (repeatable).")
@click.option("--owner", metavar="REP")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def list_(
    ctx: click.Context, scheme: str, grades: tuple[str, ...], owner: str | None, limit: int
) -> None:
    """Customers by grade: best first; within a pipeline grade, important customers first,
    then the soonest expected close."""
    crm = open_crm_from(ctx)
    rows = [
        to_doc(c)
        for c in api.by_grade(
            crm, scheme=scheme, grades=grades, owner=owner, limit=limit, actor=actor(ctx)
        )
    ]
    out_table(
        ctx,
        rows,
        [
            ("id", "id"),
            ("name", "name"),
            ("grade", "grade"),
            ("importance", "importance"),
            ("expected_close", "expected close"),
            ("reason", "reason"),
            ("owner", "owner"),
        ],
        empty="no customers have that grade",
    )


@grade_group.command("schemes")
@click.pass_context
def schemes(ctx: click.Context) -> None:
    """Registered grading schemes and which ones this configuration runs."""
    crm = open_crm_from(ctx)
    out_table(
        ctx,
        [
            {
                "name": s.name,
                "plugin": s.plugin,
                "running": "yes" if s.running else "no",
                "population": "yes" if s.population else "no",
                "description": s.description,
            }
            for s in api.schemes(crm)
        ],
        [
            ("name", "scheme"),
            ("running", "runs"),
            ("population", "population-relative"),
            ("plugin", "plugin"),
            ("description", "description"),
        ],
    )


@grade_group.command("lost")
@click.argument("customer_id")
@click.option(
    "--type",
    "churn_type",
    required=True,
    type=click.Choice(CHURN_TYPES),
    help="Why they left, as DOMAIN §4 counts it.",
)
@click.option("--reason", required=True, help="What happened (price, a competitor, …).")
@click.pass_context
def lost(ctx: click.Context, customer_id: str, churn_type: str, reason: str) -> None:
    """Mark CUSTOMER_ID lost; their next purchase wins them back."""
    crm = open_crm_from(ctx)
    stored = mark_lost(crm, customer_id, actor=actor(ctx), churn_type=churn_type, reason=reason)
    say(
        ctx, f"customer {customer_id} marked lost ({churn_type})", customer_id=customer_id, **stored
    )


@grade_group.command("churn")
@click.option("--since", type=WHEN, help="Start of the period (default: 90 days ago).")
@click.option("--until", type=WHEN, help="End of the period (default: now).")
@click.pass_context
def churn(ctx: click.Context, since: Any, until: Any) -> None:
    """Churn, win-back and repeat-purchase rates over a period, with losses by type."""
    crm = open_crm_from(ctx)
    end = resolve_when(crm, until) or crm.now()
    start = resolve_when(crm, since) or end - timedelta(days=90)
    m = measures(crm, start, end)
    record = {
        "since": m.since,
        "until": m.until,
        "active_at_start": m.active_at_start,
        "lost": m.lost,
        "churn_rate": m.churn_rate,
        "losses_open": m.losses_open,
        "won_back": m.won_back,
        "win_back_rate": m.win_back_rate,
        "buyers": m.buyers,
        "repeat_buyers": m.repeat_buyers,
        "repeat_purchase_rate": m.repeat_purchase_rate,
        **{f"lost_{t}": m.by_type.get(t, 0) for t in CHURN_TYPES},
    }
    if as_json(ctx):
        print_json(ctx, record)
        return
    shown = {
        k: (f"{v:.1%}" if k.endswith("_rate") and v is not None else "-" if v is None else v)
        for k, v in record.items()
    }
    out_record(ctx, shown, title="churn outcomes")
