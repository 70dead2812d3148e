"""What one user action costs on the retail stack, counted (not timed): the structural part of
W7 (issue 24 item 1). Each call is one transaction; the counts are the backend's own calls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from crmcore_storage_tinydb.collection import TinyCollection


@pytest.fixture
def calls(monkeypatch) -> Iterator[Counter[tuple[str, str]]]:
    """The embedded backend's reads by id and writes, per (operation, collection)."""
    counted: Counter[tuple[str, str]] = Counter()
    for name in ("get", "insert", "update", "find", "count"):
        original = getattr(TinyCollection, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            counted[(_name, self.name)] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(TinyCollection, name, counting)
    yield counted


def test_a_call_reads_and_writes_each_record_once(init_profile, open_profile, calls):
    crm, clock = open_profile(init_profile("retail"))
    customers = []
    for i in range(3):
        clock.advance(timedelta(minutes=1))
        calls.clear()
        customers.append(
            crm.customers.add(actor="ann", name=f"Customer {i}", phone=f"+8613900000{i:03d}")
        )
        # the customer is written once: inserted with the ext plugins give it before the
        # insert (loyalty's referral code, ``crm_customer_adding``); read from the store once
        assert calls[("update", "customers")] == 0, calls
        assert calls[("get", "customers")] <= 1
        assert calls[("update", "followup.schedule")] + calls[("insert", "followup.schedule")] == 1
        # a customer just added has no schedule: follow-up inserts it without asking first
        assert calls[("get", "followup.schedule")] == 0, calls
        # the first contact is created without asking first whether one is open (the
        # creation's own dedupe check does), and the rep roster is read once per call
        assert calls[("find", "tasks")] == 1, calls
        assert calls[("find", "followup.reps")] <= 1, calls
    # purchases that move the customer up a loyalty tier (loyalty's ext) and re-grade them
    # (grading's ext) at the same time
    for round_, amount in enumerate((600.0, 1600.0, 3200.0, 20.0)):
        for customer in customers:
            clock.advance(timedelta(minutes=5))
            calls.clear()
            crm.interactions.log(
                actor="ann", customer_id=customer.id, kind="purchase", amount=amount
            )
            assert calls[("update", "customers")] <= 1, calls
            # once to check it before the transaction opens, once inside it for every reaction
            assert calls[("get", "customers")] <= 2, calls
            assert calls[("get", "loyalty.accounts")] <= 1, calls
            # loyalty's tier evaluation reads no history (its running totals instead; the
            # first purchase makes them, from a history of that one purchase)
            assert calls[("find", "interactions")] == (1 if round_ == 0 else 0), calls
            # the totals live on the account: counted in the earn's account write (a tier
            # change is a write of its own; the last round changes no tier)
            assert not any(coll == "loyalty.totals" for _, coll in calls), calls
            if round_ == 3:
                assert calls[("update", "loyalty.accounts")] == 1, calls
    tiers = {crm.customers.get(c.id).ext["loyalty"]["tier"] for c in customers}
    assert tiers == {"platinum"}  # the purchases did move the tiers
    # completing a follow-up: the schedule is written once (cadence restart and the next
    # follow-up's due date together)
    first = crm.tasks.find({"kind": "first_contact", "status": "open"})
    assert first
    for task in first:
        clock.advance(timedelta(minutes=5))
        calls.clear()
        crm.tasks.complete(task.id, actor="ann", outcome="reached")
        assert calls[("update", "followup.schedule")] == 1, calls
        assert calls[("get", "customers")] <= 1, calls
        # the first contact completed is the pending one (not looked up again), the next
        # follow-up created without asking first (its dedupe check does)
        assert calls[("find", "tasks")] == 1, calls
    assert crm.tasks.find({"kind": "follow_up", "status": "open"})
