"""``crm report`` sections (DOMAIN §7: follow-ups overdue by grade, callback coverage of key
customers, satisfaction after each callback) and ``crm customer show`` lines."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from statistics import mean
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import (
    Customer,
    NotFoundError,
    ReportSection,
    ReportWindow,
    SummaryLine,
    TaskStatus,
)
from crmcore.charts import Chart, Series, axis_name, bucket_index, buckets, percent, trend_period
from crmcore.converter import parse_iso
from crmcore.i18n import N_, joined, msg, term
from crmcore_followup import quiet, recovery
from crmcore_followup.api import open_at, overdue_by_grade
from crmcore_followup.engine import NAMESPACE, SOURCE, Engine, first_contact_key, follow_up_key
from crmcore_followup.records import FIRST_CONTACT_PENDING
from crmcore_followup.reps import Roster

if TYPE_CHECKING:
    from crmcore import CRM


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


def follow_up_section(crm: CRM, now: datetime, window: ReportWindow | None = None) -> ReportSection:
    """Follow-ups open, due and overdue by grade as of the window's end (now without one
    before now), for its team or rep (tasks by assignee, customers by owner)."""
    scope = Scope(crm, window)
    at = scope.end(now)
    rows = overdue_by_grade(
        crm,
        at,
        reps=None if scope.window.everyone else scope.rep,
        assignee=scope.window.rep,
        overdue_only=scope.window.brief,
        clock=now,
        members=None if scope.window.everyone else scope.window.reps(crm),
    )
    note = joined(
        N_("how often each grade is followed up, and the follow-ups overdue"),
        scope.label(now),
        N_("grades as they are now"),
    )
    if scope.window.brief:  # the dashboard's chart: the overdue columns alone
        return ReportSection(
            N_("Follow-ups by grade"),
            (N_("grade"), N_("overdue"), N_("overdue > 1 day")),
            [(r.grade, r.overdue, r.overdue_over_a_day) for r in rows],
            chart={r.grade: r.overdue for r in rows},
            note=note,
            order=40,
        )
    return ReportSection(
        N_("Follow-ups by grade"),
        (
            N_("grade"),
            N_("every (days)"),
            N_("customers"),
            N_("open follow-ups"),
            N_("due now"),
            N_("overdue"),
            N_("overdue > 1 day"),
        ),
        [
            (
                r.grade,
                r.cadence_days,
                r.customers,
                r.open_follow_ups,
                r.due_now,
                r.overdue,
                r.overdue_over_a_day,
            )
            for r in rows
        ],
        chart={r.grade: r.overdue for r in rows},
        note=note,
        order=40,
    )


#: How the action an unsatisfied callback leads to reads in a note.
UNSATISFIED_ACTIONS = {
    "task": N_("a recovery task"),
    "ticket": N_("a complaint ticket"),
    "none": N_("no action"),
}
#: Grades shown as words in the follow-up table, for the catalog.
GRADE_WORDS = (N_("ungraded"),)


class Scope:
    """The report window's period and team or rep, with reps' teams looked up once."""

    def __init__(self, crm: CRM, window: ReportWindow | None) -> None:
        self.crm = crm
        self.window = window or ReportWindow()
        self.rep = self.window.rep_filter(crm)  # rep(name): whether name's work counts

    def when(self, at: datetime) -> bool:
        return self.window.contains(at)

    def end(self, now: datetime) -> datetime:
        """The instant state sections show: the window's end, or now if that is later."""
        until = self.window.until
        return until if until is not None and until < now else now

    def has_period(self, now: datetime) -> bool:
        """Whether the window is a period other than "everything up to now"."""
        return self.window.since is not None or self.end(now) < now

    def label(self, now: datetime) -> str:
        """Whose and as of when, for a state section's note."""
        w = self.window
        at = self.end(now)
        when = (
            msg("as of %(when)s", when=at.isoformat()[:16].replace("T", " "))
            if at < now
            else term(N_("now"))
        )
        if w.rep:
            return msg("rep %(rep)s, %(when)s", rep=w.rep, when=when)
        if w.team:
            return msg("team %(team)s, %(when)s", team=w.team, when=when)
        return when


class CoverageTrend:
    """Callback coverage per day, week or month of the report's period (the last eight weeks
    when it has no start): callbacks done within their window over those due, by when the
    window ended (or the callback was made)."""

    SEGMENTS = (N_("key customers"), N_("all customers"))

    def __init__(self, crm: CRM, window: ReportWindow, now: datetime) -> None:
        self.periods = buckets(
            *trend_period(window.since, window.until or now), crm.config.core.timezone
        )
        self.at = bucket_index(self.periods)
        self.due = {s: [0] * len(self.periods) for s in self.SEGMENTS}
        self.done = {s: [0] * len(self.periods) for s in self.SEGMENTS}

    def add(self, ended: datetime, segments: list[str], done_in_time: bool) -> None:
        slot = self.at(ended)
        if slot is None:
            return
        for segment in segments:
            self.due[segment][slot] += 1
            self.done[segment][slot] += done_in_time

    def chart(self) -> Chart:
        return Chart(
            N_("Callback coverage"),
            [b.label for b in self.periods],
            [
                Series(s, [percent(d, n) for d, n in zip(self.done[s], self.due[s], strict=True)])
                for s in self.SEGMENTS
            ],
            kind="line",
            unit="%",
            y_label=N_("Callbacks done in time"),
            x_label=axis_name(self.periods),
            key="callback_coverage_trend",
        )


def callback_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Coverage of the callbacks whose window ended in the period, and the answers recorded
    in it, for the team or rep asked for."""
    scope = Scope(crm, window)
    due: Counter[str] = Counter()
    in_time: Counter[str] = Counter()
    still_open: Counter[str] = Counter()
    trend = CoverageTrend(crm, scope.window, now)
    # through the tasks' (kind, source) index this plugin declares: the callback tasks alone
    for task in crm.tasks.find({"kind": "callback", "source": SOURCE}):
        if task.status is TaskStatus.CANCELLED:
            continue
        meta = task.ext.get(NAMESPACE, {})
        deadline = parse_iso(meta["deadline"]) if "deadline" in meta else task.due_at
        segments = ["all customers"] + (["key customers"] if meta.get("key_customer") else [])
        done_in_time = (
            task.status is TaskStatus.DONE
            and task.completed_at is not None
            and task.completed_at <= deadline
        )
        if deadline > now and not done_in_time:
            continue  # its window is still running
        ended = min(deadline, task.completed_at or deadline)
        if not scope.when(ended) or not scope.rep(task.assignee):
            continue
        for segment in segments:
            due[segment] += 1
            in_time[segment] += done_in_time
            still_open[segment] += task.is_open
        trend.add(ended, segments, done_in_time)
    coverage = ReportSection(
        N_("Callback coverage"),
        (
            N_("customers"),
            N_("callbacks due"),
            N_("done within the window"),
            N_("coverage"),
            N_("still open"),
        ),
        [
            (s, due[s], in_time[s], _pct(in_time[s], due[s]), still_open[s])
            for s in ("key customers", "all customers")
        ],
        chart={s: round(in_time[s] / due[s] * 100, 1) for s in due if due[s]},
        note=joined(
            msg(
                "callbacks whose %(days)s-day window has ended",
                days=crm.settings("followup").callback_within_days,
            ),
            N_("key customers should reach 100%"),
        ),
        order=41,
        charts=[trend.chart()],
    )
    outcomes = [
        i
        for i in crm.interactions.iter({"kind": "callback"})
        if scope.when(i.occurred_at) and scope.rep(i.rep)
    ]
    satisfied = sum(1 for i in outcomes if i.ext.get(NAMESPACE, {}).get("satisfied") is True)
    unsatisfied = sum(1 for i in outcomes if i.ext.get(NAMESPACE, {}).get("satisfied") is False)
    scores = [i.satisfaction for i in outcomes if i.satisfaction is not None]
    answered = satisfied + unsatisfied
    satisfaction = ReportSection(
        N_("Callback satisfaction"),
        (N_("measure"), N_("value")),
        [
            (N_("callbacks recorded"), len(outcomes)),
            (N_("satisfied"), satisfied),
            (N_("unsatisfied"), unsatisfied),
            (N_("satisfied share"), _pct(satisfied, answered)),
            (N_("mean score (1-5)"), f"{mean(scores):.2f}" if scores else "n/a"),
        ],
        chart={"satisfied": satisfied, "unsatisfied": unsatisfied},
        note=N_("satisfaction after each callback"),
        order=42,
    )
    return [coverage, satisfaction]


def unsatisfied_by_department(crm: CRM, window: ReportWindow | None = None) -> ReportSection:
    """Callback answers in the period and the recovery they led to, per department and team
    of the rep responsible (DOMAIN §9: analysed by department and fed back)."""
    scope = Scope(crm, window)
    settings = crm.settings("followup")
    teams = {rep.name: rep.team for rep in Roster(crm).all()}
    owners: dict[str, str | None] = {}
    answered: Counter[tuple[str, str]] = Counter()
    unhappy: Counter[tuple[str, str]] = Counter()
    for interaction in crm.interactions.iter({"kind": "callback"}):
        said = interaction.ext.get(NAMESPACE, {}).get("satisfied")
        if said is None and interaction.satisfaction is None:
            continue  # no answer recorded
        if interaction.customer_id not in owners:
            try:
                owners[interaction.customer_id] = crm.customers.get_any(
                    interaction.customer_id
                ).owner
            except NotFoundError:
                owners[interaction.customer_id] = None
        rep = owners[interaction.customer_id] or interaction.rep
        if not scope.when(interaction.occurred_at) or not scope.rep(rep):
            continue
        team = teams.get(rep or "")
        group = (recovery.department_of(settings, team) or N_("(none)"), team or N_("(none)"))
        answered[group] += 1
        unhappy[group] += recovery.is_unsatisfied(interaction, settings)
    open_tasks: Counter[tuple[str, str]] = Counter()
    done_tasks: Counter[tuple[str, str]] = Counter()
    for task in crm.tasks.iter({"kind": recovery.KIND}):
        meta = task.ext.get(NAMESPACE, {})
        if not scope.when(task.created_at) or not scope.rep(meta.get("rep")):
            continue
        group = (meta.get("department") or "(none)", meta.get("team") or "(none)")
        open_tasks[group] += task.is_open
        done_tasks[group] += task.status is TaskStatus.DONE
    groups = sorted(set(answered) | set(open_tasks) | set(done_tasks))
    return ReportSection(
        N_("Unsatisfied callbacks by department"),
        (
            N_("department"),
            N_("team"),
            N_("answered"),
            N_("unsatisfied"),
            N_("unsatisfied share"),
            N_("recovery open"),
            N_("recovery done"),
        ),
        [
            (
                d,
                t,
                answered[(d, t)],
                unhappy[(d, t)],
                _pct(unhappy[(d, t)], answered[(d, t)]),
                open_tasks[(d, t)],
                done_tasks[(d, t)],
            )
            for d, t in groups
        ],
        chart={f"{d}/{t}": unhappy[(d, t)] for d, t in groups},
        note=joined(
            msg(
                "unsatisfied answers lead to: %(action)s",
                action=term(
                    UNSATISFIED_ACTIONS.get(
                        settings.unsatisfied_action, settings.unsatisfied_action
                    )
                ),
            ),
            N_("department and team of the customer's rep"),
        ),
        order=42,
    )


def roster_section(
    crm: CRM, now: datetime | None = None, window: ReportWindow | None = None
) -> ReportSection | None:
    """Each rep of the window's team (or the window's rep): open tasks as of its end, and
    with a period the tasks they completed in it; ability, availability, capacity and
    customers owned as they are now."""
    scope = Scope(crm, window)
    when = now or crm.now()
    at = scope.end(when)
    reps = [rep for rep in Roster(crm).all() if scope.rep(rep.name)]
    if not reps:
        return None
    period = scope.has_period(when)
    names = {rep.name for rep in reps}
    open_at_end: Counter[str] = Counter()
    done: Counter[str] = Counter()
    if at < when or period:
        for task in crm.tasks.iter({"assignee": {"$in": sorted(names)}}):
            assignee = task.assignee or ""
            open_at_end[assignee] += at < when and open_at(task, at)
            done[assignee] += (
                task.status is TaskStatus.DONE
                and task.completed_at is not None
                and scope.when(task.completed_at)
            )
    rows: list[tuple[Any, ...]] = []
    for rep in reps:
        open_tasks = (
            open_at_end[rep.name]
            if at < when
            else crm.tasks.count({"assignee": rep.name, "status": TaskStatus.OPEN.value})
        )
        row: tuple[Any, ...] = (
            rep.name,
            rep.team or "",
            rep.ability,
            N_("yes") if rep.available else N_("no"),
            open_tasks,
            rep.capacity,
            crm.customers.count({"owner": rep.name}),
        )
        rows.append((*row, done[rep.name]) if period else row)
    columns = (
        N_("rep"),
        N_("team"),
        N_("ability"),
        N_("available"),
        N_("open tasks"),
        N_("capacity"),
        N_("customers"),
    )
    return ReportSection(
        N_("Rep load"),
        (*columns, N_("done in the period")) if period else columns,
        rows,
        chart={r[0]: r[4] for r in rows},
        note=joined(
            N_("customers and tasks are shared balancing open load against ability"),
            msg("open tasks %(when)s", when=scope.label(when)),
            N_("the rest as it is now"),
        ),
        order=43,
    )


def overdue_chart(section: ReportSection) -> Chart:
    """Overdue follow-ups per grade, stacked by how late, from the "Follow-ups by grade"
    table (its columns named as that section names them)."""
    column = {name: i for i, name in enumerate(section.columns)}
    grades = [str(row[column["grade"]]) for row in section.rows]
    late = [float(row[column["overdue > 1 day"]]) for row in section.rows]
    recent = [float(row[column["overdue"]]) - d for row, d in zip(section.rows, late, strict=True)]
    return Chart(
        N_("Overdue follow-ups by grade"),
        grades,
        [Series(N_("overdue up to a day"), recent), Series(N_("overdue more than a day"), late)],
        kind="stacked",
        unit=N_("follow-ups"),
        y_label=N_("Overdue follow-ups"),
        x_label=N_("Grade"),
        key="overdue_by_grade",
    )


def with_overdue_chart(section: ReportSection) -> ReportSection:
    """``section`` with its overdue chart added beside its table."""
    return attrs.evolve(section, charts=(*section.charts, overdue_chart(section)))


def sections(crm: CRM, now: datetime, window: ReportWindow | None = None) -> list[ReportSection]:
    out = [
        with_overdue_chart(follow_up_section(crm, now, window)),
        *callback_sections(crm, now, window),
    ]
    if window is not None and window.brief:
        return out  # what the dashboard shows: the charts and the satisfaction figures
    out.append(unsatisfied_by_department(crm, window))
    roster = roster_section(crm, now, window)
    if roster is not None:
        out.append(roster)
    return out


def _local(customer: Customer, when: datetime) -> str:
    return when.astimezone(quiet.zone(customer.timezone)).strftime("%Y-%m-%d %H:%M %Z")


def summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    if customer.do_not_contact:
        return [SummaryLine("Follow-up", "do not contact: no follow-ups, callbacks or care")]
    engine = Engine.of(crm)
    schedule = engine.schedule_of(customer.id)
    lines = []
    fc = crm.tasks.open_by_key(first_contact_key(customer.id))
    if fc is not None:
        lines.append(
            SummaryLine(
                "First contact",
                f"due {_local(customer, fc.due_at)}"
                + (f" by {fc.assignee}" if fc.assignee else ""),
            )
        )
    task = crm.tasks.open_by_key(follow_up_key(customer.id))
    if schedule is not None:
        grade = schedule.grade or "ungraded"
        days = schedule.cadence_days
        cadence = f"grade {grade}: at least every {days} day{'s' if days != 1 else ''}"
        if task is not None:
            text = f"next due {_local(customer, task.due_at)} ({cadence})"
        elif schedule.first_contact == FIRST_CONTACT_PENDING:
            text = f"starts after the first contact ({cadence})"
        else:
            text = f"none open ({cadence}); the next sweep schedules one"
        if schedule.last_follow_up_at is not None:
            text += f"; last {_local(customer, schedule.last_follow_up_at)}"
        lines.append(SummaryLine("Follow-up", text))
    callbacks = crm.tasks.open_for(customer.id, kind="callback")
    if callbacks:
        lines.append(
            SummaryLine(
                "Callbacks",
                f"{len(callbacks)} open, next due {_local(customer, callbacks[0].due_at)}",
            )
        )
    return lines
