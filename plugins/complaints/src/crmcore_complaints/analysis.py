"""Complaint analysis (DOMAIN §5 "analysis and improvement", §7 measures): counts by category,
cause and department, SLA compliance, escalations by level, reopen rate, satisfaction,
complaint rate per customers served, week-over-week trend, and improvement actions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

import attrs

from crmcore import ReportSection, ReportWindow, SummaryLine
from crmcore.charts import Chart, Series, axis_name, bucket_index, buckets
from crmcore.converter import iso
from crmcore.i18n import N_, joined, msg, term
from crmcore_complaints.api import Complaints
from crmcore_complaints.model import ActionStatus, Status, Ticket, Validity


@attrs.frozen
class Analysis:
    """Every measure for tickets opened in ``[since, until)``."""

    since: datetime
    until: datetime
    tickets: int
    by_category: dict[str, int]
    by_cause: dict[str, int]
    by_department: dict[str, int]
    by_status: dict[str, int]
    invalid: int
    first_response_met: int
    first_response_missed: int
    resolution_met: int
    resolution_missed: int
    escalations_by_level: dict[str, int]
    resolved: int
    reopened: int
    satisfaction_answers: int
    satisfied: int
    satisfaction_average: float | None
    customers_served: int
    complaint_rate: float | None
    compensation_total: float
    open_beyond_24h: int
    weekly: list[dict[str, Any]]
    actions: list[dict[str, Any]]

    @property
    def first_response_compliance(self) -> float | None:
        return _ratio(self.first_response_met, self.first_response_met + self.first_response_missed)

    @property
    def resolution_compliance(self) -> float | None:
        return _ratio(self.resolution_met, self.resolution_met + self.resolution_missed)

    @property
    def reopen_rate(self) -> float | None:
        return _ratio(self.reopened, self.resolved)

    @property
    def satisfied_rate(self) -> float | None:
        return _ratio(self.satisfied, self.satisfaction_answers)

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data.update(
            first_response_compliance=self.first_response_compliance,
            resolution_compliance=self.resolution_compliance,
            reopen_rate=self.reopen_rate,
            satisfied_rate=self.satisfied_rate,
        )
        return data


#: The escalation ladder's roles, for the catalog: a report shows the role's code name in
#: English (the data of ``crm complaints report --json``) and its name in Chinese.
ROLE_NAMES = (
    N_("shift_lead"),
    N_("department_manager"),
    N_("owner"),
    N_("dispatcher"),
    N_("handler"),
)


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def week_start(api: Complaints, when: datetime) -> datetime:
    """Monday 00:00 (business time zone) of the week holding ``when``."""
    local = when.astimezone(api.zone)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=api.zone)


def analyse(
    api: Complaints,
    since: datetime,
    until: datetime,
    *,
    weeks: int = 8,
    now: datetime | None = None,
    owners: Callable[[str | None], bool] | None = None,
) -> Analysis:
    """Measure tickets opened in ``[since, until)`` (and the trend over ``weeks`` weeks);
    with ``owners``, only the tickets whose owner it accepts (a team, a rep) and the
    contacts of the reps it accepts."""
    when = now or api.crm.now()
    tickets: list[Ticket] = [
        t
        for t in api.tickets.iter({"opened_at": {"$gte": since, "$lt": until}})
        if owners is None or owners(t.owner)
    ]
    mine = {t.id for t in tickets}
    category: Counter[str] = Counter()
    cause: Counter[str] = Counter()
    department: Counter[str] = Counter()
    status: Counter[str] = Counter()
    fr_met = fr_missed = res_met = res_missed = invalid = resolved = reopened = 0
    answers = satisfied = 0
    scores: list[int] = []
    compensation = 0.0
    for t in tickets:
        category[t.category] += 1
        status[str(t.status)] += 1
        department[t.department or "(not dispatched)"] += 1
        if t.validity is Validity.INVALID and t.status is Status.CLOSED:
            invalid += 1
            cause["(invalid complaint)"] += 1
        elif t.resolved_at is not None or t.reopen_count or t.status is Status.CLOSED:
            cause[t.cause or "(not recorded)"] += 1
        if t.first_response_breached:
            fr_missed += 1
        elif t.first_response_at is not None:
            fr_met += 1
        ever_resolved = (
            t.resolved_at is not None
            or t.reopen_count > 0
            or (t.status is Status.CLOSED and t.validity is not Validity.INVALID)
        )
        if t.resolution_breaches:
            res_missed += 1
        elif ever_resolved:
            res_met += 1
        if ever_resolved:
            resolved += 1
        if t.reopen_count:
            reopened += 1
        if t.satisfied is not None:
            answers += 1
            satisfied += int(t.satisfied)
            if t.satisfaction is not None:
                scores.append(t.satisfaction)
        compensation += t.compensation or 0.0
    levels: Counter[str] = Counter()
    for trace in api.traces.iter({"action": "escalated", "at": {"$gte": since, "$lt": until}}):
        if owners is not None and trace.ticket_id not in mine:
            continue
        target = str(trace.details.get("target"))
        levels[
            msg(
                "level %(level)s (%(role)s)",
                level=trace.details.get("level"),
                role=term(target),
            )
        ] += 1
    # the period's contacts as stored documents (through the occurred_at index): a month at
    # 10k customers is thousands of them, and only two fields are wanted
    contacts = api.crm.collection("interactions").iter(
        {"occurred_at": {"$gte": iso(since), "$lt": iso(until)}}
    )
    served = {d["customer_id"] for d in contacts if owners is None or owners(d.get("rep"))}
    open_long = sum(
        1
        for t in api.tickets.iter(
            {
                "status": {
                    "$in": [
                        s.value
                        for s in Status
                        if s
                        in (Status.REGISTERED, Status.VALID, Status.DISPATCHED, Status.IN_PROGRESS)
                    ]
                },
                "opened_at": {"$lt": when - timedelta(hours=24)},
            }
        )
        if owners is None or owners(t.owner)
    )
    return Analysis(
        since=since,
        until=until,
        tickets=len(tickets),
        by_category=dict(category.most_common()),
        by_cause=dict(cause.most_common()),
        by_department=dict(department.most_common()),
        by_status=dict(status.most_common()),
        invalid=invalid,
        first_response_met=fr_met,
        first_response_missed=fr_missed,
        resolution_met=res_met,
        resolution_missed=res_missed,
        escalations_by_level=dict(sorted(levels.items())),
        resolved=resolved,
        reopened=reopened,
        satisfaction_answers=answers,
        satisfied=satisfied,
        satisfaction_average=round(sum(scores) / len(scores), 2) if scores else None,
        customers_served=len(served),
        complaint_rate=_ratio(len(tickets), len(served)),
        compensation_total=compensation,
        open_beyond_24h=open_long,
        weekly=weekly_trend(api, until, weeks),
        actions=action_rows(api, when),
    )


def weekly_trend(api: Complaints, until: datetime, weeks: int) -> list[dict[str, Any]]:
    """Tickets opened per calendar week (Monday start), oldest first, with the change on the
    week before. The last row is the (possibly partial) week holding ``until``."""
    last = week_start(api, until - timedelta(microseconds=1))
    rows: list[dict[str, Any]] = []
    previous: int | None = None
    first = last - timedelta(weeks=weeks - 1)
    counts = Counter(
        week_start(api, t.opened_at)
        for t in api.tickets.iter({"opened_at": {"$gte": first - timedelta(weeks=1), "$lt": until}})
    )
    previous = counts.get(first - timedelta(weeks=1), 0)
    for i in range(weeks):
        start = first + timedelta(weeks=i)
        count = counts.get(start, 0)
        change = None if previous == 0 else (count - previous) / previous
        rows.append({"week": start.date().isoformat(), "tickets": count, "change": change})
        previous = count
    return rows


def action_rows(api: Complaints, now: datetime) -> list[dict[str, Any]]:
    """Improvement actions with their state and measured effect (complaints per week they
    address: the four weeks before the action vs. the weeks since it closed, up to four)."""
    rows = []
    for action in api.actions.find(sort=[("created_at", 1)]):
        after = None
        if action.closed_at is not None and now > action.closed_at:
            end = min(now, action.closed_at + timedelta(weeks=4))
            after = api.weekly_rate(action, action.closed_at, end)
        rows.append(
            {
                "id": action.id,
                "what": action.what,
                "owner": action.owner,
                "due": action.due_at.date().isoformat(),
                "status": str(action.status),
                "overdue": action.status is ActionStatus.OPEN and action.due_at < now,
                "addresses": action.category or action.cause or "all complaints",
                "before_per_week": action.baseline_per_week,
                "after_per_week": after,
                "effect": action.effect,
            }
        )
    return rows


def report_sections(analysis: Analysis) -> list[ReportSection]:
    """``crm complaints report`` as report sections (tables and bar charts)."""
    a = analysis
    period = msg(
        "tickets opened %(since)s to %(until)s",
        since=a.since.date().isoformat(),
        until=a.until.date().isoformat(),
    )
    sections = [
        ReportSection(
            N_("Complaints: overview"),
            (N_("measure"), N_("value")),
            [
                (N_("tickets opened"), a.tickets),
                (N_("customers served (any interaction)"), a.customers_served),
                (N_("complaint rate (tickets / customers served)"), _pct(a.complaint_rate)),
                (N_("judged invalid"), a.invalid),
                (
                    N_("first-response SLA met"),
                    f"{_pct(a.first_response_compliance)} "
                    f"({a.first_response_met} of "
                    f"{a.first_response_met + a.first_response_missed})",
                ),
                (
                    N_("resolution SLA met"),
                    f"{_pct(a.resolution_compliance)} ({a.resolution_met} of "
                    f"{a.resolution_met + a.resolution_missed})",
                ),
                (
                    N_("reopen rate"),
                    f"{_pct(a.reopen_rate)} ({a.reopened} of {a.resolved} resolved)",
                ),
                (
                    N_("satisfied at callback"),
                    f"{_pct(a.satisfied_rate)} ({a.satisfied} of {a.satisfaction_answers} answers)",
                ),
                (
                    N_("average satisfaction score"),
                    "n/a"
                    if a.satisfaction_average is None
                    else f"{a.satisfaction_average:.2f} / 5",
                ),
                (N_("compensation granted"), round(a.compensation_total, 2)),
                (N_("unresolved now and open more than 24 hours"), a.open_beyond_24h),
            ],
            note=period,
            order=60,
        ),
        ReportSection(
            N_("Complaints by category"),
            (N_("category"), N_("tickets")),
            list(a.by_category.items()),
            chart=dict(a.by_category),
            order=61,
        ),
        ReportSection(
            N_("Complaints by cause"),
            (N_("cause"), N_("tickets")),
            list(a.by_cause.items()),
            chart=dict(a.by_cause),
            note=N_("root cause recorded at resolution"),
            order=62,
        ),
        ReportSection(
            N_("Complaints by department"),
            (N_("department"), N_("tickets")),
            list(a.by_department.items()),
            chart=dict(a.by_department),
            order=63,
        ),
        ReportSection(
            N_("Complaint escalations by level"),
            (N_("level"), N_("escalations")),
            list(a.escalations_by_level.items()),
            chart=dict(a.escalations_by_level) or None,
            order=64,
        ),
        ReportSection(
            N_("Complaints week over week"),
            (N_("week from"), N_("tickets"), N_("change")),
            [
                (w["week"], w["tickets"], _pct(w["change"]) if w["change"] is not None else "")
                for w in a.weekly
            ],
            chart={w["week"]: w["tickets"] for w in a.weekly},
            order=65,
        ),
        ReportSection(
            N_("Improvement actions"),
            (
                N_("what"),
                N_("owner"),
                N_("due"),
                N_("status"),
                N_("addresses"),
                N_("per week before"),
                N_("per week after"),
                N_("effect"),
            ),
            [
                (
                    r["what"],
                    r["owner"],
                    r["due"],
                    f"{r['status']}{' (overdue)' if r['overdue'] else ''}",
                    r["addresses"],
                    r["before_per_week"],
                    r["after_per_week"],
                    r["effect"],
                )
                for r in a.actions
            ],
            note=N_("plan-do-check-act: tracked to closure with their measured effect"),
            order=66,
        ),
    ]
    return sections


def domain_sections(
    api: Complaints, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """The DOMAIN §7 complaint measures for ``crm report``: over the report's period (else
    the last ``report_days`` days), for the tickets its team or rep owns."""
    window = window or ReportWindow()
    since = window.since or now - timedelta(days=api.settings.report_days)
    until = window.until or now + timedelta(microseconds=1)
    a = analyse(
        api,
        since,
        until,
        weeks=4,
        now=now,
        owners=None if window.everyone else window.rep_filter(api.crm),
    )
    rows = [
        (N_("complaint rate (tickets / customers served)"), _pct(a.complaint_rate)),
        (N_("tickets opened"), a.tickets),
        (N_("first-response SLA met"), _pct(a.first_response_compliance)),
        (N_("resolution SLA met"), _pct(a.resolution_compliance)),
        (N_("unresolved and open more than 24 hours"), a.open_beyond_24h),
        (N_("reopen rate"), _pct(a.reopen_rate)),
        (N_("satisfied at callback"), _pct(a.satisfied_rate)),
        *(
            (msg("escalations: %(level)s", level=label), n)
            for label, n in a.escalations_by_level.items()
        ),
    ]
    title = (
        msg("Complaints (last %(days)s days)", days=api.settings.report_days)
        if window.since is None
        else msg(
            "Complaints (%(since)s to %(until)s)",
            since=since.date().isoformat(),
            until=until.date().isoformat(),
        )
    )
    if window.rep:
        title = joined(title, msg("rep %(rep)s", rep=window.rep), sep=", ")
    elif window.team:
        title = joined(title, msg("team %(team)s", team=window.team), sep=", ")
    return [
        ReportSection(
            title,
            (N_("measure"), N_("value")),
            rows,
            chart=dict(a.by_category) or None,
            note=N_("details: crm complaints report"),
            order=60,
            charts=trend_charts(api, since, until, window),
        )
    ]


def trend_charts(
    api: Complaints, since: datetime, until: datetime, window: ReportWindow | None = None
) -> list[Chart]:
    """Tickets opened, and SLA breaches of those tickets, per day, week or month of
    [``since``, ``until``) (by the length of the period), for the window's team or rep."""
    window = window or ReportWindow()
    owners = None if window.everyone else window.rep_filter(api.crm)
    periods = buckets(since, until, api.zone)
    at = bucket_index(periods)
    opened = [0.0] * len(periods)
    first = [0.0] * len(periods)
    resolution = [0.0] * len(periods)
    for t in api.tickets.iter({"opened_at": {"$gte": since, "$lt": until}}):
        slot = at(t.opened_at)
        if slot is None or (owners is not None and not owners(t.owner)):
            continue
        opened[slot] += 1
        first[slot] += t.first_response_breached
        resolution[slot] += bool(t.resolution_breaches)
    labels = [b.label for b in periods]
    axis = axis_name(periods)
    return [
        Chart(
            N_("Complaints opened"),
            labels,
            [Series(N_("complaints"), opened)],
            unit=N_("tickets"),
            y_label=N_("Complaints"),
            x_label=axis,
            key="complaints_trend",
        ),
        Chart(
            N_("SLA breaches"),
            labels,
            [Series(N_("first response late"), first), Series(N_("resolution late"), resolution)],
            unit=N_("tickets"),
            y_label=N_("Complaints breaching"),
            x_label=msg("%(axis)s (opened)", axis=term(axis)),
            key="sla_breaches_trend",
        ),
    ]


def customer_summary(api: Complaints, customer_id: str) -> list[SummaryLine]:
    """One line for ``crm customer show``: open and total complaints, last satisfaction."""
    tickets = api.tickets.find({"customer_id": customer_id}, sort=[("opened_at", 1)])
    if not tickets:
        return []
    open_ids = [t.id for t in tickets if t.is_open]
    answered = [t for t in tickets if t.satisfaction is not None]
    text = f"{len(tickets)} complaint(s), {len(open_ids)} open"
    if open_ids:
        text += f" ({', '.join(open_ids[:3])}{' …' if len(open_ids) > 3 else ''})"
    if answered:
        text += f"; last satisfaction {answered[-1].satisfaction}/5"
    return [SummaryLine("complaints", text)]
