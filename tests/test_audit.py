"""The audit trail (every write, actor, masked diff, hash chain) and erasure of personal data."""

import json

import attrs
import pytest

from crmcore import hookimpl
from crmcore.audit import masked, record_digest
from crmcore.schema import field
from crmcore.storage import CollectionSpec
from crmcore.testing.audit import operations


@attrs.frozen
class Note:
    id: str
    customer_id: str
    text: str = field(personal=True)
    topic: str = "general"
    version: int = 0


class Notes:
    @hookimpl
    def crm_collections(self):
        return [CollectionSpec("notes.items", customer_key="customer_id", record_type=Note)]


def audit_entries(crm, **match):
    return operations(crm, **match)


def test_every_write_is_audited_with_actor_and_masked_personal_fields(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li Lei", phone="13800138000", region="North")
    as_created = crm.store.collection("customers").get(c.id)
    crm.customers.update(c.id, actor="bo", phone="13900139000", region="South")
    task = crm.tasks.create(
        actor="cy", kind="callback", title="call", due_at=crm.now(), customer_id=c.id
    )
    crm.tasks.complete(task.id, actor="cy")
    entries = audit_entries(crm)
    assert [(e["op"], e["collection"], e["actor"]) for e in entries] == [
        ("insert", "customers", "ann"),
        ("update", "customers", "bo"),
        ("insert", "tasks", "cy"),
        ("update", "tasks", "cy"),
    ]
    created, updated = entries[0], entries[1]
    # an insert records a digest of the masked record it created, not a second copy of it
    personal = crm.audit.masked_fields("customers")
    assert created["diff"] == {"sha": record_digest(as_created, personal)}
    now = crm.store.collection("customers").get(c.id)
    assert record_digest(now, personal) != created["diff"]["sha"]  # it changed since
    # personal values are masked before hashing: the digest cannot confirm a guessed phone
    guessed = {**as_created, "phone": "13700137000", "name": "Someone Else"}
    assert record_digest(guessed, personal) == created["diff"]["sha"]
    assert record_digest({**as_created, "region": "East"}, personal) != created["diff"]["sha"]
    assert updated["diff"]["region"] == ["North", "South"]
    assert updated["diff"]["phone"] == ["***", "***"]
    assert all(e["customer_id"] == c.id for e in entries)
    assert "13800138000" not in json.dumps(entries) and "Li Lei" not in json.dumps(entries)


def test_plugin_record_writes_are_audited_too(make_crm):
    from crmcore import Effects, RecordWrite

    crm = make_crm([("notes", Notes())])
    c = crm.customers.add(actor="ann", name="Li")
    crm.apply(
        Effects(
            records=[
                RecordWrite(
                    "notes.items",
                    {
                        "id": "n1",
                        "customer_id": c.id,
                        "text": "allergic to nuts",
                        "topic": "health",
                    },
                )
            ]
        ),
        actor="nurse",
    )
    (entry,) = audit_entries(crm, collection="notes.items")
    note = crm.store.collection("notes.items").get("n1")
    assert entry["actor"] == "nurse"
    assert entry["diff"] == {"sha": record_digest(note, frozenset({"text"}))}
    assert crm.audit.masked_fields("notes.items") == frozenset({"text"})


def test_the_hash_chain_detects_tampering(make_crm):
    crm = make_crm()
    for i in range(5):
        crm.customers.add(actor="ann", name=f"Customer {i}")
    assert crm.audit.verify().ok and crm.audit.verify().entries == 5
    raw = crm.audit.inner.collection("audit")
    third = raw.find({"seq": 3})[0]
    raw.update(third["id"], {"actor": "mallory"}, expected_version=third["version"])
    report = crm.audit.verify()
    assert not report.ok and report.problem == "entry #3 was altered"
    raw.update(third["id"], {"actor": "ann"}, expected_version=third["version"] + 1)
    assert crm.audit.verify().ok
    raw.delete(raw.find({"seq": 4})[0]["id"])
    assert crm.audit.verify().problem == "entry #4 is missing"


def test_audit_can_be_switched_off(make_crm):
    crm = make_crm(core={"audit": False})
    crm.customers.add(actor="ann", name="Li")
    assert crm.audit is None and "audit" not in crm.store.collection_names()


def test_forget_erases_personal_data_everywhere_and_keeps_statistics(make_crm):
    crm = make_crm([("notes", Notes())])
    c = crm.customers.add(
        actor="ann",
        name="Li Lei",
        phone="13800138000",
        email="li.lei@example.com",
        address="1 Long Road",
        region="North",
    )
    crm.interactions.log(
        actor="ann",
        customer_id=c.id,
        kind="purchase",
        amount=99.0,
        summary="Li Lei bought a kettle, call 13800138000",
    )
    crm.tasks.create(
        actor="ann",
        kind="callback",
        title="call back",
        due_at=crm.now(),
        customer_id=c.id,
        notes="ask Li Lei about the kettle",
    )
    crm.collection("notes.items").insert(
        {"id": "n1", "customer_id": c.id, "text": "Li Lei prefers e-mail"}
    )
    other = crm.customers.add(actor="ann", name="Wang Fang", phone="13900139000")
    crm.customers.forget(c.id, actor="dpo")
    everything = json.dumps(
        {name: crm.store.inner.collection(name).find() for name in crm.store.collection_names()}
    )
    for value in ("Li Lei", "13800138000", "li.lei@example.com", "1 Long Road", "kettle"):
        assert value not in everything, value
    assert "Wang Fang" in everything  # nobody else was touched
    erased = crm.customers.get_any(c.id)
    assert (erased.status.value, erased.region) == ("erased", "North")
    (purchase,) = crm.interactions.for_customer(c.id)
    assert purchase.amount == 99.0 and purchase.summary == "(erased)"  # statistics remain
    assert crm.tasks.open_for(c.id) == []
    assert crm.customers.get(other.id).phone == "13900139000"
    assert crm.audit.verify().ok


def test_a_rolled_back_transaction_does_not_break_the_chain(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li")
    with pytest.raises(RuntimeError), crm.transaction("ann"):
        crm.customers.update(c.id, actor="ann", region="North")
        raise RuntimeError("boom")
    crm.customers.update(c.id, actor="ann", region="South")
    report = crm.audit.verify()
    assert report.ok and report.entries == 2


def test_writes_inside_and_outside_transactions_do_not_deadlock(make_crm):
    import threading

    crm = make_crm()
    scratch = crm.store.collection("scratch")  # an audited collection, written outside any
    done = []  # transaction, while customers.add uses one

    def inside():
        for i in range(400):
            crm.customers.add(actor="t", name=f"c{i}")
        done.append("inside")

    def outside():
        for i in range(400):
            scratch.insert({"id": f"d{i}"})
        done.append("outside")

    threads = [threading.Thread(target=inside), threading.Thread(target=outside)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(done) == ["inside", "outside"], "deadlocked"
    assert crm.audit.verify().entries == 800


def test_masking_hides_personal_values_and_drops_the_version():
    doc = {
        "id": "c",
        "name": "Ann",
        "phone": "",
        "email": None,
        "tags": [],
        "chat": {},
        "note": 0,
        "region": "North",
        "version": 3,
    }
    shown = masked(doc, frozenset({"name", "phone", "email", "tags", "chat", "note", "gone"}))
    assert shown == {
        "id": "c",
        "name": "***",
        "phone": "",
        "email": None,
        "tags": [],
        "chat": {},
        "note": "***",
        "region": "North",
    }
    assert list(shown) == ["id", "name", "phone", "email", "tags", "chat", "note", "region"]
    assert doc["version"] == 3 and doc["name"] == "Ann"


def test_verify_walks_the_trail_in_batches_and_catches_an_entry_renumbered_out_of_it(make_crm):
    crm = make_crm()
    for i in range(7):
        crm.customers.add(actor="ann", name=f"Customer {i}")
    assert [e["seq"] for e in crm.audit.in_order(batch=3)] == list(range(1, 8))
    assert crm.audit.verify().ok
    raw = crm.audit.inner.collection("audit")
    (last,) = raw.find({"seq": 7})
    raw.update(last["id"], {"seq": "7"}, expected_version=last["version"])
    report = crm.audit.verify()
    assert not report.ok
    assert (
        report.problem
        == "the trail holds 1 entry not numbered in its sequence (#1-#6): it was altered"
    )
    (middle,) = raw.find({"seq": 4})
    raw.update(middle["id"], {"seq": 4.5}, expected_version=middle["version"])
    assert crm.audit.verify().problem == "entry #4 is missing"
