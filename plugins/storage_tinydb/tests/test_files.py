"""What is on disk: private modes, stock-TinyDB-readable files, torn tails, backups."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions, to_tinydb_query
from crmcore_storage_tinydb.files import JOURNAL, snapshot_file
from tinydb import TinyDB

from crmcore.errors import ValidationError
from crmcore.storage import IndexSpec


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _fill(store: TinyStore, n: int = 30) -> None:
    people = store.collection("people")
    people.ensure_index(IndexSpec([("group", 1), ("n", 1)]))
    people.insert_many(
        {
            "id": f"p{i:03d}",
            "n": i,
            "group": ["a", "b", "c"][i % 3],
            "tags": ["vip"] if i % 4 == 0 else [],
            "score": i / 4,
            "name": f"Person {i} 张",
        }
        for i in range(n)
    )
    people.update("p001", {"n": 100}, expected_version=1)
    people.delete("p002")
    store.collection("notes").insert({"id": "n1", "about": "p000"})


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_files_are_private_whatever_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        location = tmp_path / "deep" / "db"
        store = TinyStore(location)
        _fill(store)
        store.backup(str(tmp_path / "copy"))
        store.close()
    finally:
        os.umask(old)
    assert _mode(location) == 0o700
    assert _mode(tmp_path / "copy") == 0o700
    for folder in (location, tmp_path / "copy"):
        names = sorted(p.name for p in folder.iterdir())
        assert "people.json" in names and JOURNAL in names
        for path in folder.iterdir():
            assert _mode(path) == (0o700 if path.is_dir() else 0o600), path


def test_after_a_clean_close_stock_tinydb_reads_every_collection(store_dir):
    store = TinyStore(store_dir)
    _fill(store)
    expected = {
        name: sorted(store.collection(name).find(), key=lambda d: d["id"])
        for name in ("people", "notes")
    }
    store.close()
    for name, docs in expected.items():
        db = TinyDB(store_dir / snapshot_file(name), access_mode="r")
        try:
            assert sorted(map(dict, db.all()), key=lambda d: d["id"]) == docs
        finally:
            db.close()


FILTERS = [
    {},
    {"group": "a"},
    {"n": {"$gte": 10, "$lt": 20}},
    {"tags": "vip"},
    {"group": {"$in": ["a", "c"]}, "n": {"$gt": 5}},
    {"missing": None},
    {"missing": {"$exists": False}},
    {"score": {"$ne": 2.5}},
    {"name": {"$gt": "Person 2"}},
    {"$or": [{"n": 1}, {"n": {"$gte": 28}}]},
    {"group": {"$nin": ["b"]}, "tags": {"$ne": "vip"}},
]


@pytest.mark.parametrize("filter", FILTERS)
def test_tinydb_queries_built_from_filters_match_the_store(store_dir, filter):
    store = TinyStore(store_dir)
    _fill(store)
    expected = sorted(d["id"] for d in store.collection("people").find(filter))
    store.close()
    db = TinyDB(store_dir / "people.json", access_mode="r")
    try:
        assert sorted(d["id"] for d in db.search(to_tinydb_query(filter))) == expected
    finally:
        db.close()


def test_compact_folds_the_journal_while_others_keep_working(store_dir):
    one, two = TinyStore(store_dir), TinyStore(store_dir)
    try:
        _fill(one)
        size = (store_dir / JOURNAL).stat().st_size
        two.collection("people").insert({"id": "late", "n": -1, "group": "z"})
        one.compact()
        assert (store_dir / JOURNAL).stat().st_size < size
        db = TinyDB(store_dir / "people.json", access_mode="r")
        assert {d["id"] for d in db.all()} == {d["id"] for d in two.collection("people").find()}
        db.close()
        two.collection("people").insert({"id": "later", "n": -2, "group": "z"})
        assert one.collection("people").count({"group": "z"}) == 2
    finally:
        one.close()
        two.close()


def test_a_close_rewrites_a_large_file_only_for_a_large_journal(store_dir):
    options = TinyStoreOptions(compact_on_close_mb=1)  # the file (1.4 MB) is "large"
    store = TinyStore(store_dir, options)
    store.collection("x").insert_many({"id": f"d{i:05d}", "pad": "p" * 100} for i in range(12000))
    store.close()  # the journal is the whole collection: worth folding, whatever the budget
    assert (store_dir / "x.json").stat().st_size > 1024 * 1024
    assert len(TinyDB(store_dir / "x.json", access_mode="r").all()) == 12000
    store = TinyStore(store_dir, options)
    store.collection("x").insert({"id": "late"})
    store.close()  # one small write against a large file: the journal keeps it
    assert len(TinyDB(store_dir / "x.json", access_mode="r").all()) == 12000
    again = TinyStore(store_dir)
    assert again.collection("x").get("late")["version"] == 1
    again.close()  # the default budget folds it now
    assert len(TinyDB(store_dir / "x.json", access_mode="r").all()) == 12001


def test_a_torn_last_line_is_set_aside_and_the_store_goes_on(store_dir):
    store = TinyStore(store_dir)
    store.collection("x").insert({"id": "kept"})
    store._lock.close()  # simulate a crash: nothing more from this process
    with open(store_dir / JOURNAL, "ab") as handle:
        handle.write(b'0badc0de ["x"]\t[["p","x",{"id":"torn"')  # a write cut short
    again = TinyStore(store_dir)
    try:
        x = again.collection("x")
        assert [d["id"] for d in x.find()] == ["kept"]
        x.insert({"id": "next"})  # the writer sets the torn bytes aside first
        assert [d["id"] for d in x.find()] == ["kept", "next"]
        kept = list((store_dir / "recovered").iterdir())
        assert len(kept) == 1 and b'"torn"' in kept[0].read_bytes()
        assert again.check() == {"x": 2}
    finally:
        again.close()


def test_odd_collection_names_get_safe_file_names(store_dir):
    store = TinyStore(store_dir)
    names = ["plugin.things", "a/b", ".hidden", "ünï cödé", "journal"]
    for name in names:
        store.collection(name).insert({"id": "1", "name": name})
    store.close()
    files = {p.name for p in store_dir.iterdir()}
    assert "plugin.things.json" in files and "journal.json" in files
    assert not any(f.startswith(".") for f in files)
    again = TinyStore(store_dir)
    try:
        assert set(names) <= set(again.collection_names())
        for name in names:
            assert again.collection(name).get("1")["name"] == name
        with pytest.raises(ValidationError):
            again.collection("")
    finally:
        again.close()


BACKUP_WRITER = """
import sys
from crmcore_storage_tinydb import TinyStore
store = TinyStore(sys.argv[1])
a, b = store.collection("a"), store.collection("b")
i = 0
print("ready", flush=True)
while True:
    with store.transaction():
        a.insert({"id": f"k{i:06d}"})
        b.insert({"id": f"k{i:06d}"})
    i += 1
"""


def test_backup_while_another_process_writes_is_consistent(store_dir, tmp_path):
    store = TinyStore(store_dir)
    store.collection("a").insert({"id": "first"})
    store.collection("b").insert({"id": "first"})
    writer = subprocess.Popen(
        [sys.executable, "-c", BACKUP_WRITER, str(store_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "ready"
        for n in range(3):
            target = tmp_path / f"backup-{n}"
            store.backup(str(target))
            copy = TinyStore(target)
            a = {d["id"] for d in copy.collection("a").iter()}
            b = {d["id"] for d in copy.collection("b").iter()}
            copy.close()
            assert a == b and "first" in a  # whole transactions only
            tiny = TinyDB(target / "a.json", access_mode="r")
            assert {d["id"] for d in tiny.all()} == a  # folded: stock TinyDB sees it all
            tiny.close()
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
        store.close()


def test_backup_refuses_a_folder_in_use_or_inside_the_store(store_dir, tmp_path):
    store = TinyStore(store_dir)
    try:
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("keep me")
        with pytest.raises(ValidationError, match="not empty"):
            store.backup(str(tmp_path / "full"))
        with pytest.raises(ValidationError, match="outside"):
            store.backup(str(store_dir / "inside"))
        assert (tmp_path / "full" / "x").read_text() == "keep me"
        (tmp_path / "empty").mkdir()
        store.backup(str(tmp_path / "empty"))
        assert (tmp_path / "empty" / JOURNAL).exists()
    finally:
        store.close()


def test_write_all_finishes_a_short_write(tmp_path, monkeypatch):
    from crmcore_storage_tinydb import files

    calls = []
    real_write = os.write

    def short_write(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:3]))  # the kernel may take less than asked

    fd = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o600)
    monkeypatch.setattr(files.os, "write", short_write)
    files.write_all(fd, b"0123456789")
    monkeypatch.undo()
    os.close(fd)
    assert (tmp_path / "out").read_bytes() == b"0123456789" and calls == [10, 7, 4, 1]
