"""Running spend totals (``crmcore_loyalty.totals``): a purchase re-tiers from loyalty's own
small record instead of re-reading the customer's history, the record does not grow with the
history, and it always gives what a full recomputation over the stored history gives."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from crmcore_loyalty.records import ACCOUNTS, TOTALS, account_id, totals_id
from crmcore_loyalty.tiers import refund_amount
from crmcore_loyalty.totals import MICROS, kinds_key

from crmcore.history import HistoryRow, replay
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


def values(kit, customer_id, low, high):
    """The signed amounts of the customer's purchases and refunds with low < at <= high,
    read from every stored interaction."""
    paid = kit.loyalty.settings.earn.purchase_kinds
    out = []
    for i in kit.crm.interactions.for_customer(customer_id):
        if (low is not None and i.occurred_at <= low) or (
            high is not None and i.occurred_at > high
        ):
            continue
        if i.kind in paid:
            out.append(i.amount or 0.0)
        elif i.kind == "refund":
            out.append(-refund_amount(kit.crm, i.amount, i.ref))
    return out


def recomputed(kit, customer_id, now):
    """Spend over the window ending at ``now``, read from every stored interaction."""
    since = now - timedelta(days=TIERS["window_days"])
    return round(max(0.0, math.fsum(values(kit, customer_id, since, now))), 2)


def assert_record_is_recomputable(kit, customer_id):
    """The stored record says what the stored interactions say: ``micros`` is the sum of the
    lines in (edge, top], ``top`` the latest line, none counted before ``first``."""
    record = kit.loyalty.totals.of(customer_id)
    if record is None:
        return
    assert record.kinds == kinds_key(kit.loyalty.settings)
    inside = values(kit, customer_id, record.edge, record.top)
    assert record.micros == sum(round(v * MICROS) for v in inside), customer_id
    if record.first is not None:
        assert not values(kit, customer_id, record.edge, record.first - timedelta(microseconds=1))


@pytest.fixture
def tiered(kit_for):
    return kit_for({"asks": {"enabled": False}, "tiers": TIERS})


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_running_totals_equal_a_full_recomputation_over_a_random_history(tiered, clock, seed):
    """Purchases (some back-dated, some at the same instant), refunds with and without an
    amount, other kinds, replayed events, history imports (the batch fold) and merges."""
    rng = random.Random(seed)
    people = [tiered.customer() for _ in range(5)]
    purchases: list = []
    rows = 0
    done: Counter[str] = Counter()
    for _step in range(140):
        clock.advance(timedelta(hours=rng.choice([0, 1, 5, 30, 24 * 6, 24 * 20])))
        merged = {c.id for c in tiered.crm.customers.find({"status": "merged"})}
        live = [p for p in people if p.id not in merged]
        who = rng.choice(live)
        roll = rng.random()
        if roll < 0.45:
            back = timedelta(days=rng.choice([0, 0, 0, 0, 2, 20, 45]))  # some back-dated
            purchases.append(
                tiered.buy(who, round(rng.uniform(1, 300), 2), occurred_at=clock.now() - back)
            )
            done["purchase"] += 1
        elif roll < 0.6 and purchases:
            bought = tiered.crm.interactions.get(rng.choice(purchases).id)
            amount = rng.choice([None, round((bought.amount or 0) * rng.random(), 2)])
            fields = {"amount": amount} if amount is not None else {}
            tiered.log(bought.customer_id, "refund", ref=bought.id, **fields)
            done["refund"] += 1
        elif roll < 0.7 and purchases:
            tiered.replay(tiered.crm.interactions.get(rng.choice(purchases).id))
            done["replay"] += 1
        elif roll < 0.8:
            rows += 1
            at = clock.now() - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
            fields = {"kind": "purchase", "occurred_at": at, "amount": rng.uniform(1, 200)}
            replay(tiered.crm, [HistoryRow(rows, who.id, fields, key=f"r{rows}")], actor="imp")
            done["import"] += 1
        elif roll < 0.84 and len(live) > 2:
            gone = rng.choice([p for p in live if p.id != who.id])
            tiered.crm.customers.merge(who.id, gone.id, actor="t")
            done["merge"] += 1
        else:
            tiered.log(who, "note", summary="called")
        now = clock.now()
        merged = {c.id for c in tiered.crm.customers.find({"status": "merged"})}
        for person in (p for p in people if p.id not in merged):
            assert_record_is_recomputable(tiered, person.id)
            expected = recomputed(tiered, person.id, now)
            assert tiered.loyalty.tiers.qualifying(person.id, now) == expected
            # and at a past instant inside the record's window (read, nothing written)
            then = now - timedelta(days=rng.choice([0, 1, 3]))
            assert tiered.loyalty.tiers.qualifying(person.id, then) == recomputed(
                tiered, person.id, then
            )
    assert set(done) >= {"purchase", "refund", "replay", "import"}
    for person in people:  # a rebuild gives the record it replaces
        record = tiered.loyalty.totals.of(person.id)
        if record is None:
            continue
        rebuilt = tiered.loyalty.totals.rebuild(person.id)
        assert rebuilt.micros == sum(
            round(v * MICROS) for v in values(tiered, person.id, rebuilt.edge, rebuilt.top)
        )


def counted_finds(monkeypatch) -> Counter[str]:
    """Queries reaching the in-memory backend, per collection. Patched before the CRM is
    built: store layers bind the backend's own ``find`` when they are made."""
    finds: Counter[str] = Counter()
    original = MemoryCollection.find

    def find(self, filter=None, **kwargs):
        finds[self.name] += 1
        return original(self, filter, **kwargs)

    monkeypatch.setattr(MemoryCollection, "find", find)
    return finds


def test_a_purchase_reads_no_history_and_the_record_does_not_grow(kit_for, clock, monkeypatch):
    finds = counted_finds(monkeypatch)
    tiered = kit_for({"asks": {"enabled": False}, "tiers": TIERS})
    ann = tiered.customer()
    for amount in range(1, 21):  # silver at 100: the tier's fields are set
        tiered.buy(ann, float(amount))
    size = len(orjson.dumps(tiered.crm.collection(ACCOUNTS).get(account_id(ann.id))))
    finds.clear()
    for amount in range(21, 300):
        clock.advance(timedelta(minutes=30))
        tiered.buy(ann, float(amount))
    # 300 purchases over a bit more than 6 days of a 30-day window: no line has left it
    assert finds["interactions"] == 0
    doc = tiered.crm.collection(ACCOUNTS).get(account_id(ann.id))
    # the sums (spend, balance) and counters (seq, version) have more digits, nothing more
    assert len(orjson.dumps(doc)) <= size + 16
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == sum(range(1, 300))


def test_lines_leaving_the_window_are_read_back_once(kit_for, clock, monkeypatch):
    finds = counted_finds(monkeypatch)
    tiered = kit_for({"asks": {"enabled": False}, "tiers": TIERS})
    ann = tiered.customer()
    for amount in (10.0, 20.0, 30.0):
        tiered.buy(ann, amount)
        clock.advance(timedelta(days=1))
    clock.advance(timedelta(days=27, hours=12))  # the first purchase left the window
    finds.clear()
    tiered.buy(ann, 1.0)
    assert finds["interactions"] == 2  # the line that left, and the next one still inside
    assert tiered.loyalty.totals.of(ann.id).micros == 51 * MICROS
    finds.clear()
    clock.advance(timedelta(hours=1))
    tiered.buy(ann, 1.0)
    assert finds["interactions"] == 0
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == 52.0


def test_a_store_without_totals_rebuilds_them_on_the_next_purchase(tiered):
    ann = tiered.customer()
    tiered.buy(ann, 80.0)
    strip_totals(tiered, ann.id)  # a store from before the totals existed
    tiered.buy(ann, 30.0)
    assert tiered.loyalty.totals.of(ann.id).micros == 110 * MICROS
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def strip_totals(kit, customer_id):
    """The account as a store from before it kept the spend totals left it."""
    accounts = kit.crm.collection(ACCOUNTS)
    doc = accounts.get(account_id(customer_id))
    blank = {"spend_micros": 0, "spend_edge": None, "spend_top": None, "spend_first": None}
    accounts.update(doc["id"], {**blank, "spend_kinds": ""}, expected_version=doc["version"])


def test_the_records_of_the_earlier_stores_are_read_past_and_deleted_by_a_rebuild(tiered):
    """A store written when the totals were records of their own (``loyalty.totals``, of
    either earlier form): not read; the account's totals are built by the next purchase, and
    ``crm loyalty rebuild`` deletes the old records."""
    ann, bob = tiered.customer(), tiered.customer()
    tiered.buy(ann, 60.0)
    tiered.buy(bob, 20.0)
    strip_totals(tiered, ann.id)
    records = tiered.crm.collection(TOTALS)
    old = {  # the first form: a line per purchase in the window
        "id": totals_id(ann.id),
        "customer_id": ann.id,
        "lines": [["2026-01-01T00:00:00+00:00", 5.0, "int_x"]],
        "horizon": None,
        "kinds": "purchase",
        "version": 1,
    }
    records.insert(old)
    records.insert(  # the second form, of its own record
        {"id": totals_id(bob.id), "customer_id": bob.id, "micros": 999, "kinds": "2|purchase",
         "version": 1}
    )  # fmt: skip
    now = tiered.crm.now()
    since = now - timedelta(days=30)
    assert tiered.loyalty.totals.spend(ann.id, since, now) == 60.0  # from the history
    assert tiered.loyalty.totals.spend(bob.id, since, now) == 20.0  # the account's
    assert tiered.loyalty.totals.of(ann.id) is None  # a read wrote nothing
    tiered.buy(ann, 50.0)
    rebuilt = tiered.loyalty.totals.of(ann.id)
    assert rebuilt.kinds == kinds_key(tiered.loyalty.settings)
    assert rebuilt.micros == 110 * MICROS
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"
    report = tiered.loyalty.rebuild(actor="tester")
    assert report.totals == 2
    assert list(records.iter()) == []
    assert tiered.loyalty.totals.of(bob.id).micros == 20 * MICROS


def test_totals_written_under_other_purchase_kinds_are_rebuilt(tiered):
    ann = tiered.customer()
    tiered.buy(ann, 60.0)
    now = tiered.crm.now()
    since = now - timedelta(days=30)
    record = tiered.loyalty.totals.of(ann.id)
    records = tiered.crm.collection(ACCOUNTS)
    records.update(
        record.id,
        {"spend_kinds": "2|something-else", "spend_micros": 0},
        expected_version=record.version,
    )
    assert tiered.loyalty.totals.spend(ann.id, since, now) == 60.0
    assert tiered.loyalty.totals.of(ann.id).kinds == "2|something-else"  # a read wrote nothing
    tiered.buy(ann, 50.0)
    assert tiered.loyalty.totals.of(ann.id).micros == 110 * MICROS


def test_a_window_reaching_before_the_edge_is_read_from_the_history(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 120.0)
    clock.advance(timedelta(days=40))
    tiered.buy(ann, 10.0)  # the first purchase leaves the record
    assert tiered.loyalty.totals.of(ann.id).micros == 10 * MICROS
    then = clock.now() - timedelta(days=39)  # a window that still holds the first purchase
    assert tiered.loyalty.tiers.qualifying(ann.id, then) == 120.0


def test_a_replayed_purchase_changes_nothing(tiered):
    ann = tiered.customer()
    tiered.buy(ann, 10.0)
    purchase = tiered.buy(ann, 20.0)
    record = tiered.loyalty.totals.of(ann.id)
    tiered.replay(purchase)
    assert tiered.loyalty.totals.of(ann.id) == record  # not even its version moved


def test_a_back_dated_purchase_counts(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 10.0)
    clock.advance(timedelta(days=2))
    tiered.buy(ann, 20.0)
    tiered.buy(ann, 30.0, occurred_at=clock.now() - timedelta(days=1))
    tiered.buy(ann, 40.0, occurred_at=clock.now() - timedelta(days=31))  # before the window
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == 60.0


def test_a_history_import_after_live_purchases_counts_in_the_spend(tiered, clock):
    """The batch fold counts its purchases in an existing record (it wrote none before)."""
    ann = tiered.customer()
    tiered.buy(ann, 40.0)
    rows = [
        HistoryRow(n, ann.id, {"kind": "purchase", "occurred_at": clock.now() - timedelta(days=d),
                               "amount": 25.0}, key=f"h{n}")
        for n, d in enumerate((10, 5, 45), start=1)
    ]  # fmt: skip
    replay(tiered.crm, rows, actor="importer")
    assert_record_is_recomputable(tiered, ann.id)
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == 90.0
    clock.advance(timedelta(hours=1))
    tiered.buy(ann, 15.0)  # silver at 100
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_a_merge_counts_the_merged_customers_purchases(tiered):
    ann, dup = tiered.customer(), tiered.customer()
    tiered.buy(ann, 60.0)
    tiered.buy(dup, 50.0)
    tiered.crm.customers.merge(ann.id, dup.id, actor="tester")
    now = tiered.crm.now()
    assert tiered.loyalty.tiers.qualifying(ann.id, now) == 110.0
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_record_all_counts_many_purchases_with_one_write(tiered, clock):
    ann = tiered.customer()
    tiered.buy(ann, 10.0)
    record = tiered.loyalty.totals.of(ann.id)
    # three purchases stored without their lines counted (a history import folds a
    # customer's events afterwards): the record put back as it was before them
    later = []
    for amount in (20.0, 30.0, 40.0):
        clock.advance(timedelta(hours=1))
        later.append(tiered.buy(ann, amount))
    current = tiered.loyalty.totals.of(ann.id)
    tiered.crm.collection(ACCOUNTS).update(
        record.id,
        {
            "spend_micros": record.micros,
            "spend_top": record.top.isoformat(),
            "spend_first": record.first.isoformat(),
        },
        expected_version=current.version,
    )
    stripped = tiered.loyalty.totals.of(ann.id)
    tiered.loyalty.totals.record_all(ann.id, later, now=clock.now())
    folded = tiered.loyalty.totals.of(ann.id)
    assert folded.version == stripped.version + 1  # one write for the three
    assert folded.micros == 100 * MICROS
    tiered.loyalty.totals.record_all(ann.id, later, now=clock.now())  # again: nothing new
    assert tiered.loyalty.totals.of(ann.id).version == folded.version
    since = clock.now() - timedelta(days=30)
    assert tiered.loyalty.totals.spend(ann.id, since, clock.now()) == 100.0
    with pytest.raises(ValueError, match="not of customer"):
        tiered.loyalty.totals.record_all(tiered.customer().id, later, now=clock.now())


def test_a_purchase_writes_the_account_once_with_its_spend(kit_for, clock, monkeypatch):
    """The earn's account write carries the purchase's spend totals: one loyalty record read
    and written per purchase (they were a record of their own, read and written after it)."""
    writes: Counter[str] = Counter()
    original = MemoryCollection.update

    def update(self, id, changes, **kwargs):
        writes[self.name] += 1
        return original(self, id, changes, **kwargs)

    monkeypatch.setattr(MemoryCollection, "update", update)
    tiered = kit_for({"asks": {"enabled": False}, "tiers": TIERS})
    ann = tiered.customer()
    tiered.buy(ann, 10.0)  # the account and its totals made
    for amount in (20.0, 30.0, 25.0):
        clock.advance(timedelta(hours=1))
        writes.clear()
        tiered.buy(ann, amount)
        assert writes["loyalty.accounts"] == 1
        assert writes["loyalty.totals"] == 0
        assert_record_is_recomputable(tiered, ann.id)
    clock.advance(timedelta(hours=1))
    tiered.buy(ann, 20.0)  # silver at 100: the tier's change is a write of its own
    assert_record_is_recomputable(tiered, ann.id)
    assert tiered.loyalty.tiers.qualifying(ann.id, clock.now()) == 105.0
    assert tiered.crm.customers.get(ann.id).ext["loyalty"]["tier"] == "silver"


def test_the_accounts_derived_fields_are_the_spend_totals_fields() -> None:
    """``storage`` names the account's derived fields without importing ``records``: the two
    spellings stay equal, and each is a field of ``Account``."""
    import attrs
    from crmcore_loyalty import records, storage

    assert tuple(records.SPEND_FIELDS.values()) == storage.SPEND_FIELDS
    assert set(storage.SPEND_FIELDS) <= {f.name for f in attrs.fields(records.Account)}
    (accounts,) = [spec for spec in storage.collections() if spec.name == storage.ACCOUNTS]
    assert accounts.derived == storage.SPEND_FIELDS
