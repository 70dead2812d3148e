"""Indexes narrow the search but never change a result: property tests against the shared
matcher, and the pieces (key encoding, the sorted list) on their own."""

from __future__ import annotations

import itertools
import random

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb.indexes import Index, encode, plan
from crmcore_storage_tinydb.sortedlist import SortedList
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmcore.storage import IndexSpec
from crmcore.storage.query import _rank, compile_filter, sort_docs

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.5, -0.0, 2**60, 2**60 + 1]),
    st.sampled_from(["", "a", "b", "a\x00", "é", "Z"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=2))
FIELDS = ["f", "g", "h.k"]


@st.composite
def documents(draw):
    docs = []
    for i in range(draw(st.integers(0, 25))):
        doc = {"id": f"d{i:02d}"}
        for field in ("f", "g"):
            if draw(st.booleans()):
                doc[field] = draw(VALUES)
        if draw(st.booleans()):
            doc["h"] = {"k": draw(VALUES)} if draw(st.booleans()) else draw(SCALARS)
        docs.append(doc)
    return docs


@st.composite
def conditions(draw):
    field = draw(st.sampled_from(FIELDS))
    kind = draw(st.sampled_from(["lit", "eq", "ne", "range", "in", "nin", "exists"]))
    value = draw(SCALARS)
    if kind == "lit":
        return {field: value}
    if kind in ("eq", "ne"):
        return {field: {f"${kind}": value}}
    if kind == "range":
        ops = draw(
            st.lists(
                st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), min_size=1, max_size=2, unique=True
            )
        )
        return {field: {op: draw(SCALARS) for op in ops}}
    if kind in ("in", "nin"):
        return {field: {f"${kind}": draw(st.lists(SCALARS, max_size=3))}}
    return {field: {"$exists": draw(st.booleans())}}


@st.composite
def filters(draw):
    parts = draw(st.lists(conditions(), max_size=3))
    out: dict = {}
    for part in parts:
        out.update(part)
    if draw(st.integers(0, 3)) == 0:  # a range on the primary key: answered from the id list
        ops = draw(
            st.lists(
                st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), min_size=1, max_size=2, unique=True
            )
        )
        out["id"] = {op: draw(IDS) for op in ops}
    if draw(st.integers(0, 4)) == 0:
        out["$or"] = draw(st.lists(conditions(), min_size=1, max_size=3))
    return out


IDS = st.sampled_from(["", "d", "d03", "d1", "d10", "d10\x00", "d99", "e", 3, None])


INDEXES = [
    IndexSpec([("f", 1)]),
    IndexSpec([("f", 1), ("g", 1)]),
    IndexSpec([("g", 1)], sparse=True),
    IndexSpec([("h.k", 1), ("f", -1)]),
    IndexSpec([("g", 1), ("h.k", 1)], sparse=True),
]


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = TinyStore(tmp_path_factory.mktemp("prop") / "db")
    yield store
    store.close()


_counter = itertools.count()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(
    docs=[{"id": "d0", "g": 2**60 + 1}],
    filter={"g": {"$gte": 0, "$gt": 2**60}},
    sort=None,
    limit=None,
    reload=None,
)
@example(
    docs=[{"id": "d0", "f": 2**53 + 1}],
    filter={"f": {"$gt": 2**53}},
    sort=None,
    limit=None,
    reload=None,
)
@example(
    docs=[{"id": "d03"}, {"id": "d10"}],
    filter={"id": {"$gt": "d03", "$lte": "d10"}},
    sort=None,
    limit=None,
    reload=None,
)
@given(
    docs=documents(),
    filter=filters(),
    sort=st.one_of(
        st.none(),
        st.lists(
            st.tuples(st.sampled_from(FIELDS), st.sampled_from([1, -1])),
            min_size=1,
            max_size=2,
            unique_by=lambda t: t[0],
        ),
    ),
    limit=st.sampled_from([None, 1, 3]),
    reload=st.sampled_from([None, "journal", "snapshot"]),
)
def test_indexed_results_equal_the_shared_matcher(shared_store, docs, filter, sort, limit, reload):
    coll = shared_store.collection(f"c{next(_counter)}")
    for spec in INDEXES:
        coll.ensure_index(spec)
    assert coll.insert_many(docs).ok
    if reload == "snapshot":
        shared_store.compact()
    if reload is not None:
        coll._table = None  # rebuilt from the files: snapshot and/or journal
    stored = [{**d, "version": 1} for d in docs]
    match = compile_filter(filter)
    expected = [d for d in stored if match(d)]
    sort_docs(expected, sort)
    assert coll.find(filter, sort=sort, limit=limit) == expected[:limit]
    assert coll.count(filter) == len(expected)
    assert [d["id"] for d in coll.iter(filter, batch_size=4)] == sorted(d["id"] for d in expected)


def test_a_plan_is_used_for_equalities_and_ranges():
    index = Index(IndexSpec([("a", 1), ("b", 1)]))
    assert plan({"a": 1, "b": {"$gt": 2}}, [index]).exact
    assert plan({"a": {"$in": [1, 2]}}, [index]).exact
    assert plan({"b": 1}, [index]) is None  # not a prefix
    assert not plan({"a": 1, "c": 2}, [index]).exact  # the matcher checks c
    sparse = Index(IndexSpec([("a", 1), ("b", 1)], sparse=True))
    assert plan({"a": 1}, [sparse]) is None  # would miss documents without b
    assert plan({"a": 1, "b": None}, [sparse]) is None
    assert plan({"$or": [{"a": 1}, {"a": 2}]}, [index]) is not None


def test_encoded_values_sort_as_the_shared_sort_does():
    values = [
        None,
        False,
        True,
        -2,
        -0.5,
        0,
        0.0,
        1,
        2**40,
        1.5e300,
        "",
        "a",
        "a\x00",
        "a\x00b",
        "ab",
        "b",
        "é",
        "\U0001f600",
        [1],
        {"x": 1},
    ]
    rng = random.Random(7)
    for _ in range(50):
        a, b = rng.sample(values, 2)
        ra, rb = _rank(a), _rank(b)
        if ra != rb:
            assert (encode(a) < encode(b)) == (ra < rb), (a, b)
    assert encode(0) == encode(-0.0) == encode(0.0)


def test_sorted_list_keeps_order_through_many_changes():
    rng = random.Random(3)
    model: list[int] = []
    items = SortedList()
    for step in range(20000):
        value = rng.randrange(5000)
        if step % 3 == 2 and model:
            victim = rng.choice(model)
            model.remove(victim)
            assert items.discard(victim)
        else:
            model.append(value)
            items.add(value)
    model.sort()
    assert list(items) == model and len(items) == len(model)
    assert list(reversed(items)) == model[::-1]
    assert list(items.irange(100, 900)) == [v for v in model if 100 <= v < 900]
    assert items.after(model[10], 5) == [v for v in model if v > model[10]][:5]
    assert not items.discard(-1) and -1 not in items and model[0] in items


def test_indexed_lookups_read_only_the_matches(tmp_path, monkeypatch):
    from crmcore_storage_tinydb import table as table_module
    from crmcore_storage_tinydb import topk as topk_module

    store = TinyStore(tmp_path / "db")
    try:
        tasks = store.collection("tasks")
        tasks.ensure_index(IndexSpec([("assignee", 1), ("status", 1), ("due", 1)]))
        tasks.ensure_index(IndexSpec([("email", 1)], unique=True, sparse=True))
        tasks.insert_many(
            {
                "id": f"t{i:05d}",
                "assignee": f"rep{i % 50}",
                "due": i,
                "status": "open" if i % 3 else "done",
                "email": f"e{i}@x.org",
            }
            for i in range(10_000)
        )
        tasks.count()
        decoded = []
        real = table_module.decode_doc
        monkeypatch.setattr(
            table_module, "decode_doc", lambda text: decoded.append(1) or real(text)
        )
        monkeypatch.setattr(topk_module, "decode_doc", lambda text: decoded.append(1) or real(text))
        found = tasks.find({"assignee": "rep7", "status": "open", "due": {"$lt": 1000}})
        assert len(found) == len(decoded) == 13  # the matches, and nothing else
        decoded.clear()
        newest = tasks.find({"id": {"$gt": "t09990"}})  # from the sorted id list
        assert [d["id"] for d in newest] == [f"t{i:05d}" for i in range(9991, 10_000)]
        assert len(decoded) == 9 and tasks.count({"id": {"$gte": "t09990", "$lt": "t09995"}}) == 5
        decoded.clear()
        assert tasks.count({"assignee": "rep7", "status": "open"}) == 133
        assert tasks.find_one({"email": "e123@x.org"})["id"] == "t00123"
        assert tasks.find({}, sort=[("assignee", -1)], limit=2)[0]["assignee"] == "rep9"
        assert len(decoded) < 250  # count reads no document; the sorted walk few
    finally:
        store.close()


@settings(max_examples=200, deadline=None)
@given(
    docs=documents().filter(bool),
    sort=st.lists(
        st.tuples(st.sampled_from(FIELDS), st.sampled_from([1, -1])),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    ),
)
def test_sorting_and_picking_the_first_follow_the_shared_sort(docs, sort):
    from crmcore_storage_tinydb.table import first_found, sort_found

    expected = [dict(d) for d in docs]
    sort_docs(expected, sort)
    mine = [dict(d) for d in docs]
    sort_found(mine, sort)
    assert mine == expected
    assert first_found([dict(d) for d in docs], sort) == expected[0]


def test_ids_of_any_text_survive_indexes_and_files(tmp_path):
    ids = ["plain", "é-ü", "张三", "emoji-\U0001f600", "lone-\ud800", "nul-\x00-id"]
    store = TinyStore(tmp_path / "db")
    things = store.collection("things")
    things.ensure_index(IndexSpec([("g", 1)]))
    things.insert_many({"id": i, "g": "same"} for i in ids)
    assert sorted(d["id"] for d in things.find({"g": "same"})) == sorted(ids)
    store.close()
    again = TinyStore(tmp_path / "db")
    try:
        found = again.collection("things").find({"g": "same"}, sort=[("g", 1)], limit=10)
        assert [d["id"] for d in found] == sorted(ids)
    finally:
        again.close()


def test_the_index_cache_file_is_used_and_a_bad_one_is_ignored(tmp_path, monkeypatch):
    from crmcore_storage_tinydb import table as table_module

    folder = tmp_path / "db"
    store = TinyStore(folder)
    things = store.collection("things")
    things.ensure_index(IndexSpec([("g", 1), ("n", 1)]))
    things.ensure_index(IndexSpec([("tags", 1)]))
    things.insert_many(
        {"id": f"t{i:03d}", "g": i % 3, "n": i, "tags": ["x"] if i % 2 else "y"} for i in range(300)
    )
    store.close()  # folds: the snapshot and its index cache file
    cache = folder / "things.idx"
    assert cache.exists()
    expected = {"g": [f"t{i:03d}" for i in range(1, 100, 3)], "tags": 150}

    def count_decodes() -> int:
        decoded: list[int] = []
        real = table_module.decode_doc
        monkeypatch.setattr(table_module, "decode_doc", lambda t: decoded.append(1) or real(t))
        again = TinyStore(folder)
        try:
            things = again.collection("things")
            things.count()  # load
            loaded = len(decoded)
            assert [d["id"] for d in things.find({"g": 1, "n": {"$lt": 100}})] == expected["g"]
            assert things.count({"tags": "x"}) == expected["tags"]
        finally:
            again.close()
            monkeypatch.setattr(table_module, "decode_doc", real)
        return loaded

    assert count_decodes() == 0  # documents were not decoded to build the indexes
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF
    cache.write_bytes(bytes(data))
    assert count_decodes() == 300  # a damaged cache is ignored: rebuilt from the documents


def test_the_index_cache_file_is_compressed_in_blocks_and_an_older_format_is_rebuilt(
    tmp_path, monkeypatch
):
    from crmcore_storage_tinydb import indexfile
    from crmcore_storage_tinydb import table as table_module

    folder = tmp_path / "db"
    store = TinyStore(folder)
    things = store.collection("things")
    things.ensure_index(IndexSpec([("kind", 1), ("n", 1)]))
    things.ensure_index(IndexSpec([("tags", 1)]))
    n = indexfile.BLOCK + 500  # more than one block per index
    things.insert_many(
        {"id": f"thing_{i:06d}", "kind": f"kind-{i % 7}", "n": i, "tags": [f"t{i % 5}", "all"]}
        for i in range(n)
    )
    expected = things.find({"kind": "kind-3", "n": {"$gte": 8000}})
    store.close()
    cache = folder / "things.idx"
    data = cache.read_bytes()
    assert data.startswith(b"CRMIDX3\n")
    # three entries per document (one for kind/n, two for the tags), each well over 20 bytes
    # raw: the blocks hold them in a fraction of that
    assert len(data) < 3 * n * 20 / 2

    def load() -> tuple[int, list]:
        decoded: list[int] = []
        real = table_module.decode_doc
        monkeypatch.setattr(table_module, "decode_doc", lambda t: decoded.append(1) or real(t))
        again = TinyStore(folder)
        try:
            things = again.collection("things")
            things.count()
            loaded = len(decoded)
            found = things.find({"kind": "kind-3", "n": {"$gte": 8000}})
            assert things.count({"tags": "all"}) == n and things.count({"tags": "t2"}) == n // 5
        finally:
            again.close()
            monkeypatch.setattr(table_module, "decode_doc", real)
        return loaded, found

    assert load() == (0, expected)  # read from the blocks, nothing decoded
    cache.write_bytes(b"CRMIDX2\n" + data[len(b"CRMIDX3\n") :])  # a format 2 file
    assert load() == (n, expected)  # not read: the indexes were rebuilt from the documents


def test_the_plan_with_fewest_candidates_is_chosen(tmp_path, monkeypatch):
    """Two indexes narrow a filter: the one leaving fewer candidates is used, counted by
    bisection (the loyalty sweep's expiry query: most entries are earnings, few expire)."""
    from crmcore_storage_tinydb import table as table_module

    store = TinyStore(tmp_path / "db")
    try:
        ledger = store.collection("ledger")
        ledger.ensure_index(IndexSpec([("kind", 1), ("at", 1)]))
        ledger.ensure_index(IndexSpec([("expires_at", 1)], sparse=True))
        ledger.insert_many(
            {"id": f"e{i:05d}", "kind": "earn", "at": i, "expires_at": 10_000 + i}
            for i in range(5000)
        )
        ledger.count()
        decoded = []
        real = table_module.decode_doc
        monkeypatch.setattr(
            table_module, "decode_doc", lambda text: decoded.append(1) or real(text)
        )
        query = {"kind": {"$in": ["earn", "adjust"]}, "expires_at": {"$lte": 10_009}}
        assert [d["at"] for d in ledger.find(query)] == list(range(10))
        assert len(decoded) == 10
        decoded.clear()
        # the other way round: the kind index is the narrower one
        assert len(ledger.find({"kind": "refund", "expires_at": {"$gte": 0}})) == 0
        assert decoded == []
        # an $or of narrow branches beside a broad indexed field (search keys beside the
        # status): the union of the branches is read, not every entry of the broad field
        either = {"$or": [{"expires_at": 10_003}, {"expires_at": 10_007}], "kind": "earn"}
        from crmcore_storage_tinydb import topk as topk_module

        monkeypatch.setattr(topk_module, "decode_doc", table_module.decode_doc)
        assert [d["at"] for d in ledger.find(either, sort=[("id", 1)], limit=5)] == [3, 7]
        assert [d["at"] for d in ledger.find(either)] == [3, 7]
        assert len(decoded) == 4
    finally:
        store.close()


def test_a_sorted_list_counts_a_range_by_bisection():
    items = SortedList(range(0, 10_000, 2))
    assert items.count(10, 20) == 5 and items.count(-5, 10**6) == 5000
    assert items.count(30, 10) == 0 and items.count(9999, 10**6) == 0


def test_an_exact_indexed_count_walks_no_entry(tmp_path, monkeypatch):
    """A count an index answers exactly (one entry per document) is two bisections: no id is
    read from the entries, no document decoded; a multikey index still counts each once."""
    from crmcore_storage_tinydb import indexes as indexes_module
    from crmcore_storage_tinydb import table as table_module

    store = TinyStore(tmp_path / "db")
    try:
        tasks = store.collection("tasks")
        tasks.ensure_index(IndexSpec([("status", 1), ("due", 1)]))
        tasks.ensure_index(IndexSpec([("tags", 1)]))
        tasks.insert_many(
            {
                "id": f"t{i:04d}",
                "status": "open" if i % 3 else "done",
                "due": i,
                "tags": ["a", "b"] if i % 2 else ["a"],
            }
            for i in range(3000)
        )
        tasks.count()

        def refused(*args):
            raise AssertionError("the count read an entry or a document")

        with monkeypatch.context() as patch:
            patch.setattr(indexes_module, "entry_id", refused)
            patch.setattr(table_module, "decode_doc", refused)
            assert tasks.count({"status": "open"}) == 2000
            assert tasks.count({"status": "open", "due": {"$lt": 300}}) == 200
            assert tasks.count({"status": {"$in": ["open", "done"]}, "due": {"$gte": 2990}}) == 10
        assert tasks.count({"tags": "a"}) == 3000  # multikey: each document once
        assert tasks.count({"tags": "b"}) == 1500
    finally:
        store.close()


def test_a_count_the_index_answers_in_part_plans_once(tmp_path, monkeypatch):
    """A count whose filter the index answers in part (its documents re-checked) planned the
    query twice: once to see that it was not exact, once more to select the documents."""
    from crmcore_storage_tinydb import table

    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("tasks")
        coll.ensure_index(IndexSpec([("customer_id", 1), ("status", 1)]))
        for i in range(6):
            coll.insert(
                {"id": f"t{i}", "customer_id": "c1", "status": "open", "kind": ["a", "b"][i % 2]}
            )
        made: list[dict] = []
        planner = table.plan

        def counting(normal, *args, **kwargs):
            made.append(dict(normal))
            return planner(normal, *args, **kwargs)

        monkeypatch.setattr(table, "plan", counting)
        assert coll.count({"customer_id": "c1", "status": "open", "kind": "a"}) == 3
        assert len(made) == 1
        assert coll.count({"customer_id": "c1", "status": "open"}) == 6  # exact: by bisection
        assert coll.find({"customer_id": "c1", "kind": "b"}) != []
    finally:
        store.close()
