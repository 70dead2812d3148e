"""``crm report`` sections: open orders by type and step, step SLA breaches, cycle time per
step, cancellations by reason and money settled, over the last ``report_days`` days."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from crmcore import ReportSection
from crmcore_service.api import Service
from crmcore_service.campaigns import Campaigns
from crmcore_service.qa import QualityAssurance, month_of
from crmcore_service.response import ResponseTimes
from crmcore_service.surveys import Surveys


def sections(api: Service, now: datetime) -> list[ReportSection]:
    """Every section of the plugin for the period ending at ``now``."""
    days = api.settings.report_days
    since = now - timedelta(days=days)
    return [open_orders(api), breaches(api, since, now, days), cycle_times(api, since, now, days),
            cancellations(api, since, now, days), charges(api, since, now, days),
            *surveys(api, since, now, days), response_times(api, since, now, days),
            campaigns(api), quality(api, now)]


def open_orders(api: Service) -> ReportSection:
    counts: Counter[tuple[str, str]] = Counter()
    breached: Counter[tuple[str, str]] = Counter()
    for order in api.orders.iter({"closed_at": None}):
        counts[(order.type, order.state)] += 1
        breached[(order.type, order.state)] += order.step_breached
    rows = [(t, s, n, breached[(t, s)]) for (t, s), n in sorted(counts.items())]
    chart = {f"{t}/{s}": float(n) for (t, s), n in sorted(counts.items())}
    return ReportSection("Service orders open, by type and step",
                         ("type", "step", "open", "past SLA"), rows, chart=chart or None,
                         order=60)


def breaches(api: Service, since: datetime, now: datetime, days: int) -> ReportSection:
    window = {"at": {"$gte": since, "$lte": now}}
    counts: Counter[tuple[str, str]] = Counter()
    escalations: Counter[tuple[str, str]] = Counter()
    for line in api.transitions.iter({**window, "action": "breached"}):
        counts[(line.order_type, str(line.details.get("step")))] += 1
    for line in api.transitions.iter({**window, "action": "escalated"}):
        escalations[(line.order_type, str(line.details.get("step")))] += 1
    keys = sorted(set(counts) | set(escalations))
    rows = [(t, s, counts[(t, s)], escalations[(t, s)]) for t, s in keys]
    return ReportSection(f"Service SLA breaches, last {days} days",
                         ("type", "step", "breaches", "escalations"), rows, order=61)


def cycle_times(api: Service, since: datetime, now: datetime, days: int) -> ReportSection:
    spent: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in api.transitions.iter({"at": {"$gte": since, "$lte": now},
                                      "action": "advanced"}):
        if line.from_state and line.hours_in_step is not None:
            spent[(line.order_type, line.from_state)].append(line.hours_in_step)
    rows = [(t, s, len(v), round(sum(v) / len(v), 1), round(max(v), 1))
            for (t, s), v in sorted(spent.items())]
    return ReportSection(f"Service cycle time per step (hours), last {days} days",
                         ("type", "step", "left", "mean", "longest"), rows, order=62)


def cancellations(api: Service, since: datetime, now: datetime, days: int) -> ReportSection:
    kinds = [n for n, t in api.types.items() if t.category == "cancellation"]
    counts: Counter[tuple[str, str]] = Counter()
    for order in api.orders.iter({"type": {"$in": kinds},
                                  "opened_at": {"$gte": since, "$lte": now}}):
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
    return ReportSection(f"Cancellation requests by reason, last {days} days",
                         ("reason", "result", "orders"), rows,
                         chart={k: float(v) for k, v in sorted(chart.items())} or None,
                         note="result: cancelled (closed), retained (withdrawn), open",
                         order=63)


def charges(api: Service, since: datetime, now: datetime, days: int) -> ReportSection:
    totals: dict[str, list[float]] = defaultdict(list)
    for charge in api.charges.iter({"at": {"$gte": since, "$lte": now}}):
        totals[charge.kind].append(charge.amount)
    rows = [(k, len(v), round(sum(v), 2)) for k, v in sorted(totals.items())]
    return ReportSection(f"Fee settlements and charge adjustments, last {days} days",
                         ("kind", "records", "total"), rows, order=64)


def surveys(api: Service, since: datetime, now: datetime, days: int) -> list[ReportSection]:
    """One section per configured survey: mean scores by department and question category."""
    out = []
    answers = Surveys(api)
    for name, survey in api.settings.surveys.items():
        rows = [("department", r.group, r.answers, r.mean)
                for r in answers.results(name, "department", since=since, until=now)]
        rows += [("category", r.group, r.answers, r.mean)
                 for r in answers.results(name, "category", since=since, until=now)]
        rows += [("rep", r.group, r.answers, r.mean)
                 for r in answers.results(name, "rep", since=since, until=now)]
        out.append(ReportSection(f"Survey '{survey.title}', last {days} days",
                                 ("by", "group", "scores", f"mean (1-{survey.scale})"), rows,
                                 order=65))
    return out


def response_times(api: Service, since: datetime, now: datetime, days: int) -> ReportSection:
    rows = [(r.channel, r.rep, r.enquiries, r.answered,
             "" if r.mean_seconds is None else r.mean_seconds, r.breaches)
            for r in ResponseTimes(api).by_channel_and_rep(since, now)]
    breaches: Counter[str] = Counter()
    for channel, _rep, _n, _a, _m, b in rows:
        breaches[channel] += b
    return ReportSection(f"First response to enquiries, last {days} days",
                         ("channel", "rep", "enquiries", "answered", "mean seconds",
                          "breaches"), rows,
                         chart={k: float(v) for k, v in sorted(breaches.items())} or None,
                         note="targets per channel: [service.response] targets (seconds)",
                         order=66)


def campaigns(api: Service) -> ReportSection:
    rows = []
    care = Campaigns(api)
    for name in api.settings.campaigns:
        e = care.effect(name)
        rows.append((name, e.targeted, e.contacted,
                     "" if e.mean_satisfaction is None else e.mean_satisfaction,
                     e.offers_accepted, e.points_granted,
                     f"{e.churn_improved}/{e.churn_unchanged}/{e.churn_worse}"))
    return ReportSection("Care campaigns", ("campaign", "targeted", "contacted",
                                            "satisfaction (1-5)", "offers taken", "points",
                                            "churn risk better/same/worse"), rows, order=67)


def quality(api: Service, now: datetime) -> ReportSection:
    """The monthly service-quality report of the month ``now`` falls in."""
    qa = QualityAssurance(api)
    month = month_of(now, qa.zone)
    rows = [(r.rep, r.contacts, r.reviewed, "" if r.qa_score is None else r.qa_score,
             r.complaints, "" if r.survey_mean is None else r.survey_mean)
            for r in qa.monthly(month)]
    return ReportSection(f"Service quality, {month}",
                         ("rep", "contacts", "QA reviewed", f"QA score (1-{api.settings.qa.scale})",
                          "complaints about them", "satisfaction (1-5)"), rows, order=68)
