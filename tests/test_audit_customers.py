"""An entry's one customer named by the operation on the customer's own record, not listed
again in ``customers`` (W8, issue 24 item 2); entries that list it, and entries of one write,
still read, verify and answer ``crm audit --customer``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crmcore.app import open_crm
from crmcore.audit import (
    GENESIS,
    HEAD,
    HEAD_ID,
    chained_hash,
    entry_customer,
    entry_customers,
    expand,
    new_entry,
)
from crmcore.testing.audit import entries, raw_trail


def test_an_entry_about_a_customers_record_does_not_list_the_customer(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li", region="North")
    crm.customers.update(c.id, actor="bo", region="South")
    crm.interactions.log(actor="ann", customer_id=c.id, kind="note")
    added, updated, logged = entries(crm)
    assert "customers" not in added and "customers" not in updated
    assert added["ops"][0][:2] == ["customers", c.id]
    assert entry_customer(added) == c.id and entry_customers(updated) == [c.id]
    assert [op["customer_id"] for op in expand(updated)] == [c.id]
    # an entry whose operations do not touch the customer's record still lists it
    assert logged["customers"] == [c.id]
    assert [op["customer_id"] for op in expand(logged)] == [c.id]
    assert crm.audit.verify().ok


def test_the_retail_stack_names_the_customer_once_and_every_reaction_concerns_it(make_crm):
    crm = make_crm(["followup", "loyalty", "grading"])
    c = crm.customers.add(actor="ann", name="Wang Fang", phone="+8613912345678")
    crm.interactions.log(actor="ann", customer_id=c.id, kind="purchase", amount=300)
    for entry in entries(crm):
        assert "customers" not in entry, entry
        text = json.dumps(entry)
        assert text.count(c.id) == sum(c.id in json.dumps(op) for op in entry["ops"])
        about = {op["customer_id"] for op in expand(entry) if op["collection"] != "grading.state"}
        assert about == {c.id}
    assert crm.audit.verify().ok


def test_entries_that_list_their_customer_still_read_and_verify(make_crm):
    crm = make_crm()
    raw = raw_trail(crm)
    old = {
        "id": "aud_1",
        "at": "2026-06-01T08:00:00.000000Z",
        "actor": "ann",
        "ops": [
            ["customers", "cus_old", "AAAAAAAAAAAAAAAAAAAAAA"],
            ["tasks", "tsk_1", {"x": [1, 2]}],
        ],
        "seq": 1,
        "customers": ["cus_old"],
    }
    old["hash"] = chained_hash(old, GENESIS)
    raw.insert(old)
    crm.audit.inner.collection(HEAD).insert({"id": HEAD_ID, "seq": 1, "hash": old["hash"]})
    crm.customers.add(actor="ann", name="New")
    assert crm.audit.verify().ok
    assert [op["customer_id"] for op in expand(entries(crm)[0])] == ["cus_old", "cus_old"]
    assert entry_customers(entries(crm)[0]) == ["cus_old"]


def crm_cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "CRMCORE_PLUGINS"
    }
    environ["CRMCORE_PLUGINS"] = "storage_tinydb"
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def test_crm_audit_customer_finds_every_shape_newest_first(tmp_path):
    assert crm_cli(tmp_path, "init").returncode == 0
    with open_crm(tmp_path / "crm.toml", plugins=["storage_tinydb"]) as crm:
        raw = raw_trail(crm)
        # a trail begun by an older crmcore: an entry of one write, then an entry that lists
        # its customer
        one = new_entry(
            "aud_1",
            "2026-06-01T08:00:00.000000Z",
            "old",
            "update",
            "customers",
            "cus_a",
            "cus_a",
            {"region": ["N", "S"]},
            1,
            GENESIS,
        )
        one["hash"] = chained_hash(one, GENESIS)
        listed = {
            "id": "aud_2",
            "at": "2026-06-01T08:01:00.000000Z",
            "actor": "old",
            "ops": [["interactions", "int_a", "AAAAAAAAAAAAAAAAAAAAAA"]],
            "seq": 2,
            "customers": ["cus_a"],
        }
        listed["hash"] = chained_hash(listed, one["hash"])
        raw.insert(one)
        raw.insert(listed)
        crm.audit.inner.collection(HEAD).insert({"id": HEAD_ID, "seq": 2, "hash": listed["hash"]})
        a = crm.customers.add(actor="ann", name="A")
        b = crm.customers.add(actor="ann", name="B")
        for i in range(120):  # more than the first batch read from the newest end
            crm.customers.update(b.id, actor="ann", region=f"R{i}")
        crm.customers.update(a.id, actor="bo", region="East")
        crm.interactions.log(actor="ann", customer_id=a.id, kind="note")
    done = crm_cli(tmp_path, "--json", "audit", "--customer", a.id)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["seq"], r["op"], r["collection"]) for r in rows] == [
        (126, "insert", "interactions"),
        (125, "update", "customers"),
        (3, "insert", "customers"),
    ]
    done = crm_cli(tmp_path, "--json", "audit", "--customer", "cus_a")
    rows = json.loads(done.stdout)
    assert [(r["seq"], r["actor"], r["collection"]) for r in rows] == [
        (2, "old", "interactions"),
        (1, "old", "customers"),
    ]
    done = crm_cli(tmp_path, "--json", "audit", "--customer", b.id, "--limit", "3")
    assert [r["seq"] for r in json.loads(done.stdout)] == [124, 123, 122]
    done = crm_cli(tmp_path, "audit", "verify")
    assert done.returncode == 0 and "intact: 126 entries" in done.stdout, done.stdout


def test_newest_first_reads_past_gaps_and_malformed_numbers(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li")
    other = crm.customers.add(actor="ann", name="Wu")
    raw = raw_trail(crm)
    for seq in (1500, 3000):  # numbers skipped (entries archived, or written elsewhere)
        raw.insert({"id": f"aud_{seq}", "seq": seq, "ops": [["customers", c.id, "x"]]})
    raw.insert({"id": "aud_bad", "seq": "9999", "ops": [["customers", c.id, "x"]]})
    assert [e["seq"] for e in crm.audit.newest_first(c.id)] == [3000, 1500, 1]
    assert [e["seq"] for e in crm.audit.newest_first(other.id)] == [2]
    assert [e["seq"] for e in crm.audit.newest_first()] == [3000, 1500, 2, 1]
