"""Sharded collections: every single-document write names the document's full shard key.

mongomock cannot shard. What is verified here is the filters the backend sends (recorded at
mongomock's boundary) and that the writes still do what the contract says; that a sharded
cluster accepts them is not verified by any test in this project (see docs/scaling.md).
"""

from __future__ import annotations

from datetime import timedelta

import mongomock.collection as mm_collection
import pytest

from crmcore.errors import ConfigError, ConflictError, NotFoundError
from crmcore.testing import START

KEY = ["customer_id", "occurred_at"]


@pytest.fixture
def sent(monkeypatch):
    """(collection, operation, filter) of every single-document write sent to mongomock."""
    calls: list[tuple[str, str, dict]] = []
    for name in ("find_one_and_update", "delete_one", "update_one", "replace_one"):
        original = getattr(mm_collection.Collection, name)

        def spy(self, filter, *args, _original=original, _name=name, **kwargs):
            calls.append((self.name, _name, filter))
            return _original(self, filter, *args, **kwargs)

        monkeypatch.setattr(mm_collection.Collection, name, spy)
    return calls


@pytest.fixture
def store(open_mock):
    return open_mock(shard_keys={"interactions": KEY})


def _names_the_key(filter: dict, customer: str | None, at: str | None) -> bool:
    text = repr(filter)
    return "'_id'" in text and repr(customer) in text and repr(at) in text


def test_updates_and_deletes_name_the_shard_key(store, sent):
    coll = store.collection("interactions")
    coll.insert({"id": "i1", "customer_id": "c1", "occurred_at": "2026-01-01", "n": 1})
    coll.update("i1", {"n": 2}, expected_version=1)
    with pytest.raises(ConflictError):
        coll.update("i1", {"n": 3}, expected_version=1)
    moved = coll.update("i1", {"customer_id": "c2"}, expected_version=2)  # a merge moves it
    assert moved["customer_id"] == "c2" and moved["version"] == 3
    coll.delete("i1", expected_version=3)
    with pytest.raises(NotFoundError):
        coll.update("i1", {"n": 4}, expected_version=3)
    writes = [(op, f) for name, op, f in sent if name == "interactions"]
    assert [op for op, _ in writes] == ["find_one_and_update"] * 3 + ["delete_one"]
    assert _names_the_key(writes[0][1], "c1", "2026-01-01")
    assert _names_the_key(writes[2][1], "c1", "2026-01-01")  # the key as stored, not as wanted
    assert _names_the_key(writes[3][1], "c2", "2026-01-01")


def test_a_missing_shard_key_field_is_named_as_null(store, sent):
    coll = store.collection("interactions")
    coll.insert({"id": "i1", "customer_id": "c1"})
    coll.update("i1", {"n": 1}, expected_version=1)
    ((_, _, filter),) = [c for c in sent if c[0] == "interactions"]
    assert filter["occurred_at"] is None and filter["customer_id"] == "c1"


def test_claims_and_releases_on_a_sharded_collection_name_the_shard_key(open_mock, sent):
    store = open_mock(shard_keys={"tasks": ["customer_id"]})
    coll = store.collection("tasks")
    coll.insert_many(
        {"id": f"t{i}", "customer_id": f"c{i}", "status": "open", "n": i} for i in range(3)
    )
    until = START + timedelta(minutes=5)
    got = coll.claim({"status": "open"}, owner="w1", until=until, now=START, sort=[("n", 1)])
    assert got["id"] == "t0"
    assert coll.claim({"n": 0}, owner="w2", until=until, now=START) is None
    coll.release("t0", owner="w1")
    for _, op, filter in [c for c in sent if c[0] == "tasks"]:
        assert "customer_id" in repr(filter), (op, filter)


def test_unsharded_collections_keep_the_plain_filter(store, sent):
    coll = store.collection("customers")
    coll.insert({"id": "c1"})
    coll.update("c1", {"n": 1}, expected_version=1)
    assert sent == [("customers", "find_one_and_update", {"_id": "c1", "version": 1})]


def test_upserts_on_a_sharded_collection_name_the_shard_key(store, monkeypatch):
    coll = store.collection("interactions")
    coll.insert({"id": "i1", "customer_id": "c1", "occurred_at": "t"})
    seen = []
    original = mm_collection.BulkOperationBuilder.add_replace

    def spy(self, selector, *args, **kwargs):
        seen.append(selector)
        return original(self, selector, *args, **kwargs)

    monkeypatch.setattr(mm_collection.BulkOperationBuilder, "add_replace", spy)
    result = coll.upsert_many([{"id": "i1", "customer_id": "c1", "occurred_at": "t", "x": 1}])
    assert result.ok and coll.get("i1")["x"] == 1
    assert any(s.get("customer_id") == "c1" and s.get("occurred_at") == "t" for s in seen)


def test_shard_keys_are_validated(open_mock):
    with pytest.raises(ConfigError, match=r"storage\.options\.shard_keys"):
        open_mock(shard_keys={"interactions": []})
    with pytest.raises(ConfigError, match="shard_keys"):
        open_mock(shard_keys={"interactions": ["version"]})
