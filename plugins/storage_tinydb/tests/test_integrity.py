"""Integrity: the manifest, the commit record, and the corruption matrix.

Every kind of store file (a collection file, a log's file, the journal, an index cache, the lock
file, the manifest) is bit-flipped, truncated and deleted in turn; ``check()`` must then name
the file precisely, and never return counts while records are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions
from crmcore_storage_tinydb.files import JOURNAL, LOCK, MANIFEST

from crmcore.errors import StorageError
from crmcore.storage import CollectionSpec, IndexSpec

BEFORE, AFTER = 20, 5  # documents in the files, and journalled after the last compaction
KEEP = TinyStoreOptions(compact_on_close_mb=0)  # closing leaves the journal as it is


def _append(audit, n: int) -> None:
    doc = {"id": f"a{n:03d}", "seq": n, "what": "add"}
    from crmcore.jsontext import compact_encoder

    audit.append(doc, compact_encoder()(doc), sequence="seq")


def build(folder: Path) -> dict[str, int]:
    """A store whose files hold BEFORE customers and audit entries and whose journal holds
    AFTER more of each (acknowledged writes); returns the expected counts."""
    store = TinyStore(folder, KEEP)
    customers = store.ensure_collection(
        CollectionSpec("customers", indexes=[IndexSpec([("email", 1)], unique=True, sparse=True)])
    )
    audit = store.ensure_collection(
        CollectionSpec("audit", indexes=[IndexSpec([("seq", 1)], unique=True)], sequence="seq")
    )
    for i in range(BEFORE):
        customers.insert({"id": f"c{i:03d}", "name": f"Customer {i}", "email": f"c{i}@example.com"})
        _append(audit, i + 1)
    store.compact()
    for i in range(BEFORE, BEFORE + AFTER):
        customers.insert({"id": f"c{i:03d}", "name": f"Customer {i}", "email": f"c{i}@example.com"})
        _append(audit, i + 1)
    store.close()
    return {"customers": BEFORE + AFTER, "audit": BEFORE + AFTER}


def flip(path: Path, where: str) -> None:
    data = bytearray(path.read_bytes())
    if where == "last line":  # a byte inside the last complete line
        start = data.rstrip(b"\n").rfind(b"\n") + 1
        pos = start + (len(data) - start) // 2
    elif where == "start":
        pos = 3
    else:
        pos = len(data) // 3
    data[pos] ^= 0x04
    path.write_bytes(bytes(data))


def truncate(path: Path, where: str) -> None:
    data = path.read_bytes()
    if where == "last line":  # cut the last two lines off, mid-line
        cut = data.rstrip(b"\n").rfind(b"\n")
        cut = data[:cut].rfind(b"\n") - 7
    else:
        cut = len(data) // 2
    path.write_bytes(data[:cut])


KINDS = {  # file kind -> (file name, where a flip and a cut land, does damage lose records)
    "collection": ("customers.json", "middle", True),
    "log collection": ("audit.json", "middle", True),
    "journal": (JOURNAL, "last line", True),
    "index": ("customers.idx", "middle", False),
    "lock": (LOCK, "start", False),
    "manifest": (MANIFEST, "middle", False),
}
FAULTS = ("bit flip", "truncation", "deletion")
CASES = [(kind, fault) for kind in KINDS for fault in FAULTS]


def _check(folder: Path) -> tuple[dict[str, int] | None, str, list[str]]:
    store = TinyStore(folder, KEEP)
    try:
        try:
            return store.check(), "", store.check_notes
        except StorageError as exc:
            return None, str(exc), []
    finally:
        store.close()


@pytest.mark.parametrize(("kind", "fault"), CASES)
def test_every_kind_of_file_damaged_every_way_is_reported_precisely(tmp_path, kind, fault):
    folder = tmp_path / "db"
    expected = build(folder)
    name, where, loses = KINDS[kind]
    target = folder / name
    assert target.exists()
    if fault == "bit flip":
        flip(target, where)
    elif fault == "truncation":
        truncate(target, where)
    else:
        target.unlink()

    counts, error, notes = _check(folder)
    if counts is None:
        assert name in error, error  # names the damaged file ...
        assert "damaged" in error and "crm check --repair" in error  # ... and the remedy
        if kind == "journal":
            assert "acknowledged write" in error, error
        if fault == "deletion" and kind in ("collection", "log collection"):
            assert f"records {BEFORE} document(s)" in error, error
    else:
        # Only a cache or the lock file's record may go without an error, and then the
        # records are all there and a note names the file.
        assert not loses, (kind, fault, counts)
        assert kind in ("index", "lock"), (kind, fault)
        assert counts == expected
        assert any(name in note for note in notes), notes

    if counts is None:  # the repair then gives a store that checks sound
        store = TinyStore(folder, KEEP)
        try:
            repaired = store.check(repair=True)
            assert store.check() == repaired
            if not loses:
                assert repaired == expected
        finally:
            store.close()


def test_the_matrix_covers_every_file_kind_and_fault():
    assert len(CASES) == 18


def test_a_deleted_collection_file_fails_its_reads_instead_of_looking_empty(tmp_path):
    folder = tmp_path / "db"
    build(folder)
    (folder / "audit.json").unlink()
    store = TinyStore(folder, KEEP)
    try:
        with pytest.raises(StorageError, match=r"audit\.json is damaged: it is missing"):
            store.collection("audit").count()
        with pytest.raises(StorageError, match=r"audit\.json"):
            _append(store.collection("audit"), BEFORE + AFTER + 1)  # no new chain from 1
        assert store.collection("customers").count() == BEFORE + AFTER
    finally:
        store.close()


def test_a_collection_file_replaced_by_an_older_copy_is_damage(tmp_path):
    folder = tmp_path / "db"
    build(folder)
    old = (folder / "customers.json").read_bytes()
    store = TinyStore(folder)
    store.collection("customers").insert({"id": "c900", "email": "new@example.com"})
    store.compact()
    store.close()
    (folder / "customers.json").write_bytes(old)
    counts, error, _notes = _check(folder)
    assert counts is None
    assert "customers.json is damaged: it is not the file the store's manifest records" in error


def test_a_torn_unacknowledged_write_is_still_not_damage(tmp_path):
    folder = tmp_path / "db"
    expected = build(folder)
    with open(folder / JOURNAL, "ab") as handle:
        handle.write(b'0badc0de ["customers"]\t[["p","customers",{"id":')  # no newline
    counts, error, _notes = _check(folder)
    assert counts == expected, error


def test_a_cut_on_a_line_boundary_is_caught_by_the_commit_record(tmp_path):
    folder = tmp_path / "db"
    build(folder)
    journal = folder / JOURNAL
    data = journal.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n") + 1  # drop exactly the last line
    journal.write_bytes(data[:cut])
    counts, error, _notes = _check(folder)
    assert counts is None
    assert "1 acknowledged write(s)" in error and "lost" in error


def test_a_store_from_before_the_manifest_opens_and_gets_one(tmp_path):
    folder = tmp_path / "db"
    expected = build(folder)
    (folder / MANIFEST).unlink()
    journal = folder / JOURNAL
    lines = journal.read_bytes().split(b"\n", 1)
    from crmcore_storage_tinydb import files

    header = files.read_header(os.open(journal, os.O_RDONLY), journal)
    old = files.journal_line(
        files.encode_json(
            {
                files.HEADER_KEY: 2,
                "generation": header.generation,
                "prev_generation": header.prev_generation,
                "prev_end": header.prev_end,
            }
        )
    )
    journal.write_bytes(old + lines[1])
    (folder / LOCK).unlink()
    counts, error, _notes = _check(folder)
    assert counts == expected, error
    store = TinyStore(folder)
    store.compact()
    store.close()
    assert (folder / MANIFEST).exists()
    assert _check(folder)[0] == expected


def test_compact_on_close_0_means_never(tmp_path):
    folder = tmp_path / "db"
    store = TinyStore(folder, KEEP)
    store.collection("things").insert_many({"id": f"t{i}"} for i in range(50))
    store.close()  # the journal is all there is: before, a close folded it anyway
    assert not (folder / "things.json").exists()
    store = TinyStore(folder, KEEP)
    assert store.collection("things").count() == 50
    store.close()


def test_a_symlinked_lock_file_is_refused_not_followed(tmp_path):
    folder = tmp_path / "db"
    TinyStore(folder).close()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    (folder / LOCK).unlink()
    (folder / LOCK).symlink_to(elsewhere)
    with pytest.raises(StorageError, match="symbolic link"):
        TinyStore(folder)
    assert elsewhere.read_text() == "keep me"


def test_a_repair_report_counts_documents_lost_not_lines(tmp_path):
    folder = tmp_path / "db"
    build(folder)
    snapshot = folder / "customers.json"
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) // 2])  # half the documents, and the record, gone
    store = TinyStore(folder, KEEP)
    try:
        counts = store.check(repair=True)
    finally:
        store.close()
    report = next((folder / "recovered").rglob("report.txt")).read_text()
    kept = counts["customers"] - AFTER  # the journal's writes come back whole
    assert f"salvaged {kept} document(s), {BEFORE - kept} document(s) lost" in report, report
    assert "line(s)" not in report.split("salvaged")[1].split("\n")[0]


def test_check_reports_the_journal_s_lost_writes_through_the_cli(tmp_path, monkeypatch, capsys):
    from crmcore.cli.main import run
    from crmcore.testing.cli import one_line_error

    folder = tmp_path / "db"
    build(folder)
    truncate(folder / JOURNAL, "last line")
    (tmp_path / "crm.toml").write_text(
        f'[storage]\nbackend = "tinydb"\nlocation = "{folder}"\n'
        "[storage.options]\ncompact_on_close_mb = 0\n"
    )
    monkeypatch.setenv("CRMCORE_PLUGINS", "storage_tinydb")
    monkeypatch.chdir(tmp_path)
    assert run(["check"]) == 6
    out = capsys.readouterr()
    assert "sound" not in out.out
    line = one_line_error(out.err)
    assert "journal.log is damaged" in line and "3 acknowledged write(s)" in line, line
