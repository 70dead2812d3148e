"""``crm report``: the measures managers watch (DOMAIN §7), from the core and every plugin."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore.entities import TaskStatus
from crmcore.registry import ReportSection

if TYPE_CHECKING:
    from crmcore.app import CRM


def core_sections(crm: CRM, now: datetime) -> list[ReportSection]:
    """Sections built from core data alone: customers, contacts, tasks, conversion per rep."""
    interactions_by_kind: Counter[str] = Counter()
    served: dict[str, set[str]] = defaultdict(set)
    bought: dict[str, set[str]] = defaultdict(set)
    owners = {c.id: c.owner for c in crm.customers.iter()}
    for interaction in crm.interactions.iter():
        interactions_by_kind[interaction.kind] += 1
        # the rep named on the contact, else the customer's own rep (never a system actor)
        rep = interaction.rep or owners.get(interaction.customer_id)
        if rep is None:
            continue
        served[rep].add(interaction.customer_id)
        if interaction.kind == "purchase":
            bought[rep].add(interaction.customer_id)
    open_tasks = crm.tasks.find({"status": TaskStatus.OPEN.value})
    due_by_kind: Counter[str] = Counter()
    overdue_by_kind: Counter[str] = Counter()
    for task in open_tasks:
        if task.due_at <= now:
            due_by_kind[task.kind] += 1
        if task.due_at < now - timedelta(days=1):
            overdue_by_kind[task.kind] += 1
    sections = [
        ReportSection("Customers and contacts", ("measure", "value"), [
            ("active customers", crm.customers.count()),
            ("interactions logged", sum(interactions_by_kind.values())),
            ("open tasks", len(open_tasks)),
            ("tasks due now", sum(due_by_kind.values())),
            ("tasks overdue by more than a day", sum(overdue_by_kind.values())),
        ], order=0),
        ReportSection("Interactions by kind", ("kind", "count"),
                      sorted(interactions_by_kind.items(), key=lambda kv: -kv[1]),
                      chart=dict(interactions_by_kind.most_common(10)), order=1),
        ReportSection("Tasks due by kind", ("kind", "due now", "overdue > 1 day"),
                      [(k, due_by_kind[k], overdue_by_kind[k]) for k in sorted(due_by_kind)],
                      order=2),
    ]
    rows = []
    for rep in sorted(served):
        n_served, n_bought = len(served[rep]), len(bought[rep])
        rows.append((rep, n_served, n_bought, f"{n_bought / n_served:.1%}"))
    sections.append(ReportSection(
        "Conversion rate per rep", ("rep", "customers served", "customers who bought",
                                    "conversion"), rows,
        chart={r[0]: round(len(bought[r[0]]) / len(served[r[0]]) * 100, 1) for r in rows},
        note="customers who bought / customers served (DOMAIN §7); a contact counts for the "
             "rep named on it, else for the customer's own rep", order=3))
    return sections


def build_report(crm: CRM, now: datetime | None = None) -> list[ReportSection]:
    """Every section, the core's first, then plugins' by their ``order``."""
    when = now or crm.now()
    sections = core_sections(crm, when)
    sections += crm.plugins.flat("crm_report_sections", crm=crm, now=when)
    return sorted(sections, key=lambda s: s.order)
