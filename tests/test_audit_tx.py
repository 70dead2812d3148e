"""One audit entry per transaction: the user's action and every plugin reaction together,
compact, masked, hash-chained; trails written one entry per write still read and verify."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench.stack import START, init_retail
from crmcore import ManualClock, open_crm
from crmcore.audit import (
    AUDIT,
    GENESIS,
    HEAD,
    HEAD_ID,
    chained_hash,
    changes,
    entry_customers,
    entry_hash,
    expand,
    flat_changes,
    masked,
    new_entry,
    record_digest,
    stored_fields,
)
from crmcore.cli.audit import details
from crmcore.testing.audit import entries, operations, raw_trail


def test_a_call_through_the_retail_stack_is_one_entry_with_every_reaction(tmp_path: Path):
    clock = ManualClock(START)
    with open_crm(init_retail(tmp_path / "retail"), clock=clock) as crm:
        assert crm.audit is not None
        c = crm.customers.add(actor="ann", name="Wang Fang", phone="+8613912345678")
        assert [e["seq"] for e in entries(crm)] == [1]  # the customer and every reaction
        (added,) = entries(crm)
        touched = {op["collection"] for op in expand(added)}
        assert {"customers", "tasks", "followup.schedule"} <= touched
        assert entry_customers(added) == [c.id] and added["actor"] == "ann"
        for _ in range(3):
            clock.advance(days=1)
            crm.interactions.log(actor="bo", customer_id=c.id, kind="purchase", amount=420.0)
        bought = entries(crm)[1:]
        assert [e["seq"] for e in bought] == [2, 3, 4]  # one entry per purchase
        ops = [op["collection"] for op in expand(bought[0])]
        assert ops[0] == "interactions" and any(o.startswith("loyalty.") for o in ops)
        assert all(op["op"] in ("insert", "update") for op in expand(bought[0]))
        (first_contact,) = crm.tasks.find({"customer_id": c.id, "kind": "first_contact"})
        crm.tasks.complete(first_contact.id, actor="bo", outcome="reached")
        assert [e["seq"] for e in entries(crm)][-1] == 5
        assert crm.audit.verify().ok
        # nothing personal in clear anywhere in the trail's own file
        text = (tmp_path / "retail" / "crm-data" / f"{AUDIT}.json").read_text("utf-8")
        assert "Wang Fang" not in text and "13912345678" not in text
        flat = operations(crm, collection="customers", op="insert")
        # an insert by the entry's actor is stored short: [collection, id, digest]
        assert added["ops"][0] == ["customers", c.id, flat[0]["diff"]["sha"]]
        assert flat[0]["customer_id"] == c.id


def test_an_update_records_only_what_changed_inside_nested_fields():
    before = {
        "id": "c1",
        "version": 3,
        "phone": "13800138000",
        "region": "North",
        "ext": {"loyalty": {"tier": "iron", "points": 10}, "grading": {"grade": "B"}},
    }
    after = {
        **before,
        "version": 4,
        "phone": "13900139000",
        "ext": {"loyalty": {"tier": "gold", "points": 10}, "grading": {"grade": "B"}},
    }
    diff = changes(before, after, frozenset({"phone"}))
    assert diff == {"phone": ["***", "***"], "ext": {"loyalty": {"tier": ["iron", "gold"]}}}
    assert flat_changes(diff) == ["ext.loyalty.tier", "phone"]
    assert details({"op": "update", "diff": diff}) == "changed: ext.loyalty.tier, phone"
    # a field set or cleared reads null on the side where it is missing
    assert changes({"a": 1}, {"b": 2}) == {"a": [1, None], "b": [None, 2]}
    # an insert shows the fields holding a value, personal ones masked, not id or version
    shown = stored_fields({**before, "notes": "", "tags": []}, frozenset({"phone"}))
    assert shown == {"phone": "***", "region": "North", "ext": before["ext"]}


def test_writes_of_one_record_by_one_actor_in_a_transaction_are_one_operation(make_crm):
    crm = make_crm()
    with crm.transaction("ann"):
        c = crm.customers.add(actor="ann", name="Li", region="North")
        crm.customers.update(c.id, actor="ann", region="South")
        crm.customers.update(c.id, actor="ann", region="East")
    (entry,) = entries(crm)
    (op,) = expand(entry)
    stored = crm.store.collection("customers").get(c.id)
    assert op["op"] == "insert" and op["diff"]["sha"] == record_digest(
        stored, crm.audit.masked_fields("customers")
    )
    assert stored["region"] == "East"  # the insert's digest is of the record as it ended
    d = crm.customers.add(actor="ann", name="Wu", region="North")
    with crm.transaction("bo"):
        crm.customers.update(d.id, actor="bo", region="South")
        crm.customers.update(d.id, actor="bo", region="West")
        crm.customers.update(d.id, actor="cy", region="North")
    last = entries(crm)[-1]
    ops = expand(last)
    assert [(o["op"], o["actor"]) for o in ops] == [("update", "bo"), ("update", "cy")]
    assert ops[0]["diff"]["region"] == ["North", "West"]  # net effect of bo's two
    assert ops[1]["diff"]["region"] == ["West", "North"]
    assert last["ops"][0] == ["customers", d.id, ops[0]["diff"]]  # the entry's actor: short
    assert last["ops"][1]["actor"] == "cy"
    assert crm.audit.verify().ok


def test_a_write_outside_a_transaction_is_its_own_entry_and_a_failed_one_none(make_crm):
    crm = make_crm()
    crm.customers.add(actor="ann", name="A")
    crm.customers.add(actor="ann", name="B")
    with pytest.raises(RuntimeError), crm.transaction("ann"):
        crm.customers.add(actor="ann", name="C")
        raise RuntimeError("rolled back")
    assert [len(e["ops"]) for e in entries(crm)] == [1, 1]
    crm.customers.add(actor="ann", name="D")
    assert [e["seq"] for e in entries(crm)] == [1, 2, 3] and crm.audit.verify().ok


def _old_entry(seq: int, prev: str, op: str, record: dict, before: dict | None = None) -> dict:
    diff = (
        {"after": masked(record, frozenset({"name"}))}
        if op == "insert"
        else {"region": [before["region"], record["region"]]}  # type: ignore[index]
    )
    entry = new_entry(
        f"aud_old{seq}",
        "2025-06-01T08:00:00.000000Z",
        "legacy",
        op,
        "customers",
        record["id"],
        record["id"],
        diff,
        seq,
        prev,
    )
    entry["hash"] = entry_hash(entry)
    return entry


def test_a_trail_written_one_entry_per_write_still_verifies_and_reads(make_crm):
    crm = make_crm()
    raw = raw_trail(crm)
    rec = {"id": "cus_old", "name": "Old Name", "region": "North"}
    first = _old_entry(1, GENESIS, "insert", rec)
    second = _old_entry(2, first["hash"], "update", {**rec, "region": "South"}, rec)
    for old in (first, second):
        raw.insert(old)
    crm.audit.inner.collection(HEAD).insert(
        {"id": HEAD_ID, "seq": 2, "hash": second["hash"], "mac": None}
    )
    assert crm.audit.verify().ok
    c = crm.customers.add(actor="ann", name="New", region="East")  # the new shape follows
    trail = entries(crm)
    assert [("ops" in e) for e in trail] == [False, False, True]
    assert "prev" not in trail[2]  # not stored: the hash covers it
    assert chained_hash(trail[2], second["hash"]) == trail[2]["hash"]
    report = crm.audit.verify()
    assert report.ok and report.entries == 3
    flat = [(o["seq"], o["op"], o["record_id"], o["actor"]) for o in operations(crm)]
    assert flat == [
        (1, "insert", "cus_old", "legacy"),
        (2, "update", "cus_old", "legacy"),
        (3, "insert", c.id, "ann"),
    ]
    assert [details(o) for o in operations(crm)] == ["", "changed: region", ""]
    assert expand(trail[1])[0]["diff"] == {"region": ["North", "South"]}
    # tampering with an old-shape entry is still caught
    raw.update(first["id"], {"actor": "mallory"}, expected_version=1)
    assert crm.audit.verify().problem == "entry #1 was altered"


def test_the_trail_is_smaller_per_purchase_than_one_entry_per_write(tmp_path: Path):
    """The compact entry: fewer bytes per purchase than the writes it holds would take as
    entries of their own (the old shape), on the retail stack."""
    clock = ManualClock(START)
    with open_crm(init_retail(tmp_path / "retail"), clock=clock) as crm:
        rng = random.Random(3)
        ids = [crm.customers.add(actor="ann", name=f"C{i}").id for i in range(5)]
        before = len(entries(crm))
        for _ in range(10):
            clock.advance(days=1)
            crm.interactions.log(
                actor="ann", customer_id=rng.choice(ids), kind="purchase", amount=99.0
            )
        new = entries(crm)[before:]
        compact = sum(len(json.dumps(e, separators=(",", ":"))) for e in new)
        one_per_write = 0
        for entry in new:
            for op in expand(entry):
                old = {k: op[k] for k in ("actor", "op", "collection", "record_id", "diff")}
                old.update(customer_id=op["customer_id"], id="aud_" + "0" * 26, seq=1)
                old.update(at=op["at"], prev=GENESIS, hash=GENESIS)
                one_per_write += len(json.dumps(old, separators=(",", ":")))
        assert len(new) == 10 and compact < one_per_write


def _tx_entry_with_docs(seq: int, prev: str, record: dict) -> dict:
    """An entry per transaction as crmcore wrote them before inserts were digests: the
    insert holds the masked record under ``doc``."""
    entry = {
        "id": f"aud_{seq}",
        "at": "2026-06-01T08:00:00.000000Z",
        "actor": "legacy",
        "ops": [
            {
                "op": "insert",
                "in": "customers",
                "id": record["id"],
                "doc": stored_fields(record, frozenset({"name"})),
            }
        ],
        "seq": seq,
        "prev": prev,
        "customers": [record["id"]],
    }
    entry["hash"] = entry_hash(entry)
    return entry


def test_entries_whose_inserts_hold_the_record_still_verify_and_read(make_crm):
    crm = make_crm()
    raw = raw_trail(crm)
    old = _tx_entry_with_docs(1, GENESIS, {"id": "cus_x", "name": "Old Name", "region": "N"})
    raw.insert(old)
    crm.audit.inner.collection(HEAD).insert(
        {"id": HEAD_ID, "seq": 1, "hash": old["hash"], "mac": None}
    )
    c = crm.customers.add(actor="ann", name="New", region="East")
    assert crm.audit.verify().ok
    first, second = (expand(e)[0] for e in entries(crm))
    assert first["diff"] == {"after": {"name": "***", "region": "N"}}  # read as written
    assert set(second["diff"]) == {"sha"} and second["record_id"] == c.id
    raw.update(old["id"], {"ops": [{**old["ops"][0], "doc": {"region": "S"}}]}, expected_version=1)
    assert crm.audit.verify().problem == "entry #1 was altered"


def test_an_insert_digest_changed_in_the_trail_is_caught(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li", region="North")
    crm.customers.add(actor="ann", name="Wu", region="South")
    raw = raw_trail(crm)
    (entry,) = raw.find({"seq": 1})
    ((collection, id, sha),) = entry["ops"]
    stored = crm.store.collection("customers").get(c.id)
    assert sha == record_digest(stored, crm.audit.masked_fields("customers"))
    forged = record_digest({**stored, "region": "East"}, crm.audit.masked_fields("customers"))
    raw.update(entry["id"], {"ops": [[collection, id, forged]]}, expected_version=entry["version"])
    assert crm.audit.verify().problem == "entry #1 was altered"


def test_a_list_that_keeps_its_beginning_records_only_the_slice_that_changed():
    line = ["2026-01-05T05:51:00Z", 105.31, "int_1"]
    more = ["2026-01-05T07:41:00Z", 367.55, "int_2"]
    assert changes({"lines": [line]}, {"lines": [line, more]}) == {"lines": {"[1:1]": [[], [more]]}}
    # the end kept, the beginning replaced; a middle item removed
    assert changes({"l": [1, 2, 3]}, {"l": [9, 2, 3]}) == {"l": {"[0:1]": [[1], [9]]}}
    assert changes({"l": [1, 2, 3]}, {"l": [1, 3]}) == {"l": {"[1:2]": [[2], []]}}
    # nothing shared: the whole lists, as before
    assert changes({"l": [1, 2]}, {"l": [3]}) == {"l": [[1, 2], [3]]}
    # personal lists stay masked leaves
    assert changes({"p": ["a"]}, {"p": ["a", "b"]}, frozenset({"p"})) == {"p": ["***", "***"]}
    diff = changes({"ext": {"lines": [line]}}, {"ext": {"lines": [line, more]}})
    assert flat_changes(diff) == ["ext.lines[1:1]"]
    assert details({"op": "update", "diff": diff}) == "changed: ext.lines[1:1]"
