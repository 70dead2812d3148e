"""Bulk import: unordered ``bulk_write`` in chunks; every failed row reported, the rest kept."""

from __future__ import annotations

import threading

import pytest
from crmcore_storage_mongo import store as store_module

from crmcore.errors import ValidationError
from crmcore.storage import IndexSpec


@pytest.fixture
def coll(open_mock):
    c = open_mock().collection("people")
    c.ensure_index(IndexSpec([("email", 1)], unique=True, sparse=True))
    return c


def test_every_failed_row_is_reported_by_position_and_the_rest_are_kept(coll, monkeypatch):
    monkeypatch.setattr(store_module, "BULK_CHUNK", 4)  # failures on both sides of a chunk edge
    coll.insert({"id": "p-existing", "email": "taken@example.com"})
    rows = [
        {"id": "p0", "email": "a@example.com"},
        {"id": "p-existing"},  # 1: the id exists
        {"email": "no-id@example.com"},  # 2: no id
        {"id": "p3", "email": "taken@example.com"},  # 3: unique e-mail taken
        {"id": "p4", "_id": "x"},  # 4: reserved name
        {"id": "p5", "a.b": 1},  # 5: a dotted top-level name
        {"id": "p6", "big": 2**70},  # 6: not representable in BSON
        {"id": "p7", "email": None},
        {"id": "p8"},  # no e-mail: sparse, so it does not collide with p7
        {"id": "p9", "email": "a@example.com"},  # 9: duplicate within the batch
        "not a document",  # 10
        {"id": "p11", "when": object()},  # 11: not JSON
    ]
    result = coll.insert_many(iter(rows))
    assert result.ids == ("p0", "p7", "p8")
    assert [e.index for e in result.errors] == [1, 2, 3, 4, 5, 6, 9, 10, 11]
    assert [e.id for e in result.errors] == [
        "p-existing",
        None,
        "p3",
        "p4",
        "p5",
        "p6",
        "p9",
        None,
        "p11",
    ]
    messages = {e.index: e.message for e in result.errors}
    assert "already" in messages[1] and "already" in messages[3]
    assert "_id" in messages[4] and "a.b" in messages[5]
    assert all("@example.com" not in m for m in messages.values())  # no values in messages
    assert coll.count() == 4
    assert coll.get("p0")["version"] == 1


def test_an_import_over_many_chunks_reports_each_duplicate(coll, monkeypatch):
    # (mongomock checks unique indexes by scanning, so the sizes stay small here)
    monkeypatch.setattr(store_module, "BULK_CHUNK", 32)
    rows = ({"id": f"r{i:05d}", "email": f"u{i % 240}@example.com"} for i in range(300))
    result = coll.insert_many(rows)
    assert len(result.ids) == 240
    assert [e.index for e in result.errors] == list(range(240, 300))
    assert coll.count() == 240


def test_upsert_many_inserts_replaces_and_counts_versions_in_order(coll):
    coll.insert({"id": "a", "x": 1, "gone": True})
    result = coll.upsert_many(
        [
            {"id": "a", "x": 2},
            {"id": "b", "x": 1},
            {"id": "b", "x": 2},
            {"id": "a", "x": 3},
            {"id": "c", "email": "taken"},
            {"id": "d", "email": "taken"},
        ]
    )
    assert result.ids == ("a", "b", "b", "a", "c")
    assert [e.index for e in result.errors] == [5]
    assert coll.get("a") == {"id": "a", "x": 3, "version": 3}  # two replacements, in order
    assert coll.get("b") == {"id": "b", "x": 2, "version": 2}


def test_upserts_racing_updates_never_lose_a_version(coll):
    coll.insert_many([{"id": f"k{i}", "n": 0} for i in range(20)])
    stop = threading.Event()

    def updater() -> None:
        while not stop.is_set():
            for i in range(20):
                doc = coll.get(f"k{i}")
                try:
                    coll.update(doc["id"], {"n": doc["n"] + 1}, expected_version=doc["version"])
                except Exception:  # a conflict with the upserts: fine, try the next one
                    continue

    thread = threading.Thread(target=updater)
    thread.start()
    try:
        for _ in range(5):
            result = coll.upsert_many([{"id": f"k{i}", "n": -1} for i in range(20)])
            assert result.ok or all("changed by other writers" in e.message for e in result.errors)
    finally:
        stop.set()
        thread.join()
    for i in range(20):
        doc = coll.get(f"k{i}")
        assert isinstance(doc["version"], int) and doc["version"] >= 6


def test_an_upsert_that_loses_a_race_goes_round_again(coll, monkeypatch):
    """Between reading versions and replacing, another writer changes one document and
    inserts another: the upsert notices (its replacement matched nothing; its insert hit an
    existing id) and applies both rows on the next round, with the right versions."""
    coll.insert({"id": "a", "x": 0})
    raw = coll._raw
    real_bulk_write = raw.bulk_write
    calls = []

    def interfering(ops, **kwargs):
        if not calls:
            raw.update_one({"_id": "a"}, {"$set": {"x": 99}, "$inc": {"version": 1}})
            raw.insert_one({"_id": "b", "x": 99, "version": 1})
        calls.append(len(ops))
        return real_bulk_write(ops, **kwargs)

    monkeypatch.setattr(raw, "bulk_write", interfering)
    result = coll.upsert_many([{"id": "a", "x": 1}, {"id": "b", "x": 1}])
    assert result.ok and result.ids == ("a", "b")
    assert calls == [2, 2]
    assert coll.get("a") == {"id": "a", "x": 1, "version": 3}
    assert coll.get("b") == {"id": "b", "x": 1, "version": 2}


def test_import_raw_keeps_versions_exactly(coll):
    result = coll.import_raw(
        [
            {"id": "a", "x": 1, "version": 7},
            {"id": "b", "version": 1},
            {"id": "c", "version": 0},
            {"id": "d"},
            {"id": "e", "version": True},
            {"id": "a", "version": 2},
        ]
    )
    assert result.ids == ("a", "b")
    assert [e.index for e in result.errors] == [2, 3, 4, 5]
    assert coll.get("a") == {"id": "a", "x": 1, "version": 7}
    coll.update("a", {"x": 2}, expected_version=7)
    assert coll.get("a")["version"] == 8


def test_bulk_inputs_are_copied_not_kept(coll):
    row = {"id": "m", "tags": ["x"]}
    coll.insert_many([row])
    row["tags"].append("changed after the call")
    assert coll.get("m")["tags"] == ["x"]


def test_update_and_insert_refuse_names_mongodb_would_misread(coll):
    coll.insert({"id": "a"})
    with pytest.raises(ValidationError, match="_id"):
        coll.update("a", {"_id": "b"}, expected_version=1)
    with pytest.raises(ValidationError, match="path"):
        coll.update("a", {"x.y": 1}, expected_version=1)
    with pytest.raises(ValidationError):
        coll.insert({"id": "z", "n": 2**64})
    assert coll.get("a") == {"id": "a", "version": 1}
    # dotted names inside values are fine (MongoDB 5.0+ stores them as plain keys)
    coll.update("a", {"ext": {"by_email": {"x@example.com": 1}}}, expected_version=1)
    assert coll.get("a")["ext"] == {"by_email": {"x@example.com": 1}}
