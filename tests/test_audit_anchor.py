"""The audit chain anchored outside itself (issue 18, item 5): cutting entries from its end, or
editing one and re-hashing everything after it, is caught by ``verify``, on every backend."""

from __future__ import annotations

import base64
import os

import pytest

from crmcore.audit import Anchor, entry_mac
from crmcore.errors import ConfigError, StorageError, ValidationError
from crmcore.testing.audit import (
    cut_tail,
    drop_head,
    entries,
    raw_head,
    rechain_after_edit,
    set_head,
)

KEY = base64.b64encode(os.urandom(32)).decode()
OLD_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(params=["memory", "tinydb"])
def open_crm_on(request, make_crm, tmp_path, monkeypatch):
    """``open_crm_on(key=None, previous=())``: a CRM on the parametrised backend (reopening the
    same store each call), with the audit key and previous keys set through the environment."""
    if request.param == "memory":
        storage, plugins = {"backend": "memory", "location": f"anchor-{tmp_path.name}"}, []
    else:
        storage, plugins = (
            {"backend": "tinydb", "location": str(tmp_path / "data")},
            ["storage_tinydb"],
        )
    opened = []

    def open_(key: str | None = None, previous: tuple[str, ...] = ()):
        if opened:
            opened[-1].close()
        if key:
            monkeypatch.setenv("CRM_AUDIT_KEY", key)
        else:
            monkeypatch.delenv("CRM_AUDIT_KEY", raising=False)
        if previous:
            monkeypatch.setenv("CRM_AUDIT_PREVIOUS_KEYS", ",".join(previous))
        else:
            monkeypatch.delenv("CRM_AUDIT_PREVIOUS_KEYS", raising=False)
        opened.append(make_crm(plugins, storage=storage))
        return opened[-1]

    return open_


def five_writes(crm):
    for i in range(5):
        crm.customers.add(actor="ann", name=f"Customer {i}")


def test_tail_truncation_is_caught_by_the_head_outside_the_trail(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    assert crm.audit.verify().ok
    cut_tail(crm, 2)
    report = crm.audit.verify()
    assert not report.ok
    assert report.problem == (
        "the trail ends at entry #3 but the head recorded outside the "
        "trail records entry #5: entries #4-#5 were removed"
    )


def test_an_emptied_trail_is_caught(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    cut_tail(crm, 5)
    report = crm.audit.verify()
    assert not report.ok and "entries #1-#5 were removed" in report.problem


def test_a_rechained_edit_is_caught_by_the_head_outside_the_trail(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    rechain_after_edit(crm, 2, {"actor": "mallory"})
    report = crm.audit.verify()
    assert not report.ok
    assert report.problem.startswith(
        "entry #5 is not the one the head recorded outside the "
        "trail records: the trail was rewritten"
    )


def test_without_a_key_an_exported_anchor_catches_a_rewrite_of_trail_and_head(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    anchor = crm.audit.anchor()
    assert (anchor.seq, anchor.mac) == (5, None)
    crm.customers.add(actor="ann", name="Customer 5")
    new_last = rechain_after_edit(crm, 2, {"actor": "mallory"})
    set_head(crm, 6, new_last)  # the attacker rewrites the head too
    assert crm.audit.verify().ok  # nothing inside the store can tell, without a key
    report = crm.audit.verify([Anchor.from_json(anchor.to_json(), "test")])
    assert not report.ok and report.problem.startswith("entry #5 is not the one the anchor")
    cut_tail(crm, 3)  # and truncation below an anchor
    set_head(crm, 3, entries(crm)[-1]["hash"])
    report = crm.audit.verify([anchor])
    assert not report.ok and "entries #4-#5 were removed" in report.problem


def test_with_the_audit_key_a_rechained_edit_is_caught_even_with_the_head_rewritten(open_crm_on):
    crm = open_crm_on(KEY)
    five_writes(crm)
    assert all(e["mac"] for e in entries(crm)) and raw_head(crm).get("head")["mac"]
    report = crm.audit.verify()
    assert report.ok and report.keyed
    new_last = rechain_after_edit(crm, 2, {"actor": "mallory"})
    set_head(crm, 5, new_last, raw_head(crm).get("head")["mac"])
    report = crm.audit.verify()
    assert not report.ok
    assert report.problem.startswith("entry #2 does not carry a valid MAC")


def test_with_the_audit_key_stripping_the_macs_is_caught(open_crm_on):
    crm = open_crm_on(KEY)
    five_writes(crm)
    rechain_after_edit(crm, 4, {"actor": "mallory"}, keep_macs=False)
    report = crm.audit.verify()
    assert not report.ok
    assert report.problem.startswith("entry #4 has no MAC although the entries from #1 on")


def test_with_the_audit_key_a_forged_head_is_caught(open_crm_on):
    crm = open_crm_on(KEY)
    five_writes(crm)
    cut_tail(crm, 2)
    third = entries(crm)[-1]
    set_head(crm, 3, third["hash"], third["mac"])  # an entry's MAC is no head's MAC
    report = crm.audit.verify()
    assert not report.ok and report.problem.startswith(
        "the head recorded outside the trail has no valid MAC"
    )
    drop_head(crm)
    report = crm.audit.verify()
    assert not report.ok and report.problem.startswith(
        "the head recorded outside the trail is missing"
    )


def test_a_wrong_key_is_reported(open_crm_on):
    crm = open_crm_on(KEY)
    five_writes(crm)
    crm = open_crm_on(OLD_KEY)
    report = crm.audit.verify()
    assert not report.ok and "(or the audit key is wrong)" in report.problem


def test_an_old_trail_is_upgraded_by_anchoring_it(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    drop_head(crm)  # as written before the head was recorded, without MACs
    report = crm.audit.verify()
    assert report.ok and report.notes and "no head is recorded" in report.notes[0]
    crm = open_crm_on(KEY)  # the key configured afterwards
    report = crm.audit.verify()
    assert not report.ok and "run 'crm audit anchor' once to seal it" in report.problem
    anchor = crm.audit.anchor()
    assert anchor.mac == entry_mac(base64.b64decode(KEY), anchor.hash, "anchor")
    report = crm.audit.verify([anchor])
    assert report.ok and report.keyed and report.notes == ()
    rechain_after_edit(crm, 2, {"actor": "mallory"})  # the keyed head vouches for old entries
    assert not crm.audit.verify().ok
    crm.close()


def test_a_trail_with_an_unkeyed_head_is_sealed_by_anchoring_once_a_key_is_configured(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)  # the head recorded without a MAC
    crm = open_crm_on(KEY)
    report = crm.audit.verify()
    assert not report.ok and "run 'crm audit anchor' once to seal it" in report.problem
    crm.audit.anchor()
    assert raw_head(crm).get("head")["mac"]
    report = crm.audit.verify()
    assert report.ok and report.keyed
    rechain_after_edit(crm, 5, {"actor": "mallory"})
    set_head(crm, 5, entries(crm)[-1]["hash"], None)  # back to "never keyed": refused
    report = crm.audit.verify()
    assert not report.ok


def test_a_trail_written_before_the_key_keeps_verifying_once_new_entries_carry_macs(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    crm = open_crm_on(KEY)
    crm.customers.add(actor="ann", name="Customer 5")
    report = crm.audit.verify()
    assert report.ok and report.keyed and report.entries == 6


def test_previous_audit_keys_verify_what_they_sealed(open_crm_on):
    crm = open_crm_on(OLD_KEY)
    five_writes(crm)
    crm = open_crm_on(KEY, (OLD_KEY,))
    crm.customers.add(actor="ann", name="Customer 5")
    assert crm.audit.verify().ok
    crm = open_crm_on(KEY)
    assert not crm.audit.verify().ok


def test_anchoring_refuses_a_broken_trail(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    cut_tail(crm, 1)
    with pytest.raises(StorageError, match="not anchoring it"):
        crm.audit.anchor()


def test_concurrent_writers_keep_the_head_in_step(open_crm_on):
    import threading

    crm = open_crm_on(KEY)

    def write(n: int) -> None:
        for i in range(10):
            crm.customers.add(actor=f"rep{n}", name=f"Customer {n}-{i}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    report = crm.audit.verify()
    assert report.ok and report.entries == 40
    assert raw_head(crm).get("head")["seq"] == 40


def test_a_rolled_back_write_leaves_the_head_where_it_was(open_crm_on):
    crm = open_crm_on()
    five_writes(crm)
    c = crm.customers.find()[0]
    with pytest.raises(RuntimeError), crm.transaction("ann"):
        crm.customers.update(c.id, actor="ann", region="North")
        raise RuntimeError("boom")
    if crm.store.capabilities.transactions:
        assert raw_head(crm).get("head")["seq"] == 5
    crm.customers.update(c.id, actor="ann", region="South")
    assert crm.audit.verify().ok


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([], "is not an audit anchor"),
        ({"format": "other"}, "is not an audit anchor"),
        ({"format": "crmcore-audit-anchor/1", "seq": "5", "hash": "0" * 64}, "needs a 'seq'"),
        ({"format": "crmcore-audit-anchor/1", "seq": 5, "hash": "abc"}, "needs a 'seq'"),
    ],
)
def test_malformed_anchors_are_refused(data, fragment):
    with pytest.raises(ValidationError, match=fragment):
        Anchor.from_json(data, "anchor.json")


def test_previous_audit_keys_without_a_current_one_are_refused(make_crm, monkeypatch):
    monkeypatch.delenv("CRM_AUDIT_KEY", raising=False)
    monkeypatch.setenv("CRM_AUDIT_PREVIOUS_KEYS", OLD_KEY)
    with pytest.raises(ConfigError, match="no current one"):
        make_crm()
    monkeypatch.setenv("CRM_AUDIT_PREVIOUS_KEYS", "")
    monkeypatch.setenv("CRM_AUDIT_KEY", "c2hvcnQ=")
    with pytest.raises(ConfigError, match="audit key must be at least 32 bytes"):
        make_crm()


def test_the_head_is_recorded_once_per_transaction(open_crm_on):
    crm = open_crm_on()
    crm.customers.add(actor="ann", name="first")
    version = raw_head(crm).get("head")["version"]
    with crm.transaction("ann"):
        for i in range(10):
            crm.customers.add(actor="ann", name=f"Customer {i}")
    head = raw_head(crm).get("head")
    # one entry for the transaction, holding its ten inserts
    assert (head["seq"], head["version"]) == (2, version + 1)
    assert [len(e["ops"]) for e in entries(crm)] == [1, 10]
    assert crm.audit.verify().ok
