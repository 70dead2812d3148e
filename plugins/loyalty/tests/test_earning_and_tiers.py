"""Earning rules (purchase amount, interaction kinds, tier multiplier) and tiers (DOMAIN §4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_loyalty import Loyalty
from crmcore_loyalty.earning import points_for
from crmcore_loyalty.records import EARN

from crmcore import ConfigError, Effects, TaskDraft, ValidationError, hookimpl

TIERS = {
    "basis": "spend",
    "window_days": 90,
    "review_days": 30,
    "levels": [
        {"name": "silver", "threshold": 100, "multiplier": 1.5, "perks": ["exclusive_offers"]},
        {
            "name": "gold",
            "threshold": 500,
            "multiplier": 2.0,
            "perks": ["exclusive_offers", "priority_handling", "dedicated_rep"],
        },
    ],
}


@pytest.fixture
def tiered(kit_for):
    return kit_for({"asks": {"enabled": False}, "tiers": TIERS})


@pytest.mark.parametrize(
    ("amount", "rate", "multiplier", "points"),
    [
        (0.0, 1.0, 1.0, 0),
        (0.99, 1.0, 1.0, 0),
        (1.0, 1.0, 1.0, 1),
        (19.99, 1.0, 1.0, 19),
        (0.1 * 3, 10.0, 1.0, 3),  # 0.30000000000000004 * 10: float noise must not round down
        (99.99, 1.0, 1.5, 149),
        (100.0, 2.5, 1.25, 312),
    ],
)
def test_points_for_rounds_down_whole_points(amount, rate, multiplier, points):
    assert points_for(amount, rate, multiplier) == points


def test_a_purchase_earns_once_however_often_it_is_replayed(kit):
    ann = kit.customer()
    purchase = kit.buy(ann, 123.45)
    for _ in range(3):
        kit.replay(purchase)
    earns = [e for e in kit.entries(ann) if e.kind == EARN]
    assert [(e.points, e.source, e.ref) for e in earns] == [
        (123, f"purchase:{purchase.id}", purchase.id)
    ]


@pytest.mark.parametrize(
    ("kind", "points"),
    [("event", 50), ("survey", 20), ("visit", 0), ("consultation", 0), ("referral", 0)],
)
def test_interaction_kinds_earn_their_configured_points(kit, kind, points):
    ann = kit.customer()
    kit.log(ann, kind)
    assert kit.balance(ann) == points


def test_kind_points_are_configurable(kit_for):
    kit = kit_for({"earn": {"kind_points": {"visit": 5}}, "asks": {"enabled": False}})
    ann = kit.customer()
    kit.log(ann, "visit")
    kit.log(ann, "event")  # no longer listed
    assert kit.balance(ann) == 5


def test_a_purchase_without_amount_earns_nothing_but_writes_no_error(kit):
    ann = kit.customer()
    kit.log(ann, "purchase")
    assert kit.entries(ann) == []


def test_the_tier_multiplier_applies_to_purchases_and_kinds_after_the_upgrade(tiered):
    ann = tiered.customer()
    tiered.buy(ann, 99)  # no tier yet: 99 points, spend 99
    tiered.buy(ann, 10)  # this purchase makes silver (109) but earns at 1.0
    tiered.buy(ann, 10)  # silver: 15
    tiered.log(ann, "event")  # silver: 75
    assert [e.points for e in sorted(tiered.entries(ann), key=lambda e: e.seq)] == [99, 10, 15, 75]


@pytest.mark.parametrize(
    ("spend", "tier"),
    [(99.99, None), (100, "silver"), (499.99, "silver"), (500, "gold"), (10_000, "gold")],
)
def test_tier_thresholds_at_their_boundaries(tiered, spend, tier):
    ann = tiered.customer()
    tiered.buy(ann, spend)
    assert tiered.crm.customers.get(ann.id).ext["loyalty"].get("tier") == tier


def test_upgrade_is_immediate_and_downgrade_waits_for_the_review_date(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 600)
    ext = tiered.crm.customers.get(ann.id).ext["loyalty"]
    assert ext["tier"] == "gold"
    assert ext["tier_review_at"] == "2026-02-04T09:00:00.000000Z"  # 30 days on
    clock.advance(days=29)
    tiered.crm.tick("w")
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "gold"
    clock.advance(days=1)  # the review date: still qualified (spend within 90 days)
    tiered.crm.tick("w")
    ext = tiered.crm.customers.get(ann.id).ext["loyalty"]
    assert (ext["tier"], ext["tier_review_at"]) == ("gold", "2026-03-06T09:00:00.000000Z")
    clock.set(clock.now() + timedelta(days=30))  # 03-06: requalified again (60 days old)
    tiered.crm.tick("w")
    assert (
        tiered.crm.customers.get(ann.id).ext["loyalty"]["tier_review_at"]
        == "2026-04-05T09:00:00.000000Z"
    )
    clock.set(clock.now() + timedelta(days=30) - timedelta(seconds=1))
    tiered.crm.tick("w")  # the purchase is 90 days old less a second: still in the window
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "gold"
    clock.advance(seconds=1)  # the review date, and the purchase has left the window
    tiered.crm.tick("w")
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] is None
    assert tiered.loyalty.account(ann.id).tier_review_at is None


def test_refunds_reduce_qualifying_spend_but_only_downgrade_at_review(tiered, clock):
    ann = tiered.customer()
    purchase = tiered.buy(ann, 600)
    tiered.log(ann, "refund", ref=purchase.id, amount=550.0)
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == 50
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "gold"
    clock.advance(days=30)
    tiered.crm.tick("w")
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] is None


def test_points_basis_counts_earned_points_less_clawbacks_not_goodwill(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}, "tiers": {**TIERS, "basis": "points"}})
    ann = kit.customer()
    purchase = kit.buy(ann, 80)
    kit.log(ann, "event")  # 50 (x1.0: no tier at earn time)
    kit.loyalty.adjust(ann.id, 1000, actor="t", reason="migration")  # does not qualify
    assert kit.loyalty.tiers.qualifying(ann.id, clock.now()) == 130
    kit.log(ann, "refund", ref=purchase.id)  # claws back the 80
    assert kit.loyalty.tiers.qualifying(ann.id, clock.now()) == 50


class TierListener:
    """Another plugin reacting to ``crm_tier_changed`` with a task."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, str | None]] = []

    @hookimpl
    def crm_tier_changed(self, crm, customer, old, new, actor):
        self.calls.append((old, new))
        return Effects(
            tasks=[
                TaskDraft(
                    kind="care",
                    title=f"welcome to {new}",
                    due_at=crm.now(),
                    customer_id=customer.id,
                    dedupe_key=f"tier:{customer.id}:{new}",
                )
            ]
        )


def test_tier_changed_hook_fires_once_per_change_and_its_effects_are_applied(kit_for, clock):
    listener = TierListener()
    kit = kit_for({"asks": {"enabled": False}, "tiers": TIERS}, extra=[("listener", listener)])
    ann = kit.customer()
    kit.buy(ann, 150)
    kit.buy(ann, 20)  # still silver: no event
    kit.buy(ann, 400)  # gold
    kit.loyalty.evaluate_tier(ann.id, actor="t")  # re-evaluating changes nothing
    assert listener.calls == [(None, "silver"), ("silver", "gold")]
    assert [t.title for t in kit.tasks("care", ann)] == ["welcome to silver", "welcome to gold"]


def test_perks_hook_answers_with_the_tier_perks(tiered):
    ann = tiered.customer()
    bob = tiered.customer("Bob")
    tiered.buy(ann, 700)
    hook = getattr(tiered.crm.plugins.hook, "crm_customer_perks", None)
    assert hook is not None
    ann_now = tiered.crm.customers.get(ann.id)
    perks = [p for part in hook(crm=tiered.crm, customer=ann_now) for p in part]
    assert perks == ["exclusive_offers", "priority_handling", "dedicated_rep"]
    assert [p for part in hook(crm=tiered.crm, customer=bob) for p in part] == []
    assert tiered.loyalty.perks(ann.id) == perks


def test_award_for_host_defined_events_is_idempotent_and_validated(kit):
    ann = kit.customer()
    assert (
        kit.loyalty.award(
            ann.id, 30, source="app-install", reason="app_install", actor="app"
        ).points
        == 30
    )
    assert (
        kit.loyalty.award(ann.id, 30, source="app-install", reason="app_install", actor="app")
        is None
    )
    for bad in (
        {"points": 0},
        {"points": True},
        {"reason": "Bad Reason"},
        {"reason": "compensation"},
        {"source": " "},
    ):
        args = {"points": 5, "source": "x", "reason": "bonus", **bad}
        with pytest.raises(ValidationError):
            kit.loyalty.award(ann.id, args.pop("points"), actor="app", **args)
    assert kit.balance(ann) == 30


def test_evaluating_an_unknown_tier_name_moves_to_the_qualified_level(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}, "tiers": TIERS})
    ann = kit.customer()
    kit.buy(ann, 150)
    accounts = kit.loyalty.ledger
    account = accounts.account(ann.id)
    accounts.update_account(
        account, True, tier="bronze", tier_review_at=clock.now() + timedelta(days=300)
    )
    change = kit.loyalty.evaluate_tier(ann.id, actor="t")
    assert (change.old, change.new) == ("bronze", "silver")


def test_a_grading_tier_grants_a_loyalty_level_by_configuration(make_crm):
    """``[loyalty.tiers] from_grades``: the hospital's big customers hold platinum (and its
    perks) whatever they spent; the higher of the two levels applies."""
    crm = make_crm(
        ["grading", "loyalty"],
        settings={
            "grading": {"schemes": ["hospital"]},
            "loyalty": {
                "tiers": {"from_grades": {"hospital": {"big": "platinum", "major": "silver"}}}
            },
        },
    )
    loyalty = Loyalty(crm)
    big = crm.customers.add(actor="t", name="Big").id
    rich_major = crm.customers.add(actor="t", name="Rich").id
    crm.interactions.log(actor="t", customer_id=rich_major, kind="purchase", amount=2500.0)
    for customer, tier in ((big, "big"), (rich_major, "major")):
        crm.events.grade_changed(
            actor="grading",
            customer=crm.customers.get(customer),
            scheme="hospital",
            old=None,
            new=tier,
            reason="test",
        )
    ext = {c: crm.customers.get(c).ext["loyalty"]["tier"] for c in (big, rich_major)}
    assert ext == {big: "platinum", rich_major: "gold"}  # gold by spend beats silver
    assert "dedicated_rep" in loyalty.perks(big)


def test_from_grades_must_name_levels(make_crm):
    with pytest.raises(ConfigError, match="'diamond' is not a tier level"):
        make_crm(
            ["loyalty"],
            settings={"loyalty": {"tiers": {"from_grades": {"hospital": {"big": "diamond"}}}}},
        )


def test_purchase_kinds_make_treatments_paid(make_crm):
    """A clinic's treatments are its purchases: they earn, qualify the referral once and can
    be refunded."""
    crm = make_crm(
        ["loyalty"], settings={"loyalty": {"earn": {"purchase_kinds": ["purchase", "treatment"]}}}
    )
    loyalty = Loyalty(crm)
    referrer = crm.customers.add(actor="t", name="Old").id
    code = loyalty.referral_code(referrer, actor="t")
    friend, _ = loyalty.add_referred_customer(code, actor="t", name="New")
    first = crm.interactions.log(actor="t", customer_id=friend.id, kind="treatment", amount=300.0)
    crm.interactions.log(actor="t", customer_id=friend.id, kind="treatment", amount=300.0)
    reward = crm.settings("loyalty").referral
    assert loyalty.balance(referrer) == reward.referrer_points  # once
    assert loyalty.balance(friend.id) == reward.referred_points + 600
    crm.interactions.log(
        actor="t", customer_id=friend.id, kind="refund", amount=300.0, ref=first.id
    )
    # the qualifying treatment is refunded: its points and both rewards are taken back
    assert (loyalty.balance(friend.id), loyalty.balance(referrer)) == (300, 0)


@pytest.mark.parametrize("bad", [[], ["refund"], ["Bad Kind"]])
def test_purchase_kinds_are_checked(make_crm, bad):
    with pytest.raises(ConfigError, match="purchase_kinds"):
        make_crm(["loyalty"], settings={"loyalty": {"earn": {"purchase_kinds": bad}}})
