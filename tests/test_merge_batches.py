"""A merge moves a customer's history in bounded transactions, and a broken one resumes."""

from __future__ import annotations

import pytest

from crmcore import customers as customers_module
from crmcore.errors import StorageError
from crmcore.storage.memory import MemoryCollection


@pytest.fixture
def pair(crm):
    keep = crm.customers.add(actor="rep", name="Li Lei")
    dup = crm.customers.add(actor="rep", name="Li Lei (2)")
    for i in range(7):
        crm.interactions.log(actor="rep", customer_id=dup.id, kind="visit", summary=str(i))
    return crm, keep, dup


def test_history_moves_in_transactions_of_at_most_merge_batch(pair, monkeypatch):
    crm, keep, dup = pair
    monkeypatch.setattr(customers_module, "MERGE_BATCH", 3)
    sizes: list[int] = []
    original = crm.kernel.transaction  # where the services open their transactions

    def counting(*args, **kwargs):
        sizes.append(crm.interactions.count({"customer_id": dup.id}))
        return original(*args, **kwargs)

    monkeypatch.setattr(crm.kernel, "transaction", counting)
    crm.customers.merge(keep.id, dup.id, actor="rep")
    assert crm.interactions.count({"customer_id": keep.id}) == 7
    # before each transaction, the duplicate still held 7, 4, 1, then 0 (the final step)
    assert sizes[:4] == [7, 4, 1, 0]


def test_a_merge_that_broke_halfway_is_finished_by_running_it_again(pair, monkeypatch):
    crm, keep, dup = pair
    monkeypatch.setattr(customers_module, "MERGE_BATCH", 2)
    budget = {"left": 3}
    original = MemoryCollection.update

    def flaky(self, id, changes, *, expected_version):
        if self.name == "interactions" and "customer_id" in changes:
            if budget["left"] == 0:
                raise StorageError("interactions: MongoDB is unreachable during update")
            budget["left"] -= 1
        return original(self, id, changes, expected_version=expected_version)

    monkeypatch.setattr(MemoryCollection, "update", flaky)
    with pytest.raises(StorageError, match="unreachable"):
        crm.customers.merge(keep.id, dup.id, actor="rep")
    moved = crm.interactions.count({"customer_id": keep.id})
    assert moved == 2  # the first batch committed; the second rolled back
    assert crm.customers.get(dup.id).status.value == "active"  # not merged yet
    budget["left"] = 100
    merged = crm.customers.merge(keep.id, dup.id, actor="rep")
    assert merged.id == keep.id
    assert crm.interactions.count({"customer_id": keep.id}) == 7
    assert crm.interactions.count({"customer_id": dup.id}) == 0
    assert crm.customers.get_any(dup.id).status.value == "merged"
