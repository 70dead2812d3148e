"""Damaged files: a clear error naming the file and the repair command; repair salvages."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb.files import JOURNAL
from tinydb import TinyDB

from crmcore.errors import DuplicateKeyError, StorageError
from crmcore.storage import IndexSpec


def _make(store_dir: Path, n: int = 20, *, compact: bool = True) -> None:
    store = TinyStore(store_dir)
    things = store.collection("things")
    things.ensure_index(IndexSpec([("email", 1)], unique=True, sparse=True))
    things.insert_many({"id": f"t{i:02d}", "n": i, "email": f"p{i}@example.com"} for i in range(n))
    store.collection("other").insert({"id": "o1"})
    if compact:
        store.compact()
    store._lock.close()  # leave the files as they are, as a crash would


def _edit_line(path: Path, number: int, change) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number] = change(lines[number])
    path.write_bytes(b"\n".join(lines))


def _assert_names_file_and_repair(exc: BaseException, path: Path) -> None:
    message = str(exc)
    assert str(path) in message
    assert "crm check --repair" in message


def test_a_garbled_document_line_is_reported_then_salvaged(store_dir):
    _make(store_dir)
    snapshot = store_dir / "things.json"
    _edit_line(snapshot, 5, lambda line: line.replace(b'"n":', b'"n";'))  # no longer JSON
    store = TinyStore(store_dir)
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").count()
        _assert_names_file_and_repair(caught.value, snapshot)
        with pytest.raises(StorageError) as caught:
            store.check()
        _assert_names_file_and_repair(caught.value, snapshot)
        assert store.collection("other").count() == 1  # other collections still work

        counts = store.check(repair=True)
        assert counts == {"things": 19, "other": 1}
        things = store.collection("things")
        assert things.count() == 19
        with pytest.raises(DuplicateKeyError):
            things.insert({"id": "dup", "email": "p1@example.com"})  # index survived
        assert store.check() == counts
        kept = next((store_dir / "recovered").glob("repair-*"))
        assert (kept / "things.json").read_bytes().count(b'"n";') == 1  # the original, kept
        report = (kept / "report.txt").read_text()
        assert "things.json" in report and "salvaged 19" in report
        for path in [kept, kept.parent, *kept.iterdir()]:  # private, like the store
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600)
    finally:
        store.close()
    db = TinyDB(snapshot, access_mode="r")
    assert len(db.all()) == 19
    db.close()


def test_a_truncated_snapshot_keeps_its_head_and_the_journals_writes(store_dir):
    _make(store_dir)
    store = TinyStore(store_dir)
    store.collection("things").insert({"id": "after", "n": 99})  # lives in the journal
    store._lock.close()
    snapshot = store_dir / "things.json"
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) // 2])
    store = TinyStore(store_dir)
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").find()
        _assert_names_file_and_repair(caught.value, snapshot)
        counts = store.check(repair=True)
        ids = {d["id"] for d in store.collection("things").find()}
        assert "after" in ids and "t00" in ids and len(ids) == counts["things"] < 21
    finally:
        store.close()


def test_a_damaged_journal_line_in_the_middle_is_reported_then_skipped(store_dir):
    _make(store_dir, compact=False)
    store = TinyStore(store_dir)
    things = store.collection("things")
    for i in range(3):
        things.insert({"id": f"late{i}"})
    store._lock.close()
    journal = store_dir / JOURNAL
    lines = journal.read_bytes().split(b"\n")
    target = next(i for i, line in enumerate(lines) if b'"late1"' in line)
    _edit_line(journal, target, lambda line: line.replace(b"late1", b"LATE1"))
    store = TinyStore(store_dir)  # opens, so that the repair can run
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").count()
        _assert_names_file_and_repair(caught.value, journal)
        with pytest.raises(StorageError):
            store.collection("things").insert({"id": "refused"})
        counts = store.check(repair=True)
        ids = {d["id"] for d in store.collection("things").find()}
        assert {"late0", "late2", "t00"} <= ids and "late1" not in ids
        assert counts["things"] == 22
        kept = next((store_dir / "recovered").glob("repair-*"))
        assert "1 damaged line" in (kept / "report.txt").read_text()
        store.collection("things").insert({"id": "works"})
    finally:
        store.close()


def test_a_snapshot_cut_at_its_end_names_the_file(store_dir):
    _make(store_dir)
    snapshot = store_dir / "things.json"
    snapshot.write_bytes(snapshot.read_bytes()[:-30])
    store = TinyStore(store_dir)
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").get("t01")
        _assert_names_file_and_repair(caught.value, snapshot)
        assert store.check(repair=True)["things"] == 20
        assert store.collection("things").get("t01")["n"] == 1
    finally:
        store.close()


def test_a_missing_journal_is_damage_not_an_empty_store(store_dir):
    _make(store_dir)
    (store_dir / JOURNAL).unlink()
    store = TinyStore(store_dir)
    try:
        with pytest.raises(StorageError) as caught:
            store.collection("things").count()
        _assert_names_file_and_repair(caught.value, store_dir / JOURNAL)
        assert store.check(repair=True) == {"things": 20, "other": 1}
    finally:
        store.close()


def test_a_damaged_store_still_opens_a_crm_so_that_repair_can_run(store_dir, make_crm):
    crm = make_crm(["storage_tinydb"], storage={"backend": "tinydb", "location": str(store_dir)})
    crm.customers.add(actor="t", name="Ann Example")
    crm.close()
    snapshot = store_dir / "customers.json"
    _edit_line(snapshot, 1, lambda line: line[:-5])
    crm = make_crm(["storage_tinydb"], storage={"backend": "tinydb", "location": str(store_dir)})
    with pytest.raises(StorageError) as caught:
        crm.customers.count()
    _assert_names_file_and_repair(caught.value, snapshot)
    counts = crm.store.check(repair=True)
    assert counts["customers"] == 0  # the one line was the damaged one
    assert crm.customers.count() == 0
    crm.customers.add(actor="t", name="Bo Example")
    assert crm.customers.count() == 1


def test_the_journal_is_read_in_small_windows_all_the_same(store_dir, monkeypatch):
    from crmcore_storage_tinydb import files

    monkeypatch.setattr(files, "READ_CHUNK", 64)  # every line is longer than the window
    store = TinyStore(store_dir)
    things = store.collection("things")
    with store.transaction():
        for i in range(30):
            things.insert({"id": f"big{i}", "pad": "x" * 300})
    for i in range(5):
        things.insert({"id": f"small{i}"})
    store._lock.close()
    again = TinyStore(store_dir)
    assert again.collection("things").count() == 35
    again._lock.close()
    journal = store_dir / JOURNAL
    lines = journal.read_bytes().split(b"\n")
    target = next(i for i, line in enumerate(lines) if b'"small2"' in line)
    _edit_line(journal, target, lambda line: line.replace(b"small2", b"SMALL2"))
    damaged = TinyStore(store_dir)
    try:
        with pytest.raises(StorageError) as caught:
            damaged.collection("things").count()
        _assert_names_file_and_repair(caught.value, journal)
        assert damaged.check(repair=True) == {"things": 34}
    finally:
        damaged.close()
