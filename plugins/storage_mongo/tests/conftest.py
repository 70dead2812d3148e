"""Fixtures: the backend on mongomock, and on a real server when ``CRM_TEST_MONGODB_URI`` is set.

TEST-ONLY MONGOMOCK SHIM. mongomock (4.3) is an in-process imitation of MongoDB. It lacks a few
things a real server does, which the backend relies on; ``MongomockShim`` adds exactly those,
for tests, and nothing here is used by the plugin's code:

1. Atomic single-document operations. MongoDB applies ``find_one_and_update`` (and every other
   single-document write) atomically; mongomock finds, then updates, with no lock in between,
   so two threads can both "win" one document. The shim serialises mongomock's operations with
   one lock, which is the guarantee a real server gives.
2. ``$type`` with a list of types (MongoDB 3.6+), used by the partial unique indexes. mongomock
   accepts only one type name.
3. Building a unique partial index over existing documents: MongoDB checks uniqueness only
   among documents the partial filter admits; mongomock checks all of them.
4. pymongo 4.9+ passes ``sort`` to bulk update/replace operations (a MongoDB 8 feature the
   backend does not use); mongomock 4.3 does not accept the argument.

What mongomock cannot show at all (transactions, sessions, ``$jsonSchema`` validators, write
concerns, several processes) is never claimed by tests on it: the backend reports those
capabilities as absent there, and the same suite runs on a real server when one is configured.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import mongomock
import mongomock.collection as mm_collection
import mongomock.filtering as mm_filtering
import pytest
from crmcore_storage_mongo import connection
from crmcore_storage_mongo.store import MongoStore, open_store

from crmcore.clock import ManualClock
from crmcore.storage import StorageOptions
from crmcore.testing import START

MOCK_URI = "mongodb://127.0.0.1:27017"
REAL_URI = os.environ.get("CRM_TEST_MONGODB_URI")
NEEDS_SERVER = "set CRM_TEST_MONGODB_URI (e.g. mongodb://localhost:27017/?replicaSet=rs0) to " \
               "run this against a real MongoDB server"


class MongomockShim:
    """Test-only emulation of the MongoDB behaviour listed in this module's docstring."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.RLock()
        self._mp = monkeypatch

    def install(self) -> None:
        coll = mm_collection.Collection
        for name in ("_insert", "_update", "_find_and_modify", "_delete", "bulk_write",
                     "count_documents", "list_indexes", "drop_index"):
            self._mp.setattr(coll, name, self._locked(getattr(coll, name)))
        self._mp.setattr(coll, "create_index", self._locked(self._create_index(coll.create_index)))
        self._mp.setattr(mm_collection.Cursor, "_compute_results",
                         self._locked(mm_collection.Cursor._compute_results))
        builder = mm_collection.BulkOperationBuilder
        self._mp.setattr(builder, "add_update", _drop_sort(builder.add_update))
        self._mp.setattr(builder, "add_replace", _drop_sort(builder.add_replace))
        operators = mm_filtering._filterer_inst._operator_map
        self._mp.setitem(operators, "$type", _type_list(operators["$type"]))

    def _locked(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return method(*args, **kwargs)
        return locked

    @staticmethod
    def _create_index(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def create_index(self: Any, keys: Any, **kwargs: Any) -> Any:
            partial = kwargs.get("partialFilterExpression")
            if not (kwargs.get("unique") and partial):
                return original(self, keys, **kwargs)
            fields = [k for k, _ in keys]
            seen: set[Any] = set()
            for doc in self.find(partial):
                key = repr([_dotted(doc, f) for f in fields])
                if key in seen:
                    raise mongomock.DuplicateKeyError("E11000 duplicate key error", 11000)
                seen.add(key)
            name = original(self, keys, **{**kwargs, "unique": False})
            self._store.indexes[name]["unique"] = True
            return name
        return create_index


def _dotted(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _drop_sort(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def without_sort(*args: Any, sort: Any = None, **kwargs: Any) -> Any:
        return method(*args, **kwargs)
    return without_sort


def _type_list(single: Callable[..., Any]) -> Callable[..., Any]:
    def type_op(doc_val: Any, search_val: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(search_val, list):
            return any(single(doc_val, t, *args, **kwargs) for t in search_val)
        return single(doc_val, search_val, *args, **kwargs)
    return type_op


@pytest.fixture
def mongomock_shim(monkeypatch: pytest.MonkeyPatch) -> MongomockShim:
    shim = MongomockShim(monkeypatch)
    shim.install()
    return shim


@pytest.fixture
def mock_server(mongomock_shim: MongomockShim) -> Any:
    """One imitation MongoDB server: clients made by ``mock_factory`` all see its data."""
    return mongomock.store.ServerStore()


@pytest.fixture
def mock_factory(mock_server: Any) -> connection.ClientFactory:
    def factory(uri: str, **kwargs: Any) -> Any:
        return mongomock.MongoClient(uri, _store=mock_server, **kwargs)
    return factory


@pytest.fixture
def use_mongomock(monkeypatch: pytest.MonkeyPatch,
                  mock_factory: connection.ClientFactory) -> connection.ClientFactory:
    """Make every store opened through the plugin (``make_crm`` …) use mongomock."""
    monkeypatch.setattr(connection, "client_factory", mock_factory)
    return mock_factory


@pytest.fixture
def open_mock(mock_factory: connection.ClientFactory) -> Iterator[Callable[..., MongoStore]]:
    """``open_mock(**options)``: a store on the imitation server; closed after the test."""
    opened: list[MongoStore] = []

    def open_(uri: str = MOCK_URI, **options: Any) -> MongoStore:
        store = open_store(StorageOptions(uri, options, ManualClock(START)),
                           client_factory=mock_factory)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def open_real() -> Iterator[Callable[..., MongoStore]]:
    """``open_real(**options)``: a store in a fresh database on the configured server."""
    if not REAL_URI:
        pytest.skip(NEEDS_SERVER)
    database = f"crmtest_{uuid.uuid4().hex[:12]}"
    opened: list[MongoStore] = []

    def open_(**options: Any) -> MongoStore:
        store = open_store(StorageOptions(REAL_URI, {"database": database, **options},
                                          ManualClock(START)))
        opened.append(store)
        return store

    yield open_
    for store in opened:
        if not store._closed:
            store.close()
    cleanup = open_store(StorageOptions(REAL_URI, {"database": database}, ManualClock(START)))
    for name in cleanup.client.list_database_names():
        if name == database or name.startswith(f"{database}__"):
            cleanup.client.drop_database(name)
    cleanup.close()
