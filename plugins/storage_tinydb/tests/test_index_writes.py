"""The write paths of the indexes: a document's entries inserted and removed together, an
update changing only the entries that differ, string lists encoded in one go. Each is checked
against the plain path it replaces (one entry at a time, every entry removed and re-added)."""

from __future__ import annotations

import random

from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb.files import decode_doc
from crmcore_storage_tinydb.indexes import Index, encode, encode_text, id_suffix
from crmcore_storage_tinydb.sortedlist import SortedList
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.storage import IndexSpec
from crmcore.storage.query import compile_filter

TEXTS = st.sampled_from(["", "a", "ab", "b", "a\x00", "é", "\ud800", "p:cu", "t:5678", "Z"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), TEXTS)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.lists(TEXTS, max_size=6))
INDEXES = [
    IndexSpec([("f", 1)]),
    IndexSpec([("f", 1), ("g", 1)]),
    IndexSpec([("g", 1)], sparse=True),
    IndexSpec([("g", 1), ("f", 1)], sparse=True),
]


def _doc(draw, id: str) -> dict:
    doc = {"id": id}
    for field in ("f", "g"):
        if draw(st.booleans()):
            doc[field] = draw(VALUES)
    return doc


def test_a_sorted_run_goes_in_and_out_as_one_item_at_a_time_does():
    rng = random.Random(11)
    bulk, single = SortedList(), SortedList()
    for _step in range(600):  # enough items for chunks to split and empty out
        run = sorted(rng.randrange(3000) for _ in range(rng.randrange(1, 40)))
        if rng.random() < 0.35 and len(single):
            run = sorted([*rng.sample(list(single), min(len(single), len(run))), -1, 99_999])
            for item in run:
                single.discard(item)
            assert bulk.discard_sorted(run) == len(run) - 2  # the two absent ones are skipped
        else:
            for item in run:
                single.add(item)
            bulk.add_sorted(run)
        assert len(bulk) == len(single)
    assert list(bulk) == list(single)
    assert all(c and c[-1] == m for c, m in zip(bulk._chunks, bulk._maxes, strict=True))
    assert max(map(len, bulk._chunks)) <= 2000 and len(bulk._chunks) > 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(TEXTS, st.none(), st.integers(-2, 2)), max_size=8))
def test_list_elements_encode_as_each_one_alone(values):
    index = Index(IndexSpec([("f", 1)]))
    keys, listy = index.keys({"f": values})
    expected = sorted({encode(v) for v in values if v is not None}) or [encode(values)]
    assert listy and keys == expected


def test_string_elements_in_order_and_not():
    index = Index(IndexSpec([("f", 1)]))
    for values in (["a", "b", "c"], ["c", "a", "b", "a"], ["a\x00", "a"], ["\ud800", "a"]):
        keys, _listy = index.keys({"f": values})
        assert keys == sorted({b"\x03" + encode_text(v) for v in values}), values


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_an_update_leaves_the_index_as_building_it_afresh_would(data):
    draw = data.draw
    count = draw(st.integers(1, 8))
    docs = {f"d{i}": _doc(draw, f"d{i}") for i in range(count)}
    indexes = [Index(spec) for spec in INDEXES]
    for index in indexes:
        for id, doc in docs.items():
            index.add(id, doc)
    for _step in range(draw(st.integers(1, 10))):
        id = draw(st.sampled_from(sorted(docs)))
        # now and then the same document again: nothing should move
        new = dict(docs[id]) if draw(st.integers(0, 4)) == 0 else _doc(draw, id)
        for index in indexes:
            index.replace(id, docs[id], new, id_suffix(id))
        docs[id] = new
    for index in indexes:
        fresh = Index(index.spec)
        fresh.build(docs.items())
        assert list(index.entries) == list(fresh.entries)
        assert index.multi == fresh.multi and index.residual == fresh.residual


def test_an_update_of_unindexed_fields_moves_no_entry(tmp_path, monkeypatch):
    store = TinyStore(tmp_path / "db")
    coll = store.collection("customers")
    coll.ensure_index(IndexSpec([("search", 1)]))
    coll.insert({"id": "c1", "search": ["n:ann lee", "p:a", "p:an", "t:5678"], "region": "N"})
    moved: list[tuple[str, int]] = []  # (what, how many entries)
    for name in ("add", "add_sorted", "discard", "discard_sorted"):
        method = getattr(SortedList, name)
        what, many = name.removesuffix("_sorted"), name.endswith("_sorted")

        def spy(self, items, _m=method, _n=what, _many=many):
            moved.append((_n, len(items) if _many else 1))
            return _m(self, items)

        monkeypatch.setattr(SortedList, name, spy)
    coll.update("c1", {"region": "S"}, expected_version=1)
    assert moved == []
    coll.update("c1", {"search": ["n:ann li", "p:a", "p:an", "t:5678"]}, expected_version=2)
    assert moved == [("discard", 1), ("add", 1)]  # one key changed: one entry out, one in
    monkeypatch.undo()
    assert [d["id"] for d in coll.find({"search": "n:ann li"})] == ["c1"]
    assert coll.find({"search": "n:ann lee"}) == []
    assert [d["id"] for d in coll.find({"search": "t:5678"})] == ["c1"]
    store.close()


def test_an_update_computes_the_keys_of_the_indexes_of_changed_fields_only(tmp_path, monkeypatch):
    store = TinyStore(tmp_path / "db")
    coll = store.collection("customers")
    coll.ensure_index(IndexSpec([("search", 1)]))
    coll.ensure_index(IndexSpec([("ext.grade", 1), ("status", 1)]))
    coll.insert({"id": "c1", "search": ["n:ann", "t:5678"], "status": "a", "ext": {"grade": "B"}})
    read: list[tuple[str, ...]] = []
    keys = Index.keys

    def spy(self, doc, cache=None):
        read.append(self.paths)
        return keys(self, doc, cache)

    monkeypatch.setattr(Index, "keys", spy)
    coll.update("c1", {"region": "S"}, expected_version=1)
    assert read == []  # no indexed field changed: no index looked at
    coll.update("c1", {"ext": {"grade": "A"}}, expected_version=2)
    assert set(read) == {("ext.grade", "status")}  # not the search keys
    read.clear()
    coll.update("c1", {"status": "b"}, expected_version=3)
    assert set(read) == {("ext.grade", "status")}
    monkeypatch.undo()
    assert [d["id"] for d in coll.find({"ext.grade": "A", "status": "b"})] == ["c1"]
    assert coll.find({"ext.grade": "B"}) == [] and coll.find({"status": "a"}) == []
    assert [d["id"] for d in coll.find({"search": "t:5678"})] == ["c1"]
    store.close()


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_finds_after_updates_and_deletes_equal_the_shared_matcher(tmp_path_factory, data):
    draw = data.draw
    store = TinyStore(tmp_path_factory.mktemp("upd") / "db")
    try:
        coll = store.collection("c")
        for spec in INDEXES:
            coll.ensure_index(spec)
        docs = {f"d{i}": _doc(draw, f"d{i}") for i in range(draw(st.integers(1, 8)))}
        assert coll.insert_many(list(docs.values())).ok
        stored = {id: {**doc, "version": 1} for id, doc in docs.items()}
        for _step in range(draw(st.integers(1, 8))):
            id = draw(st.sampled_from(sorted(stored)))
            if draw(st.integers(0, 5)) == 0:
                coll.delete(id)
                del stored[id]
                if not stored:
                    break
                continue
            new = _doc(draw, id)
            changes = {k: v for k, v in new.items() if k != "id"}
            doc = coll.update(id, changes, expected_version=stored[id]["version"])
            stored[id] = doc
        table = coll._table
        for index in table.indexes.values():
            fresh = Index(index.spec)
            fresh.build((id, decode_doc(text)) for id, text in table.docs.items())
            assert list(index.entries) == list(fresh.entries)
        for value in (None, "a", "ab", "", 1, True):
            for filter in ({"f": value}, {"g": value}, {"f": value, "g": {"$exists": True}}):
                match = compile_filter(filter)
                expected = sorted(id for id, d in stored.items() if match(d))
                assert sorted(d["id"] for d in coll.find(filter)) == expected
    finally:
        store.close()
