"""Queries mean on MongoDB what they mean on the reference backend.

The property tests store the same random documents in the in-memory reference store and in the
MongoDB backend (mongomock here; the real server too when configured) and compare every answer:
which documents match, in which order, how many, and which one a claim takes.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from crmcore_storage_mongo.translate import (
    NOTHING,
    plan_sort,
    sorts_differently,
    translate,
    with_index_hints,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.errors import ValidationError
from crmcore.storage.memory import MemoryStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_counter = itertools.count()


# -- the translation itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter", "query"),
    [
        ({"a": 1}, {"a": {"$eq": 1}}),
        ({"id": "x"}, {"_id": {"$eq": "x"}}),
        ({"a": None}, {"a": {"$eq": None, "$not": {"$type": "array"}}}),
        ({"a": {"$ne": None}}, {"$or": [{"a": {"$ne": None}}, {"a": {"$type": "array"}}]}),
        ({"a": {"$gt": 3}}, {"a": {"$gt": 3, "$not": {"$type": "array"}}}),
        ({"a": {"$gt": None}}, NOTHING),
        ({"a": {"$lt": [1]}}, NOTHING),
        ({"a": {"$in": []}}, NOTHING),
        ({"a": {"$nin": []}}, {}),
        (
            {"a": {"$in": [1, None]}},
            {"$or": [{"a": {"$in": [1]}}, {"a": {"$eq": None, "$not": {"$type": "array"}}}]},
        ),
        (
            {"a": {"$nin": [1, None]}},
            {
                "$and": [
                    {"a": {"$nin": [1]}},
                    {"$or": [{"a": {"$ne": None}}, {"a": {"$type": "array"}}]},
                ]
            },
        ),
        ({"a": {"$exists": False}}, {"a": {"$exists": False}}),
        (
            {"a.b": 1},
            {"$and": [{"a": {"$type": "object", "$not": {"$type": "array"}}}, {"a.b": {"$eq": 1}}]},
        ),
        (
            {"a.b": {"$exists": False}},
            {
                "$or": [
                    {"a": {"$type": "array"}},
                    {"a": {"$not": {"$type": "object"}}},
                    {"a.b": {"$exists": False}},
                ]
            },
        ),
        ({"when": T0}, {"when": {"$eq": "2026-03-02T09:00:00.000000Z"}}),
        ({"$or": [{"a": 1}, {}]}, {}),
        ({"a": 2**70}, {"a": {"$eq": float(2**70)}}),
    ],
)
def test_exact_translations(filter, query):
    tr = translate(filter)
    assert tr.exact
    assert tr.query == query


@pytest.mark.parametrize(
    "filter",
    [
        {"a": [1, 2]},  # a list compared whole: MongoDB also matches a list holding [1, 2]
        {"a": {"b": 1}},  # a mapping: MongoDB compares sub-documents in key order
        {"a": {"$ne": [1]}},
        {"a": {"$in": [[1], 2]}},
        {"a": {"$nin": [{"b": 1}]}},
    ],
)
def test_literals_without_an_exact_mongodb_form_are_rechecked(filter):
    assert not translate(filter).exact


@pytest.mark.parametrize(
    "filter",
    [
        {"a": {"$regex": "x"}},
        {"$where": "1"},
        {"a..b": 1},
        {"a.$b": 1},
        {"$or": []},
        {"a": {"$in": 3}},
        "not a mapping",
    ],
)
def test_bad_filters_are_refused(filter):
    with pytest.raises(ValidationError):
        translate(filter)


def test_sort_plans_end_with_the_id_and_know_which_paths_need_a_probe():
    plan = plan_sort([("priority", -1), ("due_at", 1), ("priority", 1)], frozenset({"priority"}))
    assert plan.keys == [("priority", -1), ("due_at", 1), ("_id", 1)]
    assert plan.unknown == ("due_at",)
    assert plan_sort([("id", -1)]).keys == [("_id", -1)]
    assert sorts_differently([{"a": {"b": 1}}, {"a": 2}, {}], ["a.b"]) is False
    assert sorts_differently([{"a": [{"b": 1}]}], ["a.b"]) is True  # a list on the way
    assert sorts_differently([{"a": {"b": {"c": 1}}}], ["a.b"]) is True
    assert sorts_differently([{"a": {"b": []}}], ["a.b", "x"]) is True
    with pytest.raises(ValidationError):
        plan_sort([("a", 2)])


def test_queries_pinning_a_partial_index_repeat_its_filter():
    partial = [(("open_key",), {"open_key": {"$type": ["string"]}})]
    tr = translate({"open_key": "k"})
    hinted = with_index_hints(tr.query, tr.normal, partial)
    assert hinted == {"$and": [{"open_key": {"$eq": "k"}}, {"open_key": {"$type": ["string"]}}]}
    for unpinned in (
        {"open_key": None},
        {"open_key": {"$exists": True}},
        {"$or": [{"open_key": "k"}, {"x": 1}]},
        {"other": 1},
    ):
        tr = translate(unpinned)
        assert with_index_hints(tr.query, tr.normal, partial) == tr.query


# -- the same answers as the reference ----------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0]),
    st.sampled_from(["", "a", "b", "ab", "B", "é"]),
)
# mongomock equates True with 1 (MongoDB does not), so on mongomock booleans live in a field of
# their own and are never compared with numbers; the real-server run mixes them freely.
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["b", "c"]), inner, max_size=2)
    ),
    max_leaves=4,
)
FIELDS = ["a", "a.b", "n", "flag", "id"]


def documents(mix_bools: bool):
    def doc(i: int, a, n, flag, extra):
        out = {"id": f"k{i:02d}", "flag": flag}
        if a is not ...:
            out["a"] = a
        if n is not ...:
            out["n"] = n
        if mix_bools and extra is not ...:
            out["n"] = extra
        return out

    missing = st.just(...)
    return st.lists(
        st.tuples(
            st.one_of(missing, values),
            st.one_of(missing, scalars),
            st.one_of(st.none(), st.booleans()),
            st.one_of(missing, st.booleans()),
        ),
        min_size=0,
        max_size=7,
    ).map(lambda rows: [doc(i, *row) for i, row in enumerate(rows)])


def leaf(mix_bools: bool):
    operand = st.one_of(scalars, st.booleans()) if mix_bools else scalars
    any_operand = st.one_of(operand, values)
    # On mongomock booleans meet only booleans (see above); elsewhere anything meets anything.
    fields_operands = (
        [(st.sampled_from(FIELDS), any_operand)]
        if mix_bools
        else [
            (st.sampled_from(["a", "a.b", "n", "id"]), any_operand),
            (st.just("flag"), st.one_of(st.none(), st.booleans())),
        ]
    )

    def one(path, op, x):
        return {path: x if op == "literal" else {op: x}}

    parts = []
    for field, x in fields_operands:
        parts += [
            st.builds(one, field, st.sampled_from(["literal", "$eq", "$ne"]), x),
            st.builds(one, field, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), x),
            st.builds(one, field, st.sampled_from(["$in", "$nin"]), st.lists(x, max_size=3)),
            st.builds(one, field, st.just("$exists"), st.booleans()),
        ]
    return st.one_of(*parts)


def filters(mix_bools: bool):
    return st.recursive(
        leaf(mix_bools),
        lambda inner: st.one_of(
            st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda a, b: {**a, **b}, inner, inner),
        ),
        max_leaves=4,
    )


sorts = st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from([1, -1])), max_size=2)


def _compare(open_store, docs, filter, sort, skip, limit):
    name = f"q{next(_counter)}"
    ref = MemoryStore().collection(name)
    coll = open_store.collection(name)
    assert ref.insert_many(docs).ok
    assert coll.insert_many(docs).ok
    ids = lambda found: [d["id"] for d in found]  # noqa: E731
    whole = ref.find(filter, sort=sort)
    assert ids(coll.find(filter, sort=sort)) == ids(whole), (filter, sort)
    assert coll.count(filter) == ref.count(filter)
    assert ids(coll.iter(filter, batch_size=2)) == ids(ref.iter(filter, batch_size=2))
    if sorts_differently(whole, [path for path, _ in sort]):
        # A list or mapping at a sort path: MongoDB's order decides pages and claims (the one
        # documented difference; checking would cost a scan per sorted query).
        return
    assert coll.find(filter, sort=sort, skip=skip, limit=limit) == ref.find(
        filter, sort=sort, skip=skip, limit=limit
    )
    got = coll.claim(filter, owner="w", until=T0 + timedelta(minutes=5), now=T0, sort=sort)
    want = ref.claim(filter, owner="w", until=T0 + timedelta(minutes=5), now=T0, sort=sort)
    assert got == want


@PROPERTY
@given(
    docs=documents(mix_bools=False),
    filter=filters(mix_bools=False),
    sort=sorts,
    skip=st.integers(0, 2),
    limit=st.one_of(st.none(), st.integers(0, 3)),
)
def test_mongomock_answers_as_the_reference(open_mock, docs, filter, sort, skip, limit):
    _compare(_shared(open_mock), docs, filter, sort, skip, limit)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=documents(mix_bools=True),
    filter=filters(mix_bools=True),
    sort=sorts,
    skip=st.integers(0, 2),
    limit=st.one_of(st.none(), st.integers(0, 3)),
)
def test_a_real_server_answers_as_the_reference(open_real, docs, filter, sort, skip, limit):
    _compare(_shared(open_real), docs, filter, sort, skip, limit)


_stores: dict[int, object] = {}


def _shared(opener):
    """One store per test function (hypothesis reruns the body, not the fixture)."""
    if id(opener) not in _stores:
        _stores.clear()
        _stores[id(opener)] = opener()
    return _stores[id(opener)]
