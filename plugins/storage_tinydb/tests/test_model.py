"""Two stores on one folder (as two processes would be), driven at random, always agree with
a plain dictionary: catching up, following compactions, reopening, loading lazily."""

from __future__ import annotations

import pytest
from crmcore_storage_tinydb import TinyStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.errors import ConflictError, NotFoundError
from crmcore.storage import IndexSpec

IDS = st.sampled_from([f"k{i}" for i in range(6)])
OPS = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 1), IDS, st.integers(0, 3)),
    st.tuples(st.just("delete"), st.integers(0, 1), IDS, st.none()),
    st.tuples(st.just("txn"), st.integers(0, 1), IDS, st.booleans()),
    st.tuples(st.just("compact"), st.integers(0, 1), st.none(), st.none()),
    st.tuples(st.just("reopen"), st.integers(0, 1), st.none(), st.none()),
    st.tuples(st.just("check"), st.integers(0, 1), IDS, st.none()),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(OPS, max_size=40))
def test_two_stores_agree_with_a_dictionary(tmp_path_factory, ops):
    folder = tmp_path_factory.mktemp("model") / "db"
    stores = [TinyStore(folder), TinyStore(folder)]
    stores[0].collection("c").ensure_index(IndexSpec([("v", 1)]))
    model: dict[str, int] = {}
    try:
        for op, who, key, arg in ops:
            store = stores[who]
            coll = store.collection("c")
            if op == "put":
                if key in model:
                    coll.update(key, {"v": arg}, expected_version=coll.get(key)["version"])
                else:
                    coll.insert({"id": key, "v": arg})
                model[key] = arg
            elif op == "delete":
                if key in model:
                    coll.delete(key)
                    del model[key]
                else:
                    with pytest.raises(NotFoundError):
                        coll.delete(key)
            elif op == "txn":  # a pair written together, or rolled back
                other = key + "-pair"
                if arg:  # rolled back: the model keeps what it had
                    with pytest.raises(RuntimeError), store.transaction():
                        coll.upsert_many([{"id": key, "v": 9}, {"id": other, "v": 9}])
                        raise RuntimeError("roll back")
                else:
                    with store.transaction():
                        coll.upsert_many([{"id": key, "v": 9}, {"id": other, "v": 9}])
                    model[key] = model[other] = 9
            elif op == "compact":
                store.compact()
            elif op == "reopen":
                store.close()
                stores[who] = TinyStore(folder)
            else:
                if key in model:
                    with pytest.raises(ConflictError):
                        coll.update(key, {"v": 0}, expected_version=99)
            for each in stores:  # both see every committed write on their next operation
                c = each.collection("c")
                assert {d["id"]: d["v"] for d in c.find()} == model
                assert c.count({"v": 9}) == sum(1 for v in model.values() if v == 9)
    finally:
        for store in stores:
            store.close()
