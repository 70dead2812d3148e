"""One simulated day of service work for ``crm demo``: customers open orders, staff move them
along their steps (filling in what each step requires), sometimes too late for the SLA."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from crmcore import CustomerStatus
from crmcore.errors import CrmError
from crmcore_service.api import Service

SAMPLE = {
    "product": ["broadband 500M", "5G plan 129", "family bundle"],
    "documents_checked": ["id card"],
    "contract_no": ["C-2026-001", "C-2026-002"],
    "service_number": ["13800138000"],
    "target_plan": ["5G plan 199", "5G plan 59"],
    "effective_date": ["next billing month"],
    "disputed_amount": ["58.00", "120.00"],
    "findings": ["roaming charged twice", "charges correct"],
    "amount": ["-58.00", "30.00"],
    "answer": ["itemised bill explained"],
    "lessons": ["check roaming rating rule"],
    "symptom": ["no signal at home", "slow broadband"],
    "diagnosis": ["faulty modem"],
    "fix": ["modem replaced"],
    "explanation": ["customer equipment setting"],
    "result": ["suggestion forwarded to product"],
    "offer": ["3 months at half price"],
    "reason": ["customer request"],
}


def _value(api: Service, order_type: str, name: str, rng: random.Random) -> Any:
    choices = api.order_type(order_type).choices.get(name)
    return rng.choice(choices if choices else SAMPLE.get(name, [f"{name} noted"]))


def simulate_day(api: Service, now: datetime, rng: random.Random, actor: str) -> None:
    """Open about ``simulate_orders_per_day`` orders and move open ones one step on."""
    customers = api.crm.customers.find({"status": CustomerStatus.ACTIVE.value}, limit=200)
    if customers:
        wanted = api.settings.simulate_orders_per_day
        count = int(wanted) + (1 if rng.random() < wanted - int(wanted) else 0)
        names = list(api.types)
        for _ in range(count):
            kind = rng.choice(names)
            first = api.order_type(kind).first
            fields = {n: _value(api, kind, n, rng) for n in first.requires}
            try:
                api.open(
                    actor=actor,
                    type=kind,
                    customer_id=rng.choice(customers).id,
                    fields=fields,
                    summary=f"simulated {kind}",
                )
            except CrmError:
                continue
    for order in api.find(open_only=True, limit=200):
        if rng.random() < 0.35:  # not today: some steps stall past their SLA
            continue
        steps = [s for s in api.order_type(order.type).step(order.state).next]
        if not steps:
            continue
        to = steps[0] if rng.random() < 0.8 else rng.choice(steps)
        target = api.order_type(order.type).step(to)
        fields = {
            n: _value(api, order.type, n, rng) for n in target.requires if n not in order.fields
        }
        try:
            api.advance(order, actor=actor, to=to, fields=fields)
        except CrmError:
            continue
    simulate_service_quality(api, now, rng, actor)


def simulate_service_quality(api: Service, now: datetime, rng: random.Random, actor: str) -> None:
    """Staff answer the day's enquiries (mostly fast, some late), run the configured surveys
    and record some answers, and QA samples and scores contacts."""
    from datetime import timedelta

    from crmcore_service.qa import QualityAssurance, month_of
    from crmcore_service.response import ResponseTimes
    from crmcore_service.surveys import Surveys

    crm = api.crm
    times = ResponseTimes(api)
    for enquiry in times.enquiries(now - timedelta(days=1), now):
        if enquiry.answered_at is not None or rng.random() < 0.1:
            continue
        delay = timedelta(seconds=min(rng.expovariate(1 / 45), 3600))
        crm.interactions.log(
            actor=actor,
            customer_id=crm.interactions.get(enquiry.id).customer_id,
            kind=crm.interactions.get(enquiry.id).kind,
            channel=enquiry.channel,
            ref=enquiry.id,
            rep=None if enquiry.rep == "(unassigned)" else enquiry.rep,
            occurred_at=min(enquiry.asked_at + delay, now),
            ext={"service": {"reply_to": enquiry.id}},
        )
    surveys = Surveys(api)
    for name, survey in api.settings.surveys.items():
        surveys.run(name, actor=actor)
        for task in crm.tasks.find({"kind": "survey", "status": "open"}, limit=50):
            if task.ext.get("service", {}).get("survey") != name or rng.random() > 0.2:
                continue
            scores = {
                q.key: rng.randint(max(1, survey.scale - 3), survey.scale) for q in survey.questions
            }
            try:
                surveys.answer(name, actor=actor, customer_id=task.customer_id or "", scores=scores)
            except CrmError:
                continue
    qa = QualityAssurance(api)
    month = month_of(now, qa.zone)
    qa.sample(month, actor=actor)
    for review in qa.queue(month=month)[:2]:
        if review.rep == actor:
            continue
        scores = {key: rng.randint(3, qa.settings.scale) for key in qa.settings.scorecard}
        qa.review(review.id, actor=actor, scores=scores)
