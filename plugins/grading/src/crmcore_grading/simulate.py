"""``crm demo``: what reps do with grades in a simulated day.

Reps assess customers they have talked to but never graded (demand, expected close, deal
status, importance); prospects move: some deals close, some dates slip, some go dead, some
potential needs turn into clear ones. Everything goes through ``api.set_inputs``, so grades,
history, ``crm_grade_changed`` (and the followup plugin's cadence) follow as they would live.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore_grading import api
from crmcore_grading.dates import local_day
from crmcore_grading.engine import NAMESPACE

if TYPE_CHECKING:
    from crmcore import CRM, Customer

ASSESS_CHANCE = 0.5  # an ungraded customer contacted today is assessed with this chance
MAX_ASSESSED = 40  # per day


def _today(crm: CRM, customer: Customer, now: datetime) -> datetime:
    return datetime.combine(
        local_day(now, customer.timezone, crm.config.core.timezone), datetime.min.time()
    )


def simulate_day(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    """Assess some ungraded customers and move some graded prospects along."""
    # today's contacts through the (kind, occurred_at) index, and only their customers: a day
    # costs what happened that day, not a scan of every interaction and customer
    since = now - timedelta(days=1)
    contacted = {
        i.customer_id
        for kind in sorted(crm.interaction_kinds)
        for i in crm.interactions.find({"kind": kind, "occurred_at": {"$gte": since}})
    }
    ungraded = sorted(
        crm.customers.find(
            {"id": {"$in": sorted(contacted)}, "ext.grading.inputs.demand": {"$exists": False}}
        ),
        key=lambda c: c.id,
    )
    assessed = 0
    for customer in ungraded:
        if assessed >= MAX_ASSESSED or rng.random() >= ASSESS_CHANCE:
            continue
        assessed += 1
        today = _today(crm, customer, now).date()
        demand = rng.choices(["target", "potential", "dead"], [0.45, 0.4, 0.15])[0]
        close = today + timedelta(days=rng.randint(3, 270)) if demand == "target" else None
        api.set_inputs(
            crm,
            customer.id,
            actor=actor,
            demand=demand,
            expected_close=close,
            deal_status=rng.choice(["negotiating", "potential"]),
            importance=rng.choices(["important", "not_important"], [0.3, 0.7])[0],
        )
    graded = sorted(
        crm.customers.find({"ext.grading.inputs.demand": {"$exists": True}}), key=lambda c: c.id
    )
    for customer in graded:
        inputs = (customer.ext.get(NAMESPACE) or {}).get("inputs") or {}
        grade = ((customer.ext.get(NAMESPACE) or {}).get("grades") or {}).get("pipeline")
        today = _today(crm, customer, now).date()
        roll = rng.random()
        if grade in ("A", "B") and inputs.get("deal_status") != "closed":
            if roll < (0.10 if grade == "A" else 0.03):
                api.set_inputs(
                    crm,
                    customer.id,
                    actor=actor,
                    deal_status="closed",
                    demand="potential",
                    expected_close=None,
                )
            elif roll < 0.05 + (0.10 if grade == "A" else 0.03):
                api.set_inputs(
                    crm,
                    customer.id,
                    actor=actor,
                    expected_close=today + timedelta(days=rng.randint(20, 120)),
                )
            elif roll < 0.065 + (0.10 if grade == "A" else 0.03):
                api.set_inputs(crm, customer.id, actor=actor, demand="dead")
        elif inputs.get("demand") == "potential" and roll < 0.02:
            api.set_inputs(
                crm,
                customer.id,
                actor=actor,
                demand="target",
                expected_close=today + timedelta(days=rng.randint(10, 150)),
                deal_status="negotiating",
            )
