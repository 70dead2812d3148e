"""``crm report`` sections (grade pyramid, value tiers, churn watch) and summary lines."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import ReportSection, ReportWindow, SummaryLine
from crmcore_grading.churn import watched
from crmcore_grading.engine import NAMESPACE, engine_for
from crmcore_grading.outcomes import CHURN_TYPES, measures
from crmcore_grading.signals import Signals

if TYPE_CHECKING:
    from crmcore import CRM, Customer

MEANINGS = {
    "A": "clear need, closing within 1 month",
    "B": "clear need, closing within 3 months",
    "C": "clear need, closing within 6 months",
    "D": "potential need, or closing later",
    "E": "no need or no chance (dead)",
}
OUTCOME_DAYS = 90
LABELS = {"pipeline": "grade", "rfm": "RFM segment", "pyramid": "pyramid tier",
          "hospital": "hospital tier"}


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def sections(crm: CRM, now: datetime,
             window: ReportWindow | None = None) -> list[ReportSection]:
    """Grade and tier distributions and the churn watch, from one pass over customers."""
    engine = engine_for(crm)
    names = [s.name for s in engine.schemes]
    counts: dict[str, Counter[str]] = {n: Counter() for n in names}
    revenue: dict[str, defaultdict[str, float]] = {n: defaultdict(float) for n in names}
    levels: Counter[str] = Counter()
    watch = 0
    total = 0
    for doc in crm.collection("customers").iter({"status": "active"}):
        total += 1
        grading = (doc.get("ext") or {}).get(NAMESPACE) or {}
        grades = grading.get("grades") or {}
        spend = Signals(grading.get("signals") or {}).spend
        for name in names:
            grade = grades.get(name)
            if grade is not None:
                counts[name][grade] += 1
                revenue[name][grade] += spend
        if watched(grades, engine.settings.churn):
            watch += 1
            levels[(grading.get("churn") or {}).get("level", "none")] += 1
    out: list[ReportSection] = []
    order = 20
    for scheme in engine.schemes:
        name = scheme.name
        graded = sum(counts[name].values())
        if name == "pipeline":
            rows: list[tuple[Any, ...]] = [
                (g, MEANINGS[g], counts[name][g], _share(counts[name][g], total))
                    for g in "ABCDE"]
            rows.append(("-", "not graded (no demand recorded)", total - graded,
                         _share(total - graded, total)))
            out.append(ReportSection(
                "Pipeline grades (A-E)", ("grade", "meaning", "customers", "share"), rows,
                chart={g: counts[name][g] for g in "ABCDE"},
                note="DOMAIN §2; follow-up cadence follows the grade", order=order))
        else:
            tiers = list(reversed(scheme.tiers)) if scheme.ordered else \
                [t for t, _ in counts[name].most_common()]
            tiers += [t for t in counts[name] if t not in tiers]
            all_revenue = sum(revenue[name].values())
            rows = [(t, counts[name][t], _share(counts[name][t], graded),
                     round(revenue[name][t], 2), _share(revenue[name][t], all_revenue))
                    for t in tiers if counts[name][t] or scheme.ordered]
            title = f"Value tiers: {LABELS.get(name, name)}"
            out.append(ReportSection(
                title, ("tier", "customers", "share", "revenue", "revenue share"), rows,
                chart={t: counts[name][t] for t in tiers if counts[name][t]},
                note=f"{graded} of {total} customers graded", order=order))
        order += 1
    open_retention = crm.tasks.count({"kind": "retention", "status": "open",
                                      "source": "grading"})
    population = engine.population(now)
    when = population.get("computed_at") if population.get("cutoffs") is not None else None
    out.append(ReportSection(
        "Churn watch (valuable customers)", ("measure", "customers"),
        [("watched (hold a valuable tier)", watch),
         *((f"risk {level}", levels[level]) for level in ("high", "medium", "low", "none")),
         ("open retention tasks", open_retention)],
        chart={level: levels[level] for level in ("high", "medium", "low")},
        note=f"population tiers computed {when[:16].replace('T', ' ') if when else 'never'}",
        order=order))
    out.append(outcomes_section(crm, now, order, window))
    return out


def outcomes_section(crm: CRM, now: datetime, order: int,
                     window: ReportWindow | None = None) -> ReportSection:
    """Churn counted over the report's period, else the last 90 days (DOMAIN §9): churn,
    win-back, repeat purchase."""
    since = window.since if window is not None and window.since is not None else \
        now - timedelta(days=OUTCOME_DAYS)
    until = window.until if window is not None and window.until is not None else now
    m = measures(crm, since, until)
    title = ("Churn outcomes (last 90 days)" if window is None or window.since is None
             else f"Churn outcomes ({since.isoformat()[:10]} to {until.isoformat()[:10]})")

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    return ReportSection(
        title, ("measure", "value"), [
            ("active at the start", m.active_at_start),
            ("lost", m.lost),
            *((f"lost: {t}", m.by_type.get(t, 0)) for t in CHURN_TYPES),
            ("churn rate", pct(m.churn_rate)),
            ("won back / losses open", f"{m.won_back} / {m.losses_open}"),
            ("win-back rate", pct(m.win_back_rate)),
            ("repeat-purchase rate", pct(m.repeat_purchase_rate)),
        ], chart={t: m.by_type.get(t, 0) for t in CHURN_TYPES},
        note="customers marked lost with 'crm grade lost'; a purchase wins them back",
        order=order)


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
        reason = reasons.get(name)
        text = f"{grades[name]}: {reason}" if reason else grades[name]
        lines.append(SummaryLine(LABELS.get(name, f"{name} grade"), text))
    risk = grading.get("churn") or {}
    if risk.get("level", "none") != "none":
        lines.append(SummaryLine("churn risk", f"{risk['level']}: "
                                               f"{'; '.join(risk.get('reasons') or [])}"))
    return lines
