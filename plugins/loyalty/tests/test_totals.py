"""Running spend totals (``crmcore_loyalty.totals``): a purchase re-tiers from loyalty's own
record instead of re-reading the customer's history, and the record always gives what a full
recomputation over the stored history gives."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import timedelta

import pytest
from crmcore_loyalty.records import TOTALS, totals_id
from crmcore_loyalty.tiers import refund_amount
from crmcore_loyalty.totals import window_sum

from crmcore.storage.memory import MemoryCollection

TIERS = {
    "basis": "spend",
    "window_days": 30,
    "review_days": 10,
    "levels": [
        {"name": "silver", "threshold": 100, "multiplier": 1.5},
        {"name": "gold", "threshold": 500, "multiplier": 2.0},
    ],
}


def recomputed(kit, customer_id, now):
    """Spend over the window ending at ``now``, read from every stored interaction."""
    since = now - timedelta(days=TIERS["window_days"])
    paid = kit.loyalty.settings.earn.purchase_kinds
    values = []
    for i in kit.crm.interactions.for_customer(customer_id):
        if not since < i.occurred_at <= now:
            continue
        if i.kind in paid:
            values.append(i.amount or 0.0)
        elif i.kind == "refund":
            values.append(-refund_amount(kit.crm, i.amount, i.ref))
    return round(max(0.0, math.fsum(values)), 2)


@pytest.fixture
def tiered(kit_for):
    return kit_for({"asks": {"enabled": False}, "tiers": TIERS})


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_running_totals_equal_a_full_recomputation_over_a_random_history(tiered, clock, seed):
    rng = random.Random(seed)
    people = [tiered.customer() for _ in range(4)]
    purchases: list = []
    for _step in range(120):
        clock.advance(timedelta(hours=rng.choice([1, 5, 30, 24 * 6])))
        who = rng.choice(people)
        roll = rng.random()
        if roll < 0.6:
            back = timedelta(days=rng.choice([0, 0, 0, 2, 20, 45]))  # some back-dated
            purchases.append(
                tiered.buy(who, round(rng.uniform(1, 300), 2), occurred_at=clock.now() - back)
            )
        elif roll < 0.8 and purchases:
            bought = rng.choice(purchases)
            amount = rng.choice([None, round((bought.amount or 0) * rng.random(), 2)])
            fields = {"amount": amount} if amount is not None else {}
            tiered.log(bought.customer_id, "refund", ref=bought.id, **fields)
        else:
            tiered.log(who, "note", summary="called")
        now = clock.now()
        for person in people:
            expected = recomputed(tiered, person.id, now)
            assert tiered.loyalty.tiers.qualifying(person.id, now) == expected
    # and the tiers they hold are the tiers a recomputation gives (upgrades are immediate)
    for person in people:
        record = tiered.loyalty.totals.of(person.id)
        assert record is not None and record.horizon is not None  # old lines were dropped
        rebuilt = tiered.loyalty.totals.rebuild(person.id)
        now = clock.now()
        since = now - timedelta(days=TIERS["window_days"])
        assert window_sum(rebuilt.lines, since, now) == recomputed(tiered, person.id, now)


def test_a_purchase_does_not_read_the_customers_history(tiered, monkeypatch):
    ann = tiered.customer()
    for amount in range(1, 30):
        tiered.buy(ann, float(amount))
    finds: Counter[str] = Counter()
    original = MemoryCollection.find

    def find(self, filter=None, **kwargs):
        finds[self.name] += 1
        return original(self, filter, **kwargs)

    monkeypatch.setattr(MemoryCollection, "find", find)
    tiered.buy(ann, 10.0)
    assert finds["interactions"] == 0
    assert tiered.loyalty.tiers.qualifying(ann.id, tiered.crm.now()) == sum(range(1, 30)) + 10


def test_a_store_without_totals_rebuilds_them_on_the_next_purchase(tiered):
    ann = tiered.customer()
    tiered.buy(ann, 80.0)
    records = tiered.crm.collection(TOTALS)
    records.delete(totals_id(ann.id))  # a store from before the totals existed
    tiered.buy(ann, 30.0)
    assert tiered.loyalty.totals.of(ann.id) is not None
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_totals_written_under_other_purchase_kinds_are_rebuilt(kit_for, clock):
    first = kit_for({"asks": {"enabled": False}, "tiers": TIERS})
    ann = first.customer()
    first.buy(ann, 60.0)
    store = first.crm
    now = store.now()
    since = now - timedelta(days=30)
    assert first.loyalty.totals.spend(ann.id, since, now) == 60.0
    # a record written under other purchase kinds is not trusted: read from the history,
    # and rebuilt by the next purchase
    record = first.loyalty.totals.of(ann.id)
    records = store.collection(TOTALS)
    records.update(
        record.id, {"kinds": "something-else", "lines": []}, expected_version=record.version
    )
    assert first.loyalty.totals.spend(ann.id, since, now) == 60.0
    assert first.loyalty.totals.of(ann.id).kinds == "something-else"  # a read wrote nothing
    first.buy(ann, 50.0)
    rebuilt = first.loyalty.totals.of(ann.id)
    assert rebuilt.kinds != "something-else"
    assert [line[1] for line in rebuilt.lines] == [60.0, 50.0]
    assert store.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_a_window_reaching_past_the_horizon_is_answered_by_a_rebuild(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 120.0)
    clock.advance(timedelta(days=40))
    tiered.buy(ann, 10.0)  # the first purchase's line leaves the record
    record = tiered.loyalty.totals.of(ann.id)
    assert [line[1] for line in record.lines] == [10.0]
    then = clock.now() - timedelta(days=39)  # a window that still holds the first purchase
    assert tiered.loyalty.tiers.qualifying(ann.id, then) == 120.0


def test_a_merge_counts_the_merged_customers_purchases(tiered):
    ann, dup = tiered.customer(), tiered.customer()
    tiered.buy(ann, 60.0)
    tiered.buy(dup, 50.0)
    tiered.crm.customers.merge(ann.id, dup.id, actor="tester")
    now = tiered.crm.now()
    assert tiered.loyalty.tiers.qualifying(ann.id, now) == 110.0
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_record_all_folds_many_purchases_into_one_write(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 10.0)
    later = []
    for amount in (20.0, 30.0, 40.0):
        clock.advance(timedelta(hours=1))
        later.append(tiered.buy(ann, amount))
    # as if the three had been stored without their lines (a history import that folds a
    # customer's events afterwards): only the first line left
    record = tiered.loyalty.totals.of(ann.id)
    tiered.crm.collection(TOTALS).update(
        record.id, {"lines": record.lines[:1]}, expected_version=record.version
    )
    stripped = tiered.loyalty.totals.of(ann.id)
    tiered.loyalty.totals.record_all(ann.id, later, now=clock.now())
    folded = tiered.loyalty.totals.of(ann.id)
    assert folded.version == stripped.version + 1  # one write for the three
    assert folded.lines == record.lines
    tiered.loyalty.totals.record_all(ann.id, later, now=clock.now())  # again: nothing new
    assert tiered.loyalty.totals.of(ann.id).version == folded.version
    since = clock.now() - timedelta(days=30)
    assert tiered.loyalty.totals.spend(ann.id, since, clock.now()) == 100.0
    with pytest.raises(ValueError, match="not of customer"):
        tiered.loyalty.totals.record_all(tiered.customer().id, later, now=clock.now())
