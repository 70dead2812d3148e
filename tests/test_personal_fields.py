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
from crmcore.testing.audit import operations

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
        declared = set(personal_fields(spec.record_class()))
        blind = set(spec.blind)  # search keys: masked, and stored as keyed hashes, not sealed
        assert crm.audit.masked_fields(spec.name) == declared | blind, spec.name
        assert set(sealed.get(spec.name, {})) == declared, spec.name
        assert set(encrypted.blind_fields().get(spec.name, ())) == blind, spec.name
        assert declared | blind <= personal_keys(), spec.name
    assert encrypted.blind_fields() == {"customers": ("search",)}
    assert set(erased_fields()) == set(personal_fields(Customer))
    assert "organisation" in personal_fields(Customer)


def test_forget_blanks_exactly_the_personal_fields(make_crm):
    crm = make_crm()
    c = crm.customers.add(
        actor="ann",
        name="Li Lei",
        phone="13800138000",
        email="li@example.com",
        address="1 Long Road",
        birth_date="1980-02-03",
        chat_handles={"wechat": "lilei80"},
        organisation="Li Lei Dental",
        region="North",
        occupation="dentist",
        tags=["vip"],
        external_ids={"shop": "C-1042"},
        notes="prefers mornings",
    )
    before = crm.customers.get(c.id)
    after = crm.customers.forget(c.id, actor="dpo")
    changed = {
        f
        for f in Customer.__attrs_attrs__  # type: ignore[attr-defined]
        if getattr(before, f.name) != getattr(after, f.name)
    }
    changed_names = {f.name for f in changed} - {"status", "updated_at", "updated_by", "version"}
    assert changed_names == set(personal_fields(Customer))
    assert (after.region, after.occupation, after.tags) == ("North", "dentist", ("vip",))


def test_organisation_is_masked_in_the_audit_trail_and_gone_after_forget(make_crm):
    crm = make_crm()
    c = crm.customers.add(actor="ann", name="Li Lei", organisation="Li Lei Dental")
    crm.customers.update(c.id, actor="ann", organisation="Li Lei Dental Group")
    trail = json.dumps(crm.audit.inner.collection("audit").find())
    assert "Dental" not in trail
    entries = operations(crm, op="update")
    assert entries[0]["diff"]["organisation"] == ["***", "***"]
    crm.customers.forget(c.id, actor="dpo")
    everything = json.dumps(
        {name: crm.store.inner.collection(name).find() for name in crm.store.collection_names()}
    )
    assert "Dental" not in everything
    assert crm.customers.get_any(c.id).organisation is None


def test_organisation_is_sealed_at_rest(make_crm, monkeypatch):
    crm = encrypted_crm(make_crm, monkeypatch)
    c = crm.customers.add(actor="ann", name="Li Lei", organisation="Li Lei Dental")
    raw = crm.store.inner.inner.collection("customers").get(c.id)
    assert is_sealed(raw["organisation"])
    assert crm.customers.get(c.id).organisation == "Li Lei Dental"


def test_values_written_in_the_clear_are_sealed_by_seal_plaintext(
    open_with_keys, tmp_path, monkeypatch
):
    """A store written before ``organisation`` was personal (or before encryption was on):
    ``crm encryption seal`` seals what is in the clear, and compaction drops the old text."""
    from crmcore.keyrotation import key_status, seal_plaintext

    folder = tmp_path / "db"
    storage = {"backend": "tinydb", "location": str(folder)}
    from crmcore.testing.factories import make_test_crm

    plain = make_test_crm(["storage_tinydb"], storage=storage)
    c = plain.customers.add(
        actor="ann", name="Li Lei", organisation="Li Lei Dental", phone="13800138000"
    )
    plain.close()
    crm = open_with_keys(["storage_tinydb"], storage)(KEY)
    assert sum(u.plaintext for u in key_status(crm)) == 3  # name, organisation, phone
    report = seal_plaintext(crm, actor="root")
    assert report.resealed == 1 and report.problems == []
    assert sum(u.plaintext for u in key_status(crm)) == 0
    raw = crm.store.inner.inner.collection("customers").get(c.id)
    assert all(is_sealed(raw[f]) for f in ("name", "organisation", "phone"))
    assert crm.customers.get(c.id).organisation == "Li Lei Dental"
    assert crm.customers.find_by_contact(phone="13800138000")[0].id == c.id
    files = b"".join(p.read_bytes() for p in folder.rglob("*.json"))
    assert b"Li Lei Dental" not in files and b"13800138000" not in files
    (event,) = operations(crm, op="seal")
    assert event["diff"] == {"sealed": 1, "complete": True}
    assert crm.audit.verify().ok
    assert seal_plaintext(crm, actor="root").resealed == 0  # nothing left: a no-op


def test_crm_encryption_seal_on_the_command_line(tmp_path, monkeypatch, capsys):
    from crmcore.cli.main import run

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMCORE_PLUGINS", "storage_tinydb")
    for name in (
        "CRM_CONFIG",
        "CRM_ACTOR",
        "CRM_STORAGE_BACKEND",
        "CRM_STORAGE_LOCATION",
        "CRM_ENCRYPTION_PREVIOUS_KEYS",
        "CRM_AUDIT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CRM_ENCRYPTION_KEY", raising=False)
    assert run(["init"]) == 0
    assert run(["--as", "ann", "customer", "add", "--name", "Li", "--organisation", "Li Co"]) == 0
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", KEY)
    config = tmp_path / "crm.toml"
    config.write_text(config.read_text().replace("[core]\n", "[core]\nencrypt_personal = true\n"))
    capsys.readouterr()
    assert run(["--json", "encryption", "seal"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sealed"] == 1 and out["problems"] == []
    assert run(["--json", "encryption", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["plaintext"] == 0
