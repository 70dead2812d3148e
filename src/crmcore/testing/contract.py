"""The storage contract suite. Every backend runs it unchanged.

Use it by subclassing and providing one fixture, ``open_store``: a callable that opens the
backend at one location chosen for the test (the same location on every call, so closing and
calling it again reopens the same data)::

    from crmcore.testing.contract import StorageContract

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def open_store(self, tmp_path):
            return lambda: MyStore(tmp_path / "db")
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from crmcore.errors import ConflictError, DuplicateKeyError, NotFoundError, ValidationError
from crmcore.storage import IndexSpec, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _doc(i: int, **extra: object) -> dict:
    return {"id": f"d{i:05d}", "n": i, "group": "even" if i % 2 == 0 else "odd", **extra}


SEQ = IndexSpec((("seq", 1),), unique=True)


def _entry(n: int, **extra: object) -> dict:
    """Entry ``n`` of a log: numbered in ``seq``, with ids that do not sort like the numbers."""
    return {"id": f"e{n}", "seq": n, "body": f"entry {n}", **extra}


def _stored(n: int, **extra: object) -> dict:
    return {**_entry(n, **extra), "version": 1}


def _append(log, doc: dict, *, ascii: bool = True) -> None:
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=ascii)
    assert log.append(dict(doc), text, sequence="seq") is None


def _open_log(store: Store):
    log = store.collection("log")
    log.ensure_index(SEQ)
    return log


class StoreMachine(RuleBasedStateMachine):
    """Random operations on one collection, checked against a dictionary model."""

    ids = st.sampled_from([f"k{i}" for i in range(8)])
    values = st.integers(min_value=-5, max_value=5)

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.coll = store.collection(f"machine_{uuid.uuid4().hex[:12]}")
        self.model: dict[str, dict] = {}

    @rule(id=ids, n=values)
    def insert(self, id: str, n: int) -> None:
        if id in self.model:
            with pytest.raises(DuplicateKeyError):
                self.coll.insert({"id": id, "n": n})
        else:
            self.model[id] = self.coll.insert({"id": id, "n": n})
            assert self.model[id] == {"id": id, "n": n, "version": 1}

    @rule(id=ids, n=values, stale=st.booleans())
    def update(self, id: str, n: int, stale: bool) -> None:
        if id not in self.model:
            with pytest.raises(NotFoundError):
                self.coll.update(id, {"n": n}, expected_version=1)
            return
        version = self.model[id]["version"]
        if stale:
            with pytest.raises(ConflictError):
                self.coll.update(id, {"n": n}, expected_version=version + 1)
            return
        self.model[id] = self.coll.update(id, {"n": n}, expected_version=version)
        assert self.model[id]["version"] == version + 1

    @rule(id=ids)
    def delete(self, id: str) -> None:
        if id in self.model:
            self.coll.delete(id)
            del self.model[id]
        else:
            with pytest.raises(NotFoundError):
                self.coll.delete(id)

    @rule(low=values, high=values)
    def range_query(self, low: int, high: int) -> None:
        expected = sorted(
            (d for d in self.model.values() if low <= d["n"] < high),
            key=lambda d: (-d["n"], d["id"]),
        )
        got = self.coll.find({"n": {"$gte": low, "$lt": high}}, sort=[("n", -1)])
        assert got == expected

    @invariant()
    def contents_match(self) -> None:
        assert self.coll.count() == len(self.model)
        assert {d["id"]: d for d in self.coll.iter(batch_size=3)} == self.model


class StorageContract:
    """Subclass this and provide the ``open_store`` fixture."""

    @pytest.fixture
    def open_store(self) -> Callable[[], Store]:  # pragma: no cover - must be overridden
        raise NotImplementedError("provide an open_store fixture")

    @pytest.fixture
    def store(self, open_store: Callable[[], Store]) -> Iterator[Store]:
        s = open_store()
        yield s
        s.close()

    @pytest.fixture
    def coll(self, store: Store):
        return store.collection("things")

    # -- CRUD ------------------------------------------------------------------------------

    def test_insert_then_get_returns_the_document_at_version_1(self, coll):
        stored = coll.insert({"id": "a", "name": "Ann", "nested": {"x": [1, 2]}})
        assert stored["version"] == 1
        assert coll.get("a") == {"id": "a", "name": "Ann", "nested": {"x": [1, 2]}, "version": 1}

    def test_insert_duplicate_id_is_refused(self, coll):
        coll.insert({"id": "a"})
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "a", "other": 1})
        assert "other" not in coll.get("a")

    def test_insert_refuses_documents_without_an_id_or_not_json(self, coll):
        with pytest.raises(ValidationError):
            coll.insert({"name": "no id"})
        with pytest.raises(ValidationError):
            coll.insert({"id": "x", "when": datetime.now(UTC)})
        assert coll.count() == 0

    def test_numbers_json_cannot_hold_are_refused_at_any_depth_and_on_update(self, coll):
        for bad in (float("nan"), float("inf"), -float("inf")):
            for doc in (
                {"id": "x", "amount": bad},
                {"id": "x", "n": {"deep": [1.5, bad]}},
                {"id": "x", "rows": [{"v": bad}]},
            ):
                with pytest.raises(ValidationError, match="finite number"):
                    coll.insert(doc)
        assert coll.count() == 0
        stored = coll.insert({"id": "ok", "amount": 2.5, "tiny": 1e-05})
        with pytest.raises(ValidationError, match="amount"):
            coll.update("ok", {"amount": float("nan")}, expected_version=stored["version"])
        assert coll.get("ok")["amount"] == 2.5 and coll.get("ok")["tiny"] == 1e-05

    def test_keys_filters_cannot_address_are_refused(self, coll):
        for bad in (
            {"id": "x", "_id": 1},
            {"id": "x", "a.b": 1},
            {"id": "x", "": 1},
            {"id": "x", "n": {"$set": 1}},
        ):
            with pytest.raises(ValidationError):
                coll.insert(bad)
        assert coll.count() == 0
        # nested keys may hold dots (a map keyed by domain); filters just cannot reach inside
        coll.insert({"id": "ok", "by_domain": {"example.com": 1}})
        assert coll.get("ok")["by_domain"] == {"example.com": 1}

    def test_equality_is_json_equality_at_any_depth(self, coll):
        coll.insert({"id": "a", "flags": [True], "n": 1})
        assert coll.find({"flags": [1]}) == [] and coll.find({"n": True}) == []
        assert [d["id"] for d in coll.find({"flags": [True]})] == ["a"]

    @pytest.mark.parametrize("sort_keys", [False, True])
    def test_insert_encoded_stores_the_document_as_insert_would(self, open_store, sort_keys):
        import json

        docs: list[dict[str, Any]] = [
            {"id": "e1", "n": 1.5, "s": "plain", "nested": {"z": [1, None], "a": True}},
            {"id": "e2", "s": "caf\u00e9 \u540d", "q": '"\\\n'},
            {"id": "e3", "s": "ascii, unescaped by ensure_ascii=False: \x7f"},
        ]
        store = open_store()
        coll = store.collection("things")
        for doc in docs:
            text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
            assert coll.insert_encoded(dict(doc), text) is None
        for doc in docs:
            assert coll.get(doc["id"]) == {**doc, "version": 1}
        assert [d["id"] for d in coll.find({"nested.a": True})] == ["e1"]
        store.close()
        if not store.capabilities.persistent:
            return
        again = open_store()
        try:
            assert again.collection("things").find() == [{**d, "version": 1} for d in docs]
        finally:
            again.close()

    def test_insert_encoded_refuses_what_insert_refuses_and_writes_nothing(self, coll):
        coll.ensure_index(IndexSpec((("key", 1),), unique=True))
        coll.insert({"id": "a", "key": 1})
        with pytest.raises(DuplicateKeyError):
            coll.insert_encoded({"id": "a", "key": 2}, '{"id":"a","key":2}')
        with pytest.raises(DuplicateKeyError):
            coll.insert_encoded({"id": "b", "key": 1}, '{"id":"b","key":1}')
        assert coll.count() == 1 and coll.get("a")["key"] == 1

    def test_get_missing_raises_not_found(self, coll):
        with pytest.raises(NotFoundError):
            coll.get("nope")

    def test_returned_documents_are_copies(self, coll):
        doc: dict[str, Any] = {"id": "a", "tags": ["x"]}
        coll.insert(doc)
        doc["tags"].append("mutated-input")
        got = coll.get("a")
        got["tags"].append("mutated-output")
        assert coll.get("a")["tags"] == ["x"]

    def test_update_sets_fields_and_increments_the_version(self, coll):
        coll.insert({"id": "a", "x": 1, "y": 2})
        new = coll.update("a", {"x": 10, "z": 3}, expected_version=1)
        assert new == {"id": "a", "x": 10, "y": 2, "z": 3, "version": 2}
        assert coll.get("a") == new

    def test_an_empty_update_still_advances_the_version(self, coll):
        # callers use it as a per-record lock: a racing writer's version becomes stale
        coll.insert({"id": "a", "x": 1})
        assert coll.update("a", {}, expected_version=1) == {"id": "a", "x": 1, "version": 2}
        with pytest.raises(ConflictError):
            coll.update("a", {}, expected_version=1)

    def test_stale_update_raises_conflict_and_changes_nothing(self, coll):
        coll.insert({"id": "a", "x": 1})
        coll.update("a", {"x": 2}, expected_version=1)
        with pytest.raises(ConflictError):
            coll.update("a", {"x": 3}, expected_version=1)
        assert coll.get("a")["x"] == 2

    def test_update_missing_raises_not_found(self, coll):
        with pytest.raises(NotFoundError):
            coll.update("nope", {"x": 1}, expected_version=1)

    def test_delete_removes_for_good(self, coll):
        coll.insert({"id": "a"})
        coll.delete("a")
        with pytest.raises(NotFoundError):
            coll.get("a")
        assert coll.count() == 0
        with pytest.raises(NotFoundError):
            coll.delete("a")

    def test_delete_with_stale_version_is_refused(self, coll):
        coll.insert({"id": "a"})
        coll.update("a", {"x": 1}, expected_version=1)
        with pytest.raises(ConflictError):
            coll.delete("a", expected_version=1)
        coll.delete("a", expected_version=2)
        assert coll.count() == 0

    # -- queries ---------------------------------------------------------------------------

    @pytest.fixture
    def filled(self, coll):
        result = coll.insert_many(
            [
                _doc(
                    i,
                    when=(T0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    tags=["t3"] if i % 3 == 0 else [],
                    opt=i if i % 5 == 0 else None,
                    sub={"k": i % 4},
                )
                for i in range(20)
            ]
        )
        assert result.ok and len(result.ids) == 20
        return coll

    def _ns(self, docs):
        return [d["n"] for d in docs]

    def test_find_by_equality(self, filled):
        assert self._ns(filled.find({"group": "even"})) == list(range(0, 20, 2))

    def test_find_by_nested_path(self, filled):
        assert self._ns(filled.find({"sub.k": 1})) == [1, 5, 9, 13, 17]

    def test_find_by_comparisons(self, filled):
        assert self._ns(filled.find({"n": {"$gt": 16}})) == [17, 18, 19]
        assert self._ns(filled.find({"n": {"$gte": 16, "$lt": 18}})) == [16, 17]
        assert self._ns(filled.find({"n": {"$lte": 1}})) == [0, 1]
        assert self._ns(filled.find({"n": {"$ne": 0, "$lt": 3}})) == [1, 2]

    def test_range_over_datetimes_in_stored_form(self, filled):
        lo = T0 + timedelta(hours=3)
        hi = T0 + timedelta(hours=5)
        assert self._ns(filled.find({"when": {"$gte": lo, "$lt": hi}})) == [3, 4]

    def test_find_by_membership(self, filled):
        assert self._ns(filled.find({"n": {"$in": [3, 7, 99]}})) == [3, 7]
        assert len(filled.find({"n": {"$nin": [3, 7]}})) == 18

    def test_list_fields_match_contained_values(self, filled):
        assert self._ns(filled.find({"tags": "t3"})) == [0, 3, 6, 9, 12, 15, 18]

    def test_existence_and_null(self, filled):
        filled.insert({"id": "zz", "n": 100})  # has no 'opt' key at all
        assert len(filled.find({"opt": {"$exists": False}})) == 1
        assert len(filled.find({"opt": {"$exists": True}})) == 20
        # None matches null or missing
        assert len(filled.find({"opt": None})) == 17
        assert self._ns(filled.find({"opt": {"$ne": None}})) == [0, 5, 10, 15]

    def test_or_and(self, filled):
        got = filled.find({"$or": [{"n": 1}, {"n": {"$gt": 18}}]})
        assert self._ns(got) == [1, 19]
        got = filled.find({"$and": [{"n": {"$gt": 2}}, {"n": {"$lt": 5}}]})
        assert self._ns(got) == [3, 4]

    def test_unknown_operator_is_refused(self, filled):
        with pytest.raises(ValidationError):
            filled.find({"n": {"$regex": "x"}})

    def test_sort_limit_skip(self, filled):
        got = filled.find({}, sort=[("n", -1)], limit=3)
        assert self._ns(got) == [19, 18, 17]
        got = filled.find({}, sort=[("group", 1), ("n", -1)], skip=1, limit=2)
        assert self._ns(got) == [16, 14]

    def test_limited_sorts_equal_the_full_sort_with_ties_by_id(self, coll):
        # an index giving the order after a fixed field, as the tasks' urgency index does
        coll.ensure_index(IndexSpec((("status", 1), ("p", -1), ("due", 1))))
        docs: list[dict[str, Any]] = [
            {
                "id": f"k{(i * 7) % 30:02d}",
                "status": "open" if i % 5 else "done",
                "p": i % 3,
                "due": f"2026-0{1 + i % 4}",
            }
            for i in range(30)
        ]
        assert coll.insert_many(docs).ok
        urgency = [("p", -1), ("due", 1)]
        query = {"status": "open", "due": {"$lte": "2026-03"}}
        expected = sorted(
            (d for d in docs if d["status"] == "open" and d["due"] <= "2026-03"),
            key=lambda d: (-d["p"], d["due"], d["id"]),
        )
        full = coll.find(query, sort=urgency)
        assert [d["id"] for d in full] == [d["id"] for d in expected]
        for limit in (1, 2, 3, 7, len(full) + 3):
            for skip in (0, 1, 4):
                assert (
                    coll.find(query, sort=urgency, limit=limit, skip=skip)
                    == full[skip : skip + limit]
                )
        flipped = coll.find(query, sort=[("p", 1), ("due", -1)], limit=4)
        assert [d["id"] for d in flipped] == [
            d["id"]
            for d in sorted(expected, key=lambda d: (d["p"], [-ord(c) for c in d["due"]], d["id"]))
        ][:4]
        ids = sorted(d["id"] for d in docs)
        assert [d["id"] for d in coll.find({}, sort=[("id", -1)], limit=3)] == ids[::-1][:3]
        opened = sorted(d["id"] for d in docs if d["status"] == "open")
        assert [
            d["id"] for d in coll.find({"status": "open"}, sort=[("id", 1)], limit=5, skip=2)
        ] == opened[2:7]

    def test_sort_puts_nulls_first(self, filled):
        got = filled.find({"n": {"$lt": 6}}, sort=[("opt", 1)])
        assert self._ns(got)[-2:] == [0, 5]

    def test_count(self, filled):
        assert filled.count() == 20
        assert filled.count({"group": "odd", "n": {"$gt": 10}}) == 5

    # -- sum -------------------------------------------------------------------------------

    SUM_QUERIES: tuple[dict[str, Any], ...] = (
        {},
        {"group": "a"},
        {"group": {"$in": ["a", "c"]}},
        {"amount": {"$gt": 0}},
        {"amount": {"$gte": -3, "$lt": 10}},
        {"group": "b", "amount": {"$lte": 0}},
        {"group": {"$in": ["a", "b"]}, "amount": {"$gt": -5}},
        {"tag": "x"},
        {"group": "a", "tag": "y"},
        {"$or": [{"group": "a"}, {"amount": {"$lt": -5}}]},
        {"group": "nobody"},
    )

    @staticmethod
    def _sum_docs(seed: int, n: int) -> list[dict[str, Any]]:
        import random

        rnd = random.Random(seed)
        kinds = ("int", "neg", "zero", "float", "whole float", "missing", "null", "text", "bool")
        docs = []
        for i in range(n):
            kind = rnd.choice(kinds)
            amount: Any = {
                "int": rnd.randint(1, 10**6),
                "neg": -rnd.randint(1, 10**6),
                "zero": 0,
                "float": round(rnd.uniform(-1000, 1000), rnd.randint(1, 6)),
                "whole float": float(rnd.randint(-50, 50)),
                "null": None,
                "text": "12",
                "bool": rnd.random() < 0.5,
            }.get(kind)
            doc: dict[str, Any] = {"id": f"d{i:04}", "group": rnd.choice("abc")}
            if kind != "missing":
                doc["amount"] = amount
            if rnd.random() < 0.5:
                doc["tag"] = rnd.choice("xy")
            doc["nested"] = {"v": amount} if kind != "missing" else {}
            docs.append(doc)
        return docs

    @staticmethod
    def _plain_sum(docs: list[dict[str, Any]], field: str) -> tuple[int | float, bool]:
        """The exact sum of the numbers (not booleans) in ``field``, and whether all are ints."""
        import math

        numbers = []
        for doc in docs:
            value: Any = doc
            for part in field.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers.append(value)
        if all(isinstance(v, int) or float(v).is_integer() for v in numbers):
            return sum(int(v) for v in numbers), True
        return math.fsum(numbers), False

    @pytest.mark.parametrize("indexed", ["none", "field", "compound"])
    def test_sum_equals_a_plain_sum_over_random_documents(self, coll, indexed):
        if indexed == "field":
            coll.ensure_index(IndexSpec([("amount", 1)]))
            coll.ensure_index(IndexSpec([("nested.v", 1)], sparse=True))
        elif indexed == "compound":
            coll.ensure_index(IndexSpec([("group", 1), ("amount", -1)]))
            coll.ensure_index(IndexSpec([("group", 1), ("tag", 1), ("amount", 1)], sparse=True))
        for seed in (1, 2):
            for doc in list(coll.iter()):
                coll.delete(doc["id"])
            assert coll.sum("amount") == 0
            coll.insert_many(self._sum_docs(seed, 150))
            for field in ("amount", "nested.v"):
                for query in self.SUM_QUERIES:
                    expected, whole = self._plain_sum(coll.find(query), field)
                    got = coll.sum(field, query)
                    assert isinstance(got, int | float) and not isinstance(got, bool)
                    if whole:
                        assert got == expected, (seed, field, query)
                    else:
                        assert got == pytest.approx(expected, rel=1e-12, abs=1e-9), (field, query)

    def test_sum_after_writes_and_of_lists_and_huge_numbers(self, coll):
        coll.ensure_index(IndexSpec([("amount", 1)]))
        coll.insert_many([{"id": "a", "amount": 5}, {"id": "b", "amount": 7}])
        assert coll.sum("amount", {"amount": {"$gt": 0}}) == 12
        coll.update("a", {"amount": -2}, expected_version=1)
        assert coll.sum("amount") == 5
        assert coll.sum("amount", {"amount": {"$gt": 0}}) == 7
        coll.delete("b")
        assert coll.sum("amount") == -2
        # integers beyond a float's precision add exactly
        coll.insert({"id": "big", "amount": 2**60 + 1})
        assert coll.sum("amount") == 2**60 - 1
        assert coll.sum("amount", {"amount": {"$gt": 0}}) == 2**60 + 1
        # a list is not a number (and puts entries per element in an index): it adds nothing
        coll.insert({"id": "list", "amount": [100, 200]})
        assert coll.sum("amount") == 2**60 - 1
        assert coll.sum("missing") == 0

    def test_find_one(self, filled):
        assert filled.find_one({"n": {"$gt": 10}}, sort=[("n", 1)])["n"] == 11
        assert filled.find_one({"n": -1}) is None

    # -- bulk ------------------------------------------------------------------------------

    def test_insert_many_reports_each_failure_and_keeps_the_rest(self, coll):
        coll.insert({"id": "d00001"})
        result = coll.insert_many([_doc(0), _doc(1), {"no": "id"}, _doc(2)])
        assert result.ids == ("d00000", "d00002")
        assert [e.index for e in result.errors] == [1, 2]
        assert coll.count() == 3

    def test_upsert_many_inserts_and_replaces(self, coll):
        coll.insert({"id": "a", "x": 1, "gone": True})
        result = coll.upsert_many([{"id": "a", "x": 2}, {"id": "b", "x": 3}])
        assert result.ok
        assert coll.get("a") == {"id": "a", "x": 2, "version": 2}
        assert coll.get("b")["version"] == 1

    def test_iteration_of_a_large_collection_yields_each_once_in_id_order(self, coll):
        assert coll.insert_many(_doc(i) for i in range(2500)).ok
        seen = [d["id"] for d in coll.iter(batch_size=300)]
        assert seen == sorted(seen) and len(seen) == 2500 and len(set(seen)) == 2500
        assert sum(1 for _ in coll.iter({"group": "odd"}, batch_size=7)) == 1250

    def test_import_raw_keeps_versions_and_reports_clashes(self, coll):
        coll.insert({"id": "taken"})
        result = coll.import_raw(
            [
                {"id": "a", "x": 1, "version": 7},
                {"id": "taken", "version": 2},
                {"id": "b", "version": 0},
                {"id": "c", "version": 1},
            ]
        )
        assert result.ids == ("a", "c") and [e.index for e in result.errors] == [1, 2]
        assert coll.get("a") == {"id": "a", "x": 1, "version": 7}
        coll.update("a", {"x": 2}, expected_version=7)
        assert coll.get("a")["version"] == 8

    # -- indexes ---------------------------------------------------------------------------

    def test_ensure_index_is_idempotent_and_listed(self, coll):
        spec = IndexSpec((("group", 1), ("n", -1)))
        coll.ensure_index(spec)
        coll.ensure_index(spec)
        assert [i.name for i in coll.indexes()].count(spec.name) == 1

    def test_index_does_not_change_results(self, coll):
        coll.insert_many(_doc(i) for i in range(50))
        before = coll.find({"group": "odd", "n": {"$gte": 10}}, sort=[("n", 1)])
        coll.ensure_index(IndexSpec((("group", 1), ("n", 1))))
        coll.ensure_index(IndexSpec((("n", 1),)))
        assert coll.find({"group": "odd", "n": {"$gte": 10}}, sort=[("n", 1)]) == before
        coll.insert(_doc(51))
        coll.update("d00051", {"n": 13}, expected_version=1)
        assert [d["id"] for d in coll.find({"n": 13})] == ["d00013", "d00051"]
        coll.delete("d00013")
        assert [d["id"] for d in coll.find({"n": 13})] == ["d00051"]

    def test_unique_index_refuses_duplicates_on_insert_and_update(self, coll):
        coll.ensure_index(IndexSpec((("email", 1),), unique=True, sparse=True))
        coll.insert({"id": "a", "email": "x@example.com"})
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "b", "email": "x@example.com"})
        coll.insert({"id": "c", "email": "y@example.com"})
        with pytest.raises(DuplicateKeyError):
            coll.update("c", {"email": "x@example.com"}, expected_version=1)
        assert coll.get("c")["email"] == "y@example.com"
        # the key is free again once its holder changes
        coll.update("a", {"email": "z@example.com"}, expected_version=1)
        coll.update("c", {"email": "x@example.com"}, expected_version=1)

    def test_sparse_unique_index_lets_missing_values_coexist(self, coll):
        coll.ensure_index(IndexSpec((("key", 1),), unique=True, sparse=True))
        coll.insert({"id": "a", "key": None})
        coll.insert({"id": "b"})
        coll.insert({"id": "c", "key": None})
        assert coll.count() == 3

    def test_unique_index_over_existing_duplicates_is_refused(self, coll):
        coll.insert({"id": "a", "k": 1})
        coll.insert({"id": "b", "k": 1})
        with pytest.raises(DuplicateKeyError):
            coll.ensure_index(IndexSpec((("k", 1),), unique=True))

    # -- leases ----------------------------------------------------------------------------

    def test_claim_leases_one_document_to_one_owner(self, coll):
        coll.insert_many(_doc(i, status="open") for i in range(3))
        until = T0 + timedelta(minutes=5)
        a = coll.claim({"status": "open"}, owner="w1", until=until, now=T0, sort=[("n", 1)])
        b = coll.claim({"status": "open"}, owner="w2", until=until, now=T0, sort=[("n", 1)])
        assert (a["id"], b["id"]) == ("d00000", "d00001")
        assert a["lease_owner"] == "w1"
        c = coll.claim({"n": 0}, owner="w2", until=until, now=T0)
        assert c is None  # w1 holds it
        again = coll.claim({"n": 0}, owner="w1", until=until, now=T0)
        assert again["id"] == "d00000"  # an owner may renew its own lease

    def test_claims_follow_the_sort_and_pass_over_leased_documents(self, coll):
        coll.ensure_index(IndexSpec((("status", 1), ("p", -1), ("due", 1))))
        coll.insert_many(
            {"id": f"c{i}", "status": "open", "p": p, "due": due}
            for i, (p, due) in enumerate([(1, "b"), (2, "c"), (2, "a"), (2, "a"), (0, "a")])
        )
        until = T0 + timedelta(minutes=5)
        query = {"status": "open", "due": {"$lte": "b"}}
        urgency = [("p", -1), ("due", 1)]
        got = [
            coll.claim(query, owner=f"w{n}", until=until, now=T0, sort=urgency)["id"]
            for n in range(4)
        ]
        assert got == ["c2", "c3", "c0", "c4"]  # ties by id; c1 is not due
        assert coll.claim(query, owner="w9", until=until, now=T0, sort=urgency) is None
        assert coll.claim(query, owner="w1", until=until, now=T0, sort=urgency)["id"] == "c3"
        later = until  # every lease has ended
        assert (
            coll.claim(
                query, owner="w9", until=later + timedelta(minutes=1), now=later, sort=urgency
            )["id"]
            == "c2"
        )

    def test_an_expired_lease_can_be_claimed_and_release_frees(self, coll):
        coll.insert(_doc(0))
        coll.claim({}, owner="w1", until=T0 + timedelta(minutes=1), now=T0)
        assert coll.claim({}, owner="w2", until=T0 + timedelta(minutes=9), now=T0) is None
        later = T0 + timedelta(minutes=1)
        assert coll.claim({}, owner="w2", until=later + timedelta(minutes=1), now=later)
        coll.release("d00000", owner="w1")  # not the holder any more: no effect
        assert coll.get("d00000")["lease_owner"] == "w2"
        coll.release("d00000", owner="w2")
        assert coll.claim({}, owner="w3", until=later + timedelta(minutes=1), now=later)

    def test_concurrent_claims_never_hand_out_a_document_twice(self, coll):
        coll.insert_many(_doc(i) for i in range(40))
        taken: list[str] = []
        lock = threading.Lock()

        def worker(name: str) -> None:
            while True:
                doc = coll.claim(
                    {"done": {"$ne": True}}, owner=name, until=T0 + timedelta(hours=1), now=T0
                )
                if doc is None:
                    return
                with lock:
                    taken.append(doc["id"])
                coll.update(doc["id"], {"done": True}, expected_version=doc["version"])

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(taken) == [f"d{i:05d}" for i in range(40)]

    # -- transactions ----------------------------------------------------------------------

    def test_transaction_commits(self, store):
        with store.transaction():
            store.collection("a").insert({"id": "1"})
            store.collection("b").insert({"id": "2"})
        assert store.collection("a").count() == 1
        assert store.collection("b").count() == 1

    def test_transaction_rolls_back_when_supported(self, store):
        if not store.capabilities.transactions:
            pytest.skip(f"{store.describe()} declares no multi-document transactions")
        a = store.collection("a")
        a.insert({"id": "keep", "x": 1})
        with pytest.raises(RuntimeError), store.transaction():
            a.update("keep", {"x": 2}, expected_version=1)
            a.insert({"id": "new"})
            store.collection("b").insert({"id": "other"})
            a.delete("keep")
            raise RuntimeError("boom")
        assert a.get("keep") == {"id": "keep", "x": 1, "version": 1}
        assert a.count() == 1
        assert store.collection("b").count() == 0

    def test_run_in_transaction_returns_what_it_runs_atomically(self, store):
        a = store.collection("a")

        def two(tag):
            a.insert({"id": f"{tag}1"})
            a.insert({"id": f"{tag}2"})
            return tag

        assert store.run_in_transaction(two, "x") == "x" and a.count() == 2
        with store.transaction():  # joins the open transaction
            assert store.run_in_transaction(two, "y") == "y"
        assert a.count() == 4
        if not store.capabilities.transactions:
            return

        def fails():
            a.insert({"id": "lost"})
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.run_in_transaction(fails)
        with pytest.raises(RuntimeError), store.transaction():
            store.run_in_transaction(two, "z")
            raise RuntimeError("the outer transaction fails after it")
        assert a.count() == 4 and a.find({"id": "lost"}) == []

    # -- logs (append / last) ---------------------------------------------------------------

    def test_an_empty_log_has_no_last_entry_and_appends_from_1(self, store):
        log = _open_log(store)
        assert log.last("seq") is None
        for n in (1, 2, 3):
            _append(log, _entry(n))
            assert log.last("seq") == _stored(n)
        assert log.find(sort=[("seq", 1)]) == [_stored(1), _stored(2), _stored(3)]
        assert log.get("e2") == _stored(2)
        assert log.count() == 3 and log.count({"seq": {"$gt": 1}}) == 2

    def test_last_is_the_highest_number_whatever_the_ids(self, store):
        log = _open_log(store)
        for n in range(1, 13):  # "e12" sorts before "e9"
            _append(log, _entry(n))
        assert log.last("seq") == _stored(12)

    def test_appending_a_number_already_taken_is_refused_and_writes_nothing(self, store):
        log = _open_log(store)
        _append(log, _entry(1))
        _append(log, _entry(2))
        for taken in (2, 1):
            with pytest.raises(DuplicateKeyError):
                _append(log, {**_entry(taken), "id": f"other{taken}"})
        assert log.count() == 2
        assert log.last("seq") == _stored(2)
        with pytest.raises(NotFoundError):
            log.get("other2")
        _append(log, _entry(3))
        assert log.last("seq") == _stored(3)

    def test_a_rolled_back_append_is_not_kept_and_its_number_stays_free(self, store):
        if not store.capabilities.transactions:
            pytest.skip(f"{store.describe()} declares no multi-document transactions")
        log = _open_log(store)
        _append(log, _entry(1))
        with pytest.raises(RuntimeError), store.transaction():
            _append(log, _entry(2))
            _append(log, _entry(3))
            raise RuntimeError("boom")
        assert log.last("seq") == _stored(1)
        assert log.find() == [_stored(1)]
        _append(log, _entry(2))
        assert log.last("seq") == _stored(2)
        assert log.count() == 2

    def test_an_append_is_seen_by_reads_in_its_own_transaction(self, store):
        log = _open_log(store)
        _append(log, _entry(1))
        with store.transaction():
            _append(log, _entry(2))
            assert log.last("seq") == _stored(2)
            _append(log, _entry(3))
            assert log.last("seq") == _stored(3)
            assert log.get("e3") == _stored(3)
            assert [d["seq"] for d in log.find(sort=[("seq", 1)])] == [1, 2, 3]
        assert log.last("seq") == _stored(3)
        assert log.count() == 3

    def test_a_reopened_log_keeps_its_entries_and_appending_goes_on(self, open_store):
        first = open_store()
        if not first.capabilities.persistent:
            first.close()
            pytest.skip(f"{first.describe()} is not persistent")
        log = _open_log(first)
        for n in (1, 2, 3):
            _append(log, _entry(n))
        first.close()
        second = open_store()
        try:
            log = _open_log(second)
            assert log.last("seq") == _stored(3)
            with pytest.raises(DuplicateKeyError):
                _append(log, {**_entry(3), "id": "late"})
            _append(log, _entry(4))
            assert log.last("seq") == _stored(4)
        finally:
            second.close()
        third = open_store()
        try:
            log = _open_log(third)
            assert log.find(sort=[("seq", 1)]) == [_stored(n) for n in (1, 2, 3, 4)]
            assert log.last("seq") == _stored(4)
        finally:
            third.close()

    def test_appended_text_that_is_not_ascii_reads_back_equal(self, open_store):
        bodies = ["caf\u00e9 \u540d", 'quote " backslash \\ newline \n', "\u2028\x7f\U0001f600"]
        docs = [_entry(n, body=body) for n, body in enumerate(bodies, start=1)]
        store = open_store()
        log = _open_log(store)
        for doc in docs:
            _append(log, doc, ascii=False)
        expected = [{**doc, "version": 1} for doc in docs]
        assert log.find(sort=[("seq", 1)]) == expected
        assert log.last("seq") == expected[-1]
        assert log.get("e1") == expected[0]
        store.close()
        if not store.capabilities.persistent:
            return
        again = open_store()
        try:
            log = _open_log(again)
            assert log.last("seq") == expected[-1]
            assert log.find(sort=[("seq", 1)]) == expected
        finally:
            again.close()

    # -- random operations against a model --------------------------------------------------

    def test_random_operations_match_a_dictionary_model(self, store):
        run_state_machine_as_test(
            lambda: StoreMachine(store),  # type: ignore[arg-type]  # any factory works; typed as a class
            settings=settings(
                max_examples=25,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )

    # -- lifecycle -------------------------------------------------------------------------

    def test_collection_names(self, store):
        store.collection("alpha").insert({"id": "1"})
        store.collection("beta").insert({"id": "1"})
        assert {"alpha", "beta"} <= set(store.collection_names())

    def test_close_and_reopen_keeps_data_and_indexes(self, open_store):
        first = open_store()
        if not first.capabilities.persistent:
            first.close()
            pytest.skip(f"{first.describe()} is not persistent")
        coll = first.collection("things")
        coll.ensure_index(IndexSpec((("email", 1),), unique=True, sparse=True))
        coll.insert_many(_doc(i, email=f"p{i}@example.com") for i in range(100))
        coll.update("d00007", {"n": 700}, expected_version=1)
        coll.delete("d00008")
        first.close()
        second = open_store()
        try:
            again = second.collection("things")
            assert again.count() == 99
            assert again.get("d00007") == {
                **_doc(7, email="p7@example.com"),
                "n": 700,
                "version": 2,
            }
            with pytest.raises(DuplicateKeyError):
                again.insert({"id": "new", "email": "p1@example.com"})
        finally:
            second.close()
