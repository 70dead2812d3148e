"""Multikey indexes: a document holding a list in an indexed field gets one entry per element,
so equality on an element reads only the documents that hold it, through inserts, updates,
deletes, rolled-back transactions and a reopen (journal or snapshot and its index file)."""

from __future__ import annotations

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb import table as table_module
from crmcore_storage_tinydb import topk as topk_module
from crmcore_storage_tinydb.indexes import MAX_KEYS, Index, plan

from crmcore.errors import DuplicateKeyError
from crmcore.storage import IndexSpec
from crmcore.storage.query import normalize_filter

KEYS = IndexSpec([("keys", 1)])


def _docs(n: int) -> list[dict]:
    return [
        {"id": f"c{i:05d}", "status": "active", "keys": [f"k{i}", f"g{i % 10}", "all"]}
        for i in range(n)
    ]


@pytest.fixture
def decoded(monkeypatch):
    """Counts the documents decoded by selects and sorted walks."""
    seen: list[int] = []
    real = table_module.decode_doc

    def counting(text: str):
        seen.append(1)
        return real(text)

    monkeypatch.setattr(table_module, "decode_doc", counting)
    monkeypatch.setattr(topk_module, "decode_doc", counting)
    return seen


def _ids(docs: list[dict]) -> list[str]:
    return [d["id"] for d in docs]


def test_an_element_lookup_reads_only_the_documents_holding_it(tmp_path, decoded):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("people")
        coll.ensure_index(KEYS)
        coll.insert_many(_docs(2000))
        coll.count()
        decoded.clear()
        assert _ids(coll.find({"keys": "k1234"})) == ["c01234"]
        assert len(decoded) == 1  # not the 2,000 a residual set of list holders cost before
        decoded.clear()
        assert coll.count({"keys": "g3"}) == 200 and not decoded  # exact: counted, not read
        found = coll.find({"keys": {"$in": ["k5", "k7", "g9"]}}, sort=[("id", 1)], limit=3)
        assert _ids(found) == ["c00005", "c00007", "c00009"]
        decoded.clear()
        # beside other conditions, the rarest key drives: 1 candidate, not 2,000
        both = {"status": "active", "$and": [{"keys": "all"}, {"keys": "k42"}]}
        assert _ids(coll.find(both, sort=[("id", 1)], limit=10)) == ["c00042"]
        assert len(decoded) == 1
    finally:
        store.close()


def test_updates_deletes_and_rollbacks_keep_the_element_entries(tmp_path):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("people")
        coll.ensure_index(KEYS)
        coll.insert_many(_docs(20))
        doc = coll.get("c00003")
        coll.update("c00003", {"keys": ["renamed", "all"]}, expected_version=doc["version"])
        assert coll.find({"keys": "k3"}) == []
        assert _ids(coll.find({"keys": "renamed"})) == ["c00003"]
        coll.delete("c00004")
        assert coll.find({"keys": "k4"}) == [] and coll.count({"keys": "all"}) == 19
        with pytest.raises(RuntimeError), store.transaction():
            coll.insert({"id": "c99999", "keys": ["ghost", "all"]})
            coll.update("c00005", {"keys": []}, expected_version=1)
            assert _ids(coll.find({"keys": "ghost"})) == ["c99999"]
            raise RuntimeError("boom")
        assert coll.find({"keys": "ghost"}) == []
        assert _ids(coll.find({"keys": "k5"})) == ["c00005"]
        assert coll.count({"keys": "all"}) == 19
        # an empty list and a scalar live in the same index; neither equals null
        coll.update("c00006", {"keys": []}, expected_version=1)
        coll.update("c00007", {"keys": "k7"}, expected_version=1)
        assert _ids(coll.find({"keys": "k7"})) == ["c00007"]
        assert coll.find({"keys": None}) == [] and coll.find({"keys": "k6"}) == []
        assert coll.count({"keys": {"$gte": "k"}}) == 1  # a list is never in a range: the scalar
    finally:
        store.close()


@pytest.mark.parametrize("how", ["journal", "snapshot"])
def test_a_reopened_store_finds_elements_as_before(tmp_path, how, decoded):
    store = TinyStore(tmp_path / "db")
    coll = store.collection("people")
    coll.ensure_index(KEYS)
    coll.insert_many(_docs(500))
    coll.update("c00010", {"keys": ["moved"]}, expected_version=1)
    if how == "snapshot":
        store.compact()  # writes the snapshot and its index file (entries per element)
    store.close()
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("people")
        coll.count()
        decoded.clear()
        assert _ids(coll.find({"keys": "moved"})) == ["c00010"]
        assert coll.find({"keys": "k10"}) == []
        assert _ids(coll.find({"keys": "k499"})) == ["c00499"]
        assert coll.count({"keys": "g0"}) == 49
        assert len(decoded) == 2
    finally:
        store.close()


def test_a_unique_multikey_index_refuses_a_shared_element(tmp_path):
    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("aliases")
        coll.ensure_index(IndexSpec([("names", 1)], unique=True))
        coll.insert({"id": "a", "names": ["x", "y", "y"]})  # repeats within one document: fine
        with pytest.raises(DuplicateKeyError):
            coll.insert({"id": "b", "names": ["z", "y"]})
        coll.insert({"id": "b", "names": ["z"]})
        with pytest.raises(DuplicateKeyError):
            coll.update("b", {"names": ["x"]}, expected_version=1)
    finally:
        store.close()


def test_lists_in_several_fields_combine_up_to_a_bound():
    index = Index(IndexSpec([("a", 1), ("b", 1)]))
    keys, listy = index.keys({"id": "d", "a": ["p", "q"], "b": [1, 2, 3]})
    assert listy and len(keys) == 6
    big = list(range(MAX_KEYS))
    index.add("d", {"id": "d", "a": ["p", "q"], "b": big})  # 2 x 1024 entries: none at all
    assert len(index.entries) == 0 and index.residual == {"d"}
    chosen = plan(normalize_filter({"a": "p", "b": 5}), [index])
    assert chosen is not None and chosen.check == {"d"}  # always a candidate, checked
