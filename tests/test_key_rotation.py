"""Rotating the encryption key: re-sealing, resuming, the audit trail, and the CLI."""

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest

from crmcore import StorageError
from crmcore.audit import chained_hash
from crmcore.encryption import FieldCipher, encrypted_layer
from crmcore.keyrotation import key_status, rotate_keys
from crmcore.testing.audit import entries as raw_entries
from crmcore.testing.audit import operations
from crmcore.testing.cli import one_line_error

OLD = base64.b64encode(b"o" * 32).decode()
NEW = base64.b64encode(b"n" * 32).decode()
SEALED = re.compile(r"enc:v1:[dr]:[A-Za-z0-9_\-=]+")


def cipher(key):
    return FieldCipher(base64.b64decode(key))


def innermost(store):
    while hasattr(store, "inner"):
        store = store.inner
    return store


def raw_seals(crm) -> list[str]:
    """Every sealed value in the backend, beneath the audit and encryption layers."""
    backend = innermost(crm.store)
    text = json.dumps([backend.collection(n).find() for n in backend.collection_names()])
    return SEALED.findall(text)


def files_text(folder: Path) -> str:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()).decode(
        "utf-8", "replace"
    )


@pytest.fixture
def tiny(open_with_keys, tmp_path):
    """``tiny(key, *previous)``: close the last CRM and open the embedded store in
    ``tmp_path / "db"`` with these keys."""
    return open_with_keys(
        ["storage_tinydb"], {"backend": "tinydb", "location": str(tmp_path / "db")}
    )


def seed(crm, n):
    """``n`` customers with personal fields everywhere, an interaction and a task each."""
    made = []
    for i in range(n):
        c = crm.customers.add(
            actor="ann",
            name=f"Customer {i}",
            phone=f"1380013{i:04d}",
            email=f"c{i}@example.com",
            address=f"{i} Long Road",
        )
        crm.interactions.log(
            actor="ann", customer_id=c.id, kind="visit", summary=f"visit {i} from {c.phone}"
        )
        crm.tasks.create(
            actor="ann",
            kind="callback",
            title="call",
            due_at=crm.now(),
            customer_id=c.id,
            notes=f"notes about customer {i}",
        )
        made.append(c)
    return made


def previous_counts(crm):
    return {u.collection: u.previous for u in key_status(crm)}


def test_rotate_end_to_end_on_the_embedded_store(tiny, tmp_path):
    crm = tiny(OLD)
    customers = seed(crm, 12)
    crm = tiny(NEW, OLD)
    assert previous_counts(crm) == {"customers": (48,), "interactions": (12,), "tasks": (12,)}
    seen = []
    report = rotate_keys(
        crm, actor="ops", batch_size=5, progress=lambda name, n: seen.append((name, n))
    )
    assert {c.collection: (c.documents, c.resealed) for c in report.collections} == {
        "customers": (12, 12),
        "interactions": (12, 12),
        "tasks": (12, 12),
    }
    assert report.problems == [] and report.unreadable == 0 and report.compact_error is None
    assert [n for name, n in seen if name == "customers"] == [5, 5, 2]
    usage = key_status(crm)
    assert [(u.current, u.previous, u.unreadable) for u in usage] == [
        (48, (0,), 0),
        (12, (0,), 0),
        (12, (0,), 0),
    ]
    rekeys = operations(crm, op="rekey")
    assert [(e["collection"], e["actor"], e["diff"]) for e in rekeys] == [
        (name, "ops", {"resealed": 12, "complete": True})
        for name in ("customers", "interactions", "tasks")
    ]
    assert crm.audit.verify().ok
    # the rotation compacted the open store: no old seal lingers in its journal or files
    on_disk = SEALED.findall(files_text(tmp_path / "db"))
    assert on_disk and not any(cipher(OLD).key_of(s) is not None for s in on_disk)

    crm = tiny(NEW)  # the old key is gone
    for c in customers:
        got = crm.customers.get(c.id)
        assert (got.name, got.phone, got.email, got.address) == (
            c.name,
            c.phone,
            c.email,
            c.address,
        )
        assert crm.customers.find_by_contact(phone=c.phone) == [got]
        (visit,) = crm.interactions.for_customer(c.id)
        assert visit.summary == f"visit {c.name.split()[1]} from {c.phone}"
        (task,) = crm.tasks.open_for(c.id)
        assert task.notes == f"notes about customer {c.name.split()[1]}"
    seals = raw_seals(crm)
    assert len(seals) == 48 + 12 + 12
    assert all(cipher(NEW).key_of(s) == 0 and cipher(OLD).key_of(s) is None for s in seals)
    assert crm.audit.verify().ok


def test_an_interrupted_rotation_finishes_when_run_again(tiny, monkeypatch):
    crm = tiny(OLD)
    seed(crm, 10)
    crm = tiny(NEW, OLD)
    backend = type(innermost(crm.store).collection("customers"))
    real_update = backend.update
    calls = []

    def failing(self, id, changes, *, expected_version):
        calls.append(id)
        if len(calls) == 4:
            raise StorageError("disk full")
        return real_update(self, id, changes, expected_version=expected_version)

    monkeypatch.setattr(backend, "update", failing)
    with pytest.raises(StorageError, match="disk full"):
        rotate_keys(crm, actor="ops", batch_size=3)
    monkeypatch.setattr(backend, "update", real_update)
    assert previous_counts(crm) == {"customers": (28,), "interactions": (10,), "tasks": (10,)}
    partial = operations(crm, op="rekey")
    assert [(e["collection"], e["diff"]) for e in partial] == [
        ("customers", {"resealed": 3, "complete": False})
    ]

    report = rotate_keys(crm, actor="ops", batch_size=3)
    assert [(c.collection, c.resealed) for c in report.collections] == [
        ("customers", 7),
        ("interactions", 10),
        ("tasks", 10),
    ]
    assert previous_counts(crm) == {"customers": (0,), "interactions": (0,), "tasks": (0,)}
    assert rotate_keys(crm, actor="ops").resealed == 0  # and again: nothing left to do
    assert crm.audit.verify().ok


def test_a_document_changed_during_the_rotation_is_read_again_not_lost(tiny, monkeypatch):
    crm = tiny(OLD)
    (c,) = seed(crm, 1)
    crm = tiny(NEW, OLD)
    backend = type(innermost(crm.store).collection("customers"))
    real_update = backend.update
    raced = []

    def racing(self, id, changes, *, expected_version):
        if self.name == "customers" and not raced:
            raced.append(id)  # someone else writes between the rotation's read and its write
            crm.customers.update(id, actor="bo", region="North", name="Renamed")
        return real_update(self, id, changes, expected_version=expected_version)

    monkeypatch.setattr(backend, "update", racing)
    report = rotate_keys(crm, actor="ops")
    assert raced == [c.id] and report.collections[0].resealed == 1
    got = crm.customers.get(c.id)
    assert (got.region, got.name, got.phone) == ("North", "Renamed", c.phone)
    stored = innermost(crm.store).collection("customers").get(c.id)
    assert all(cipher(NEW).key_of(stored[f]) == 0 for f in ("name", "phone", "email"))


def test_values_no_key_opens_are_counted_and_left_alone(tiny):
    crm = tiny(OLD)
    (c,) = seed(crm, 1)
    # a value sealed under a key that is not configured (lost, or damaged data)
    stray = FieldCipher(b"s" * 32).seal("lost", deterministic=False)
    backend = innermost(crm.store).collection("customers")
    backend.update(c.id, {"address": stray}, expected_version=backend.get(c.id)["version"])
    crm = tiny(NEW, OLD)
    (customers, *_rest) = key_status(crm)
    assert (customers.current, customers.previous, customers.unreadable) == (0, (3,), 1)
    report = rotate_keys(crm, actor="ops")
    assert report.unreadable == 1 and report.collections[0].resealed == 1
    assert innermost(crm.store).collection("customers").get(c.id)["address"] == stray
    (customers, *_rest) = key_status(crm)
    assert (customers.current, customers.previous, customers.unreadable) == (3, (0,), 1)


def test_a_duplicate_that_slipped_in_is_reported_not_re_sealed(tiny):
    crm = tiny(OLD, unique_phone=True)
    a = crm.customers.add(actor="ann", name="A", phone="13800138000")
    # opened with the new key but without the old one, the unique index cannot compare
    crm = tiny(NEW, unique_phone=True)
    crm.customers.add(actor="ann", name="B", phone="13800138000")
    crm = tiny(NEW, OLD, unique_phone=True)
    report = rotate_keys(crm, actor="ops")
    (problem,) = report.problems
    assert problem.startswith(f"customers {a.id} was not re-sealed: ")
    assert "resolve the duplicate, then rotate again" in problem
    assert report.collections[0].resealed == 0
    assert crm.customers.get(a.id).name == "A"  # still readable under the previous key
    assert previous_counts(crm)["customers"] == (2,)
    assert crm.audit.verify().ok


def test_rotate_refuses_without_encryption_or_a_previous_key(make_crm, monkeypatch):
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match="encryption at rest is off"):
        rotate_keys(make_crm(), actor="ops")
    with pytest.raises(ConfigError, match="encryption at rest is off"):
        key_status(make_crm())
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", NEW)
    monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS", raising=False)
    crm = make_crm(core={"encrypt_personal": True})
    assert encrypted_layer(crm.store).cipher.previous_keys == 0
    with pytest.raises(ConfigError, match="nothing to rotate from"):
        rotate_keys(crm, actor="ops")


def test_record_event_appends_one_chained_entry(make_crm):
    from crmcore.audit import acting_as

    crm = make_crm()
    crm.customers.add(actor="ann", name="Li")
    with acting_as("ops"):
        crm.audit.record_event("rekey", "customers", {"resealed": 1, "complete": True})
    crm.customers.add(actor="ann", name="Wang")
    entries = operations(crm)
    assert [e["op"] for e in entries] == ["insert", "rekey", "insert"]
    event = entries[1]
    assert (
        event["seq"],
        event["actor"],
        event["collection"],
        event["record_id"],
        event["customer_id"],
        event["diff"],
    ) == (2, "ops", "customers", None, None, {"resealed": 1, "complete": True})
    trail = raw_entries(crm)  # one entry each: the event is a transaction of its own
    assert [e["seq"] for e in trail] == [1, 2, 3] and event["hash"] == trail[1]["hash"]
    assert chained_hash(trail[1], trail[0]["hash"]) == trail[1]["hash"]
    assert chained_hash(trail[2], trail[1]["hash"]) == trail[2]["hash"]
    assert crm.audit.verify().ok


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli(crm_cli, monkeypatch):
    monkeypatch.delenv("CRM_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS", raising=False)
    return crm_cli()


def encrypted(tmp_path, monkeypatch, key, *previous):
    (tmp_path / "crm.toml").write_text("[core]\nencrypt_personal = true\nunique_phone = true\n")
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", key)
    if previous:
        monkeypatch.setenv("CRM_ENCRYPTION_PREVIOUS_KEYS", " ".join(previous))
    else:
        monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS", raising=False)


def test_cli_status_and_rotate(cli, tmp_path, monkeypatch):
    encrypted(tmp_path, monkeypatch, OLD)
    for name, phone in (("Li Lei", "13800138000"), ("Wang Fang", "13900139000")):
        assert cli("--as", "ann", "customer", "add", "--name", name, "--phone", phone)[0] == 0
    code, _, err = cli("encryption", "rotate")
    assert code == 2
    assert one_line_error(err) == (
        "error: nothing to rotate from: no previous key is configured (list the old key in "
        "core.encryption_previous_key_files or $CRM_ENCRYPTION_PREVIOUS_KEYS)"
    )

    encrypted(tmp_path, monkeypatch, NEW, OLD)
    code, out, err = cli("--json", "encryption", "status")
    assert code == 0, err
    status = json.loads(out)
    assert status["previous_keys"] == 1
    assert status["totals"] == {"current": 0, "previous": [4], "unreadable": 0, "plaintext": 0}
    assert status["collections"][0] == {
        "collection": "customers",
        "documents": 2,
        "current": 0,
        "previous": [4],
        "unreadable": 0,
        "plaintext": 0,
    }
    code, out, _ = cli("encryption", "status")
    assert code == 0 and "previous key 1" in out
    assert "4 values are still sealed under a previous key" in out

    code, out, err = cli("--as", "ops", "encryption", "rotate")
    assert code == 0, err
    assert "re-sealed 2 documents under the current key" in out
    assert "check 'crm encryption status' before removing a previous key" in out
    code, out, _ = cli("--json", "encryption", "status")
    status = json.loads(out)
    assert status["totals"]["current"] == 4 and status["totals"]["previous"] == [0]
    assert any("may be removed" in note for note in status["notes"])
    code, out, _ = cli("--json", "encryption", "rotate")
    assert code == 0 and json.loads(out)["resealed"] == 0
    code, out, _ = cli("--json", "audit")
    newest = json.loads(out)[0]
    assert (newest["op"], newest["actor"], newest["collection"]) == ("rekey", "ops", "customers")
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "audit trail intact: 3 entries" in out

    monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS")  # the previous key is removed
    code, out, _ = cli("--json", "customer", "list")
    assert sorted(c["phone"] for c in json.loads(out)) == ["13800138000", "13900139000"]


def test_cli_rotate_reports_what_it_could_not_re_seal_with_exit_4(cli, tmp_path, monkeypatch):
    encrypted(tmp_path, monkeypatch, OLD)
    assert cli("customer", "add", "--name", "A", "--phone", "13800138000")[0] == 0
    encrypted(tmp_path, monkeypatch, NEW)  # without the previous key: a duplicate slips in
    assert cli("customer", "add", "--name", "B", "--phone", "13800138000")[0] == 0
    encrypted(tmp_path, monkeypatch, NEW, OLD)
    code, out, err = cli("encryption", "rotate")
    assert code == 4 and "re-sealed 0 documents" in out
    line = one_line_error(err)
    assert line.startswith("error: 1 document(s) left under a previous key: customers cus_")
    assert "another record already has this value of (phone)" in line


@pytest.mark.parametrize(
    ("setup", "args", "fragment"),
    [
        ("off", ["encryption", "status"], "encryption at rest is off"),
        ("off", ["encryption", "rotate"], "encryption at rest is off"),
        (
            "bad",
            ["encryption", "rotate"],
            "$CRM_ENCRYPTION_PREVIOUS_KEYS[0]: the encryption key is not valid base64",
        ),
        (
            "same",
            ["encryption", "status"],
            "$CRM_ENCRYPTION_PREVIOUS_KEYS[0]: this previous key is the current encryption key",
        ),
    ],
)
def test_cli_refusals_are_one_line_and_exit_2(cli, tmp_path, monkeypatch, setup, args, fragment):
    if setup == "bad":
        encrypted(tmp_path, monkeypatch, NEW, "not base64!")
    elif setup == "same":
        encrypted(tmp_path, monkeypatch, NEW, NEW)
    code, out, err = cli(*args)
    assert code == 2 and out == ""
    assert fragment in one_line_error(err)


def test_cli_new_key_writes_a_private_key_and_never_overwrites(cli, tmp_path, monkeypatch):
    old_umask = os.umask(0)  # the file is 0600 whatever the umask
    try:
        code, out, err = cli("encryption", "new-key", "site.key")
    finally:
        os.umask(old_umask)
    assert code == 0, err
    assert "wrote a new encryption key to site.key (mode 600)" in out
    key_file = tmp_path / "site.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = key_file.read_text()
    assert len(base64.b64decode(text.strip(), validate=True)) == 32
    assert text.strip() not in out + err  # the key is never printed
    code, _, err = cli("encryption", "new-key", "site.key")
    assert code == 2 and "site.key exists; a key file is never overwritten" in one_line_error(err)
    assert key_file.read_text() == text
    code, _, err = cli("encryption", "new-key", "nowhere/site.key")
    assert code == 2 and "folder" in one_line_error(err) and "does not exist" in err
    code, _, err = cli("encryption", "new-key", "bad\x00name.key")
    assert code == 2 and "NUL" in one_line_error(err)
    code, out, _ = cli("--json", "encryption", "new-key", "other.key")
    assert json.loads(out)["path"] == "other.key"
    assert key_file.read_text() != Path(tmp_path / "other.key").read_text()
    # the file is a working key
    (tmp_path / "crm.toml").write_text(
        "[core]\nencrypt_personal = true\n"
        'encryption_key_file = "site.key"\n'
        '[storage]\nlocation = "crm-data"\n'
    )
    assert cli("--as", "ann", "customer", "add", "--name", "Li")[0] == 0
    # never with the data it seals, nor over the configuration
    for inside in ("crm.toml",):  # the store folder: test_outputs.py, on a real store
        code, _, err = cli("encryption", "new-key", inside)
        assert code == 2 and "write somewhere else" in one_line_error(err), err
