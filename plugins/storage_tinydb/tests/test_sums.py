"""``Collection.sum`` on the embedded store: equal to a plain sum whatever the documents and
filters (property test over the index tests' documents), and answered from index entries,
no document decoded, when an index holding the field covers the filter."""

from __future__ import annotations

import itertools
import math

import pytest
from crmcore_storage_tinydb import TinyStore
from crmcore_storage_tinydb import collection as collection_module
from crmcore_storage_tinydb import sums as sums_module
from crmcore_storage_tinydb import table as table_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.storage.query import compile_filter, resolve

from .test_indexes import INDEXES, documents, filters


def plain_sum(docs, field):
    ints = 0
    floats = []
    for doc in docs:
        value = resolve(doc, field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if isinstance(value, int) or value.is_integer():
            ints += int(value)
        else:
            floats.append(value)
    return math.fsum([*floats, ints]) if floats else ints


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = TinyStore(tmp_path_factory.mktemp("sums") / "db")
    yield store
    store.close()


_counter = itertools.count()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    docs=documents(),
    filter=filters(),
    field=st.sampled_from(["f", "g", "h.k"]),
    indexes=st.lists(st.sampled_from(INDEXES), max_size=3, unique_by=lambda s: s.name),
)
def test_sum_equals_a_plain_sum(shared_store, docs, filter, field, indexes):
    coll = shared_store.collection(f"c{next(_counter)}")
    for spec in indexes:
        coll.ensure_index(spec)
    coll.insert_many(docs)
    match = compile_filter(filter)
    expected = plain_sum([d for d in docs if match(d)], field)
    got = coll.sum(field, filter)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-9)
    if isinstance(expected, int):
        assert got == expected


@pytest.fixture
def decoded(monkeypatch):
    """How many documents were decoded (every read path of the store counts)."""
    calls = []
    for module in (collection_module, sums_module, table_module):
        original = module.decode_doc

        def counting(text, _original=original):
            calls.append(text)
            return _original(text)

        monkeypatch.setattr(module, "decode_doc", counting)
    return calls


def test_a_covered_sum_reads_no_document(tmp_path, decoded):
    from crmcore.storage import IndexSpec

    store = TinyStore(tmp_path / "db")
    try:
        coll = store.collection("accounts")
        coll.ensure_index(IndexSpec([("balance", 1)]))
        coll.ensure_index(IndexSpec([("kind", 1), ("points", 1)]))
        coll.insert_many(
            [
                {"id": f"a{i:03}", "balance": i - 20, "kind": "earn" if i % 3 else "redeem"}
                | ({"points": i * 1.25} if i % 2 else {})
                for i in range(200)
            ]
        )
        del decoded[:]
        assert coll.sum("balance", {"balance": {"$gt": 0}}) == sum(range(1, 180))
        assert coll.sum("balance") == sum(i - 20 for i in range(200))
        assert coll.sum("points", {"kind": "earn"}) == sum(
            i * 1.25 for i in range(200) if i % 3 and i % 2
        )
        assert decoded == []
        # a filter on a field no index holds beside it: the documents are read
        assert coll.sum("balance", {"kind": "redeem"}) == sum(
            i - 20 for i in range(200) if not i % 3
        )
        assert decoded
    finally:
        store.close()
    del decoded[:]
    reopened = TinyStore(tmp_path / "db")  # the index as loaded from its file
    try:
        accounts = reopened.collection("accounts")
        assert accounts.count() == 200  # loaded
        del decoded[:]
        assert accounts.sum("balance", {"balance": {"$gt": 0}}) == sum(range(1, 180))
        assert decoded == []
    finally:
        reopened.close()
