"""``crm report`` sections (grade pyramid, value tiers, churn watch) and summary lines."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import NotFoundError, ReportSection, ReportWindow, SummaryLine, Task, TaskStatus
from crmcore.converter import iso, parse_iso
from crmcore.i18n import N_, joined, msg, restored, term
from crmcore_grading.churn import rank, watched
from crmcore_grading.engine import NAMESPACE, Engine, engine_for
from crmcore_grading.outcomes import CHURN_TYPES, measures
from crmcore_grading.records import HISTORY
from crmcore_grading.signals import Signals, aggregate

if TYPE_CHECKING:
    from crmcore import CRM, Customer

MEANINGS = {
    "A": N_("clear need, closing within 1 month"),
    "B": N_("clear need, closing within 3 months"),
    "C": N_("clear need, closing within 6 months"),
    "D": N_("potential need, or closing later"),
    "E": N_("no need or no chance (dead)"),
}
OUTCOME_DAYS = 90
RISK_ROWS = {
    "high": N_("risk high"),
    "medium": N_("risk medium"),
    "low": N_("risk low"),
    "none": N_("risk none"),
}
#: The built-in segment and tier names as table cells show them (``at_risk`` -> "at risk"),
#: for the catalog: names a client configures stay as written.
DEFAULT_TIER_NAMES = (
    N_("champions"),
    N_("loyal"),
    N_("cant lose"),
    N_("new"),
    N_("promising"),
    N_("need attention"),
    N_("potential loyalist"),
    N_("at risk"),
    N_("about to sleep"),
    N_("hibernating"),
    N_("other"),
    N_("vip"),
    N_("major"),
    N_("ordinary"),
    N_("small"),
    N_("big"),
    N_("potential big"),
    N_("general"),
)
#: How each kind of loss reads in a report (DOMAIN §9).
CHURN_TYPE_NAMES = {
    "natural": N_("natural"),
    "malicious": N_("malicious"),
    "competitive": N_("competitive"),
    "negligent": N_("negligent"),
}
LABELS = {
    "pipeline": N_("grade"),
    "rfm": N_("RFM segment"),
    "pyramid": N_("pyramid tier"),
    "hospital": N_("hospital tier"),
}


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


class Scope:
    """What the report's window asks of the state sections: the customers of its team or rep
    (by owner), the state as of its end (``at``; now without an end), and what happened in
    its period."""

    def __init__(self, crm: CRM, now: datetime, window: ReportWindow | None) -> None:
        self.window = window or ReportWindow()
        self.owns = self.window.rep_filter(crm)
        until = self.window.until
        self.at = until if until is not None and until < now else now
        self.past = self.at < now  # the state is rebuilt from the grade history
        # a period that is not simply "everything up to now"
        self.period = self.window.since is not None or self.past
        self._earlier: dict[tuple[str, str], str | None] = {}
        self.earlier = self._earlier  # (customer, scheme): the grade held at ``at``, if changed
        if self.past:
            # the first change of each customer's grade after ``at`` says what it was then
            after = {"at": {"$gt": iso(self.at)}}
            for doc in sorted(crm.collection(HISTORY).iter(after), key=lambda d: d["at"]):
                self._earlier.setdefault((doc["customer_id"], doc["scheme"]), doc.get("old"))

    def grade(self, cid: str, scheme: str, now: str | None) -> str | None:
        """The grade (or churn level, scheme "churn") a customer held at ``at``."""
        return self._earlier.get((cid, scheme), now) if self.past else now

    def grades(self, cid: str, names: list[str], now: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for name in names:
            grade = self.grade(cid, name, now.get(name))
            if grade is not None:
                out[name] = grade
        return out

    def open_at(self, task: Task) -> bool:
        """Whether ``task`` was open at ``at`` (done: until completed; cancelled: until its
        last change)."""
        if task.created_at > self.at:
            return False
        if task.status is TaskStatus.OPEN:
            return True
        ended = task.completed_at if task.status is TaskStatus.DONE else task.updated_at
        return ended is not None and ended > self.at

    def label(self) -> str:
        """Whose and when, for a note."""
        when = (
            msg("as of %(when)s", when=self.at.isoformat()[:16].replace("T", " "))
            if self.past
            else term(N_("now"))
        )
        if self.window.rep:
            return msg("rep %(rep)s's customers, %(when)s", rep=self.window.rep, when=when)
        if self.window.team:
            return msg("team %(team)s's customers, %(when)s", team=self.window.team, when=when)
        return when


def _period_spend(
    crm: CRM, engine: Engine, window: ReportWindow, now: datetime, ids: Mapping[str, Any]
) -> dict[str, float]:
    """Net spend per customer from interactions that occurred in the window's period."""
    query: dict[str, Any] = {"occurred_at": {"$lt": iso(window.until or now)}}
    if window.since is not None:
        query["occurred_at"]["$gte"] = iso(window.since)
    accs, _n = aggregate(
        crm.collection("interactions").iter(query), engine.folder, engine.window(now), ids
    )
    return {cid: acc.spend / 100 for cid, acc in accs.items()}


def sections(crm: CRM, now: datetime, window: ReportWindow | None = None) -> list[ReportSection]:
    """Grade and tier distributions and the churn watch, from one pass over customers: the
    window's team or rep's customers (by owner), as of the window's end (from the grade
    history); revenue and churn rises are counted over its period."""
    engine = engine_for(crm)
    scope = Scope(crm, now, window)
    if scope.window.brief:
        # the dashboard shows the churn watch alone: read only the customers it watches
        watching, at_levels = _watched(crm, engine, scope)
        order = 20 + len(engine.schemes)
        return [_churn_section(crm, engine, scope, now, watching, at_levels, order)]
    names = [s.name for s in engine.schemes]
    counts: dict[str, Counter[str]] = {n: Counter() for n in names}
    revenue: dict[str, defaultdict[str, float]] = {n: defaultdict(float) for n in names}
    levels: Counter[str] = Counter()
    watch = 0
    total = 0
    held: dict[str, dict[str, str]] = {}
    lifetime: dict[str, float] = {}
    for doc in crm.collection("customers").iter({"status": "active"}):
        if not scope.owns(doc.get("owner")):
            continue
        if scope.past and str(doc.get("created_at") or "") > iso(scope.at):
            continue  # not a customer yet
        cid = doc["id"]
        total += 1
        grading = (doc.get("ext") or {}).get(NAMESPACE) or {}
        grades = held[cid] = scope.grades(cid, names, grading.get("grades") or {})
        lifetime[cid] = Signals(grading.get("signals") or {}).spend
        if watched(grades, engine.settings.churn):
            watch += 1
            now_level = (grading.get("churn") or {}).get("level", "none")
            levels[scope.grade(cid, "churn", now_level) or "none"] += 1
    spend = _period_spend(crm, engine, scope.window, now, held) if scope.period else lifetime
    for cid, grades in held.items():
        for name, grade in grades.items():
            if name in counts:
                counts[name][grade] += 1
                revenue[name][grade] += spend.get(cid, 0.0)
    spent = (
        N_("revenue: net spend in the period") if scope.period else N_("revenue: net spend to date")
    )
    out: list[ReportSection] = []
    order = 20
    for scheme in engine.schemes:
        name = scheme.name
        graded = sum(counts[name].values())
        if name == "pipeline":
            rows: list[tuple[Any, ...]] = [
                (g, MEANINGS[g], counts[name][g], _share(counts[name][g], total)) for g in "ABCDE"
            ]
            rows.append(
                (
                    "-",
                    N_("not graded (no demand recorded)"),
                    total - graded,
                    _share(total - graded, total),
                )
            )
            out.append(
                ReportSection(
                    N_("Pipeline grades (A-E)"),
                    (N_("grade"), N_("meaning"), N_("customers"), N_("share")),
                    rows,
                    chart={g: counts[name][g] for g in "ABCDE"},
                    note=joined(N_("follow-up cadence follows the grade"), scope.label()),
                    order=order,
                )
            )
        else:
            tiers = (
                list(reversed(scheme.tiers))
                if scheme.ordered
                else [t for t, _ in counts[name].most_common()]
            )
            tiers += [t for t in counts[name] if t not in tiers]
            all_revenue = sum(revenue[name].values())
            rows = [
                (
                    t,
                    counts[name][t],
                    _share(counts[name][t], graded),
                    round(revenue[name][t], 2),
                    _share(revenue[name][t], all_revenue),
                )
                for t in tiers
                if counts[name][t] or scheme.ordered
            ]
            title = msg(
                "Value tiers: %(scheme)s", scheme=term(LABELS[name]) if name in LABELS else name
            )
            out.append(
                ReportSection(
                    title,
                    (N_("tier"), N_("customers"), N_("share"), N_("revenue"), N_("revenue share")),
                    rows,
                    chart={t: counts[name][t] for t in tiers if counts[name][t]},
                    note=joined(
                        msg("%(graded)s of %(total)s customers graded", graded=graded, total=total),
                        scope.label(),
                        spent,
                    ),
                    order=order,
                )
            )
        order += 1
    out.append(_churn_section(crm, engine, scope, now, watch, levels, order))
    out.append(outcomes_section(crm, now, order, window))
    return out


def _watched(crm: CRM, engine: Engine, scope: Scope) -> tuple[int, Counter[str]]:
    """The active customers of the scope holding a valuable tier at the scope's instant, and
    how many of them were at each churn level then: the same count as the report's pass over
    every customer, read through a filter on the valuable tiers (which a backend answers
    without decoding the customers that hold none). For an instant in the past, the
    customers holding one now and those the grade history says held one then."""
    valuable = engine.settings.churn.valuable
    found: dict[str, dict[str, Any]] = {}
    for scheme, tiers in valuable.items():
        query = {f"ext.{NAMESPACE}.grades.{scheme}": {"$in": list(tiers)}}
        for doc in crm.collection("customers").find(query):
            found[doc["id"]] = doc
    if scope.past:
        then = sorted(
            {cid for (cid, scheme), old in scope.earlier.items() if old in valuable.get(scheme, ())}
            - set(found)
        )
        if then:
            for doc in crm.collection("customers").find({"id": {"$in": then}}):
                found[doc["id"]] = doc
    names = [s.name for s in engine.schemes]
    at = iso(scope.at)
    watch = 0
    levels: Counter[str] = Counter()
    for cid, doc in found.items():
        if doc.get("status") != "active" or not scope.owns(doc.get("owner")):
            continue
        if scope.past and str(doc.get("created_at") or "") > at:
            continue  # not a customer yet
        grading = (doc.get("ext") or {}).get(NAMESPACE) or {}
        if watched(scope.grades(cid, names, grading.get("grades") or {}), engine.settings.churn):
            watch += 1
            now_level = (grading.get("churn") or {}).get("level", "none")
            levels[scope.grade(cid, "churn", now_level) or "none"] += 1
    return watch, levels


def _churn_section(
    crm: CRM,
    engine: Engine,
    scope: Scope,
    now: datetime,
    watch: int,
    levels: Counter[str],
    order: int,
) -> ReportSection:
    """Watched customers by churn level and open retention tasks as of the window's end;
    with a period, the rises and retention tasks in it."""
    open_retention = created = 0
    # through the tasks' (kind, source) index this plugin declares: the retention tasks alone
    for task in crm.tasks.find({"kind": "retention", "source": "grading"}):
        if not scope.owns(task.assignee):
            continue
        open_retention += scope.open_at(task)
        created += scope.window.contains(task.created_at) and task.created_at <= now
    rows: list[tuple[str, int]] = [
        (N_("watched (hold a valuable tier)"), watch),
        *((RISK_ROWS[level], levels[level]) for level in ("high", "medium", "low", "none")),
        (N_("open retention tasks"), open_retention),
    ]
    if scope.period:
        rises = 0
        owners: dict[str, bool] = {}
        period: dict[str, Any] = {}
        if scope.window.until is not None:
            period["$lt"] = iso(scope.window.until)
        if scope.window.since is not None:
            period["$gte"] = iso(scope.window.since)
        # through the (scheme, at) index: the changes of the period only
        query: dict[str, Any] = {"scheme": "churn", "at": period} if period else {"scheme": "churn"}
        for doc in crm.collection(HISTORY).iter(query):
            at = parse_iso(doc["at"])
            if not scope.window.contains(at) or rank(doc.get("new")) <= rank(doc.get("old")):
                continue
            cid = doc["customer_id"]
            if cid not in owners:
                try:
                    owners[cid] = scope.owns(crm.customers.get_any(cid).owner)
                except NotFoundError:
                    owners[cid] = False
            rises += owners[cid]
        rows += [
            (N_("risk rose in the period"), rises),
            (N_("retention tasks created in the period"), created),
        ]
    population = engine.population(now)
    when = population.get("computed_at") if population.get("cutoffs") is not None else None
    return ReportSection(
        N_("Churn watch (valuable customers)"),
        (N_("measure"), N_("customers")),
        rows,
        chart={level: levels[level] for level in ("high", "medium", "low")},
        note=joined(
            scope.label(),
            msg("population tiers computed %(when)s", when=when[:16].replace("T", " "))
            if when
            else N_("population tiers never computed"),
        ),
        order=order,
    )


def outcomes_section(
    crm: CRM, now: datetime, order: int, window: ReportWindow | None = None
) -> ReportSection:
    """Churn counted over the report's period, else the last 90 days (DOMAIN §9): churn,
    win-back, repeat purchase."""
    since = (
        window.since
        if window is not None and window.since is not None
        else now - timedelta(days=OUTCOME_DAYS)
    )
    until = window.until if window is not None and window.until is not None else now
    m = measures(crm, since, until)
    title = (
        N_("Churn outcomes (last 90 days)")
        if window is None or window.since is None
        else msg(
            "Churn outcomes (%(since)s to %(until)s)",
            since=since.isoformat()[:10],
            until=until.isoformat()[:10],
        )
    )

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    return ReportSection(
        title,
        (N_("measure"), N_("value")),
        [
            (N_("active at the start"), m.active_at_start),
            (N_("lost"), m.lost),
            *(
                (
                    msg(
                        "lost: %(type)s",
                        type=term(CHURN_TYPE_NAMES[t]) if t in CHURN_TYPE_NAMES else t,
                    ),
                    m.by_type.get(t, 0),
                )
                for t in CHURN_TYPES
            ),
            (N_("churn rate"), pct(m.churn_rate)),
            (N_("won back / losses open"), f"{m.won_back} / {m.losses_open}"),
            (N_("win-back rate"), pct(m.win_back_rate)),
            (N_("repeat-purchase rate"), pct(m.repeat_purchase_rate)),
        ],
        chart={t: m.by_type.get(t, 0) for t in CHURN_TYPES},
        note=joined(
            N_("customers marked lost with 'crm grade lost'"), N_("a purchase wins them back")
        ),
        order=order,
    )


def summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    """One line per stored grade with its reason, and the churn risk when there is one."""
    engine = engine_for(crm)
    grading = customer.ext.get(NAMESPACE) or {}
    grades = grading.get("grades") or {}
    reasons = grading.get("reasons") or {}
    names = [s.name for s in engine.schemes if s.name in grades]
    names += sorted(n for n in grades if n not in names)
    lines = []
    for name in names:
        reason = restored(reasons.get(name)) if reasons.get(name) else ""
        text = f"{grades[name]}: {reason}" if reason else grades[name]
        lines.append(SummaryLine(LABELS.get(name, f"{name} grade"), text))
    risk = grading.get("churn") or {}
    if risk.get("level", "none") != "none":
        lines.append(
            SummaryLine(
                "churn risk",
                f"{risk['level']}: {'; '.join(restored(r) for r in risk.get('reasons') or [])}",
            )
        )
    return lines
