"""``crm report`` sections: open orders by type and step, orders opened and closed, step SLA
breaches, cycle time per step, cancellations by reason, money settled, surveys, first response,
care campaigns and QA, over the report's window (its period, else the last ``report_days``
days; its team or rep, else everyone).

Who an order belongs to is its owner (the first contact, who tracks it to the end); survey
answers belong to the customer's rep, first responses to whoever answered, care contacts to
whoever made them and QA lines to the rep reviewed."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from crmcore import NotFoundError, ReportSection, ReportWindow
from crmcore.i18n import N_, joined, msg
from crmcore_service.api import Service
from crmcore_service.campaigns import Campaigns
from crmcore_service.model import Order
from crmcore_service.qa import QualityAssurance, month_bounds, month_of
from crmcore_service.response import ResponseTimes
from crmcore_service.surveys import Surveys

Who = Callable[[str | None], bool]
_TICK = timedelta(microseconds=1)
MAX_QA_MONTHS = 12  # the service-quality lines of at most this many months, the latest


class Scope:
    """The report window made concrete: ``[since, until)`` and who counts."""

    def __init__(self, api: Service, now: datetime, window: ReportWindow | None) -> None:
        self.api = api
        self.window = window = window or ReportWindow()
        self.since = window.since or now - timedelta(days=api.settings.report_days)
        self.until = window.until or now + _TICK
        self.now = now
        self.counts = window.rep_filter(api.crm)  # counts(rep): whether rep's work counts
        self._owners: dict[str, str | None] = {}

    @property
    def who(self) -> Who | None:
        """A test of a rep's name, None when everyone counts."""
        return None if self.window.everyone else self.counts

    def order(self, order: Order) -> bool:
        return self.window.everyone or self.counts(order.owner)

    def order_id(self, order_id: str) -> bool:
        """Whether the order ``order_id`` counts (by its owner)."""
        if self.window.everyone:
            return True
        if order_id not in self._owners:
            try:
                self._owners[order_id] = self.api.orders.get(order_id).owner
            except NotFoundError:  # gone with its customer: nobody's
                self._owners[order_id] = None
        owner = self._owners[order_id]
        return owner is not None and self.counts(owner)

    @property
    def span(self) -> dict[str, datetime]:
        return {"$gte": self.since, "$lt": self.until}

    def label(self, title: str) -> str:
        """``title`` with the period and, when asked, the team or rep."""
        if self.window.since is None and self.window.until is None:
            period = msg("last %(days)s days", days=self.api.settings.report_days)
        else:
            last = (self.until - _TICK).date().isoformat()
            period = msg("%(since)s to %(until)s", since=self.since.date().isoformat(), until=last)
        return joined(title, period, *self.scope_words(), sep=", ")

    def scope_words(self) -> list[str]:
        """The team and rep asked for, as words for a title."""
        parts: list[str] = []
        if self.window.team:
            parts.append(msg("team %(team)s", team=self.window.team))
        if self.window.rep:
            parts.append(msg("rep %(rep)s", rep=self.window.rep))
        return parts


#: Words the tables show as cells (results of a cancellation, what a survey is grouped by),
#: for the catalog.
CELL_WORDS = (
    N_("open"),
    N_("cancelled"),
    N_("retained"),
    N_("department"),
    N_("category"),
    N_("rep"),
    N_("unknown"),
    N_("(no department)"),
)


def sections(
    api: Service, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Every section of the plugin for ``window`` (None: everyone, the last ``report_days``
    days up to ``now``)."""
    scope = Scope(api, now, window)
    return [
        open_orders(scope),
        opened_closed(scope),
        breaches(scope),
        cycle_times(scope),
        cancellations(scope),
        charges(scope),
        *surveys(scope),
        response_times(scope),
        campaigns(scope),
        *quality(scope),
    ]


def open_orders(scope: Scope) -> ReportSection:
    """Orders open at the end of the window, by type and the step they were at then; past SLA:
    that step was due before then (whether or not a worker tick has noticed yet)."""
    api = scope.api
    counts: Counter[tuple[str, str]] = Counter()
    breached: Counter[tuple[str, str]] = Counter()
    current = scope.until > scope.now
    query = (
        {"closed_at": None}
        if current
        else {
            "opened_at": {"$lt": scope.until},
            "$or": [{"closed_at": None}, {"closed_at": {"$gte": scope.until}}],
        }
    )
    for order in api.orders.iter(query):
        if not scope.order(order):
            continue
        if current:
            key, due = (order.type, order.state), order.step_due_at
            late = order.step_breached or (due is not None and due < scope.now)
        else:
            state, due = _step_at(api, order, scope.until)
            key, late = (order.type, state), due is not None and due < scope.until
        counts[key] += 1
        breached[key] += late
    rows = [(t, s, n, breached[(t, s)]) for (t, s), n in sorted(counts.items())]
    chart = {f"{t}/{s}": float(n) for (t, s), n in sorted(counts.items())}
    title = joined(
        N_("Service orders open, by type and step"),
        "" if current else msg("at %(when)s", when=scope.until.isoformat()[:16]),
        *scope.scope_words(),
        sep=", ",
    )
    return ReportSection(
        title,
        (N_("type"), N_("step"), N_("open"), N_("past SLA")),
        rows,
        chart=chart or None,
        order=60,
    )


def _step_at(api: Service, order: Order, until: datetime) -> tuple[str, datetime | None]:
    """The step the order was at just before ``until`` and when that step was due."""
    entry = api.transitions.find_one(
        {"order_id": order.id, "to_state": {"$ne": None}, "at": {"$lt": until}}, sort=[("at", -1)]
    )
    if entry is None:
        return order.state, order.step_due_at
    due = entry.details.get("due")
    if isinstance(due, str):
        due = datetime.fromisoformat(due)
    return str(entry.to_state), due if isinstance(due, datetime) else None


def opened_closed(scope: Scope) -> ReportSection:
    """Orders opened and closed in the window, by type and how they closed."""
    api = scope.api
    opened: Counter[str] = Counter()
    closed: Counter[tuple[str, str]] = Counter()
    for order in api.orders.iter({"opened_at": scope.span}):
        if scope.order(order):
            opened[order.type] += 1
    for order in api.orders.iter({"closed_at": scope.span}):
        if scope.order(order):
            closed[(order.type, order.outcome or "closed")] += 1
    rows = [
        (
            t,
            opened[t],
            sum(n for (k, _o), n in closed.items() if k == t),
            closed[(t, "done")],
            closed[(t, "cancelled")],
            closed[(t, "rejected")],
        )
        for t in sorted(set(opened) | {k for k, _o in closed})
    ]
    return ReportSection(
        scope.label(N_("Service orders opened and closed")),
        (N_("type"), N_("opened"), N_("closed"), N_("done"), N_("withdrawn"), N_("rejected")),
        rows,
        chart={t: float(n) for t, n in sorted(opened.items())} or None,
        note=N_("chart: orders opened"),
        order=60,
    )


def breaches(scope: Scope) -> ReportSection:
    api = scope.api
    counts: Counter[tuple[str, str]] = Counter()
    escalations: Counter[tuple[str, str]] = Counter()
    for line in api.transitions.iter({"at": scope.span, "action": "breached"}):
        if scope.order_id(line.order_id):
            counts[(line.order_type, str(line.details.get("step")))] += 1
    for line in api.transitions.iter({"at": scope.span, "action": "escalated"}):
        if scope.order_id(line.order_id):
            escalations[(line.order_type, str(line.details.get("step")))] += 1
    keys = sorted(set(counts) | set(escalations))
    rows = [(t, s, counts[(t, s)], escalations[(t, s)]) for t, s in keys]
    return ReportSection(
        scope.label(N_("Service SLA breaches")),
        (N_("type"), N_("step"), N_("breaches"), N_("escalations")),
        rows,
        order=61,
    )


def cycle_times(scope: Scope) -> ReportSection:
    """How long orders spent in each step they left in the window."""
    api = scope.api
    spent: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in api.transitions.iter({"at": scope.span, "action": "advanced"}):
        if line.from_state and line.hours_in_step is not None and scope.order_id(line.order_id):
            spent[(line.order_type, line.from_state)].append(line.hours_in_step)
    rows = [
        (t, s, len(v), round(sum(v) / len(v), 1), round(max(v), 1))
        for (t, s), v in sorted(spent.items())
    ]
    return ReportSection(
        scope.label(N_("Service cycle time per step (hours)")),
        (N_("type"), N_("step"), N_("left"), N_("mean"), N_("longest")),
        rows,
        order=62,
    )


def cancellations(scope: Scope) -> ReportSection:
    """Cancellation requests made in the window, by reason and where they ended."""
    api = scope.api
    kinds = [n for n, t in api.types.items() if t.category == "cancellation"]
    counts: Counter[tuple[str, str]] = Counter()
    for order in api.orders.iter({"type": {"$in": kinds}, "opened_at": scope.span}):
        if not scope.order(order):
            continue
        outcome = order.outcome or "open"
        if order.outcome == "done":
            outcome = "cancelled"
        elif order.outcome == "cancelled":
            outcome = "retained"
        counts[(str(order.fields.get("reason", "unknown")), outcome)] += 1
    rows = [(r, o, n) for (r, o), n in sorted(counts.items())]
    chart: Counter[str] = Counter()
    for (reason, _o), n in counts.items():
        chart[reason] += n
    return ReportSection(
        scope.label(N_("Cancellation requests by reason")),
        (N_("reason"), N_("result"), N_("orders")),
        rows,
        chart={k: float(v) for k, v in sorted(chart.items())} or None,
        note=N_("result: cancelled (closed), retained (withdrawn), open"),
        order=63,
    )


def charges(scope: Scope) -> ReportSection:
    api = scope.api
    totals: dict[str, list[float]] = defaultdict(list)
    for charge in api.charges.iter({"at": scope.span}):
        if scope.order_id(charge.order_id):
            totals[charge.kind].append(charge.amount)
    rows = [(k, len(v), round(sum(v), 2)) for k, v in sorted(totals.items())]
    return ReportSection(
        scope.label(N_("Fee settlements and charge adjustments")),
        (N_("kind"), N_("records"), N_("total")),
        rows,
        order=64,
    )


def surveys(scope: Scope) -> list[ReportSection]:
    """One section per configured survey: mean scores by department, category and rep."""
    api = scope.api
    out = []
    answers = Surveys(api)
    last = scope.until - _TICK
    for name, survey in api.settings.surveys.items():
        rows = []
        for by in ("department", "category", "rep"):
            rows += [
                (by, r.group, r.answers, r.mean)
                for r in answers.results(name, by, since=scope.since, until=last, who=scope.who)
            ]
        out.append(
            ReportSection(
                scope.label(msg("Survey '%(title)s'", title=survey.title)),
                (
                    N_("by"),
                    N_("group"),
                    N_("scores"),
                    msg("mean (1-%(scale)s)", scale=survey.scale),
                ),
                rows,
                order=65,
            )
        )
    return out


def response_times(scope: Scope) -> ReportSection:
    rows = [
        (
            r.channel,
            r.rep,
            r.enquiries,
            r.answered,
            "" if r.mean_seconds is None else r.mean_seconds,
            r.breaches,
        )
        for r in ResponseTimes(scope.api).by_channel_and_rep(scope.since, scope.until - _TICK)
        if scope.who is None or scope.counts(r.rep)
    ]
    breaches: Counter[str] = Counter()
    for channel, _rep, _n, _a, _m, b in rows:
        breaches[channel] += b
    return ReportSection(
        scope.label(N_("First response to enquiries")),
        (
            N_("channel"),
            N_("rep"),
            N_("enquiries"),
            N_("answered"),
            N_("mean seconds"),
            N_("breaches"),
        ),
        rows,
        chart={k: float(v) for k, v in sorted(breaches.items())} or None,
        note=N_("targets per channel: [service.response] targets (seconds)"),
        order=66,
    )


def campaigns(scope: Scope) -> ReportSection:
    """Each care campaign's effect on the customers it targeted in the window."""
    api = scope.api
    rows = []
    care = Campaigns(api)
    for name in api.settings.campaigns:
        e = care.effect(name, since=scope.since, until=scope.until, who=scope.who)
        rows.append(
            (
                name,
                e.targeted,
                e.contacted,
                "" if e.mean_satisfaction is None else e.mean_satisfaction,
                e.offers_accepted,
                e.points_granted,
                f"{e.churn_improved}/{e.churn_unchanged}/{e.churn_worse}",
            )
        )
    return ReportSection(
        scope.label(N_("Care campaigns")),
        (
            N_("campaign"),
            N_("targeted"),
            N_("contacted"),
            N_("satisfaction (1-5)"),
            N_("offers taken"),
            N_("points"),
            N_("churn risk better/same/worse"),
        ),
        rows,
        note=joined(
            N_("customers targeted in the period"),
            N_("for a team or rep, the care contacts they made"),
        ),
        order=67,
    )


def months(scope: Scope, zone: ZoneInfo) -> list[str]:
    """The months the window touches (the month of its end when it has no start), the
    latest ``MAX_QA_MONTHS``."""
    last = month_of(scope.until - _TICK, zone)
    if scope.window.since is None:
        return [last]
    out = [month_of(scope.since, zone)]
    while out[-1] < last:
        out.append(month_of(month_bounds(out[-1], zone)[1], zone))
    return out[-MAX_QA_MONTHS:]


def quality(scope: Scope) -> list[ReportSection]:
    """The monthly service-quality report of each month of the window."""
    api = scope.api
    qa = QualityAssurance(api)
    out = []
    for month in months(scope, qa.zone):
        rows = [
            (
                r.rep,
                r.contacts,
                r.reviewed,
                "" if r.qa_score is None else r.qa_score,
                r.complaints,
                "" if r.survey_mean is None else r.survey_mean,
            )
            for r in qa.monthly(month)
            if scope.who is None or scope.counts(r.rep)
        ]
        out.append(
            ReportSection(
                joined(N_("Service quality"), month, *scope.scope_words(), sep=", "),
                (
                    N_("rep"),
                    N_("contacts"),
                    N_("QA reviewed"),
                    msg("QA score (1-%(scale)s)", scale=api.settings.qa.scale),
                    N_("complaints about them"),
                    N_("satisfaction (1-5)"),
                ),
                rows,
                order=68,
            )
        )
    return out
