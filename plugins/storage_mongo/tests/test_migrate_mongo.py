"""``crmcore.migrate`` between the in-memory store and MongoDB (mongomock), both ways."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmcore.errors import StorageError
from crmcore.migrate import MANIFEST, migrate, plan
from crmcore.storage import IndexSpec
from crmcore.storage.memory import MemoryStore

MOCK = "mongodb://127.0.0.1:27017"


def _everything(store):
    return {
        name: list(store.collection(name).iter())
        for name in store.collection_names()
        if name != MANIFEST
    }


def test_memory_to_mongodb_to_memory_is_lossless(make_crm, use_mongomock, open_mock, clock):
    crm = make_crm(core={"unique_phone": True})
    ann = crm.customers.add(
        actor="rep",
        name="Ann",
        phone="138 0000 0001",
        ext={"grading": {"grade": "A", "by.domain": {"example.com": 1}}},
    )
    for region in ("North", "South"):
        ann = crm.customers.update(ann.id, actor="rep", region=region)
    crm.customers.add(actor="rep", name="Bob")
    crm.interactions.log(actor="rep", customer_id=ann.id, kind="purchase", amount=10)
    task = crm.tasks.create(actor="rep", kind="callback", title="call", due_at=clock.now())
    crm.tasks.claim(worker="w", lease=timedelta(minutes=5))
    crm.tasks.complete(task.id, actor="rep")
    notes = crm.store.inner.collection("notes.things")
    notes.ensure_index(IndexSpec([("code", 1)], unique=True, sparse=True))
    notes.insert_many(
        {
            "id": f"n{i:03d}",
            "code": None if i % 3 else f"c{i}",
            "mixed": [i, "x", None, {"deep": [True, 1.5]}],
        }
        for i in range(120)
    )
    original = _everything(crm.store.inner)

    mongo = open_mock(database="moved")
    calls = []
    there = migrate(
        crm.store, mongo, progress=lambda name, n: calls.append((name, n)), batch_size=50
    )
    assert there.ok, there.problems()
    assert all(c.exact_versions for c in there.collections)  # MongoDB has import_raw
    assert _everything(mongo) == original
    assert sum(n for name, n in calls if name == "notes.things") == 120
    assert (
        IndexSpec([("phone", 1)], unique=True, sparse=True)
        in mongo.collection("customers").indexes()
    )

    back = MemoryStore()
    home = migrate(mongo, back)
    assert home.ok, home.problems()
    assert _everything(back) == original
    assert [c.source_checksum for c in home.collections] == [
        c.target_checksum for c in there.collections
    ]


def test_a_crm_reopened_on_the_migrated_data_carries_on(make_crm, use_mongomock):
    crm = make_crm()
    ann = crm.customers.add(actor="rep", name="Ann")
    ann = crm.customers.update(ann.id, actor="rep", region="North")
    assert migrate(
        crm.store,
        make_crm(["storage_mongo"], storage={"backend": "mongodb", "location": MOCK}).store,
    ).ok
    moved = make_crm(["storage_mongo"], storage={"backend": "mongodb", "location": MOCK})
    again = moved.customers.update(
        ann.id, actor="rep", region="South", expected_version=ann.version
    )  # read before the move
    assert again.version == ann.version + 1


def _installed(plugin: str) -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == plugin for ep in entry_points(group="crmcore"))


@pytest.mark.skipif(not _installed("storage_tinydb"), reason="the tinydb backend is not installed")
def test_tinydb_to_mongodb_and_back(make_crm, use_mongomock, tmp_path, clock):
    """The move ``crm migrate --from tinydb --to mongodb`` makes, and the way back. (The tinydb
    backend has no ``import_raw`` yet, so the way back takes the contract-only path.)"""
    tiny = make_crm(
        ["storage_tinydb"], storage={"backend": "tinydb", "location": str(tmp_path / "a")}
    )
    ann = tiny.customers.add(actor="rep", name="Ann", email="ann@example.com")
    tiny.customers.update(ann.id, actor="rep", region="North")
    tiny.interactions.log(actor="rep", customer_id=ann.id, kind="visit")
    tiny.tasks.create(actor="rep", kind="care", title="t", due_at=clock.now())
    original = _everything(tiny.store.inner)
    mongo = make_crm(["storage_mongo"], storage={"backend": "mongodb", "location": MOCK})
    there = migrate(tiny.store, mongo.store)
    assert there.ok, there.problems()
    back = make_crm(
        ["storage_tinydb"], storage={"backend": "tinydb", "location": str(tmp_path / "b")}
    )
    home = migrate(mongo.store, back.store)
    assert home.ok, home.problems()
    assert _everything(back.store.inner) == original


def test_a_partial_copy_in_mongodb_is_refused_as_a_source_and_resumed(
    make_crm, open_mock, monkeypatch
):
    """The incident (955 of 1,421 documents reported ``ok``) on the MongoDB backend: a forward
    run breaks halfway; migrating the partial copy back is refused; ``resume`` finishes it."""
    crm = make_crm()
    for i in range(30):
        crm.customers.add(actor="rep", name=f"C{i}")
    source = crm.store.inner
    total = sum(plan(source).values())
    mongo = open_mock(database="moved")
    coll_type = type(mongo.collection("customers"))
    original = coll_type.import_raw
    budget = {"left": total // 2}

    def flaky(self, docs):
        docs = list(docs)
        if budget["left"] < len(docs):
            raise StorageError("customers: MongoDB is unreachable during bulk write")
        budget["left"] -= len(docs)
        return original(self, docs)

    monkeypatch.setattr(coll_type, "import_raw", flaky)
    with pytest.raises(StorageError, match="unreachable"):
        migrate(source, mongo, batch_size=5)
    with pytest.raises(StorageError, match="incomplete copy"):
        migrate(mongo, MemoryStore())
    budget["left"] = total
    report = migrate(source, mongo, resume=True, batch_size=5)
    assert report.ok, report.problems()
    assert _everything(mongo) == _everything(source)
    back = MemoryStore()
    assert migrate(mongo, back).ok
    assert _everything(back) == _everything(source)
