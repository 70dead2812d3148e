"""A whole CRM on the MongoDB backend (mongomock injected through the plugin's factory hook)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_storage_mongo.store import MongoStore

from crmcore.errors import ConflictError, DuplicateKeyError, StorageError
from crmcore.storage import IndexSpec

MOCK = "mongodb://127.0.0.1:27017"
STORAGE = {"backend": "mongodb", "location": MOCK, "options": {"database": "shop"}}


def backend(crm) -> MongoStore:
    """The MongoDB store beneath the core's audit (and encryption) layers."""
    layer = crm.store
    while not isinstance(layer, MongoStore):
        layer = layer.inner
    return layer


@pytest.fixture
def crm(make_crm, use_mongomock):
    return make_crm(
        ["storage_mongo"], storage=STORAGE, core={"unique_phone": True, "unique_email": True}
    )


def test_the_crm_runs_on_mongodb(crm, clock):
    assert crm.store.describe().startswith("mongodb mongodb://127.0.0.1:27017 database shop")
    ann = crm.customers.add(
        actor="rep", name="Ann", phone="138 0000 0001", email="Ann@Example.com", tags=["vip"]
    )
    bob = crm.customers.add(actor="rep", name="Bob")  # no phone, no e-mail
    crm.customers.add(actor="rep", name="Cy")  # nor here: missing values never collide
    crm.interactions.log(actor="rep", customer_id=ann.id, kind="purchase", amount=99.5)
    clock.advance(hours=1)
    crm.interactions.log(actor="rep", customer_id=ann.id, kind="complaint")
    history = crm.interactions.for_customer(ann.id)
    assert [i.kind for i in history] == ["complaint", "purchase"]
    assert crm.customers.find_by_contact(email="ann@example.com")[0].id == ann.id
    updated = crm.customers.update(bob.id, actor="rep", region="North")
    assert updated.version == 2
    with pytest.raises(ConflictError):
        crm.customers.update(bob.id, actor="rep", region="South", expected_version=1)


def test_unique_phone_and_email_are_enforced_without_leaking_them(crm):
    crm.customers.add(actor="rep", name="Ann", phone="138 0000 0001", email="ann@example.com")
    with pytest.raises(DuplicateKeyError) as err:
        crm.customers.add(actor="rep", name="Imposter", email="ANN@example.com")
    assert "ann@example.com" not in str(err.value).lower()
    with pytest.raises(DuplicateKeyError):
        crm.customers.add(actor="rep", name="Imposter", phone="+138 0000 0001".lstrip("+"))
    assert crm.customers.count() == 1


def test_one_open_task_per_dedupe_key_and_a_new_one_after_completion(crm, clock):
    first = crm.tasks.create(
        actor="sys", kind="callback", title="a", due_at=clock.now(), dedupe_key="cb:1"
    )
    again = crm.tasks.create(
        actor="sys", kind="callback", title="b", due_at=clock.now(), dedupe_key="cb:1"
    )
    assert again.id == first.id and crm.tasks.count() == 1
    crm.tasks.complete(first.id, actor="rep")
    fresh = crm.tasks.create(
        actor="sys", kind="callback", title="c", due_at=clock.now(), dedupe_key="cb:1"
    )
    assert fresh.id != first.id
    # completed tasks hold open_key None; several of them never collide
    crm.tasks.complete(fresh.id, actor="rep")
    crm.tasks.create(actor="sys", kind="callback", title="d", due_at=clock.now(), dedupe_key="cb:1")
    assert crm.tasks.count({"open_key": None}) == 2


def test_declared_indexes_are_created_at_open_and_reopening_is_idempotent(
    make_crm, use_mongomock, crm
):
    def names(c, coll):
        return sorted(i["name"] for i in backend(c).collection(coll)._raw.list_indexes())

    assert names(crm, "tasks") == [
        "_id_",
        "i_assignee_status_due_at",
        "i_customer_id_status",
        "i_status_due_at",
        "i_status_priority-desc_due_at",
        "u_open_key",
    ]
    assert names(crm, "interactions") == [
        "_id_",
        "i_customer_id_occurred_at",
        "i_kind_occurred_at",
        "i_occurred_at",
    ]
    assert names(crm, "customers") == [
        "_id_",
        "i_created_at",
        "i_email",
        "i_owner_status",
        "i_phone",
        "i_search",
        "i_status",
        "u_email",
        "u_phone",
    ]
    raw = {i["name"]: i for i in backend(crm).collection("customers")._raw.list_indexes()}
    assert raw["u_phone"]["unique"] and "partialFilterExpression" in raw["u_phone"]
    assert raw["i_phone"].get("sparse") and "partialFilterExpression" not in raw["i_phone"]
    crm.customers.add(actor="rep", name="Ann")
    crm.customers.add(actor="rep", name="Bob")
    before = {c: names(crm, c) for c in ("tasks", "interactions", "customers")}
    again = make_crm(
        ["storage_mongo"], storage=STORAGE, core={"unique_phone": True, "unique_email": True}
    )
    assert {c: names(again, c) for c in before} == before
    assert again.customers.count() == 2


def test_enabling_a_unique_key_later_over_customers_without_one_works(make_crm, use_mongomock):
    plain = make_crm(["storage_mongo"], storage=STORAGE)
    for name in ("Ann", "Bob", "Cy"):
        plain.customers.add(actor="rep", name=name)  # no e-mails: all "missing"
    with pytest.raises(StorageError, match=r"u_email is not built .*crm db upgrade"):
        make_crm(["storage_mongo"], storage=STORAGE, core={"unique_email": True})
    make_crm(
        ["storage_mongo"], storage=STORAGE, core={"unique_email": True}, schema_upgrade=True
    )  # what 'crm db upgrade' does
    strict = make_crm(["storage_mongo"], storage=STORAGE, core={"unique_email": True})
    assert (
        IndexSpec([("email", 1)], unique=True, sparse=True)
        in backend(strict).collection("customers").indexes()
    )


def test_queries_pinning_a_unique_key_carry_the_partial_index_filter(crm):
    tasks = backend(crm).collection("tasks")
    query = tasks._translate({"open_key": "cb:1", "status": "open"}).query
    assert {
        "open_key": {"$type": list(tasks._partial_indexes()[0][1]["open_key"]["$type"])}
    } in query["$and"]


def test_sorted_core_queries_need_no_probe(crm):
    """Core entity fields are known scalars, so their sorts run natively (no extra query)."""
    tasks = backend(crm).collection("tasks")
    from crmcore_storage_mongo.translate import plan_sort

    assert plan_sort([("priority", -1), ("due_at", 1)], tasks._scalars).unknown == ()
    assert plan_sort([("ext.x.y", 1)], tasks._scalars).unknown == ("ext.x.y",)


def test_workers_tick_on_the_backend(crm, clock):
    crm.tasks.create(actor="sys", kind="callback", title="due", due_at=clock.now())
    report = crm.tick("w1")
    assert report.worker == "w1"
    task = crm.tasks.claim(worker="w1", lease=timedelta(minutes=5))
    assert task is not None and task.lease_owner == "w1"
    assert crm.tasks.claim(worker="w2", lease=timedelta(minutes=5)) is None


def test_sealed_personal_fields_and_the_audit_trail_work_on_the_backend(
    make_crm, use_mongomock, monkeypatch
):
    import base64

    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"k" * 32).decode())
    crm = make_crm(
        ["storage_mongo"], storage=STORAGE, core={"encrypt_personal": True, "unique_email": True}
    )
    ann = crm.customers.add(
        actor="rep",
        name="Ann",
        email="ann@example.com",
        birth_date="1990-05-01",
        chat_handles={"wechat": "ann"},
    )
    raw = backend(crm).collection("customers")._raw.find_one({"_id": ann.id})
    assert raw["name"].startswith("enc:") and raw["chat_handles"].startswith("enc:")
    assert "ann@example.com" not in repr(raw)
    assert crm.customers.get(ann.id).chat_handles == {"wechat": "ann"}
    assert crm.customers.find_by_contact(email="ANN@example.com")[0].id == ann.id
    with pytest.raises(DuplicateKeyError):
        crm.customers.add(actor="rep", name="Copy", email="ann@example.com")
    assert backend(crm).collection("audit").count() >= 1


def test_check_counts_and_notices_a_dropped_index(crm):
    crm.customers.add(actor="rep", name="Ann")
    counts = crm.store.check()
    assert counts["customers"] == 1 and "tasks" in counts
    backend(crm).collection("tasks")._raw.drop_index("u_open_key")
    with pytest.raises(StorageError, match=r"tasks\.u_open_key"):
        crm.store.check()
    with pytest.raises(NotImplementedError, match="journal"):
        crm.store.check(repair=True)
    with pytest.raises(NotImplementedError):
        crm.store.compact()
    with pytest.raises(NotImplementedError, match="mongodump"):
        crm.store.backup("/tmp/x")


def test_search_uses_a_multikey_index_on_the_search_keys(crm, make_crm, use_mongomock):
    ann = crm.customers.add(actor="rep", name="Zhang Wei", phone="+8613812345678")
    crm.customers.add(actor="rep", name="Zhang Weiwei", email="zw@example.com")
    crm.customers.add(actor="rep", name="张伟明")
    raw = backend(crm).collection("customers")._raw
    index = {i["name"]: i for i in raw.list_indexes()}["i_search"]
    assert dict(index["key"]) == {"search": 1}  # one entry per element: MongoDB's multikey
    assert "n:zhang wei" in raw.find_one({"_id": ann.id})["search"]
    assert [c.name for c in crm.customers.search("zhang wei").customers] == [
        "Zhang Wei",
        "Zhang Weiwei",
    ]
    assert [c.id for c in crm.customers.search("5678").customers] == [ann.id]
    assert [c.name for c in crm.customers.search("zw@example.com").customers] == ["Zhang Weiwei"]
    assert [c.name for c in crm.customers.search("伟明").customers] == ["张伟明"]
    # a database written before search keys: found all the same, then given keys
    raw.update_one({"_id": ann.id}, {"$unset": {"search": ""}})
    assert [c.id for c in crm.customers.search("5678").customers] == [ann.id]
    upgraded = make_crm(
        ["storage_mongo"],
        storage=STORAGE,
        core={"unique_phone": True, "unique_email": True},
        schema_upgrade=True,
    )
    assert upgraded.customers.refresh_search_keys(actor="system") == 1
    assert "t:5678" in raw.find_one({"_id": ann.id})["search"]
