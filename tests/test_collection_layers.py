"""Store layers that leave a read alone do not stand in its way: a query through the audit
trail, the transaction cache and the plugins' gate is the backend's own method; layers that
change a read (decryption, the gate's overlays, the cache's ``get``) still do."""

from __future__ import annotations

import base64

import pytest

from crmcore.kernel import DirectWriteError
from crmcore.storage import CollectionLayer
from crmcore.storage.base import Doc
from crmcore.storage.memory import MemoryStore

KEY = base64.b64encode(b"k" * 32).decode()


def innermost(coll):
    while hasattr(coll, "inner") or hasattr(coll, "_inner"):
        coll = getattr(coll, "inner", None) or coll._inner
    return coll


def backend_collection(crm, name):
    store = crm.store
    while hasattr(store, "inner"):
        store = store.inner
    return store.collection(name)


@pytest.fixture(params=["memory", "tinydb"])
def stack(request, tmp_path):
    """(plugins, storage) for ``make_crm``: the in-memory store, or the embedded one."""
    if request.param == "memory":
        return [], None
    return ["storage_tinydb"], {"backend": "tinydb", "location": str(tmp_path / "db")}


def test_queries_through_the_api_and_the_gate_are_the_backends_own(make_crm, stack):
    crm = make_crm(stack[0], storage=stack[1])
    ann = crm.customers.add(actor="ann", name="Ann", region="North")
    backend = backend_collection(crm, "customers")
    api = crm.customers._coll  # the audit trail over the transaction cache over the backend
    gated = crm.collection("customers")
    assert isinstance(api, CollectionLayer) and isinstance(gated, CollectionLayer)
    for coll in (api, gated):
        for read in ("find", "find_one", "iter", "count", "last", "indexes"):
            assert getattr(coll, read).__self__ is backend, read
        assert coll.find({"region": "North"}) == backend.find({"region": "North"})
        assert coll.count() == 1 and coll.find_one({"name": "Ann"})["id"] == ann.id
    assert [c.id for c in crm.customers.find(sort=[("id", 1)], limit=5)] == [ann.id]


def test_the_gate_still_overlays_get_and_refuses_writes_from_event_hooks(make_crm):
    crm = make_crm()
    ann = crm.customers.add(actor="ann", name="Ann")
    gated = crm.collection("customers")
    assert type(gated).get is not CollectionLayer.get  # its own: the read overlays
    seen: list[str] = []
    crm.kernel.read_overlays["customers"] = lambda doc: {**doc, "seen": seen.append(1) or "yes"}
    assert gated.get(ann.id)["seen"] == "yes" and seen == [1]
    assert "seen" not in gated.find_one({"id": ann.id})  # queries: the store's, as before
    crm.kernel.read_overlays.pop("customers")
    crm.kernel.local.hook = "crm_customer_added"  # as while an event hook is called
    try:
        with pytest.raises(DirectWriteError):
            gated.update(ann.id, {"notes": "x"}, expected_version=1)
    finally:
        crm.kernel.local.hook = None
    assert crm.customers.get(ann.id).notes == ""


def test_encrypted_reads_are_not_passed_around_the_decryption(make_crm, monkeypatch, stack):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    crm = make_crm(stack[0], core={"encrypt_personal": True}, storage=stack[1])
    li = crm.customers.add(actor="ann", name="Li Lei", phone="13800138000")
    backend = backend_collection(crm, "customers")
    assert backend.get(li.id)["name"] != "Li Lei"  # sealed at rest
    gated = crm.collection("customers")
    for coll in (crm.customers._coll, gated):
        assert coll.find.__self__ is not backend  # the decryption's
        assert coll.find()[0]["name"] == "Li Lei"
        assert coll.find_one({"id": li.id})["name"] == "Li Lei"
        assert next(coll.iter())["phone"] == "13800138000"
        assert coll.get(li.id)["name"] == "Li Lei"
    assert [c.name for c in crm.customers.find(sort=[("id", 1)], limit=50)] == ["Li Lei"]


def test_the_cache_still_answers_get_within_a_transaction(make_crm):
    crm = make_crm()
    ann = crm.customers.add(actor="ann", name="Ann")
    cached = crm.customers._coll.inner
    assert type(cached).__name__ == "CachedCollection" and cached.get.__self__ is cached
    backend = innermost(cached)
    calls: list[str] = []
    real = backend.get
    backend.get = lambda id: calls.append(id) or real(id)
    try:
        with crm.store.transaction():
            first = cached.get(ann.id)
            assert cached.get(ann.id) == first
        assert calls == [ann.id]  # the second from the transaction's cache
    finally:
        del backend.get


class _Upper(CollectionLayer):
    """A layer that changes ``find`` and derives nothing else from it."""

    PASSED_READS = ("count",)

    def find(self, filter=None, *, sort=None, limit=None, skip=0) -> list[Doc]:
        return [
            {**d, "name": d["name"].upper()}
            for d in self.inner.find(filter, sort=sort, limit=limit, skip=skip)
        ]


def test_a_layer_keeps_the_reads_it_changes_and_passes_only_those_it_names():
    store = MemoryStore()
    inner = store.collection("things")
    inner.insert({"id": "a", "name": "ann"})
    layer = _Upper(inner)
    assert layer.count.__self__ is inner  # named: the inner's own
    assert layer.find() == [{"id": "a", "name": "ANN", "version": 1}]
    # not named: the base's pass-through (a call between), which still answers
    assert layer.find_one.__self__ is layer and layer.find_one({})["name"] == "ann"
    assert layer.name == "things"
    with pytest.raises(TypeError, match="'insert' is not a read"):
        type("Bad", (CollectionLayer,), {"PASSED_READS": ("insert",)})(inner)
