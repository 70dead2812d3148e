"""Referral ("old brings new", DOMAIN §6): codes, links, rewards, abuse limits, clawbacks."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from crmcore_loyalty.records import EARN, LINKED, REFERRALS, REWARDED, Referral
from crmcore_loyalty.referrals import ALPHABET, normalize_address, normalize_code

from crmcore import ConflictError, NotFoundError, ValidationError


@pytest.fixture
def ref_kit(kit_for):
    return kit_for(
        {
            "asks": {"enabled": False},
            "referral": {"referrer_points": 500, "referred_points": 200, "min_purchase_amount": 50},
        }
    )


def code_of(kit, customer) -> str:
    return kit.crm.customers.get(customer.id).ext["loyalty"]["referral_code"]


def referrals(kit) -> list[Referral]:
    return kit.crm.records(REFERRALS, Referral).find()


# -- codes ---------------------------------------------------------------------------------


def test_every_new_customer_gets_a_short_unambiguous_unique_code(ref_kit):
    codes = [code_of(ref_kit, ref_kit.customer(f"C {i}")) for i in range(40)]
    assert len(set(codes)) == 40
    assert all(len(c) == 6 and set(c) <= set(ALPHABET) for c in codes)
    assert not set("01ILO") & set(ALPHABET)


def test_a_new_customer_is_written_once_with_their_code_recorded(ref_kit):
    """The code is given before the insert (``crm_customer_adding``): the customer is stored
    once (version 1, one audit entry) and the code's record names them."""
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.records import CODES, ReferralCode

    from crmcore.testing.audit import entries, operations

    before = len(entries(ref_kit.crm))
    ann = ref_kit.customer("Ann")
    stored = ref_kit.crm.customers.get(ann.id)
    code = stored.ext["loyalty"]["referral_code"]
    assert ann.ext == stored.ext and stored.version == 1
    assert len(entries(ref_kit.crm)) == before + 1
    assert [e["op"] for e in operations(ref_kit.crm, collection="customers", record_id=ann.id)] == [
        "insert"
    ]
    [record] = ref_kit.crm.records(CODES, ReferralCode).find({"customer_id": ann.id})
    assert record.code == code
    assert Loyalty.of(ref_kit.crm).referrals.owner_of(code) == ann.id


def test_no_code_at_creation_when_switched_off(kit_for):
    from crmcore_loyalty.records import CODES, ReferralCode

    kit = kit_for({"referral": {"code_on_create": False}})
    ann = kit.customer()
    assert "loyalty" not in kit.crm.customers.get(ann.id).ext
    assert kit.crm.records(CODES, ReferralCode).find({"customer_id": ann.id}) == []


def test_codes_are_made_on_demand_when_not_made_at_creation(kit_for):
    kit = kit_for({"referral": {"code_on_create": False, "code_length": 8}})
    ann = kit.customer()
    assert "loyalty" not in kit.crm.customers.get(ann.id).ext
    code = kit.loyalty.referral_code(ann.id, actor="t")
    assert len(code) == 8
    assert kit.loyalty.referral_code(ann.id, actor="t") == code
    assert kit.crm.customers.get(ann.id).ext["loyalty"]["referral_code"] == code


def test_code_draws_that_collide_are_redrawn(kit_for):
    kit = kit_for({"referral": {"code_on_create": False}})
    ann, bob = kit.customer(), kit.customer("Bob")
    first = kit.loyalty.referral_code(ann.id, actor="t", rng=random.Random(7))
    second = kit.loyalty.referral_code(bob.id, actor="t", rng=random.Random(7))
    assert first != second  # the same first draw was taken, so Bob's code is the next draw


@pytest.mark.parametrize(
    ("raw", "code"), [("abc234", "ABC234"), (" ABC-234 ", "ABC234"), ("abc 234", "ABC234")]
)
def test_codes_are_read_case_and_separator_insensitively(raw, code):
    assert normalize_code(raw) == code


@pytest.mark.parametrize("raw", ["ABC", "ABC10I", "ABCDEFGHJKMNP", "ÄBC234", ""])
def test_malformed_codes_are_refused(raw):
    with pytest.raises(ValidationError, match="not a referral code"):
        normalize_code(raw)


def test_unknown_code_is_not_found(ref_kit):
    new = ref_kit.customer()
    with pytest.raises(NotFoundError, match="no customer has referral code"):
        ref_kit.loyalty.link(new.id, "ZZZZZZ", actor="t")


# -- linking -------------------------------------------------------------------------------


def test_link_records_the_referral_and_logs_it_on_the_referrer(ref_kit):
    ann = ref_kit.customer()
    bob = ref_kit.customer("Bob")
    referral = ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann).lower(), actor="rep")
    assert (referral.referrer_id, referral.referred_id, referral.status) == (ann.id, bob.id, LINKED)
    logged = ref_kit.crm.interactions.for_customer(ann.id, kinds=["referral"])
    assert [(i.kind, i.ref) for i in logged] == [("referral", bob.id)]
    assert ref_kit.balance(ann) == 0 and ref_kit.balance(bob) == 0  # rewarded at purchase


@pytest.mark.parametrize(
    ("referrer", "referred", "matched"),
    [
        ({"phone": "+86 138 1234 5678"}, {"phone": "+86-138-1234-5678"}, "phone"),
        ({"phone": "0086 13812345678"}, {"phone": "+8613812345678"}, "phone"),
        ({"email": "Ann@Example.com"}, {"email": " ann@example.COM"}, "e-mail"),
        ({"address": "12 High St., Apt 3"}, {"address": "12  high st apt 3"}, "address"),
        (
            {"phone": "+86 138 1234 5678", "email": "a@x.com"},
            {"phone": "+86 138 1234 5678", "email": "a@x.com"},
            "phone and e-mail",
        ),
    ],
)
def test_self_referral_by_normalised_contact_is_refused_and_writes_nothing(
    ref_kit, referrer, referred, matched
):
    ann = ref_kit.customer("Ann", **{"phone": None, "email": None, **referrer})
    twin = ref_kit.customer("Ann Again", **{"phone": None, "email": None, **referred})
    before = (len(referrals(ref_kit)), ref_kit.crm.interactions.count())
    with pytest.raises(ValidationError, match=f"self-referral: .*same {matched} "):
        ref_kit.loyalty.link(twin.id, code_of(ref_kit, ann), actor="t")
    assert (len(referrals(ref_kit)), ref_kit.crm.interactions.count()) == before


def test_different_contacts_are_not_self_referral(ref_kit):
    ann = ref_kit.customer("Ann", phone="+86 138 1234 5678", address="12 High St")
    bob = ref_kit.customer("Bob", phone="+86 138 1234 5679", address="14 High St")
    assert ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t").status == LINKED


def test_a_customer_cannot_use_their_own_code(ref_kit):
    ann = ref_kit.customer()
    with pytest.raises(ValidationError, match="cannot use their own code"):
        ref_kit.loyalty.link(ann.id, code_of(ref_kit, ann), actor="t")


def test_self_referral_at_creation_adds_no_customer(ref_kit):
    ann = ref_kit.customer("Ann", phone="+86 138 1234 5678")
    count = ref_kit.crm.customers.count()
    with pytest.raises(ValidationError, match="self-referral"):
        ref_kit.loyalty.add_referred_customer(
            code_of(ref_kit, ann), actor="t", name="Ann 2", phone="+86 13812345678"
        )
    assert ref_kit.crm.customers.count() == count
    bob, referral = ref_kit.loyalty.add_referred_customer(
        code_of(ref_kit, ann), actor="t", name="Bob", phone="+86 139 0000 0000"
    )
    assert referral.referred_id == bob.id and referral.referrer_id == ann.id


def test_a_customer_is_linked_to_one_referrer_only(ref_kit):
    ann, cat = ref_kit.customer(), ref_kit.customer("Cat")
    bob = ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    with pytest.raises(ValidationError, match=f"already linked to referrer {ann.id}"):
        ref_kit.loyalty.link(bob.id, code_of(ref_kit, cat), actor="t")


@pytest.mark.parametrize(("age_days", "ok"), [(0, True), (29, True), (30, True), (31, False)])
def test_only_new_customers_can_be_linked(ref_kit, clock, age_days, ok):
    ann = ref_kit.customer()
    bob = ref_kit.customer("Bob")
    clock.advance(days=age_days)
    if ok:
        ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    else:
        with pytest.raises(ValidationError, match="within 30 days"):
            ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")


def test_a_customer_who_has_bought_already_cannot_be_linked(ref_kit):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.buy(bob, 10)
    with pytest.raises(ValidationError, match="has bought already"):
        ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")


def test_velocity_caps_per_hour_and_per_day(kit_for, clock):
    kit = kit_for({"referral": {"max_links_per_hour": 2, "max_links_per_day": 3}})
    ann = kit.customer()
    code = code_of(kit, ann)
    new = [kit.customer(f"New {i}") for i in range(5)]
    kit.loyalty.link(new[0].id, code, actor="t")
    kit.loyalty.link(new[1].id, code, actor="t")
    with pytest.raises(ValidationError, match="2 customers in the last hour"):
        kit.loyalty.link(new[2].id, code, actor="t")
    clock.advance(hours=1)
    kit.loyalty.link(new[2].id, code, actor="t")
    with pytest.raises(ValidationError, match="3 customers in the last day"):
        kit.loyalty.link(new[3].id, code, actor="t")
    clock.advance(days=1)
    kit.loyalty.link(new[3].id, code, actor="t")
    assert len(referrals(kit)) == 4


# -- rewards -------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "rewarded"), [(49.99, False), (50.0, True)])
def test_both_are_rewarded_at_the_first_qualifying_purchase(ref_kit, amount, rewarded):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    purchase = ref_kit.buy(bob, amount)
    referral = referrals(ref_kit)[0]
    assert (referral.status == REWARDED) is rewarded
    assert ref_kit.balance(ann) == (500 if rewarded else 0)
    assert ref_kit.balance(bob) == int(amount) + (200 if rewarded else 0)
    if rewarded:
        assert referral.qualifying_purchase_id == purchase.id
        ref_kit.replay(purchase)
        ref_kit.buy(bob, 80)  # a second purchase does not reward again
        assert ref_kit.balance(ann) == 500


def test_reward_at_link_stage_pays_at_once(kit_for):
    kit = kit_for(
        {"referral": {"reward_stage": "link", "referrer_points": 300, "referred_points": 100}}
    )
    ann, bob = kit.customer(), kit.customer("Bob")
    kit.loyalty.link(bob.id, code_of(kit, ann), actor="t")
    assert (kit.balance(ann), kit.balance(bob)) == (300, 100)
    assert referrals(kit)[0].status == REWARDED


def test_referral_rewards_are_not_multiplied_by_tier(kit_for):
    kit = kit_for(
        {
            "asks": {"enabled": False},
            "tiers": {"levels": [{"name": "gold", "threshold": 10, "multiplier": 3.0}]},
        }
    )
    ann, bob = kit.customer(), kit.customer("Bob")
    kit.buy(ann, 10)  # gold
    kit.loyalty.link(bob.id, code_of(kit, ann), actor="t")
    kit.buy(bob, 100)
    referrer = [e for e in kit.entries(ann) if e.reason == "referral_referrer"]
    assert [e.points for e in referrer] == [500]


def test_referrer_rewards_are_capped_per_period_but_links_are_kept(kit_for, clock):
    kit = kit_for(
        {
            "asks": {"enabled": False},
            "referral": {
                "max_rewards_per_period": 2,
                "period_days": 30,
                "max_links_per_hour": 10,
                "max_links_per_day": 10,
            },
        }
    )
    ann = kit.customer()
    friends = [kit.customer(f"F {i}") for i in range(3)]
    for friend in friends:
        kit.loyalty.link(friend.id, code_of(kit, ann), actor="t")
        kit.buy(friend, 100)
    assert kit.balance(ann) == 1000  # two rewards of 500, the third withheld
    assert [r.referrer_capped for r in sorted(referrals(kit), key=lambda r: r.referred_id)] == [
        False,
        False,
        True,
    ]
    assert all(kit.balance(f) == 300 for f in friends)  # the new customers still get theirs
    clock.advance(days=30)
    late = kit.customer("Late")
    kit.loyalty.link(late.id, code_of(kit, ann), actor="t")
    kit.buy(late, 100)
    assert kit.balance(ann) == 1500  # the period has moved on


@pytest.mark.parametrize(
    ("refunds", "clawed"),
    [
        ([40.0], False),  # 60 left >= 50: still qualifies
        ([50.01], True),  # 49.99 left: no longer qualifies
        ([None], True),  # a refund without amount: the whole purchase
        ([30.0, 30.0], True),  # two partial refunds adding up
    ],
)
def test_refund_of_the_qualifying_purchase_claws_back_both_rewards(ref_kit, refunds, clawed):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    purchase = ref_kit.buy(bob, 100)
    for amount in refunds:
        ref_kit.log(bob, "refund", ref=purchase.id, amount=amount)
    referral = referrals(ref_kit)[0]
    assert ref_kit.balance(ann) == (0 if clawed else 500)
    assert (referral.status, referral.clawbacks) == ((LINKED, 1) if clawed else (REWARDED, 0))
    refunded = sum(100 if a is None else a for a in refunds)
    kept_purchase_points = int(100 * max(0, 100 - refunded) / 100)
    assert ref_kit.balance(bob) == kept_purchase_points + (0 if clawed else 200)


def test_after_a_clawback_the_next_qualifying_purchase_rewards_again(ref_kit):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    first = ref_kit.buy(bob, 100)
    refund = ref_kit.log(bob, "refund", ref=first.id)
    ref_kit.replay(refund)
    second = ref_kit.buy(bob, 70)
    referral = referrals(ref_kit)[0]
    assert (referral.status, referral.qualifying_purchase_id, referral.rewards) == (
        REWARDED,
        second.id,
        2,
    )
    assert ref_kit.balance(ann) == 500
    assert ref_kit.balance(bob) == 70 + 200


def test_clawback_of_a_spent_referral_reward_never_goes_negative(ref_kit):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    purchase = ref_kit.buy(bob, 100)
    ref_kit.loyalty.redeem(ann.id, 450, actor="t")
    ref_kit.log(bob, "refund", ref=purchase.id)
    clawback = next(e for e in ref_kit.entries(ann) if e.kind == "clawback")
    assert (clawback.points, clawback.shortfall) == (-50, 450)
    assert ref_kit.balance(ann) == 0


def test_a_refund_naming_another_customers_purchase_claws_back_nothing(ref_kit):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    purchase = ref_kit.buy(ann, 100)
    ref_kit.log(bob, "refund", ref=purchase.id)
    ref_kit.log(bob, "refund", ref="int_unknown")
    assert ref_kit.balance(ann) == 100
    assert [e.kind for e in ref_kit.entries(ann)] == [EARN]


def test_concurrent_rewards_for_one_referral_pay_once(ref_kit, monkeypatch):
    ann, bob = ref_kit.customer(), ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann), actor="t")
    stale = referrals(ref_kit)[0]
    ref_kit.buy(bob, 100)  # rewards
    # A second worker that read the referral before the reward tries to reward it again.
    monkeypatch.setattr(
        type(ref_kit.loyalty.referrals), "referral_of", lambda self, referred_id: stale
    )
    purchase = ref_kit.buy(bob, 90)
    monkeypatch.undo()
    assert ref_kit.balance(ann) == 500
    assert referrals(ref_kit)[0].qualifying_purchase_id != purchase.id


def test_stats_and_leaderboard(ref_kit, clock):
    ann, cat = ref_kit.customer(), ref_kit.customer("Cat")
    friends = [ref_kit.customer(f"F {i}") for i in range(3)]
    ref_kit.loyalty.link(friends[0].id, code_of(ref_kit, ann), actor="t")
    ref_kit.loyalty.link(friends[1].id, code_of(ref_kit, ann), actor="t")
    ref_kit.loyalty.link(friends[2].id, code_of(ref_kit, cat), actor="t")
    ref_kit.buy(friends[0], 60)
    stats = ref_kit.loyalty.referral_stats(ann.id)
    assert (stats.links, stats.rewarded, stats.waiting, stats.points_earned) == (2, 1, 1, 500)
    assert ref_kit.loyalty.referral_stats(friends[0].id).referred_by == ann.id
    board = ref_kit.loyalty.referrals.leaderboard()
    assert [(r["referrer"], r["links"], r["points"]) for r in board] == [
        (ann.id, 2, 500),
        (cat.id, 1, 0),
    ]
    assert ref_kit.loyalty.referrals.leaderboard(since=clock.now() + timedelta(seconds=1)) == []


def test_merging_keeps_referrals_and_ledgers(ref_kit):
    ann, ann_dup = ref_kit.customer("Ann"), ref_kit.customer("Ann (dup)")
    bob = ref_kit.customer("Bob")
    ref_kit.loyalty.link(bob.id, code_of(ref_kit, ann_dup), actor="t")
    ref_kit.buy(bob, 100)
    ref_kit.buy(ann, 10)
    ref_kit.crm.customers.merge(ann.id, ann_dup.id, actor="t")
    assert ref_kit.balance(ann) == 510
    assert referrals(ref_kit)[0].referrer_id == ann.id
    assert ref_kit.loyalty.referral_stats(ann.id).links == 1
    # Both of the duplicate's records had been referred: the merge still goes through.
    cat, dan = ref_kit.customer("Cat"), ref_kit.customer("Dan")
    ref_kit.loyalty.link(cat.id, code_of(ref_kit, ann), actor="t")
    ref_kit.loyalty.link(dan.id, code_of(ref_kit, bob), actor="t")
    ref_kit.crm.customers.merge(cat.id, dan.id, actor="t")
    assert {r.referred_id for r in referrals(ref_kit)} == {bob.id, cat.id}


def test_normalize_address():
    assert normalize_address("  12, High St.  APT-3 ") == "12 high st apt 3"
    assert normalize_address(" , ") is None
    assert normalize_address(None) is None


def test_concurrent_links_by_one_referrer_respect_the_velocity_cap(kit_for, monkeypatch):
    kit = kit_for({"referral": {"max_links_per_hour": 1, "max_links_per_day": 5}})
    ann = kit.customer()
    bob, cat = kit.customer("Bob"), kit.customer("Cat")
    code = code_of(kit, ann)
    real = type(kit.loyalty.referrals)._check_velocity
    raced = []

    def racing(self, referrer_id, now):
        real(self, referrer_id, now)
        if not raced:  # another worker links Cat after our check, before our commit
            raced.append(True)
            type(self)(kit.crm, kit.loyalty.ledger).link(cat.id, code, actor="other")

    monkeypatch.setattr(type(kit.loyalty.referrals), "_check_velocity", racing)
    with pytest.raises(ValidationError, match="1 customers in the last hour"):
        kit.loyalty.link(bob.id, code, actor="this")
    assert [r.referred_id for r in referrals(kit)] == [cat.id]


def test_conflicts_are_reported_not_swallowed_when_retries_run_out(kit, monkeypatch):
    ann = kit.customer()
    kit.buy(ann, 100)
    from crmcore_loyalty import ledger as ledger_module

    monkeypatch.setattr(
        ledger_module.Ledger,
        "_commit",
        lambda self, *a: (_ for _ in ()).throw(ledger_module._Stale()),
    )
    with pytest.raises(ConflictError, match="kept changing"):
        kit.loyalty.redeem(ann.id, 10, actor="t")


def test_merging_two_tiered_customers_leaves_one_tier(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}})
    ann, dup = kit.customer("Ann"), kit.customer("Ann (dup)")
    kit.buy(ann, 600)
    kit.buy(dup, 1500)
    kit.crm.customers.merge(ann.id, dup.id, actor="t")
    assert kit.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "gold"  # 2100 spend
    from crmcore.report import build_report

    tiers = next(
        dict((r[0], r[1]) for r in s.rows)
        for s in build_report(kit.crm)
        if s.title == "Loyalty tiers"
    )
    assert (tiers["gold"], tiers["silver"]) == (1, 0)
    clock.advance(days=366)
    kit.crm.tick("w")  # the merged account has no review of its own left to run
    assert kit.loyalty.ledger.account(dup.id).tier_review_at is None
