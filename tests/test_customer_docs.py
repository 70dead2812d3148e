"""Customers as stored: without the fields that hold their blank default (null, empty), which
reading gives back; queries read a missing field as null; customers stored whole (by older
versions) still read, change and answer queries the same."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore.app import CRM
from crmcore.compactdocs import blank_defaults
from crmcore.converter import to_doc
from crmcore.entities import Customer


@pytest.fixture
def store(memory_or_tinydb: CRM) -> CRM:
    return memory_or_tinydb


def raw(crm: CRM, id: str) -> dict[str, Any]:
    return crm.store.collection("customers").get(id)


def test_a_new_customer_is_stored_without_blank_fields_and_reads_whole(store: CRM):
    c = store.customers.add(actor="ann", name="Li Lei", phone="+8613912345678")
    doc = raw(store, c.id)
    blank = blank_defaults(Customer)
    assert {"email", "owner", "tags", "notes", "ext", "external_ids", "merged_into"} <= set(blank)
    assert [k for k in blank if k in doc and doc[k] == blank[k]] == []
    assert "email" not in doc and "tags" not in doc and "notes" not in doc
    assert doc["phone"] == "+8613912345678" and doc["status"] == "active"
    got = store.customers.get(c.id)
    assert got == c and got.tags == () and got.email is None and got.ext == {}


def test_compact_customers_answer_queries_and_changes_as_whole_ones(store: CRM):
    a = store.customers.add(actor="ann", name="A Li", tags=["vip"], owner="bo")
    b = store.customers.add(actor="ann", name="B Wu")
    # one stored whole by an older version: every field, the blank ones as null or empty
    whole = {**to_doc(store.customers.get(b.id)), "id": "cus_0LD", "name": "C Old"}
    del whole["version"]
    store.store.collection("customers").insert(whole)
    assert {c.id for c in store.customers.find({"owner": None})} == {b.id, "cus_0LD"}
    assert [c.id for c in store.customers.find({"owner": "bo", "status": "active"})] == [a.id]
    assert [c.id for c in store.customers.find({"tags": "vip"})] == [a.id]
    assert {c.id for c in store.customers.find({"email": None})} == {a.id, b.id, "cus_0LD"}
    store.customers.update(b.id, actor="ann", email="b@example.com", owner="bo")
    assert [c.id for c in store.customers.find({"email": "b@example.com"})] == [b.id]
    assert {c.id for c in store.customers.find({"owner": "bo"})} == {a.id, b.id}
    store.customers.update(b.id, actor="ann", owner=None)
    assert store.customers.get(b.id).owner is None
    old = store.customers.get("cus_0LD")
    assert old.email is None and old.tags == () and old.ext == {}
    assert store.audit is not None and store.audit.verify().ok
