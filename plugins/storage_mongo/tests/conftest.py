"""Fixtures: the backend on mongomock, and on a real server when ``CRM_TEST_MONGODB_URI`` is set.

mongomock is an in-process imitation of MongoDB. What it lacks and the backend relies on is
added by the plugin's own adapter (``crmcore_storage_mongo.mock``, the ``[mock]`` extra), the
same code an integrator runs with ``location = "mongomock://"``. What mongomock cannot show at
all (transactions, sessions, ``$jsonSchema`` validators, write concerns, several processes,
a real server clock) is never claimed by tests on it: the backend reports those capabilities
as absent there, and the same suite runs on a real server when one is configured.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from crmcore_storage_mongo import connection, mock
from crmcore_storage_mongo.store import MongoStore, open_store

from crmcore.clock import ManualClock
from crmcore.storage import StorageOptions
from crmcore.testing import START

MOCK_URI = "mongodb://127.0.0.1:27017"
REAL_URI = os.environ.get("CRM_TEST_MONGODB_URI")
NEEDS_SERVER = (
    "set CRM_TEST_MONGODB_URI (e.g. mongodb://localhost:27017/?replicaSet=rs0) to "
    "run this against a real MongoDB server"
)


@pytest.fixture
def server_clock() -> ManualClock:
    """The imitation server's clock (what ``$$NOW`` evaluates to on mongomock)."""
    return ManualClock(START)


@pytest.fixture
def mock_server(server_clock: ManualClock) -> Iterator[mock.MockServer]:
    """One imitation MongoDB server: clients made by ``mock_factory`` all see its data."""
    with mock.server_at(f"mongomock://{mock.MEMORY}{uuid.uuid4().hex}", server_clock) as server:
        yield server


@pytest.fixture
def mock_factory(mock_server: mock.MockServer) -> connection.ClientFactory:
    return mock.client_factory(mock_server)


@pytest.fixture
def use_mongomock(
    monkeypatch: pytest.MonkeyPatch, mock_factory: connection.ClientFactory
) -> connection.ClientFactory:
    """Make every store opened through the plugin (``make_crm`` …) use mongomock."""
    monkeypatch.setattr(connection, "client_factory", mock_factory)
    return mock_factory


@pytest.fixture
def open_mock(mock_factory: connection.ClientFactory) -> Iterator[Callable[..., MongoStore]]:
    """``open_mock(**options)``: a store on the imitation server; closed after the test."""
    opened: list[MongoStore] = []

    def open_(uri: str = MOCK_URI, *, schema_upgrade: bool = False, **options: Any) -> MongoStore:
        store = open_store(
            StorageOptions(uri, options, ManualClock(START), schema_upgrade),
            client_factory=mock_factory,
        )
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

    def open_(*, schema_upgrade: bool = False, **options: Any) -> MongoStore:
        store = open_store(
            StorageOptions(
                REAL_URI, {"database": database, **options}, ManualClock(START), schema_upgrade
            )
        )
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
