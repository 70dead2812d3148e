"""Logs in the embedded store: ``append`` and ``last`` on a log that is not loaded.

A reopened store answers ``last`` and appends from the snapshot's ``_crmcore`` record and the
journal, without loading the log's documents; compaction streams them; anything but appends
since the snapshot falls back to loading. Whatever the path, the log stays whole: every entry,
numbered 1, 2, 3… without a gap.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions, files
from tinydb import TinyDB

from crmcore.errors import DuplicateKeyError, StorageError
from crmcore.storage import IndexSpec
from crmcore.storage.base import StoreLayer
from crmcore.testing.factories import make_test_crm

SEQ = IndexSpec((("seq", 1),), unique=True)


def entry(n: int, **extra: object) -> dict:
    return {"id": f"e{n:04d}", "seq": n, "body": f"entry {n}", **extra}


def stored(n: int, **extra: object) -> dict:
    return {**entry(n, **extra), "version": 1}


def append(log, doc: dict) -> None:
    log.append(dict(doc), json.dumps(doc, separators=(",", ":")), sequence="seq")


def open_log(store: TinyStore):
    log = store.collection("log")
    log.ensure_index(SEQ)
    return log


def make_log(path: Path, count: int) -> None:
    """A store whose log holds entries 1..count, closed (so folded into its snapshot)."""
    store = TinyStore(path)
    log = open_log(store)
    with store.transaction():
        for n in range(1, count + 1):
            append(log, entry(n))
    store.close()


@contextlib.contextmanager
def a_log(path: Path, count: int = 3) -> Iterator[tuple[TinyStore, Any]]:
    """``make_log(path, count)``, then the store reopened with its log (closed afterwards)."""
    make_log(path, count)
    store = TinyStore(path)
    try:
        yield store, open_log(store)
    finally:
        store.close()


def loaded(store: TinyStore) -> bool:
    return store._handle("log")._table is not None


def whole_log(path: Path) -> list[dict]:
    """Reopen the store and check the log is whole: numbered 1..n, ``last`` the n-th."""
    store = TinyStore(path)
    try:
        log = open_log(store)
        last = log.last("seq")
        docs = log.find(sort=[("seq", 1)])
        assert [d["seq"] for d in docs] == list(range(1, len(docs) + 1))
        assert last == (docs[-1] if docs else None)
        assert store.check()["log"] == len(docs)
        return docs
    finally:
        store.close()


def snapshot(path: Path) -> tuple[list[dict], dict]:
    """The log's documents (by number) and ``_crmcore`` record, as stock TinyDB reads them."""
    db = TinyDB(path / "log.json", access_mode="r")
    try:
        docs = sorted((dict(d) for d in db.all()), key=lambda d: d["seq"])
        records = [dict(r) for r in db.table("_crmcore").all()]
    finally:
        db.close()
    assert len(records) == 1
    return docs, records[0]


def without_version(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "version"}


# -- not loading -----------------------------------------------------------------------------


def test_a_reopened_log_answers_last_and_appends_without_loading(store_dir):
    with a_log(store_dir) as (store, log):
        assert log.last("seq") == stored(3)
        append(log, entry(4))
        assert log.last("seq") == stored(4)
        append(log, entry(5))
        assert log.last("seq") == stored(5)
        with pytest.raises(DuplicateKeyError):
            append(log, entry(5, id="again"))
        assert not loaded(store)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 6)]


def test_several_appends_in_one_transaction_without_loading(store_dir):
    with a_log(store_dir) as (store, log):
        with store.transaction():
            for n in (4, 5, 6):
                append(log, entry(n))
                assert log.last("seq") == stored(n)
            with pytest.raises(DuplicateKeyError):
                append(log, entry(5, id="again"))
        assert log.last("seq") == stored(6)
        assert not loaded(store)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 7)]


def test_two_stores_on_one_folder_append_to_one_log(store_dir):
    make_log(store_dir, 3)
    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        a, b = open_log(one), open_log(two)
        append(a, entry(4))
        with pytest.raises(DuplicateKeyError):
            append(b, entry(4, id="b4"))  # b cached nothing: it must read a's append
        assert b.last("seq") == stored(4)
        append(b, entry(5))
        assert a.last("seq") == stored(5)
        with pytest.raises(DuplicateKeyError):
            append(a, entry(5, id="a5"))
    finally:
        one.close()
        two.close()
    assert whole_log(store_dir) == [stored(n) for n in range(1, 6)]


def test_compacting_an_unloaded_log_streams_it_into_a_stock_tinydb_file(store_dir):
    with a_log(store_dir) as (store, log):
        append(log, entry(4))
        append(log, entry(5))
        store.compact()
        assert not loaded(store)
        docs, record = snapshot(store_dir)
        assert docs == [stored(n) for n in range(1, 6)]
        assert record["sequence"] == "seq"
        assert without_version(record["last"]) == entry(5)
        assert log.last("seq") == stored(5)
        append(log, entry(6))  # from the new snapshot's record
        assert log.last("seq") == stored(6)
        assert not loaded(store)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 7)]


# -- falling back to loading -----------------------------------------------------------------


def touch(log, how: str) -> tuple[list[dict], int]:
    """Change the log of entries 1..count other than by appending; return the documents it
    then holds and the following number."""
    docs = [stored(n) for n in range(1, log.count() + 1)]
    if how == "update":
        docs[1] = {**log.update("e0002", {"body": "edited"}, expected_version=1)}
    elif how == "insert":
        log.insert(entry(len(docs) + 1))
        docs.append(stored(len(docs) + 1))
    else:  # delete the last entry: its number is free again
        log.delete(docs.pop()["id"])
    return docs, len(docs) + 1


@pytest.mark.parametrize("how", ["update", "insert", "delete"])
def test_an_unloaded_append_after_another_store_touched_the_log(store_dir, how):
    make_log(store_dir, 3)
    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        mine = open_log(one)
        docs, following = touch(open_log(two), how)
        assert mine.last("seq") == docs[-1]
        with pytest.raises(DuplicateKeyError):
            append(mine, entry(following - 1, id="taken"))
        append(mine, entry(following, id="new"))
        assert two.collection("log").last("seq") == stored(following, id="new")
        one.compact()
        assert mine.last("seq") == stored(following, id="new")
    finally:
        one.close()
        two.close()
    assert whole_log(store_dir) == [*docs, stored(following, id="new")]


@pytest.mark.parametrize("how", ["update", "insert", "delete"])
def test_an_unloaded_append_after_a_reopen_with_the_journal_kept(store_dir, how):
    make_log(store_dir, 100)
    before, _record = snapshot(store_dir)
    store = TinyStore(store_dir, TinyStoreOptions(compact_on_close_mb=0))
    docs, following = touch(open_log(store), how)
    store.close()
    assert snapshot(store_dir)[0] == before  # the journal keeps the change
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        assert log.last("seq") == docs[-1]
        append(log, entry(following, id="new"))
        assert log.last("seq") == stored(following, id="new")
        store.compact()
        append(log, entry(following + 1))
        assert log.last("seq") == stored(following + 1)
    finally:
        store.close()
    assert whole_log(store_dir) == [*docs, stored(following, id="new"), stored(following + 1)]


# -- transactions while unloaded ---------------------------------------------------------------


def test_a_rolled_back_unloaded_append_leaves_nothing(store_dir):
    with a_log(store_dir) as (store, log):
        with pytest.raises(RuntimeError), store.transaction():
            append(log, entry(4))
            assert log.last("seq") == stored(4)
            raise RuntimeError("boom")
        assert not loaded(store)
        assert log.last("seq") == stored(3)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 4)]


def test_a_read_that_loads_the_log_mid_transaction_sees_the_unloaded_append(store_dir):
    with a_log(store_dir) as (store, log):
        with store.transaction():
            append(log, entry(4))
            assert log.find(sort=[("seq", 1)]) == [stored(n) for n in range(1, 5)]
            assert log.last("seq") == stored(4)
            append(log, entry(5))  # through the table now
        assert log.last("seq") == stored(5)
        assert log.count() == 5
    assert whole_log(store_dir) == [stored(n) for n in range(1, 6)]


def test_a_load_mid_transaction_then_a_rollback_forgets_the_append(store_dir):
    with a_log(store_dir) as (store, log):
        with pytest.raises(RuntimeError), store.transaction():
            append(log, entry(4))
            assert [d["seq"] for d in log.find()] == [1, 2, 3, 4]
            raise RuntimeError("boom")
        assert log.last("seq") == stored(3)
        assert log.find(sort=[("seq", 1)]) == [stored(n) for n in range(1, 4)]
        append(log, entry(4, id="again"))  # the number is free
        assert log.last("seq") == stored(4, id="again")
    assert whole_log(store_dir) == [*(stored(n) for n in range(1, 4)), stored(4, id="again")]


# -- a killed writer ---------------------------------------------------------------------------

APPENDER = """
from crmcore.storage import IndexSpec
store = TinyStore(sys.argv[1])
log = store.collection("log")
log.ensure_index(IndexSpec((("seq", 1),), unique=True))
last = log.last("seq")
n = 0 if last is None else last["seq"]
while True:
    n += 1
    doc = {"id": f"k{n:06d}", "seq": n, "body": "x" * (n % 50)}
    log.append(doc, json.dumps(doc, separators=(",", ":")), sequence="seq")
    say("ack", n)
    if n % 40 == 0:
        store.compact()
"""


def test_a_killed_appender_loses_no_acknowledged_entry_and_leaves_no_gap(store_dir, child):
    acknowledged = 0
    for heard in (5, 37, 61, 90):  # kills before, around and after compactions
        proc = child(APPENDER, str(store_dir))
        while heard:
            line = proc.stdout.readline()
            assert line.endswith("\n"), f"the appender died: {proc.stderr.read()}"
            if line.startswith("ack "):  # (the store may log other lines)
                acknowledged = int(line.split()[1])
                heard -= 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for line in proc.stdout.read().splitlines(keepends=True):
            if line.startswith("ack ") and line.endswith("\n"):  # the kill may cut one short
                acknowledged = int(line.split()[1])
        docs = whole_log(store_dir)
        assert len(docs) >= acknowledged
    assert acknowledged >= 5 + 37 + 61 + 90  # each run starts after the last one's entries


# -- through the core --------------------------------------------------------------------------


def audit_handle(crm):
    layer = crm.store
    while isinstance(layer, StoreLayer):
        layer = layer.inner
    assert isinstance(layer, TinyStore)
    return layer._handle("audit")


def test_a_reopened_crm_adds_a_customer_without_loading_the_audit_trail(store_dir, clock):
    storage = {"backend": "tinydb", "location": str(store_dir)}
    crm = make_test_crm(["storage_tinydb"], clock=clock, storage=storage)
    try:
        crm.customers.add(actor="ann", name="Person 0")
        per_add = crm.audit.verify().entries
        for i in range(1, 5):
            crm.customers.add(actor="ann", name=f"Person {i}")
        assert crm.audit.verify().entries == 5 * per_add
    finally:
        crm.close()
    crm = make_test_crm(["storage_tinydb"], clock=clock, storage=storage)
    try:
        crm.customers.add(actor="ann", name="Person 5")
        assert audit_handle(crm)._table is None
        report = crm.audit.verify()
        assert report.ok, report.problem
        assert report.entries == 6 * per_add
    finally:
        crm.close()
    crm = make_test_crm(["storage_tinydb"], clock=clock, storage=storage)
    try:
        report = crm.audit.verify()
        assert report.ok, report.problem
        assert report.entries == 6 * per_add
        assert crm.customers.count() == 6
    finally:
        crm.close()


# -- journals of format 1 ----------------------------------------------------------------------


def journal_header(path: Path) -> files.Header:
    journal = path / files.JOURNAL
    fd = os.open(journal, os.O_RDONLY)
    try:
        return files.read_header(fd, journal)
    finally:
        os.close(fd)


def journal_ops(path: Path) -> list[tuple[str, str]]:
    """The journal's operations on the log after its header: (kind, id) pairs."""
    journal = path / files.JOURNAL
    fd = os.open(journal, os.O_RDONLY)
    try:
        header = files.read_header(fd, journal)
        records = list(files.JournalReader(fd, header.end, os.fstat(fd).st_size))
    finally:
        os.close(fd)
    return [
        (op[0], op[2]["id"])
        for record in records
        for op in record.ops()
        if op[1] == "log" and op[0] in ("p", "a")
    ]


def set_journal_format(path: Path, format: int) -> files.Header:
    """Rewrite the header of the (empty, folded at close) journal as format ``format``."""
    header = journal_header(path)
    assert (path / files.JOURNAL).stat().st_size == header.end  # nothing after the header
    line = files.journal_line(
        files.encode_json(
            {
                files.HEADER_KEY: format,
                "generation": header.generation,
                "prev_generation": header.prev_generation,
                "prev_end": header.prev_end,
            }
        )
    )
    (path / files.JOURNAL).write_bytes(line)
    return header


@pytest.mark.parametrize("format", [1, files.JOURNAL_FORMAT])
def test_a_format_1_journal_gets_plain_puts_and_is_replaced_at_close(store_dir, format):
    make_log(store_dir, 100)
    before = set_journal_format(store_dir, format)
    # A budget of 0 folds nothing at close, whatever the format; a format 1 journal is
    # replaced at the first close that may compact.
    store = TinyStore(store_dir, TinyStoreOptions(compact_on_close_mb=0 if format == 2 else 64))
    try:
        assert store.journal.format == format
        log = open_log(store)
        append(log, entry(101))  # before any read: the append itself decides how to write
        append(log, entry(102))
        with pytest.raises(DuplicateKeyError):
            append(log, entry(102, id="again"))
        assert log.last("seq") == stored(102)
        if format == 1:  # a format 1 reader would skip "a": only plain puts, so it loads
            assert loaded(store)
            assert journal_ops(store_dir) == [("p", "e0101"), ("p", "e0102")]
        else:
            assert not loaded(store)
            assert journal_ops(store_dir) == [("a", "e0101"), ("a", "e0102")]
        assert log.find(sort=[("seq", 1)]) == [stored(n) for n in range(1, 103)]
    finally:
        store.close()
    after = journal_header(store_dir)
    assert after.format == files.JOURNAL_FORMAT
    if format == 1:  # replaced
        assert after.generation == before.generation + 1
        assert journal_ops(store_dir) == []
        docs, record = snapshot(store_dir)
        assert docs == [stored(n) for n in range(1, 103)]
        assert record["sequence"] == "seq"
        assert without_version(record["last"]) == entry(102)
    else:  # the budget kept the journal
        assert after.generation == before.generation
        assert len(journal_ops(store_dir)) == 2
        assert len(snapshot(store_dir)[0]) == 100
    store = TinyStore(store_dir)  # the next process
    try:
        log = open_log(store)
        assert log.last("seq") == stored(102)
        append(log, entry(103))
        assert log.last("seq") == stored(103)
        assert not loaded(store)
        assert journal_ops(store_dir)[-1] == ("a", "e0103")
    finally:
        store.close()
    assert whole_log(store_dir) == [stored(n) for n in range(1, 104)]


def test_a_journal_of_an_unknown_format_is_refused(store_dir):
    make_log(store_dir, 3)
    journal = store_dir / files.JOURNAL
    original = journal.read_bytes()
    set_journal_format(store_dir, 99)
    refused = journal.read_bytes()
    with pytest.raises(StorageError) as caught:
        TinyStore(store_dir)
    message = str(caught.value)
    assert str(store_dir / files.JOURNAL) in message
    assert "journal format 99" in message
    assert journal.read_bytes() == refused  # not touched
    journal.write_bytes(original)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 4)]


# -- snapshots without the log's record ------------------------------------------------------


def make_plain_log(path: Path, count: int) -> None:
    """As ``make_log``, but entries written by plain inserts (as versions before ``append``
    did): the snapshot's record names no sequence field."""
    store = TinyStore(path)
    log = open_log(store)
    with store.transaction():
        for n in range(1, count + 1):
            log.insert(entry(n))
    store.close()
    record = snapshot(path)[1]
    assert "sequence" not in record
    assert "last" not in record


def test_appends_after_a_snapshot_without_the_record_start_the_tail(store_dir):
    make_plain_log(store_dir, 100)
    store = TinyStore(store_dir, TinyStoreOptions(compact_on_close_mb=0))
    try:
        log = open_log(store)
        append(log, entry(101))  # no record, no append since: loads
        append(log, entry(102))
    finally:
        store.close()
    docs, record = snapshot(store_dir)
    assert len(docs) == 100 and "sequence" not in record  # the journal keeps the appends
    assert journal_ops(store_dir) == [("a", "e0101"), ("a", "e0102")]
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        assert log.last("seq") == stored(102)
        with pytest.raises(DuplicateKeyError):
            append(log, entry(102, id="again"))
        append(log, entry(103))
        assert log.last("seq") == stored(103)
        assert not loaded(store)
        store.compact()  # streamed: and now the snapshot has the record
        assert not loaded(store)
        docs, record = snapshot(store_dir)
        assert docs == [stored(n) for n in range(1, 104)]
        assert record["sequence"] == "seq"
        assert without_version(record["last"]) == entry(103)
    finally:
        store.close()
    assert whole_log(store_dir) == [stored(n) for n in range(1, 104)]


def fold_by_a_stranger(path: Path) -> None:
    """Entries 1..3 by plain inserts and 4 appended, folded by another process that never
    appended (and found no record in the old snapshot): the new snapshot holds entries 1..4
    and still no record."""
    make_plain_log(path, 3)
    one, two = TinyStore(path), TinyStore(path)
    try:
        append(open_log(one), entry(4))
        two.compact()
    finally:
        one.close()
        two.close()


@pytest.mark.parametrize("written_by", ["inserts", "stranger"])
def test_a_snapshot_without_the_record_and_no_append_since_falls_back_to_loading(
    store_dir, written_by
):
    if written_by == "inserts":
        make_plain_log(store_dir, 4)
    else:
        fold_by_a_stranger(store_dir)
    docs, record = snapshot(store_dir)
    assert docs == [stored(n) for n in range(1, 5)] and "sequence" not in record
    assert journal_ops(store_dir) == []
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        assert log.last("seq") == stored(4)
        with pytest.raises(DuplicateKeyError):
            append(log, entry(4, id="again"))
        append(log, entry(5))
        assert log.last("seq") == stored(5)
    finally:
        store.close()
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        append(log, entry(6))  # with no last() before it
        assert log.last("seq") == stored(6)
    finally:
        store.close()
    assert whole_log(store_dir) == [stored(n) for n in range(1, 7)]


# -- a last document too long for the record -------------------------------------------------


@pytest.mark.parametrize("how", ["streamed", "loaded"])
def test_a_last_document_too_long_for_the_record_falls_back_to_loading(store_dir, how):
    make_log(store_dir, 3)
    long = entry(4, body="x" * files.LAST_LIMIT)
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        if how == "loaded":
            log.find()
        append(log, long)
        store.compact()
        assert loaded(store) == (how == "loaded")
    finally:
        store.close()
    docs, record = snapshot(store_dir)
    assert docs == [*(stored(n) for n in range(1, 4)), {**long, "version": 1}]
    assert "sequence" not in record
    assert "last" not in record
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        with pytest.raises(DuplicateKeyError):
            append(log, entry(4, id="again"))
        append(log, entry(5))
        assert loaded(store)  # no record to start from
        assert log.last("seq") == stored(5)
    finally:
        store.close()
    assert whole_log(store_dir) == [
        *(stored(n) for n in range(1, 4)),
        {**long, "version": 1},
        stored(5),
    ]


# -- a loaded log: kept for a reader, let go by a writer -------------------------------------


def test_a_log_loaded_by_a_read_stays_loaded_across_appends(store_dir):
    with a_log(store_dir) as (store, log):
        assert not loaded(store)
        assert len(log.find()) == 3
        assert loaded(store)
        append(log, entry(4))
        assert loaded(store)
        assert log.find(sort=[("seq", 1)]) == [stored(n) for n in range(1, 5)]
        append(log, entry(5))
        assert loaded(store)
        assert log.find({"seq": 5}) == [stored(5)]
        assert log.last("seq") == stored(5)
    assert whole_log(store_dir) == [stored(n) for n in range(1, 6)]


def test_a_log_loaded_to_declare_an_index_is_let_go_at_the_next_append(store_dir):
    make_log(store_dir, 3)
    by_body = IndexSpec((("body", 1),))
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        log.ensure_index(by_body)  # a write: loads the log
        assert loaded(store)
        append(log, entry(4))
        assert not loaded(store)
        assert log.last("seq") == stored(4)
        append(log, entry(5))
        assert not loaded(store)
        assert log.find(sort=[("seq", 1)]) == [stored(n) for n in range(1, 6)]
        assert {spec.name for spec in log.indexes()} >= {SEQ.name, by_body.name}
        assert log.find({"body": "entry 4"}) == [stored(4)]
    finally:
        store.close()
    assert whole_log(store_dir) == [stored(n) for n in range(1, 6)]
    store = TinyStore(store_dir)
    try:
        assert by_body.name in {spec.name for spec in store.collection("log").indexes()}
    finally:
        store.close()


def test_a_log_declared_with_its_sequence_is_recorded_by_a_compaction_that_never_appended(tmp_path):
    from crmcore.storage import CollectionSpec

    spec = CollectionSpec("log", (SEQ,), sequence="seq")
    path = tmp_path / "db"
    store = TinyStore(path)
    log = store.ensure_collection(spec)
    log.insert_many([entry(n) for n in range(1, 4)])  # plain inserts: no "a" in the journal
    store.compact()
    store.close()
    assert snapshot(path)[1]["sequence"] == "seq"
    assert snapshot(path)[1]["last"] == stored(3)

    store = TinyStore(path)
    try:
        log = store.ensure_collection(spec)
        append(log, entry(4))
        assert not loaded(store)
        assert log.last("seq") == stored(4)
    finally:
        store.close()
    assert len(whole_log(path)) == 4


def test_a_log_whose_tail_cannot_be_followed_is_not_read_again_at_every_append(
    store_dir, monkeypatch
):
    from crmcore_storage_tinydb import collection

    make_log(store_dir, 100)  # large enough that closing keeps the update in the journal
    keep = TinyStoreOptions(compact_on_close_mb=0)
    store = TinyStore(store_dir, keep)
    open_log(store).update("e0001", {"body": "changed"}, expected_version=1)  # not an append
    store.close()
    calls = []
    real = collection.read_tail
    monkeypatch.setattr(collection, "read_tail", lambda *a: calls.append(1) or real(*a))
    store = TinyStore(store_dir, keep)
    try:
        log = open_log(store)
        assert journal_ops(store_dir)
        for n in range(101, 111):
            append(log, entry(n))
        assert loaded(store)
        assert len(calls) <= 2  # the first append's attempts, not one per append
    finally:
        store.close()
    assert len(whole_log(store_dir)) == 110


def test_a_last_document_longer_than_the_read_window_keeps_the_log_followable(store_dir):
    """One audit entry holds a whole transaction (a history import's batch): a last document
    of a few hundred kilobytes still goes in the snapshot record, and a process that only
    appends does not load the log (it did when the record's limit was 16 KiB)."""
    make_log(store_dir, 3)
    big = entry(4, body="x" * 300_000)
    store = TinyStore(store_dir)
    try:
        append(open_log(store), big)
        store.compact()
    finally:
        store.close()
    _docs, record = snapshot(store_dir)
    assert record["sequence"] == "seq" and record["last"]["seq"] == 4
    store = TinyStore(store_dir)
    try:
        log = open_log(store)
        assert log.last("seq") == {**big, "version": 1}
        append(log, entry(5))
        assert not loaded(store)
    finally:
        store.close()
