"""The audit chain's anchoring on MongoDB (mongomock): the head recorded outside the trail and
the audit key's MACs catch a cut tail and a re-chained edit here as on the embedded store."""

from __future__ import annotations

import base64
import os

from crmcore.testing.audit import cut_tail, entries, raw_head, rechain_after_edit, set_head

STORAGE = {
    "backend": "mongodb",
    "location": "mongodb://127.0.0.1:27017",
    "options": {"database": "audited"},
}


def test_cut_tail_and_rechained_edit_are_caught_on_mongodb(make_crm, use_mongomock, monkeypatch):
    monkeypatch.delenv("CRM_AUDIT_KEY", raising=False)
    crm = make_crm(["storage_mongo"], storage=STORAGE)
    for i in range(5):
        crm.customers.add(actor="ann", name=f"Customer {i}")
    assert crm.audit.verify().ok and raw_head(crm).get("head")["seq"] == 5
    anchor = crm.audit.anchor()
    cut_tail(crm, 2)
    assert "entries #4-#5 were removed" in crm.audit.verify().problem
    set_head(crm, 3, entries(crm)[-1]["hash"])
    assert crm.audit.verify().ok  # the head rewritten too: only the anchor can tell
    assert "entries #4-#5 were removed" in crm.audit.verify([anchor]).problem


def test_the_audit_key_catches_a_rechained_edit_on_mongodb(make_crm, use_mongomock, monkeypatch):
    monkeypatch.setenv("CRM_AUDIT_KEY", base64.b64encode(os.urandom(32)).decode())
    crm = make_crm(["storage_mongo"], storage=STORAGE)
    for i in range(5):
        crm.customers.add(actor="ann", name=f"Customer {i}")
    assert crm.audit.verify().keyed
    new_last = rechain_after_edit(crm, 3, {"actor": "mallory"})
    set_head(crm, 5, new_last, raw_head(crm).get("head")["mac"])
    assert crm.audit.verify().problem.startswith("entry #3 does not carry a valid MAC")
