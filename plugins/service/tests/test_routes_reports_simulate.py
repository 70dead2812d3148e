"""The report sections and the demo's simulated days (the JSON API routes: test_api_routes)."""

from __future__ import annotations

import random
from datetime import timedelta

from crmcore_service.plugin import crm_report_sections, crm_simulate
from crmcore_service.qa import QualityAssurance


def test_report_sections_count_open_orders_breaches_cycle_times_and_cancellations(
    setup, customer_id, clock
):
    crm, api = setup()
    cid = customer_id(crm)
    order = api.open(actor="ann", type="cancellation", customer_id=cid, fields={"reason": "price"})
    clock.advance(timedelta(hours=5))  # past the 4-hour SLA of the request step
    crm.tick("w")
    api.advance(order.id, actor="ann", to="fee_settlement")
    other = api.open(actor="ann", type="cancellation", customer_id=cid, fields={"reason": "moving"})
    api.advance(other, actor="ann", to="retained", fields={"offer": "discount"})
    sections = {s.title.split(",")[0]: s for s in crm_report_sections(crm, crm.now())}
    assert sections["Service orders open"].rows == (("cancellation", "fee_settlement", 1, 0),)
    assert sections["Service SLA breaches"].rows == (("cancellation", "request", 1, 1),)
    cycle = sections["Service cycle time per step (hours)"].rows
    assert ("cancellation", "request", 2, 2.5, 5.0) in cycle
    assert set(sections["Cancellation requests by reason"].rows) == {
        ("moving", "retained", 1),
        ("price", "open", 1),
    }


def test_simulated_days_open_and_move_orders_repeatably(setup, clock):
    def run(seed: int) -> list[tuple[str, str]]:
        crm, api = setup({"surveys": {"s": {"title": "S", "questions": [{"key": "a"}]}}})
        ids = [
            crm.customers.add(
                actor="demo", name=f"C{n}", phone=f"+86 138 0013 80{n:02d}", owner="ann"
            ).id
            for n in range(5)
        ]
        rng = random.Random(seed)
        for day in range(6):
            crm.interactions.log(
                actor="bot", customer_id=ids[day % 5], kind="inquiry", channel="chat", rep="ann"
            )
            crm_simulate(crm, crm.now(), rng, "demo-staff")
            crm.tick("demo")
            clock.advance(timedelta(days=1))
        replies = crm.interactions.count({"kind": "inquiry", "ref": {"$ne": None}})
        surveyed = crm.interactions.count({"kind": "survey"})
        reviewed = len([r for r in QualityAssurance(api).reviews.find() if r.score])
        return [(o.type, o.state) for o in api.find()] + [
            ("replies", str(replies)),
            ("surveys", str(surveyed)),
            ("qa", str(reviewed)),
        ]

    start = clock.now()
    first = run(7)
    clock.set(start)
    assert first == run(7)
    assert len(first) >= 9 and any(state != "submitted" for _t, state in first)
    counts = dict(first[-3:])
    assert int(counts["replies"]) >= 3 and int(counts["qa"]) >= 1
