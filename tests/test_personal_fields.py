"""One list of personal fields: what erasure blanks is what the audit trail masks, what is
sealed at rest and what logs mask (issue 18, item 6: ``organisation`` escaped all three)."""

import base64
import json
import os

from crmcore.customers import erased_fields
from crmcore.encryption import EncryptedStore, is_sealed
from crmcore.entities import Customer
from crmcore.logs import personal_keys
from crmcore.schema import personal_fields

KEY = base64.b64encode(os.urandom(32)).decode()


def encrypted_crm(make_crm, monkeypatch, plugins=()):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    return make_crm(list(plugins), core={"encrypt_personal": True})


def test_erasure_audit_encryption_and_logs_share_one_list(make_crm, monkeypatch):
    crm = encrypted_crm(make_crm, monkeypatch, ["complaints", "loyalty", "followup", "grading"])
    encrypted = crm.store.inner
    assert isinstance(encrypted, EncryptedStore)
    sealed = encrypted.sealed_collections()
    for spec in crm.collection_specs():
        if spec.record_type is None:
            continue
        declared = set(personal_fields(spec.record_type))
        assert crm.audit.masked_fields(spec.name) == declared, spec.name
        assert set(sealed.get(spec.name, {})) == declared, spec.name
        assert declared <= personal_keys(), spec.name
    assert set(erased_fields()) == set(personal_fields(Customer))
    assert "organisation" in personal_fields(Customer)


def test_forget_blanks_exactly_the_personal_fields(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li Lei", phone="13800138000",
                          email="li@example.com", address="1 Long Road", birth_date="1980-02-03",
                          chat_handles={"wechat": "lilei80"}, organisation="Li Lei Dental",
                          region="North", occupation="dentist", tags=["vip"])
    before = crm.customers.get(c.id)
    after = crm.customers.forget(c.id, actor="dpo")
    changed = {f for f in Customer.__attrs_attrs__  # type: ignore[attr-defined]
               if getattr(before, f.name) != getattr(after, f.name)}
    changed_names = {f.name for f in changed} - {"status", "updated_at", "updated_by", "version"}
    assert changed_names == set(personal_fields(Customer))
    assert (after.region, after.occupation, after.tags) == ("North", "dentist", ("vip",))


def test_organisation_is_masked_in_the_audit_trail_and_gone_after_forget(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li Lei", organisation="Li Lei Dental")
    crm.customers.update(c.id, actor="ann", organisation="Li Lei Dental Group")
    trail = json.dumps(crm.audit.inner.collection("audit").find())
    assert "Dental" not in trail
    entries = crm.audit.inner.collection("audit").find({"op": "update"})
    assert entries[0]["diff"]["organisation"] == ["***", "***"]
    crm.customers.forget(c.id, actor="dpo")
    everything = json.dumps({name: crm.store.inner.collection(name).find()
                             for name in crm.store.collection_names()})
    assert "Dental" not in everything
    assert crm.customers.get_any(c.id).organisation is None


def test_organisation_is_sealed_at_rest(make_crm, monkeypatch):
    crm = encrypted_crm(make_crm, monkeypatch)
    c = crm.customers.add(actor="ann", name="Li Lei", organisation="Li Lei Dental")
    raw = crm.store.inner.inner.collection("customers").get(c.id)
    assert is_sealed(raw["organisation"])
    assert crm.customers.get(c.id).organisation == "Li Lei Dental"
