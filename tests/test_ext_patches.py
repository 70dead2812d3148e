"""``customers.patch_ext`` in a transaction: every plugin's patch of one customer is written
once, just before the commit, with the version and audit semantics of one update."""

import pytest

from crmcore import ConflictError, ValidationError, hookimpl
from crmcore.storage.base import StoreLayer
from crmcore.testing.audit import operations


class Boom(Exception):
    pass


def customer_updates(crm, customer_id):
    """The customer's updates the trail records (one entry per transaction holds several
    operations: ``operations`` lists them one by one)."""
    return operations(crm, collection="customers", op="update", record_id=customer_id)


def backend_customers(crm):
    store = crm.store
    while isinstance(store, StoreLayer):
        store = store.inner
    return store.collection("customers")


@pytest.fixture
def customer(crm):
    return crm.customers.add(actor="ann", name="Li Lei")


def test_patches_of_one_customer_in_a_transaction_are_one_write(crm, customer):
    with crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        crm.customers.patch_ext(customer.id, "loyalty", {"tier": "silver"}, actor="ann")
        crm.customers.patch_ext(customer.id, "grading", {"score": 7}, actor="ann")
        seen = crm.customers.get(customer.id)  # the transaction sees its own patches
        assert seen.ext == {"grading": {"grade": "B", "score": 7}, "loyalty": {"tier": "silver"}}
        assert crm.customers.get_any(customer.id).ext == seen.ext
    stored = crm.customers.get(customer.id)
    assert stored.ext == {"grading": {"grade": "B", "score": 7}, "loyalty": {"tier": "silver"}}
    assert stored.version == customer.version + 1
    (entry,) = customer_updates(crm, customer.id)
    assert entry["actor"] == "ann"
    assert "grading" in str(entry) and "loyalty" in str(entry)


def test_a_patch_outside_a_transaction_is_written_at_once(crm, customer):
    patched = crm.customers.patch_ext(customer.id, "grading", {"grade": "A"}, actor="ann")
    assert patched.version == customer.version + 1
    assert crm.customers.get(customer.id).ext == {"grading": {"grade": "A"}}
    assert len(customer_updates(crm, customer.id)) == 1


def test_a_patch_that_changes_nothing_writes_nothing(crm, customer):
    crm.customers.patch_ext(customer.id, "grading", {"grade": "A"}, actor="ann")
    with crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "A"}, actor="ann")
    assert len(customer_updates(crm, customer.id)) == 1


def test_a_rollback_drops_the_kept_patches(crm, customer):
    with pytest.raises(Boom), crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        raise Boom
    stored = crm.customers.get(customer.id)
    assert stored.ext == {} and stored.version == customer.version
    assert customer_updates(crm, customer.id) == []
    with crm.transaction("ann"):  # nothing left over for the next transaction
        pass
    assert crm.customers.get(customer.id).version == customer.version


def test_a_bad_patch_is_refused_at_once_and_nothing_is_written(crm, customer):
    with pytest.raises(ValidationError), crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        crm.customers.patch_ext(customer.id, "bad", {"x": object()}, actor="ann")
    assert crm.customers.get(customer.id).ext == {}


def test_another_writer_meanwhile_is_merged_not_lost(crm, customer):
    raw = backend_customers(crm)
    with crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        current = raw.get(customer.id)  # another writer changes the record (straight to it)
        raw.update(
            customer.id,
            {"name": "Han Meimei", "ext": {"loyalty": {"tier": "gold"}}},
            expected_version=current["version"],
        )
    stored = crm.customers.get(customer.id)
    assert stored.name == "Han Meimei"
    assert stored.ext == {"loyalty": {"tier": "gold"}, "grading": {"grade": "B"}}


def test_a_patch_that_keeps_conflicting_rolls_the_transaction_back(crm, customer, monkeypatch):
    coll = crm.customers._coll

    def always_stale(*_a, **_k):
        raise ConflictError("stale")

    with crm.transaction("ann"):
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="note", summary="x")
    before = crm.interactions.count({})
    with pytest.raises(ConflictError, match="kept changing"), crm.transaction("ann"):
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="note", summary="y")
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        monkeypatch.setattr(coll, "update", always_stale)
    monkeypatch.undo()
    assert crm.interactions.count({}) == before  # the note of the failed transaction is gone
    assert crm.customers.get(customer.id).ext == {}


def test_an_update_after_a_patch_in_the_same_transaction_keeps_their_order(crm, customer):
    with crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        crm.customers.update(customer.id, actor="ann", ext={"grading": {"grade": "C"}})
    assert crm.customers.get(customer.id).ext == {"grading": {"grade": "C"}}


class SeesExt:
    """A plugin noting the ``ext`` of the customer each logged interaction is handed with."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def crm_interaction_logged(self, crm, interaction, customer, actor):
        self.seen.append(customer.ext)


def test_every_read_by_id_in_the_transaction_sees_the_kept_patches(make_crm):
    watcher = SeesExt()
    crm = make_crm([("sees_ext", watcher)])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    with crm.transaction("ann"):
        crm.customers.patch_ext(customer.id, "grading", {"grade": "B"}, actor="ann")
        raw = crm.collection("customers").get(customer.id)  # how plugins read a customer
        assert raw["ext"] == {"grading": {"grade": "B"}}
        assert raw["version"] == customer.version  # not written yet
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="note", summary="x")
    assert watcher.seen == [{"grading": {"grade": "B"}}]
    assert crm.collection("customers").get(customer.id)["version"] == customer.version + 1
