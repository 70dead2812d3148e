"""The JSON API routes (called as the web plugin calls them), the report sections and the
demo's simulated days."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import attrs
import pytest
from crmcore_service.plugin import crm_api_routes, crm_report_sections, crm_simulate
from crmcore_service.qa import QualityAssurance
from crmcore_service.routes import AdvanceOrder, OpenOrder

from crmcore import CRM, ApiRoute, ValidationError


@attrs.frozen
class Request:
    crm: CRM
    actor: str
    path: dict[str, str] = attrs.field(factory=dict)
    query: dict[str, str] = attrs.field(factory=dict)
    body: Any = None
    if_match: int | None = None


def route(crm: CRM, method: str, path: str) -> ApiRoute:
    [found] = [r for r in crm_api_routes(crm) if (r.method, r.path) == (method, path)]
    return found


def test_routes_open_advance_show_and_list(setup, customer_id):
    crm, _api = setup()
    cid = customer_id(crm)
    paths = {(r.method, r.path) for r in crm_api_routes(crm)}
    assert all(p.startswith("/service/") for _m, p in paths)
    opened = route(crm, "POST", "/service/orders").handler(Request(
        crm, "ann", body=OpenOrder(type="work_order", customer_id=cid,
                                   fields={"kind": "suggestion"})))
    assert opened["state"] == "submitted" and opened["next"] == ["handling", "declined"]
    oid = opened["id"]
    moved = route(crm, "POST", "/service/orders/{order_id}/advance").handler(Request(
        crm, "bob", path={"order_id": oid}, body=AdvanceOrder(to="handling"), if_match=1))
    assert moved["state"] == "handling" and len(moved["history"]) == 2
    with pytest.raises(ValidationError, match=r"allowed: feedback"):
        route(crm, "POST", "/service/orders/{order_id}/advance").handler(Request(
            crm, "bob", path={"order_id": oid}, body=AdvanceOrder(to="closed")))
    shown = route(crm, "GET", "/service/orders/{order_id}").handler(Request(
        crm, "bob", path={"order_id": oid}))
    assert shown["version"] == 2
    listed = route(crm, "GET", "/service/orders").handler(Request(
        crm, "bob", query={"type": "work_order", "open": "true"}))
    assert [o.id for o in listed] == [oid]
    with pytest.raises(ValidationError, match="limit"):
        route(crm, "GET", "/service/orders").handler(Request(crm, "bob", query={"limit": "x"}))
    types = route(crm, "GET", "/service/types").handler(Request(crm, "bob"))
    assert types["business"]["steps"][0]["name"] == "application"


def test_report_sections_count_open_orders_breaches_cycle_times_and_cancellations(
        setup, customer_id, clock):
    crm, api = setup()
    cid = customer_id(crm)
    order = api.open(actor="ann", type="cancellation", customer_id=cid,
                     fields={"reason": "price"})
    clock.advance(timedelta(hours=5))  # past the 4-hour SLA of the request step
    crm.tick("w")
    api.advance(order.id, actor="ann", to="fee_settlement")
    other = api.open(actor="ann", type="cancellation", customer_id=cid,
                     fields={"reason": "moving"})
    api.advance(other, actor="ann", to="retained", fields={"offer": "discount"})
    sections = {s.title.split(",")[0]: s for s in crm_report_sections(crm, crm.now())}
    assert sections["Service orders open"].rows == (("cancellation", "fee_settlement", 1, 0),)
    assert sections["Service SLA breaches"].rows == (("cancellation", "request", 1, 1),)
    cycle = sections["Service cycle time per step (hours)"].rows
    assert ("cancellation", "request", 2, 2.5, 5.0) in cycle
    assert set(sections["Cancellation requests by reason"].rows) == {
        ("moving", "retained", 1), ("price", "open", 1)}


def test_simulated_days_open_and_move_orders_repeatably(setup, clock):
    def run(seed: int) -> list[tuple[str, str]]:
        crm, api = setup({"surveys": {"s": {"title": "S", "questions": [{"key": "a"}]}}})
        ids = [crm.customers.add(actor="demo", name=f"C{n}", phone=f"+86 138 0013 80{n:02d}",
                                 owner="ann").id for n in range(5)]
        rng = random.Random(seed)
        for day in range(6):
            crm.interactions.log(actor="bot", customer_id=ids[day % 5], kind="inquiry",
                                 channel="chat", rep="ann")
            crm_simulate(crm, crm.now(), rng, "demo-staff")
            crm.tick("demo")
            clock.advance(timedelta(days=1))
        replies = crm.interactions.count({"kind": "inquiry", "ref": {"$ne": None}})
        surveyed = crm.interactions.count({"kind": "survey"})
        reviewed = len([r for r in QualityAssurance(api).reviews.find() if r.score])
        return [(o.type, o.state) for o in api.find()] + [("replies", str(replies)),
                                                           ("surveys", str(surveyed)),
                                                           ("qa", str(reviewed))]

    start = clock.now()
    first = run(7)
    clock.set(start)
    assert first == run(7)
    assert len(first) >= 9 and any(state != "submitted" for _t, state in first)
    counts = dict(first[-3:])
    assert int(counts["replies"]) >= 3 and int(counts["qa"]) >= 1
