"""Sorted, limited answers and claims walk an index (or the ids) in order and decode only what
they return, yet answer exactly as a full sort of every match does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb import topk as topk_module
from crmcore_storage_tinydb.sortedlist import SortedList
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmcore.storage import IndexSpec
from crmcore.storage.query import compile_filter, lease_is_free, sort_docs

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STATUS = st.one_of(
    st.sampled_from(["open", "open", "done", "x"]),
    st.none(),
    st.lists(st.sampled_from(["open", "done"]), max_size=2),
)
PRIORITY = st.one_of(
    st.integers(0, 3), st.none(), st.booleans(), st.sampled_from([1.5, 2**60, 2**60 + 1, "2"])
)
DUE = st.one_of(
    st.sampled_from(["2026-01", "2026-02", "2026-03", "2026-04", "a\x00", ""]),
    st.none(),
    st.integers(0, 2),
)
# the tasks collection's indexes, and one over a prefix the walk must not take for the order
INDEXES = [
    IndexSpec([("status", 1), ("priority", -1), ("due", 1)]),
    IndexSpec([("status", 1), ("due", 1)]),
    IndexSpec([("who", 1), ("status", 1), ("due", 1)]),
    IndexSpec([("due", 1)], sparse=True),
]
SORTS = [
    [("priority", -1), ("due", 1)],
    [("priority", 1), ("due", -1)],
    [("priority", -1), ("due", -1)],
    [("priority", 1)],
    [("id", 1)],
    [("id", -1)],
    [("status", 1), ("priority", -1)],
    [("due", 1)],
    [("priority", -1), ("due", 1), ("id", -1)],
]


@st.composite
def tasks(draw):
    docs = []
    for id in draw(st.lists(IDS, unique=True, max_size=30)):
        doc = {"id": id}
        for field, values in (
            ("status", STATUS),
            ("priority", PRIORITY),
            ("due", DUE),
            ("who", st.sampled_from(["ann", "bob", None])),
        ):
            if draw(st.integers(0, 5)):
                doc[field] = draw(values)
        if draw(st.integers(0, 3)) == 0:  # leased: by w1 or someone else, ended or not
            doc["lease_owner"] = draw(st.sampled_from(["w1", "w2"]))
            doc["lease_until"] = (
                T0 + timedelta(minutes=draw(st.sampled_from([-1, 0, 5])))
            ).isoformat()
        docs.append(doc)
    return docs


@st.composite
def queries(draw):
    out: dict = {}
    if draw(st.integers(0, 4)):
        out["status"] = draw(st.sampled_from(["open", "done", {"$in": ["open", "x"]}, None]))
    if draw(st.booleans()):
        ops = draw(
            st.lists(
                st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), min_size=1, max_size=2, unique=True
            )
        )
        out["due"] = {op: draw(DUE.filter(lambda v: v is not None)) for op in ops}
    if draw(st.integers(0, 3)) == 0:
        out["who"] = draw(st.sampled_from(["ann", None]))
    if draw(st.integers(0, 5)) == 0:
        out["$or"] = [{"priority": {"$gte": 2}}, {"who": "bob"}]
    return out


# ids whose index bytes sort unlike their text (a NUL, a prefix, 64 characters and more)
IDS = st.one_of(
    st.integers(0, 60).map(lambda i: f"t{i:02d}"),
    st.sampled_from(
        [
            "t1",
            "t1\x00",
            "t1\x00\x01",
            "t1\x01",
            "t",
            "é",
            "t" * 80,
            "t" * 80 + "\x00",
            "t" * 81,
            "\U0001f600",
            "\ue000",
        ]
    ),
)
_counter = itertools.count()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = TinyStore(tmp_path_factory.mktemp("topk") / "db")
    yield store
    store.close()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@example(
    docs=[
        {"id": "t01", "status": "open", "priority": 2**60 + 1, "due": "2026-01"},
        {"id": "t00", "status": "open", "priority": 2**60, "due": "2026-01"},
    ],
    query={"status": "open"},
    sort=[("priority", -1), ("due", 1)],
    limit=1,
    skip=0,
)
@example(
    docs=[
        {"id": "t1\x00", "status": "open", "due": "a"},
        {"id": "t1", "status": "open", "due": "a"},
    ],
    query={"status": "open"},
    sort=[("due", 1)],
    limit=1,
    skip=0,
)
@example(
    docs=[{"id": "t00", "lease_owner": "w2", "lease_until": "2026-03-02T09:05:00+00:00"}],
    query={"who": None},
    sort=[("id", 1)],
    limit=1,
    skip=0,
)  # an exact plan: still leased
@example(
    docs=[
        {"id": "t01", "status": "open", "priority": 1},
        {"id": "t00", "status": ["open"], "priority": 1},
    ],
    query={"status": "open"},
    sort=[("priority", -1)],
    limit=1,
    skip=0,
)
@given(
    docs=tasks(),
    query=queries(),
    sort=st.sampled_from(SORTS),
    limit=st.integers(1, 6),
    skip=st.integers(0, 2),
)
def test_limited_sorted_answers_and_claims_equal_the_full_sort(
    shared_store, docs, query, sort, limit, skip
):
    coll = shared_store.collection(f"c{next(_counter)}")
    for spec in INDEXES:
        coll.ensure_index(spec)
    assert coll.insert_many(docs).ok
    stored = [{**d, "version": 1} for d in docs]
    match = compile_filter(query)
    expected = [d for d in stored if match(d)]
    sort_docs(expected, sort)
    assert coll.find(query, sort=sort, limit=limit, skip=skip) == expected[skip : skip + limit]
    free = [d for d in expected if lease_is_free(d, "w1", T0)]
    until = T0 + timedelta(minutes=9)
    got = coll.claim(query, owner="w1", until=until, now=T0, sort=sort)
    if not free:
        assert got is None
    else:
        assert got["id"] == free[0]["id"]
        assert (got["lease_owner"], got["version"]) == ("w1", 2)


@pytest.fixture
def counted(monkeypatch):
    """A list that grows by one for every document the top-k walk decodes."""
    decoded: list[int] = []
    real = topk_module.decode_doc
    monkeypatch.setattr(topk_module, "decode_doc", lambda text: decoded.append(1) or real(text))
    return decoded


def _fill(store, n):
    tasks = store.collection("tasks")
    for spec in INDEXES:
        tasks.ensure_index(spec)
    tasks.insert_many(
        {
            "id": f"t{i:05d}",
            "status": "open" if i % 4 else "done",
            "priority": i % 3,
            "due": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i:05d}",
            "who": "ann" if i % 2 else "bob",
        }
        for i in range(n)
    )
    tasks.count()  # loaded
    return tasks


def test_the_due_queue_decodes_only_what_it_returns(tmp_path, counted):
    store = TinyStore(tmp_path / "db")
    try:
        tasks = _fill(store, 6000)
        urgency = [("priority", -1), ("due", 1)]
        due = {"status": "open", "due": {"$lte": "2026-06-30"}}
        got = tasks.find(due, sort=urgency, limit=20)
        assert len(got) == 20 and len(counted) == 20
        assert got == tasks.find(due, sort=urgency)[:20]  # no limit: every match sorted
        counted.clear()
        assert (
            len(tasks.find({"status": "open"}, sort=[("priority", 1), ("due", -1)], limit=5))
            == len(counted)
            == 5
        )
        counted.clear()
        ids = [d["id"] for d in tasks.find({}, sort=[("id", -1)], limit=50)]
        assert ids == [f"t{i:05d}" for i in range(5999, 5949, -1)] and len(counted) == 50
        counted.clear()
        # claims walk the same way: each decodes what it passes over, not every candidate
        for n in range(30):
            claimed = tasks.claim(
                due, owner=f"w{n}", until=T0 + timedelta(hours=1), now=T0, sort=urgency
            )
            assert claimed["id"] == got[n]["id"] if n < 20 else claimed["priority"] == 2
        assert len(counted) < 30 * 30
        # a filter narrowed better by another index is answered from that index's candidates
        counted.clear()
        assert len(tasks.find({**due, "who": "ann"}, sort=urgency, limit=5)) == 5
        assert counted == []
    finally:
        store.close()


def test_a_sorted_list_walks_down_and_finds_neighbours():
    items = SortedList(range(0, 5000, 2))
    assert items.ceiling(7) == 8 and items.ceiling(8) == 8 and items.ceiling(4999) is None
    assert items.lower(8) == 6 and items.lower(0) is None and items.lower(10**6) == 4998
    assert list(items.irange_reversed(1995, 2004)) == [2002, 2000, 1998, 1996]
    assert list(items.irange_reversed(None, 3)) == [2, 0]
    assert list(items.irange_reversed()) == list(range(4998, -1, -2))


def test_claims_over_one_due_time_read_no_tie_group(tmp_path, counted):
    """The follow-up sweep's case: every schedule due at the same moment. Each claim takes the
    first free one by id without reading the others that share its time."""
    store = TinyStore(tmp_path / "db")
    try:
        schedules = store.collection("schedules")
        schedules.ensure_index(IndexSpec([("check_at", 1)]))
        schedules.insert_many({"id": f"s{i:05d}", "check_at": "2026-03-01"} for i in range(3000))
        schedules.count()
        taken = []
        for _ in range(200):
            doc = schedules.claim(
                {"check_at": {"$lte": "2026-03-02"}},
                owner="w",
                until=T0 + timedelta(minutes=5),
                now=T0,
                sort=[("check_at", 1)],
            )
            taken.append(doc["id"])
            schedules.update(
                doc["id"],
                {"check_at": "2026-04-01", "lease_owner": None, "lease_until": None},
                expected_version=doc["version"],
            )
        assert taken == [f"s{i:05d}" for i in range(200)]
        assert len(counted) == 200  # one document read per claim
    finally:
        store.close()


def test_a_walk_covering_the_filter_asks_the_planner_nothing(tmp_path, monkeypatch):
    """The due queue's walk narrows by every field of its filter: no plan is weighed for it
    (it could not narrow more); a field the walk does not cover still asks the planner."""
    store = TinyStore(tmp_path / "db")
    try:
        tasks = _fill(store, 400)
        planned: list[int] = []
        real = topk_module.plan
        monkeypatch.setattr(topk_module, "plan", lambda *a: planned.append(1) or real(*a))
        urgency = [("priority", -1), ("due", 1)]
        due = {"status": "open", "due": {"$lte": "2026-06-30"}}
        got = tasks.find(due, sort=urgency, limit=7)
        assert planned == [] and got == tasks.find(due, sort=urgency)[:7]
        narrower = {**due, "who": "ann"}
        got = tasks.find(narrower, sort=urgency, limit=7)
        assert planned == [1] and got == tasks.find(narrower, sort=urgency)[:7]
        either = {**due, "$or": [{"who": "ann"}, {"priority": 0}]}
        got = tasks.find(either, sort=urgency, limit=7)
        assert len(planned) == 2 and got == tasks.find(either, sort=urgency)[:7]
    finally:
        store.close()


def test_a_list_by_id_beside_a_broad_index_walks_the_ids(tmp_path, monkeypatch, counted):
    """``status = active`` sorted by id (``crm customer list``) where an index on ``status``
    narrows to most of the collection: the ids are walked in order and the walk stops at the
    limit, instead of collecting and sorting every active id first. A narrow plan (a rare
    status), or matches bunched late in id order, still answer from the plan's candidates."""
    from crmcore_storage_tinydb import indexes as indexes_module

    collected: list[int] = []
    real_ids = indexes_module.Plan.ids

    def ids(self):
        for id in real_ids(self):
            collected.append(1)
            yield id

    monkeypatch.setattr(indexes_module.Plan, "ids", ids)
    store = TinyStore(tmp_path / "db")
    try:
        people = store.collection("customers")
        people.ensure_index(IndexSpec([("status", 1)]))
        people.ensure_index(IndexSpec([("owner", 1), ("status", 1)]))
        status = ["active"] * 8 + ["archived"]
        people.insert_many(
            {"id": f"c{i:05d}", "status": "rare" if i % 500 == 7 else status[i % 9]}
            for i in range(4000)
        )
        # late: the only "new" customers are the last 200 ids
        people.insert_many({"id": f"z{i:05d}", "status": "new"} for i in range(200))
        people.count()
        for filter, sort in (
            ({"status": "active"}, [("id", 1)]),
            ({"status": "active"}, [("id", -1)]),
            ({"status": {"$in": ["active", "archived"]}}, [("id", 1)]),
        ):
            collected.clear()
            counted.clear()
            got = people.find(filter, sort=sort, limit=50)
            assert collected == [] and len(counted) == 50  # no candidate collected
            assert got == people.find(filter, sort=sort)[:50]
        for filter in ({"status": "rare"}, {"status": "new"}):
            collected.clear()
            counted.clear()
            got = people.find(filter, sort=[("id", 1)], limit=5)
            assert len(collected) in (8, 200)  # the plan's candidates, not every id
            assert len(counted) == 5
            assert got == people.find(filter, sort=[("id", 1)])[:5] and len(got) == 5
    finally:
        store.close()


def test_a_query_is_normalised_once(tmp_path, monkeypatch):
    """The collection normalises a query's filter once and compiles what it normalised (it
    normalised it a second time to compile it)."""
    from crmcore_storage_tinydb import collection as collection_module

    from crmcore.storage import query as query_module

    store = TinyStore(tmp_path / "db")
    try:
        tasks = _fill(store, 40)
        calls: list[int] = []
        real = query_module.normalize_filter

        def counting(filter):
            calls.append(1)
            return real(filter)

        monkeypatch.setattr(query_module, "normalize_filter", counting)
        monkeypatch.setattr(collection_module, "normalize_filter", counting)
        due = {"status": "open", "due": {"$lte": "2026-06-30"}}
        assert len(tasks.find(due, sort=[("priority", -1), ("due", 1)], limit=5)) == 5
        assert len(calls) == 1
        calls.clear()
        assert tasks.count({"$or": [due, {"who": "ann"}]}) > 0
        assert len(calls) == 3  # the filter and its two parts, each once
    finally:
        store.close()
