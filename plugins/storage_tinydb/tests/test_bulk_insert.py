"""``insert_many`` stores and indexes a chunk of new documents together (one pass per index):
the store must come out exactly as inserting them one by one would leave it."""

from __future__ import annotations

import random

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb.sortedlist import CHUNK, SortedList

from crmcore.errors import DuplicateKeyError
from crmcore.storage import IndexSpec

INDEXES = [
    IndexSpec([("customer_id", 1), ("at", 1)]),
    IndexSpec([("tags", 1)]),  # multikey
    IndexSpec([("kind", 1), ("at", 1)], sparse=True),
]


def _docs(rng: random.Random, start: int, n: int) -> list[dict]:
    docs = []
    for i in range(start, start + n):
        doc: dict = {
            "id": f"d{rng.randrange(10**9):09d}-{i}",  # ids in no particular order
            "customer_id": f"c{rng.randrange(40):03d}",
            "at": f"2026-01-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
        }
        if rng.random() < 0.7:
            doc["kind"] = rng.choice(["purchase", "visit", "refund"])
        if rng.random() < 0.5:
            doc["tags"] = rng.sample(["a", "b", "c", "d", "e"], rng.randrange(0, 4))
        docs.append(doc)
    return docs


def _state(store: TinyStore, name: str) -> tuple:
    table = store.collection(name).table()
    return (
        dict(table.docs.items()),  # the texts (stored compressed in a large table)
        list(table.ids),
        table.size,
        {
            n: (list(index.entries), set(index.multi), set(index.residual))
            for n, index in table.indexes.items()
        },
    )


def test_a_sorted_list_takes_many_items_at_once_as_one_by_one():
    rng = random.Random(5)
    model: list[int] = []
    items = SortedList()
    for _round in range(60):
        batch = [rng.randrange(20000) for _ in range(rng.choice([0, 1, 7, 300, 2 * CHUNK + 5]))]
        items.update(batch)
        model.extend(batch)
        for _ in range(rng.randrange(50)):  # removals between the bulk inserts
            if model:
                victim = model.pop(rng.randrange(len(model)))
                assert items.discard(victim)
        model.sort()
        assert list(items) == model and len(items) == len(model)
    assert all(len(chunk) <= 2 * CHUNK for chunk in items._chunks)
    assert items._maxes == [chunk[-1] for chunk in items._chunks]
    assert list(items.irange(1000, 9000)) == [v for v in model if 1000 <= v < 9000]
    assert list(reversed(items)) == model[::-1]


def test_bulk_inserts_leave_the_store_as_inserts_one_by_one(tmp_path):
    rng = random.Random(11)
    store = TinyStore(tmp_path / "db")
    try:
        for name in ("bulk", "single"):
            for spec in INDEXES:
                store.collection(name).ensure_index(spec)
        for start in range(0, 3000, 600):
            docs = _docs(rng, start, 600)
            assert store.collection("bulk").insert_many(docs).ok
            for doc in docs:
                store.collection("single").insert(doc)
        bulk, single = _state(store, "bulk"), _state(store, "single")
        assert bulk == single
        coll = store.collection("bulk")
        query = {"customer_id": "c007", "at": {"$gte": "2026-01-10"}}
        expected = store.collection("single").find(query, sort=[("at", 1)])
        assert expected and coll.find(query, sort=[("at", 1)]) == expected
        assert coll.count({"tags": "b"}) == store.collection("single").count({"tags": "b"}) > 0
        store.compact()
        coll._table = None  # read back from the files
        assert _state(store, "bulk")[:2] == single[:2]
    finally:
        store.close()


def test_a_bad_document_or_a_taken_id_is_reported_and_the_others_are_stored(tmp_path):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("things")
        coll.ensure_index(IndexSpec([("n", 1)]))
        coll.insert({"id": "old", "n": 0})
        result = coll.insert_many(
            [
                {"id": "a", "n": 1},
                {"id": "old", "n": 2},  # stored before
                {"n": 3},  # no id
                {"id": "a", "n": 4},  # twice in the same call
                {"id": "b", "n": 5},
            ]
        )
        assert result.ids == ("a", "b")
        assert [(e.index, e.id) for e in result.errors] == [(1, "old"), (2, None), (3, "a")]
        assert "already exists" in result.errors[0].message
        assert [d["n"] for d in coll.find({"n": {"$gte": 0}}, sort=[("n", 1)])] == [0, 1, 5]
    finally:
        store.close()


def test_a_bulk_insert_rolled_back_leaves_no_document_and_no_index_entry(tmp_path):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("things")
        coll.ensure_index(IndexSpec([("n", 1)]))
        coll.ensure_index(IndexSpec([("tags", 1)]))
        coll.insert_many([{"id": f"k{i}", "n": i, "tags": ["x"]} for i in range(5)])
        before = _state(store, "things")
        with pytest.raises(RuntimeError), store.transaction():
            coll.insert_many([{"id": f"t{i}", "n": i, "tags": ["x", "y"]} for i in range(50)])
            assert coll.count({"tags": "y"}) == 50
            raise RuntimeError("fails after the insert")
        assert _state(store, "things") == before
        assert coll.count({"tags": "y"}) == 0 and coll.count({"n": 3}) == 1
    finally:
        store.close()


def test_a_unique_index_refuses_a_key_stored_before_or_earlier_in_the_same_call(tmp_path):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("people")
        coll.ensure_index(IndexSpec([("email", 1)], unique=True))
        coll.ensure_index(IndexSpec([("n", 1)], unique=True, sparse=True))
        coll.ensure_index(IndexSpec([("tags", 1)]))
        coll.insert({"id": "p0", "email": "old@x"})
        result = coll.insert_many(
            [
                {"id": "p1", "email": "a@x", "n": 2**60},
                {"id": "p2", "email": "a@x"},  # earlier in this call
                {"id": "p3", "email": "old@x"},  # stored before
                {"id": "p4", "email": "b@x", "n": 2**60 + 1},  # same float, another number
                {"id": "p5", "email": "c@x", "n": 2**60 + 1},  # the same number as p4
                {"id": "p6", "email": "d@x", "tags": ["t"]},
            ]
        )
        assert result.ids == ("p1", "p4", "p6")
        assert [(e.index, e.id) for e in result.errors] == [(1, "p2"), (2, "p3"), (4, "p5")]
        assert all("another record already has this value" in e.message for e in result.errors)
        assert coll.find_one({"email": "a@x"})["id"] == "p1"
        assert coll.count({"tags": "t"}) == 1
        # the refused ones claimed nothing: their keys are free for the next call
        assert coll.insert_many([{"id": "p7", "email": "e@x", "n": 7}]).ok
    finally:
        store.close()


def test_a_unique_index_leaves_the_store_as_inserts_one_by_one(tmp_path):
    rng = random.Random(17)
    store = TinyStore(tmp_path / "db")
    try:
        for name in ("bulk", "single"):
            store.collection(name).ensure_index(IndexSpec([("key", 1)], unique=True))
            store.collection(name).ensure_index(IndexSpec([("customer_id", 1), ("at", 1)]))
        for start in range(0, 2000, 500):
            docs = _docs(rng, start, 500)
            for doc in docs:
                doc["key"] = f"k{rng.randrange(1500)}"  # some taken, in the call or before
            bulk = store.collection("bulk").insert_many(docs)
            single_ids = []
            for doc in docs:
                try:
                    store.collection("single").insert(doc)
                    single_ids.append(doc["id"])
                except DuplicateKeyError:
                    pass
            assert list(bulk.ids) == single_ids and bulk.errors
        assert _state(store, "bulk") == _state(store, "single")
    finally:
        store.close()
