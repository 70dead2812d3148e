"""Encryption at rest: no plaintext personal data reaches the backend; search still works."""

import base64
import json
import os

import pytest

from crmcore import ConfigError, StorageError, ValidationError

KEY = base64.b64encode(b"k" * 32).decode()


def innermost(store):
    while hasattr(store, "inner"):
        store = store.inner
    return store


def raw_text(crm) -> str:
    backend = innermost(crm.store)
    return json.dumps({n: backend.collection(n).find() for n in backend.collection_names()})


@pytest.fixture
def crm(make_crm, monkeypatch):
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    return make_crm(core={"encrypt_personal": True})


def test_personal_fields_are_sealed_at_rest_and_open_through_the_api(crm):
    c = crm.customers.add(actor="ann", name="Li Lei", phone="13800138000",
                          email="li.lei@example.com", address="1 Long Road", region="North")
    crm.interactions.log(actor="ann", customer_id=c.id, kind="visit",
                         summary="Li Lei asked about 13800138000")
    crm.tasks.create(actor="ann", kind="callback", title="call", due_at=crm.now(),
                     customer_id=c.id, notes="Li Lei prefers evenings")
    text = raw_text(crm)
    for secret in ("Li Lei", "13800138000", "li.lei@example.com", "1 Long Road", "evenings"):
        assert secret not in text
    assert "North" in text  # not personal: stays searchable in the clear
    got = crm.customers.get(c.id)
    assert (got.name, got.phone, got.address) == ("Li Lei", "13800138000", "1 Long Road")
    assert crm.interactions.for_customer(c.id)[0].summary == "Li Lei asked about 13800138000"


def test_indexed_fields_stay_searchable_and_unique(make_crm, monkeypatch):
    from crmcore import DuplicateKeyError

    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    crm = make_crm(core={"encrypt_personal": True, "unique_email": True})
    a = crm.customers.add(actor="ann", name="Li", phone="13800138000", email="li@example.com")
    b = crm.customers.add(actor="ann", name="Li L", phone="138 0013 8000")
    assert [c.id for c in crm.customers.find_by_contact(phone="13800138000")] == [a.id, b.id]
    assert [[c.id for c in g] for g in crm.customers.find_duplicates()] == [[a.id, b.id]]
    with pytest.raises(DuplicateKeyError):
        crm.customers.add(actor="ann", name="Other", email="LI@example.com")


def test_randomised_fields_differ_for_equal_values_and_cannot_be_searched(crm):
    crm.customers.add(actor="ann", name="Wang Fang")
    crm.customers.add(actor="ann", name="Wang Fang")
    names = [d["name"] for d in innermost(crm.store).collection("customers").find()]
    assert names[0] != names[1] and all(n.startswith("enc:v1:r:") for n in names)
    with pytest.raises(ValidationError, match="encrypted with a random nonce"):
        crm.customers.find({"name": "Wang Fang"})
    with pytest.raises(ValidationError, match="cannot be sorted on"):
        crm.customers.find(sort=[("name", 1)])


def test_a_wrong_key_is_a_clear_storage_error(make_crm, monkeypatch):
    import uuid

    store = {"backend": "memory", "location": f"enc-{uuid.uuid4()}"}
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    c = make_crm(core={"encrypt_personal": True}, storage=store).customers.add(actor="ann",
                                                                               name="Li")
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"x" * 32).decode())
    other = make_crm(core={"encrypt_personal": True}, storage=store)
    with pytest.raises(StorageError, match="does not open with this key"):
        other.customers.get(c.id)


def test_missing_weak_or_exposed_keys_are_refused(make_crm, monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ConfigError, match="no key is given"):
        make_crm(core={"encrypt_personal": True})
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"short").decode())
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        make_crm(core={"encrypt_personal": True})
    monkeypatch.delenv("CRM_ENCRYPTION_KEY")
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        make_crm(core={"encrypt_personal": True, "encryption_key_file": str(key_file)})
    os.chmod(key_file, 0o600)
    crm = make_crm(core={"encrypt_personal": True, "encryption_key_file": str(key_file)})
    assert crm.customers.add(actor="ann", name="Li").name == "Li"
