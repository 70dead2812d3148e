"""Operations: ``check`` without scans, driver events as logs and counters, credentials per
tenant database, and a backup/restore drill.

mongomock fires no driver events and has no users or tools: the listeners are tested with
pymongo's own event objects, and the credential and restore tests run only against a real
server (``CRM_TEST_MONGODB_URI``; the restore drill also needs ``mongodump``/``mongorestore``
on PATH). None of them claims anything on mongomock that it cannot show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from urllib.parse import quote

import mongomock.collection as mm_collection
import pytest
from crmcore_storage_mongo import monitoring
from crmcore_storage_mongo.store import MongoCollection, open_store
from pymongo import monitoring as events
from structlog.testing import capture_logs

from crmcore.clock import ManualClock
from crmcore.errors import StorageError
from crmcore.migrate import checksum
from crmcore.storage import IndexSpec, StorageOptions
from crmcore.testing import START

REAL_URI = os.environ.get("CRM_TEST_MONGODB_URI", "")
ADDRESS = ("db1.example", 27017)


def test_check_uses_the_estimated_count_not_a_scan(open_mock, monkeypatch):
    store = open_mock()
    store.collection("customers").insert_many({"id": f"c{i}"} for i in range(7))
    store.collection("tasks").insert({"id": "t1"})
    asked: list[str] = []
    original = mm_collection.Collection.estimated_document_count

    def estimated(self, *args, **kwargs):
        asked.append(self.name)
        return original(self, *args, **kwargs)

    def exact(self, *args, **kwargs):
        raise AssertionError("check() counted by scanning")

    monkeypatch.setattr(mm_collection.Collection, "estimated_document_count", estimated)
    monkeypatch.setattr(MongoCollection, "count", exact)
    assert store.check() == {"customers": 7, "tasks": 1}
    assert sorted(asked) == ["customers", "tasks"]


def _started(request_id: int, operation_id: int, command: dict) -> events.CommandStartedEvent:
    return events.CommandStartedEvent(command, "crm__acme", request_id, ADDRESS, operation_id)


def test_a_slow_command_is_logged_by_name_never_with_its_values():
    metrics = monitoring.Metrics()
    listener = monitoring.CommandMonitor(slow_ms=500, metrics=metrics)
    with capture_logs() as logs:
        listener.started(_started(1, 1, {"find": "customers", "filter": {"phone": "13800138000"}}))
        listener.succeeded(
            events.CommandSucceededEvent(
                timedelta(milliseconds=800),
                {"cursor": {"firstBatch": [{"phone": "13800138000"}]}},
                "find",
                1,
                ADDRESS,
                1,
                database_name="crm__acme",
            )
        )
        listener.started(_started(2, 2, {"insert": "tasks"}))
        listener.succeeded(
            events.CommandSucceededEvent(
                timedelta(milliseconds=3), {}, "insert", 2, ADDRESS, 2, database_name="crm__acme"
            )
        )
    assert logs == [
        {
            "event": "mongo.slow_operation",
            "plugin": "storage_mongo",
            "command": "find",
            "database": "crm__acme",
            "collection": "customers",
            "ms": 800,
            "log_level": "warning",
        }
    ]
    assert "13800138000" not in repr(logs)
    assert metrics.snapshot()["commands"] == 2 and metrics.snapshot()["slow"] == 1


def test_a_command_the_driver_runs_again_is_logged_as_a_retry():
    metrics = monitoring.Metrics()
    listener = monitoring.CommandMonitor(slow_ms=500, metrics=metrics)
    with capture_logs() as logs:
        listener.started(_started(10, 10, {"update": "tasks"}))
        listener.failed(
            events.CommandFailedEvent(
                timedelta(milliseconds=4),
                {
                    "codeName": "NotWritablePrimary",
                    "code": 10107,
                    "errmsg": "not primary: ann@example.com",
                },
                "update",
                10,
                ADDRESS,
                10,
                database_name="crm__acme",
            )
        )
        listener.started(_started(11, 10, {"update": "tasks"}))  # same operation, again
    # mongo.command_failed is info: present only when the log level lets info through
    retries = [e for e in logs if e["event"] == "mongo.retry"]
    assert [e["event"] for e in logs if e["event"] != "mongo.command_failed"] == ["mongo.retry"]
    assert retries[0]["after"] == "NotWritablePrimary"
    assert "ann@example.com" not in repr(logs)
    assert metrics.snapshot()["retries"] == 1 and metrics.snapshot()["failed"] == 1


def test_pool_waits_and_failed_checkouts_are_logged():
    metrics = monitoring.Metrics()
    listener = monitoring.PoolMonitor(slow_ms=500, metrics=metrics)
    with capture_logs() as logs:
        listener.connection_checked_out(events.ConnectionCheckedOutEvent(ADDRESS, 1, 0.002))
        listener.connection_checked_out(events.ConnectionCheckedOutEvent(ADDRESS, 2, 0.75))
        listener.connection_check_out_failed(
            events.ConnectionCheckOutFailedEvent(ADDRESS, "timeout", 5.0)
        )
    assert [(e["event"], e.get("ms")) for e in logs] == [
        ("mongo.pool_wait", 750),
        ("mongo.pool_checkout_failed", 5000),
    ]
    snap = metrics.snapshot()
    assert snap["pool_checkouts"] == 2 and snap["pool_wait_ms_max"] == 750
    assert snap["pool_checkout_failures"] == 1


def test_clients_get_the_listeners_and_equal_options_still_share_one(mock_factory):
    seen: list[dict] = []

    def factory(uri, **kwargs):
        seen.append(kwargs)
        return mock_factory(uri, **kwargs)

    options = {"slow_operation_ms": 250}
    a = open_store(
        StorageOptions("mongodb://h", {**options, "tenant": "a"}, ManualClock(START)),
        client_factory=factory,
    )
    b = open_store(
        StorageOptions("mongodb://h", {**options, "tenant": "b"}, ManualClock(START)),
        client_factory=factory,
    )
    try:
        assert len(seen) == 1 and a.client is b.client
        kinds = {type(x) for x in seen[0]["event_listeners"]}
        assert kinds == {monitoring.CommandMonitor, monitoring.PoolMonitor}
        assert all(x.slow_ms == 250 for x in seen[0]["event_listeners"])
    finally:
        a.close()
        b.close()


def test_slow_operation_ms_is_validated(open_mock):
    from crmcore.errors import ConfigError

    with pytest.raises(ConfigError, match=r"storage\.options\.slow_operation_ms"):
        open_mock(slow_operation_ms=-1)


# -- real server ---------------------------------------------------------------------------


def test_real_server_commands_reach_the_listener(open_real):
    store = open_real(slow_operation_ms=0)  # every command counts as slow: all are logged
    with capture_logs() as logs:
        store.collection("customers").insert({"id": "c1"})
    assert any(
        e["event"] == "mongo.slow_operation"
        and e["command"] == "insert"
        and e["collection"] == "customers"
        for e in logs
    )


def _with_user(uri: str, user: str, password: str, auth_db: str) -> str:
    scheme, rest = uri.split("://", 1)
    hosts, _, tail = rest.partition("/")
    hosts = hosts.rsplit("@", 1)[-1]
    path, _, query = tail.partition("?")
    query = "&".join(p for p in query.split("&") if p and not p.lower().startswith("authsource"))
    query = f"{query}&authSource={auth_db}" if query else f"authSource={auth_db}"
    return f"{scheme}://{quote(user)}:{quote(password)}@{hosts}/{path}?{query}"


def test_tenant_credentials_reach_only_their_own_database(open_real):
    """The deployment docs/scaling.md describes: one user per tenant database, readWrite
    there and nowhere else. acme's credentials open acme and are refused on beta."""
    admin = open_real(tenant="acme")
    base = admin.database_name.rsplit("__", 1)[0]
    user, password = f"acme_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    try:
        admin.db.command(
            "createUser",
            user,
            pwd=password,
            roles=[{"role": "readWrite", "db": admin.database_name}],
        )
    except Exception as exc:  # no userAdmin privilege on this test server
        pytest.skip(f"cannot create users on this server: {exc}")
    uri = _with_user(REAL_URI, user, password, admin.database_name)
    try:
        acme = open_store(
            StorageOptions(uri, {"database": base, "tenant": "acme"}, ManualClock(START))
        )
        beta = open_store(
            StorageOptions(uri, {"database": base, "tenant": "beta"}, ManualClock(START))
        )
        try:
            acme.collection("customers").insert({"id": "c1"})
            try:
                beta.collection("customers").insert({"id": "c1"})
            except StorageError as exc:
                assert "not authorized" in str(exc).lower() or "unauthorized" in str(exc).lower()
            else:
                pytest.skip("this server does not enforce authentication (start it with --auth)")
        finally:
            acme.close()
            beta.close()
    finally:
        admin.db.command("dropUser", user)


@pytest.mark.skipif(
    not (shutil.which("mongodump") and shutil.which("mongorestore")),
    reason="the restore drill needs mongodump and mongorestore on PATH",
)
def test_restore_drill_per_tenant_database(open_real, tmp_path):
    """docs/scaling.md's procedure: mongodump one tenant's database, lose it, mongorestore
    it, and find every document, index and the schema record as they were."""
    store = open_real(tenant="acme")
    coll = store.collection("customers")
    coll.ensure_index(IndexSpec([("phone", 1)], unique=True, sparse=True))
    coll.insert_many({"id": f"c{i:03d}", "phone": None if i % 2 else str(i)} for i in range(50))
    before = {name: checksum(store.collection(name).iter()) for name in store.collection_names()}
    archive = tmp_path / "acme.archive"
    name = store.database_name
    subprocess.run(
        ["mongodump", f"--uri={REAL_URI}", f"--db={name}", f"--archive={archive}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    store.client.drop_database(name)
    assert store.collection_names() == []
    subprocess.run(
        ["mongorestore", f"--uri={REAL_URI}", f"--archive={archive}"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    restored = open_real(tenant="acme")
    assert {
        n: checksum(restored.collection(n).iter()) for n in restored.collection_names()
    } == before
    assert "u_phone" in {s.name for s in restored.collection("customers").indexes()}
