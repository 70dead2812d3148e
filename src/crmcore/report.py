"""``crm report``: the measures managers watch (DOMAIN §7), from the core and every plugin."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from crmcore import names
from crmcore.charts import Chart, Series, axis_name, bucket_index, buckets, percent, trend_period
from crmcore.converter import iso, parse_iso
from crmcore.entities import CustomerStatus, TaskStatus
from crmcore.errors import ValidationError
from crmcore.i18n import N_, joined
from crmcore.registry import ReportSection, ReportWindow
from crmcore.storage.base import batches

if TYPE_CHECKING:
    from crmcore.app import CRM


#: The built-in interaction and task kinds as table cells show them ("follow_up" -> "follow
#: up"), for the catalog: kinds a plugin or a profile adds stay as written.
KIND_WORDS = (
    N_("purchase"),
    N_("refund"),
    N_("consultation"),
    N_("inquiry"),
    N_("complaint"),
    N_("callback"),
    N_("follow up"),
    N_("care"),
    N_("visit"),
    N_("treatment"),
    N_("business"),
    N_("billing"),
    N_("feedback"),
    N_("event"),
    N_("survey"),
    N_("referral"),
    N_("note"),
    N_("other"),
    N_("first contact"),
    N_("retention"),
)


def team_of(crm: CRM, rep: str, cache: dict[str, str | None]) -> str | None:
    """A rep's team (``crm.actor``: the roster or ``[security.actors]``), cached per report."""
    if rep not in cache:
        actor = crm.actor(rep)
        cache[rep] = actor.team if actor is not None else None
    return cache[rep]


def core_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Sections built from core data alone: customers, contacts, tasks, conversion per rep and
    per team, over ``window`` (contacts in its period, of its team or rep)."""
    window = window or ReportWindow()
    teams: dict[str, str | None] = {}
    in_scope = window.rep_filter(crm)

    interactions_by_kind: Counter[str] = Counter()
    served: dict[str, set[str]] = defaultdict(set)
    bought: dict[str, set[str]] = defaultdict(set)
    periods = buckets(*trend_period(window.since, window.until or now), crm.config.core.timezone)
    at = bucket_index(periods)
    contacts_per = [0.0] * len(periods)
    purchases_per = [0.0] * len(periods)
    for doc, rep in contacts(crm, window):
        if not window.everyone and not in_scope(rep):
            continue
        kind = doc["kind"]
        interactions_by_kind[kind] += 1
        slot = at(parse_iso(doc["occurred_at"]))
        if slot is not None:
            contacts_per[slot] += 1
            purchases_per[slot] += kind == "purchase"
        if rep is None:
            continue
        served[rep].add(doc["customer_id"])
        if kind == "purchase":
            bought[rep].add(doc["customer_id"])
    due_by_kind: Counter[str] = Counter()
    overdue_by_kind: Counter[str] = Counter()
    members = window.reps(crm)
    if window.brief and (window.everyone or members is not None):
        # the key figures alone: counted through the tasks' (assignee, status, due_at) and
        # (status, due_at) indexes, no task read
        mine: dict[str, Any] = {"status": TaskStatus.OPEN.value}
        if members is not None:
            mine["assignee"] = {"$in": members}
        n_open = crm.tasks.count(mine)
        n_due = crm.tasks.count({**mine, "due_at": {"$lte": now}})
        n_overdue = crm.tasks.count({**mine, "due_at": {"$lt": now - timedelta(days=1)}})
    else:
        open_tasks = [
            t
            for t in crm.tasks.find({"status": TaskStatus.OPEN.value})
            if window.everyone or in_scope(t.assignee)
        ]
        for task in open_tasks:
            if task.due_at <= now:
                due_by_kind[task.kind] += 1
            if task.due_at < now - timedelta(days=1):
                overdue_by_kind[task.kind] += 1
        n_open = len(open_tasks)
        n_due = sum(due_by_kind.values())
        n_overdue = sum(overdue_by_kind.values())
    scope = window.label()
    sections = [
        ReportSection(
            N_("Customers and contacts"),
            (N_("measure"), N_("value")),
            [
                (N_("active customers"), active_customers(crm, window, members)),
                (N_("interactions logged"), sum(interactions_by_kind.values())),
                (N_("open tasks"), n_open),
                (N_("tasks due now"), n_due),
                (N_("tasks overdue by more than a day"), n_overdue),
            ],
            note=scope,
            order=0,
            charts=[
                Chart(
                    N_("Contacts and purchases"),
                    [b.label for b in periods],
                    [
                        Series(N_("all contacts"), contacts_per),
                        Series(N_("purchases"), purchases_per),
                    ],
                    kind="line",
                    unit=N_("interactions"),
                    y_label=N_("Interactions logged"),
                    x_label=axis_name(periods),
                    key="contacts_trend",
                )
            ],
        ),
        ReportSection(
            N_("Interactions by kind"),
            (N_("kind"), N_("count")),
            sorted(interactions_by_kind.items(), key=lambda kv: -kv[1]),
            chart=dict(interactions_by_kind.most_common(10)),
            note=scope,
            order=1,
        ),
        ReportSection(
            N_("Tasks due by kind"),
            (N_("kind"), N_("due now"), N_("overdue > 1 day")),
            [(k, due_by_kind[k], overdue_by_kind[k]) for k in sorted(due_by_kind)],
            order=2,
        ),
    ]
    rows = []
    for rep in sorted(served):
        n_served, n_bought = len(served[rep]), len(bought[rep])
        rows.append((rep, n_served, n_bought, f"{n_bought / n_served:.1%}"))
    sections.append(
        ReportSection(
            N_("Conversion rate per rep"),
            (N_("rep"), N_("customers served"), N_("customers who bought"), N_("conversion")),
            rows,
            chart={r[0]: round(len(bought[r[0]]) / len(served[r[0]]) * 100, 1) for r in rows},
            note=joined(
                N_("customers who bought / customers served"),
                N_("a contact counts for the rep named on it, else for the customer's own rep"),
                scope,
            ),
            order=3,
            charts=[
                conversion_chart(
                    N_("Conversion per rep"),
                    N_("Rep"),
                    "conversion_rep",
                    {rep: (len(served[rep]), len(bought[rep])) for rep in served},
                )
            ],
        )
    )
    team_served: dict[str, set[str]] = defaultdict(set)
    team_bought: dict[str, set[str]] = defaultdict(set)
    for rep in served:
        team = team_of(crm, rep, teams) or N_("(no team)")
        team_served[team] |= served[rep]
        team_bought[team] |= bought[rep]
    team_rows = [
        (
            team,
            len(team_served[team]),
            len(team_bought[team]),
            f"{len(team_bought[team]) / len(team_served[team]):.1%}",
        )
        for team in sorted(team_served)
    ]
    sections.append(
        ReportSection(
            N_("Conversion rate per team"),
            (N_("team"), N_("customers served"), N_("customers who bought"), N_("conversion")),
            team_rows,
            chart={r[0]: round(r[2] / r[1] * 100, 1) for r in team_rows},
            note=joined(N_("a rep's team from the roster or [security.actors]"), scope),
            order=4,
            charts=[
                conversion_chart(
                    N_("Conversion per team"),
                    N_("Team"),
                    "conversion_team",
                    {
                        team: (len(team_served[team]), len(team_bought[team]))
                        for team in team_served
                    },
                )
            ],
        )
    )
    return shown(sections) if window.brief else sections


def shown(sections: list[ReportSection]) -> list[ReportSection]:
    """What the dashboard shows of a source's sections: its first two-column table with rows
    (its key figures) and the sections that have charts."""
    first = next((s for s in sections if len(s.columns) == 2 and s.rows), None)
    return [s for s in sections if s is first or s.charts]


def contacts(crm: CRM, window: ReportWindow) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The stored interactions that occurred in the window's period (through the
    ``occurred_at`` index), each with the rep it counts for: the rep named on it, else the
    customer's own rep (looked up only for those that name none; never a system actor)."""
    period: dict[str, Any] = {}
    if window.since is not None:
        period["$gte"] = iso(window.since)
    if window.until is not None:
        period["$lt"] = iso(window.until)
    docs = crm.collection(names.INTERACTIONS).iter({"occurred_at": period} if period else None)
    for batch in batches(docs, 1000):
        unnamed = sorted({d["customer_id"] for d in batch if not d.get("rep")})
        owners: dict[str, str | None] = {}
        if unnamed:
            found = crm.collection(names.CUSTOMERS).find({"id": {"$in": unnamed}})
            owners = {c["id"]: c.get("owner") for c in found if c.get("status") == "active"}
        for doc in batch:
            yield doc, doc.get("rep") or owners.get(doc["customer_id"])


def active_customers(crm: CRM, window: ReportWindow, members: list[str] | None = None) -> int:
    """Active customers owned by the window's rep or a rep of its team (everyone's: all).
    ``members``: ``window.reps(crm)``, when the caller has it."""
    if window.everyone:
        return crm.customers.count()
    if members is None:
        members = window.reps(crm)
    if members is not None:  # through the (owner, status) index
        return crm.customers.count({"owner": {"$in": members}}) if members else 0
    in_scope = window.rep_filter(crm)
    return sum(
        1
        for doc in crm.collection(names.CUSTOMERS).iter({"status": CustomerStatus.ACTIVE.value})
        if doc.get("owner") is not None and in_scope(doc["owner"])
    )


def conversion_chart(
    title: str, x_label: str, key: str, counts: dict[str, tuple[int, int]]
) -> Chart:
    """Conversion (customers who bought / customers served, %) per rep or team: ``counts``
    maps each name to (served, bought)."""
    names = sorted(counts)
    return Chart(
        title,
        names,
        [Series(N_("conversion"), [percent(counts[n][1], counts[n][0]) for n in names])],
        unit="%",
        y_label=N_("Customers who bought"),
        x_label=x_label,
        key=key,
    )


def effective_window(window: ReportWindow | None, now: datetime) -> ReportWindow:
    """The window a report covers: ``window`` with its end at ``now`` (included) when open;
    refused when it ends before it starts."""
    window = window or ReportWindow()
    if window.until is None:  # up to now, now included
        window = attrs.evolve(window, until=now + timedelta(microseconds=1))
    if window.since is not None and window.until is not None and window.since >= window.until:
        raise ValidationError("the report period must end after it starts")
    return window


def build_report(
    crm: CRM, now: datetime | None = None, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Every section, the core's first, then plugins' by their ``order``, over ``window``
    (default: everything up to now)."""
    when = now or crm.now()
    window = effective_window(window, when)
    sections = core_sections(crm, when, window)
    sections += crm.plugins.crm_report_sections(crm=crm, now=when, window=window)
    return sorted(sections, key=lambda s: s.order)


def period_window(now: datetime, period: str, zone: str) -> tuple[datetime, datetime]:
    """The current ``day``, ``week`` (from Monday) or ``month`` in the business time zone,
    up to ``now`` included."""
    local = now.astimezone(ZoneInfo(zone))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        start -= timedelta(days=start.weekday())
    elif period == "month":
        start = start.replace(day=1)
    elif period != "day":
        raise ValidationError(f"unknown period {period!r} (day, week or month)")
    return start.astimezone(UTC), now + timedelta(microseconds=1)


def report_by_source(
    crm: CRM, now: datetime | None = None, window: ReportWindow | None = None
) -> list[tuple[str, list[ReportSection]]]:
    """The report's sections grouped by where they come from: ``("core", [...])`` first, then
    each plugin that has sections, by its first section's ``order`` (for the dashboard's
    cards)."""
    when = now or crm.now()
    window = effective_window(window, when)
    groups: dict[str, list[ReportSection]] = {"core": core_sections(crm, when, window)}
    for plugin, section in crm.plugins.crm_report_sections_by_plugin(
        crm=crm, now=when, window=window
    ):
        groups.setdefault(plugin, []).append(section)
    ordered = sorted(
        (
            (name, sorted(sections, key=lambda s: s.order))
            for name, sections in groups.items()
            if sections
        ),
        key=lambda pair: (pair[0] != "core", pair[1][0].order, pair[0]),
    )
    return ordered


PERIODS = ("day", "week", "month", "custom")


def _day(text: str, field: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"{field} must be a date like 2026-01-31, not {text!r}", field=field
        ) from None


def chosen_window(
    now: datetime,
    zone: str,
    period: str = "week",
    since: str = "",
    until: str = "",
    team: str | None = None,
    rep: str | None = None,
) -> ReportWindow:
    """The window a dashboard's form asks for: the current ``day``, ``week`` or ``month`` in
    the business time zone, or ``custom`` dates ``since`` to ``until`` (both days included,
    ``YYYY-MM-DD``); for ``team`` or ``rep`` (None or empty: everyone)."""
    if period not in PERIODS:
        raise ValidationError(
            f"period must be one of {', '.join(PERIODS)}, not {period!r}", field="period"
        )
    if period != "custom":
        start, end = period_window(now, period, zone)
    else:
        if not since:
            raise ValidationError("a custom period needs its first day", field="since")
        tz = ZoneInfo(zone)
        first = _day(since, "since")
        last = _day(until, "until") if until else now.astimezone(tz).date()
        if last < first:
            raise ValidationError("the period must end after it starts", field="until")
        if (last - first).days > 3 * 366:
            raise ValidationError("choose a period of at most three years", field="since")
        start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return ReportWindow(since=start, until=end, team=team or None, rep=rep or None)
