"""Big-customer treatment that changes what happens (DOMAIN §4): plans per tier (cadence and
callback deadline), a dedicated rep from the VIP team, and priority handling in the queues."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_followup.engine import Engine
from crmcore_followup.reps import Roster
from crmcore_followup.settings import FollowupSettings

from crmcore import ConfigError, Priority, hookimpl
from crmcore.testing import START


def tiered(crm, customer_id: str, scheme: str, tier: str) -> None:
    """What grading does: store the tier, then announce it."""
    crm.customers.patch_ext(customer_id, "grading", {"grades": {scheme: tier}}, actor="grading")
    crm.events.grade_changed(
        actor="grading",
        customer=crm.customers.get(customer_id),
        scheme=scheme,
        old=None,
        new=tier,
        reason="test",
    )


def follow_up_of(crm, customer_id: str):
    [task] = crm.tasks.find({"kind": "follow_up", "customer_id": customer_id, "status": "open"})
    return task


def test_tier_cadence_is_the_shortest_of_grade_and_tier():
    settings = FollowupSettings(tier_cadence_days={"hospital": {"big": 7, "major": 14}})
    assert settings.cadence_of("D", {"hospital": "big"}) == 7
    assert settings.cadence_of("A", {"hospital": "big"}) == 1
    assert settings.cadence_of(None, {"hospital": "major"}) == 14
    assert settings.cadence_of(None, {"hospital": "ordinary"}) == 30


@pytest.mark.parametrize("bad", [{"hospital": {"big": 0}}, {"hospital": {"big": "x"}}])
def test_bad_tier_plans_are_refused(fu, bad):
    with pytest.raises(ConfigError, match="tier_cadence_days"):
        fu(tier_cadence_days=bad)


def test_a_big_customers_cadence_follows_the_tier(fu, fakes):
    crm = fu(
        ("grading-specs", fakes.GradingHooksOnly()), tier_cadence_days={"hospital": {"big": 7}}
    )
    customer = crm.customers.add(actor="t", name="Big")
    crm.interactions.log(actor="t", customer_id=customer.id, kind="follow_up")  # first contact
    crm.tick("w1")
    assert follow_up_of(crm, customer.id).due_at == START + timedelta(days=30)
    tiered(crm, customer.id, "hospital", "big")
    assert follow_up_of(crm, customer.id).due_at == START + timedelta(days=7)
    assert Engine(crm).schedule_of(customer.id).cadence_days == 7


def test_a_big_customers_callback_comes_sooner(fu):
    crm = fu(tier_callback_within_days={"hospital": {"big": 1}})
    big = crm.customers.add(actor="t", name="Big", ext={"grading": {"grades": {"hospital": "big"}}})
    other = crm.customers.add(actor="t", name="Other")
    for customer in (big, other):
        crm.interactions.log(actor="t", customer_id=customer.id, kind="purchase", amount=5.0)
    deadlines = {
        t.customer_id: t.ext["followup"]["deadline"] for t in crm.tasks.find({"kind": "callback"})
    }
    assert deadlines == {
        big.id: "2026-01-06T09:00:00.000000Z",
        other.id: "2026-01-08T09:00:00.000000Z",
    }


def vip_roster(crm) -> None:
    roster = Roster(crm)
    roster.add("ann", actor="admin", team="floor")
    roster.add("vic", actor="admin", team="vip", ability=5)
    roster.add("val", actor="admin", team="vip", ability=1)


def test_a_new_big_customer_gets_a_vip_rep(fu):
    crm = fu(vip_team="vip", key_customers={"hospital": ["big"]})
    vip_roster(crm)
    big = crm.customers.add(actor="t", name="Big", ext={"grading": {"grades": {"hospital": "big"}}})
    other = crm.customers.add(actor="t", name="Other")
    assert crm.customers.get(big.id).owner == "val"  # fewest customers per ability; ties by name
    assert crm.customers.get(other.id).owner == "ann"


def test_a_customer_who_becomes_big_moves_to_the_vip_team_on_the_next_tick(fu, fakes):
    crm = fu(
        ("grading-specs", fakes.GradingHooksOnly()),
        vip_team="vip",
        key_customers={"hospital": ["big"]},
    )
    vip_roster(crm)
    customer = crm.customers.add(actor="t", name="Rising")
    assert crm.customers.get(customer.id).owner == "ann"
    tiered(crm, customer.id, "hospital", "big")
    assert crm.customers.get(customer.id).owner == "ann"  # flagged, not moved mid-event
    assert Engine(crm).schedule_of(customer.id).route_vip
    crm.tick("w1")
    moved = crm.customers.get(customer.id)
    assert moved.owner in ("vic", "val")
    assert not Engine(crm).schedule_of(customer.id).route_vip
    [first] = crm.tasks.find(
        {"kind": "first_contact", "customer_id": customer.id, "status": "open"}
    )
    assert first.assignee == moved.owner
    crm.tick("w1")
    assert crm.customers.get(customer.id).owner == moved.owner  # routed once


class Perks:
    def __init__(self, perks: dict[str, list[str]]) -> None:
        self.perks = perks

    @hookimpl
    def crm_customer_perks(self, crm, customer):
        return self.perks.get(customer.name, [])


def test_perks_act_priority_handling_and_dedicated_rep(fu):
    crm = fu(
        ("perks", Perks({"Gold": ["priority_handling"], "Plat": ["dedicated_rep"]})), vip_team="vip"
    )
    vip_roster(crm)
    gold = crm.customers.add(actor="t", name="Gold")
    plat = crm.customers.add(actor="t", name="Plat")
    plain = crm.customers.add(actor="t", name="Plain")
    prio = {
        c.id: crm.tasks.find({"kind": "first_contact", "customer_id": c.id})[0].priority
        for c in (gold, plain)
    }
    assert prio == {gold.id: Priority.HIGH, plain.id: Priority.NORMAL}
    assert crm.customers.get(plat.id).owner in ("vic", "val")
    assert crm.customers.get(gold.id).owner == "ann"
