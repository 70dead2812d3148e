"""The transaction-scoped identity cache (``crmcore.storage.txcache``): each record is read
from the store once per transaction, writes update it, and nothing outlives the transaction."""

from collections import Counter

import pytest

from crmcore import ConflictError
from crmcore.storage import Capabilities
from crmcore.storage.base import StoreLayer
from crmcore.storage.memory import MemoryCollection, MemoryStore
from crmcore.storage.txcache import CachedStore, copy_doc


class Boom(Exception):
    pass


@pytest.fixture
def reads(monkeypatch):
    """Backend reads by id, counted per collection."""
    counted: Counter[str] = Counter()
    original = MemoryCollection.get

    def get(self, id):
        counted[self.name] += 1
        return original(self, id)

    monkeypatch.setattr(MemoryCollection, "get", get)
    return counted


def backend(crm):
    store = crm.store
    while isinstance(store, StoreLayer):
        store = store.inner
    return store


def test_a_record_is_read_from_the_store_once_per_transaction(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    reads.clear()
    with crm.transaction("ann"):
        for _ in range(3):
            assert crm.customers.get(c.id).name == "Li Lei"
    assert reads["customers"] == 1
    crm.customers.get(c.id)
    crm.customers.get(c.id)
    assert reads["customers"] == 3  # outside a transaction every read goes to the store


def test_the_cache_is_dropped_at_commit(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    reads.clear()
    with crm.transaction("ann"):
        crm.customers.get(c.id)
    with crm.transaction("ann"):
        crm.customers.get(c.id)
    assert reads["customers"] == 2


def test_reads_see_the_transactions_own_writes_without_reading_again(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    reads.clear()
    with crm.transaction("ann"):
        crm.customers.patch_ext(c.id, "demo", {"n": 1}, actor="ann")
        crm.customers.patch_ext(c.id, "demo", {"m": 2}, actor="ann")
        with crm.transaction("ann"):  # nested: the same transaction
            assert crm.customers.get(c.id).ext["demo"] == {"n": 1, "m": 2}
    # one read for the first patch; the audit trail's "before" and every later read: cached
    assert reads["customers"] == 1
    assert crm.customers.get(c.id).ext["demo"] == {"n": 1, "m": 2}


def test_no_stale_read_after_a_rollback(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    with pytest.raises(Boom), crm.transaction("ann"):
        crm.customers.update(c.id, actor="ann", name="Han Meimei")
        assert crm.customers.get(c.id).name == "Han Meimei"
        raise Boom
    reads.clear()
    assert crm.customers.get(c.id).name == "Li Lei"
    with crm.transaction("ann"):
        assert crm.customers.get(c.id).name == "Li Lei"
    assert reads["customers"] == 2


def test_a_failed_nested_transaction_drops_what_the_cache_holds(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    reads.clear()
    with crm.transaction("ann"):
        crm.customers.get(c.id)
        with pytest.raises(Boom), crm.transaction("ann"):
            raise Boom
        crm.customers.get(c.id)
    assert reads["customers"] == 2


def test_a_version_conflict_drops_the_record_so_a_retry_reads_it_again(crm, reads):
    c = crm.customers.add(actor="ann", name="Li Lei")
    raw = backend(crm).collection("customers")
    with crm.transaction("ann"):
        cached = crm.customers.get(c.id)
        # another writer's change the cache has not seen (straight to the backend)
        raw.update(c.id, {"name": "Han Meimei"}, expected_version=cached.version)
        # written at the commit: its first attempt has the cached (stale) version,
        # conflicts, drops the record from the cache and retries on what is stored
        crm.customers.patch_ext(c.id, "demo", {"n": 1}, actor="ann")
    patched = crm.customers.get(c.id)
    assert patched.name == "Han Meimei" and patched.ext["demo"] == {"n": 1}
    assert patched.version == cached.version + 2
    stale = crm.store.collection("customers")
    with crm.transaction("ann"), pytest.raises(ConflictError):
        stale.update(c.id, {"name": "x"}, expected_version=cached.version)


def test_what_a_reader_gets_is_its_own_copy(crm):
    c = crm.customers.add(actor="ann", name="Li Lei", ext={"demo": {"tags": ["a"]}})
    coll = crm.store.collection("customers")
    with crm.transaction("ann"):
        doc = coll.get(c.id)
        doc["name"] = "changed"
        doc["ext"]["demo"]["tags"].append("b")
        again = coll.get(c.id)
    assert again["name"] == "Li Lei"
    assert again["ext"]["demo"]["tags"] == ["a"]


def test_a_delete_in_the_transaction_is_seen(crm):
    coll = crm.store.collection("customer_keys")
    with crm.transaction("ann"):
        coll.insert({"id": "k1", "customer_id": "c"})
        assert coll.get("k1")["customer_id"] == "c"
        coll.delete("k1")
        with pytest.raises(Exception, match="k1"):
            coll.get("k1")


def test_a_store_without_transactions_is_passed_through():
    inner = MemoryStore()
    inner.capabilities = Capabilities(persistent=False, transactions=False, multi_process=False)
    store = CachedStore(inner)
    coll = store.collection("things")
    assert coll is inner.collection("things")
    with store.transaction():
        coll.insert({"id": "t1", "n": 1})
        coll.get("t1")
        coll.get("t1")
    assert store.hits == 0


def test_copy_doc_copies_nested_json():
    doc = {"a": [1, {"b": [2]}], "c": {"d": {"e": 3}}, "f": "x"}
    copied = copy_doc(doc)
    assert copied == doc
    copied["a"][1]["b"].append(9)
    copied["c"]["d"]["e"] = 4
    assert doc == {"a": [1, {"b": [2]}], "c": {"d": {"e": 3}}, "f": "x"}


def test_what_the_backend_adds_beyond_the_contract_stays_reachable():
    inner = MemoryStore()
    inner.flavour = "memory"  # a backend's own attribute (options, path …)
    assert CachedStore(inner).flavour == "memory"


# -- remembered answers (``CRM.remembered``) --------------------------------------------------


def _asking(crm, asked: list[int]):
    """A query of ``customer_keys`` through ``crm.remembered``, counting the real ones."""

    def ask() -> int:
        asked.append(1)
        return len(crm.collection("customer_keys").find({}))

    return lambda: crm.remembered("customer_keys", "count", ask)


def test_an_answer_is_remembered_for_the_rest_of_the_transaction(crm):
    asked: list[int] = []
    ask = _asking(crm, asked)
    with crm.transaction("ann"):
        assert ask() == ask() == ask() == 0
    assert len(asked) == 1
    with crm.transaction("ann"):
        ask()
    assert len(asked) == 2  # a new transaction asks again
    ask()
    ask()
    assert len(asked) == 4  # outside a transaction every call asks


def test_a_write_to_the_collection_forgets_its_answers(crm):
    asked: list[int] = []
    ask = _asking(crm, asked)
    keys = crm.store.collection("customer_keys")
    with crm.transaction("ann"):
        assert ask() == 0
        keys.insert({"id": "k1", "customer_id": "c"})
        assert ask() == 1
        assert ask() == 1
        doc = keys.get("k1")
        keys.update("k1", {"customer_id": "d"}, expected_version=doc["version"])
        assert ask() == 1
        keys.delete("k1")
        assert ask() == 0
    assert len(asked) == 4  # after each write, and not in between


def test_a_write_elsewhere_keeps_the_answer(crm):
    asked: list[int] = []
    ask = _asking(crm, asked)
    with crm.transaction("ann"):
        ask()
        crm.customers.add(actor="ann", name="Li Lei")
        ask()
    assert len(asked) == 1


def test_a_failed_nested_transaction_forgets_the_answers(crm):
    asked: list[int] = []
    ask = _asking(crm, asked)
    with crm.transaction("ann"):
        ask()
        with pytest.raises(Boom), crm.transaction("ann"):
            raise Boom
        ask()
    assert len(asked) == 2


def test_a_store_without_transactions_remembers_nothing():
    inner = MemoryStore()
    inner.capabilities = Capabilities(persistent=False, transactions=False, multi_process=False)
    store = CachedStore(inner)
    asked: list[int] = []
    with store.transaction():
        store.remembered("things", "k", lambda: asked.append(1))
        store.remembered("things", "k", lambda: asked.append(1))
    assert len(asked) == 2
