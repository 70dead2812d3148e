"""A merge joins two ledgers whose ``seq`` numbers overlap: what the kept customer posts
afterwards must still be replayed after everything it was planned on, so that the lots (what
expiry and redemption consume) keep adding up to the balance."""

from __future__ import annotations

from datetime import timedelta

import attrs
from crmcore_loyalty.ledger import replay
from crmcore_loyalty.records import LEDGER, LedgerEntry


def assert_lots_add_up(kit, customer_id: str) -> None:
    state = kit.loyalty.ledger.state(customer_id)
    assert sum(lot.remaining for lot in state.lots.values()) == state.balance, (
        customer_id,
        [(e.seq, e.kind, e.points) for e in state.entries],
    )
    assert all(lot.remaining >= 0 for lot in state.lots.values())


def test_postings_after_a_merge_are_replayed_after_the_joined_ledger(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}, "expiry": {"days": 30, "reminder_days": 0}})
    ann, dup = kit.customer(), kit.customer("Ann L.")
    kit.buy(ann, 100)  # ann: seq 1
    for amount in (50, 60, 70, 80):  # dup: seq 1..4
        kit.buy(dup, amount)
    kit.crm.customers.merge(ann.id, dup.id, actor="t")
    assert kit.balance(ann) == 360
    kit.loyalty.redeem(ann.id, 300, actor="t")  # planned on all five lots
    assert_lots_add_up(kit, ann.id)
    clock.advance(timedelta(days=10))
    kit.buy(ann, 20)
    assert_lots_add_up(kit, ann.id)
    clock.advance(timedelta(days=25))  # every lot but the last purchase's is past its date
    kit.crm.tick("w")
    assert_lots_add_up(kit, ann.id)
    assert kit.balance(ann) == 20
    assert kit.loyalty.account(ann.id).available == 20


def test_the_kept_account_numbers_on_after_the_highest_joined_entry(kit):
    ann, dup = kit.customer(), kit.customer("Ann L.")
    kit.buy(ann, 10)
    for _ in range(3):
        kit.buy(dup, 10)
    kit.crm.customers.merge(ann.id, dup.id, actor="t")
    assert kit.loyalty.ledger.account(ann.id).seq == 3
    entry = kit.loyalty.redeem(ann.id, 5, actor="t")
    assert entry.seq == 4
    assert_lots_add_up(kit, ann.id)


def test_a_ledger_already_interleaved_by_an_old_merge_still_adds_up(kit):
    """A store written before the fix: a redemption numbered before lots it was planned on.
    What it could not take when replayed is taken from the lots that come after it."""
    ann = kit.customer()
    kit.buy(ann, 100)
    kit.buy(ann, 100)
    entries = sorted(kit.entries(ann), key=lambda e: e.seq)
    redeem = attrs.evolve(
        entries[0], id="lpe_old", kind="redeem", points=-150, key="redeem|old", seq=1,
        source="old", expires_at=None,
    )  # fmt: skip
    _ordered, balance, lots = replay([*entries, redeem])
    assert balance == 50
    assert sum(lot.remaining for lot in lots.values()) == 50
    kit.crm.records(LEDGER, LedgerEntry).insert(redeem)
    kit.loyalty.rebuild()
    assert_lots_add_up(kit, ann.id)
    assert kit.loyalty.ledger.account(ann.id).seq == 2
