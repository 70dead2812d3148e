"""``crm_simulate``: a short demo run does real complaint work, and repeats with a seed."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from crmcore_complaints.api import Complaints

from crmcore.testing import START


def run_days(make_crm, clock, seed: int, days: int = 24) -> dict:
    clock.set(START)
    crm = make_crm(["complaints"])
    api = Complaints(crm)
    rng = random.Random(seed)
    ids = [crm.customers.add(actor="import", name=f"C{i}").id for i in range(40)]
    for day in range(days):
        morning = START + timedelta(days=day, hours=-1)
        clock.set(morning)
        for cid in ids:
            if rng.random() < 0.05:
                crm.interactions.log(
                    actor="rep",
                    customer_id=cid,
                    kind="complaint",
                    rep=rng.choice(["ann", "bo"]),
                    summary="unhappy",
                )
            elif rng.random() < 0.1:
                crm.interactions.log(actor="rep", customer_id=cid, kind="consultation")
        clock.set(morning + timedelta(hours=10))
        crm.plugins.call("crm_simulate", crm=crm, now=clock.now(), rng=rng, actor="staff")
        crm.tick("demo")
    tickets = api.find()
    return {
        "tickets": len(tickets),
        "status": Counter(str(t.status) for t in tickets),
        "categories": len({t.category for t in tickets}),
        "escalations": api.traces.count({"action": "escalated"}),
        "answers": sum(t.satisfaction is not None for t in tickets),
        "reopened": sum(t.reopen_count > 0 for t in tickets),
        "compensated": sum(bool(t.compensation) for t in tickets),
        "invalid": sum(t.validity == "invalid" for t in tickets),
    }


def test_a_simulated_month_does_visible_work(make_crm, clock):
    summary = run_days(make_crm, clock, seed=3)
    assert summary["tickets"] >= 30
    assert summary["status"]["closed"] >= summary["tickets"] // 2
    assert summary["categories"] >= 3  # judged tickets are filed properly
    assert summary["escalations"] >= 1  # some tickets are left slow on purpose
    assert summary["answers"] >= 10 and summary["compensated"] >= 3
    assert summary["invalid"] >= 1


def test_the_same_seed_repeats(make_crm, clock):
    assert run_days(make_crm, clock, seed=11, days=12) == run_days(
        make_crm, clock, seed=11, days=12
    )
