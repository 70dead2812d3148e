"""Goodwill points after a complaint (DOMAIN §6), through the complaints plugin's hooks.

The complaints plugin is built separately, so the tests fire its contract's events
(``crmcore.contracts``, declared always) through ``crm.events`` with a stand-in ticket.
"""

from __future__ import annotations

import attrs
import pytest
from crmcore_loyalty.records import CLAWBACK, EARN


@attrs.frozen
class FakeTicket:
    id: str
    customer_id: str
    compensation: float | None
    category: str = "service"
    status: str = "resolved"
    owner: str = "bo"
    claim: str | None = "compensation"
    priority: str = "normal"
    satisfaction: int | None = None


@pytest.fixture
def comp(kit_for):
    kit = kit_for(
        {
            "asks": {"enabled": False},
            "compensation": {"points_per_currency": 100, "cap_points": 5000, "cap_days": 30},
        }
    )
    return kit


def resolve(kit, ticket):
    kit.crm.events.complaint_resolved(actor="manager", ticket=ticket)


def reopen(kit, ticket):
    kit.crm.events.complaint_reopened(actor="customer", ticket=ticket)


def goodwill(kit, customer):
    return [e for e in kit.entries(customer) if e.reason == "compensation"]


@pytest.mark.parametrize(
    ("compensation", "points"), [(None, 0), (0.0, 0), (0.004, 0), (0.01, 1), (12.5, 1250)]
)
def test_resolution_with_compensation_credits_goodwill_points(comp, compensation, points):
    ann = comp.customer()
    resolve(comp, FakeTicket("tkt_1", ann.id, compensation))
    assert comp.balance(ann) == points
    if points:
        [entry] = goodwill(comp, ann)
        assert (entry.kind, entry.ref, entry.actor) == (EARN, "tkt_1", "manager")


def test_replayed_resolution_credits_once(comp):
    ann = comp.customer()
    ticket = FakeTicket("tkt_1", ann.id, 10.0)
    for _ in range(3):
        resolve(comp, ticket)
    assert comp.balance(ann) == 1000


def test_goodwill_is_capped_per_customer_per_period(comp, clock):
    ann, bob = comp.customer(), comp.customer("Bob")
    resolve(comp, FakeTicket("tkt_1", ann.id, 30.0))  # 3000
    resolve(comp, FakeTicket("tkt_2", ann.id, 30.0))  # capped to 2000
    resolve(comp, FakeTicket("tkt_3", ann.id, 1.0))  # nothing left under the cap
    resolve(comp, FakeTicket("tkt_4", bob.id, 30.0))  # another customer: own cap
    assert [e.points for e in goodwill(comp, ann)] == [3000, 2000]
    assert "capped" in goodwill(comp, ann)[1].note
    assert comp.balance(bob) == 3000
    clock.advance(days=30)  # the first two leave the period
    resolve(comp, FakeTicket("tkt_5", ann.id, 10.0))
    assert comp.balance(ann) == 6000


def test_reopening_claws_back_and_a_new_resolution_credits_again(comp):
    ann = comp.customer()
    ticket = FakeTicket("tkt_1", ann.id, 20.0)
    resolve(comp, ticket)
    reopen(comp, ticket)
    reopen(comp, ticket)  # replayed
    assert comp.balance(ann) == 0
    assert [e.kind for e in comp.entries(ann)].count(CLAWBACK) == 1
    resolve(comp, attrs.evolve(ticket, compensation=5.0))
    resolve(comp, attrs.evolve(ticket, compensation=5.0))
    assert comp.balance(ann) == 500
    assert sorted(e.source for e in goodwill(comp, ann) if e.kind == EARN) == [
        "compensation:tkt_1:1",
        "compensation:tkt_1:2",
    ]


def test_clawed_back_goodwill_frees_the_cap(comp):
    ann = comp.customer()
    first = FakeTicket("tkt_1", ann.id, 50.0)
    resolve(comp, first)  # 5000: the whole cap
    reopen(comp, first)
    resolve(comp, FakeTicket("tkt_2", ann.id, 40.0))
    assert comp.balance(ann) == 4000


def test_reopening_after_the_goodwill_was_spent_never_goes_negative(comp):
    ann = comp.customer()
    ticket = FakeTicket("tkt_1", ann.id, 10.0)
    resolve(comp, ticket)
    comp.loyalty.redeem(ann.id, 900, actor="t")
    reopen(comp, ticket)
    [clawback] = [e for e in comp.entries(ann) if e.kind == CLAWBACK]
    assert (clawback.points, clawback.shortfall, comp.balance(ann)) == (-100, 900, 0)


def test_goodwill_does_not_count_towards_tiers(kit_for, clock):
    kit = kit_for({"tiers": {"basis": "points", "levels": [{"name": "gold", "threshold": 10}]}})
    ann = kit.customer()
    resolve(kit, FakeTicket("tkt_1", ann.id, 50.0))
    assert kit.loyalty.tiers.qualifying(ann.id, clock.now()) == 0
    kit.log(ann, "survey")
    assert kit.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "gold"


def test_a_ticket_without_customer_or_id_is_ignored(comp):
    resolve(comp, FakeTicket("", "cus_x", 10.0))
    reopen(comp, FakeTicket("tkt_9", "", 10.0))
    assert comp.entries() == []
