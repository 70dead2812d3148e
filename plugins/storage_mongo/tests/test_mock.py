"""``location = "mongomock://"``: the backend without a server, through the ordinary CLI.

What this verifies is the adapter (file, lock, the fix-ups, ``$$NOW``) and that every command
works on the MongoDB backend's code; nothing here says anything about MongoDB's durability or
speed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from crmcore_storage_mongo import mock
from crmcore_storage_mongo.store import open_store

from crmcore.clock import ManualClock
from crmcore.converter import iso
from crmcore.errors import ConfigError, DuplicateKeyError, StorageError
from crmcore.storage import IndexSpec, StorageOptions
from crmcore.testing import START

CRM = str(Path(sys.executable).parent / "crm")


def _open(location: str, **options):
    return open_store(StorageOptions(location, options, ManualClock(START)))


def test_data_and_indexes_survive_a_reopen_in_an_owner_only_file(tmp_path):
    location = f"mongomock://{tmp_path}/shop.bson"
    store = _open(location)
    coll = store.collection("customers")
    coll.ensure_index(IndexSpec([("phone", 1)], unique=True, sparse=True))
    coll.insert({"id": "c1", "phone": "1"})
    coll.insert({"id": "c2"})
    coll.insert({"id": "c3"})  # no phone twice: the partial index admits neither
    store.close()
    path = tmp_path / "shop.bson"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = _open(location)
    coll = again.collection("customers")
    assert [d["id"] for d in coll.find()] == ["c1", "c2", "c3"]
    assert "u_phone" in {s.name for s in coll.indexes()}
    with pytest.raises(DuplicateKeyError):
        coll.insert({"id": "c4", "phone": "1"})
    again.close()


def test_a_deleted_record_is_not_in_the_file(tmp_path):
    location = f"mongomock://{tmp_path}/shop.bson"
    store = _open(location)
    store.collection("customers").insert({"id": "c1", "email": "gone@example.com"})
    store.close()
    store = _open(location)
    store.collection("customers").delete("c1")
    store.close()
    assert b"gone@example.com" not in (tmp_path / "shop.bson").read_bytes()


def test_stores_in_one_process_share_the_server_and_tenants_stay_apart(tmp_path):
    location = f"mongomock://{tmp_path}/x.bson"
    acme, beta = _open(location, tenant="acme"), _open(location, tenant="beta")
    acme.collection("customers").insert({"id": "c1"})
    assert beta.collection("customers").count() == 0
    beta.close()
    acme.close()
    assert _reopen_count(location, "acme") == 1


def _reopen_count(location: str, tenant: str) -> int:
    store = _open(location, tenant=tenant)
    try:
        return store.collection("customers").count()
    finally:
        store.close()


def test_a_second_process_is_told_the_file_is_in_use(tmp_path):
    location = f"mongomock://{tmp_path}/x.bson"
    store = _open(location)
    try:
        code = (
            "import sys; from crmcore_storage_mongo import mock, store; "
            "from crmcore.storage import StorageOptions; from crmcore.clock import "
            "SystemClock; mock.LOCK_WAIT = 0.2\n"
            "try:\n    store.open_store(StorageOptions(sys.argv[1], {}, SystemClock()))\n"
            "except Exception as e:\n    print(type(e).__name__, e)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, location], capture_output=True, text=True, timeout=60
        ).stdout
    finally:
        store.close()
    assert out.startswith("StorageError")
    assert "open in another process" in out


def test_a_damaged_file_is_a_storage_error_naming_it(tmp_path):
    path = tmp_path / "x.bson"
    path.write_bytes(b"\x05\x00\x00\x00garbage")
    with pytest.raises(StorageError, match=r"x\.bson"):
        _open(f"mongomock://{path}")


def test_without_the_extra_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mongomock", None)
    with pytest.raises(ConfigError, match=r"crmcore-storage-mongo\[mock\]"):
        _open("mongomock://:memory:no-extra")


def test_memory_servers_are_per_name_and_gone_after_the_last_close():
    a = _open("mongomock://:memory:one")
    a.collection("c").insert({"id": "x"})
    b = _open("mongomock://:memory:two")
    assert b.collection("c").count() == 0
    b.close()
    a.close()
    assert _open_count("mongomock://:memory:one") == 0


def _open_count(location: str) -> int:
    store = _open(location)
    try:
        return store.collection("c").count()
    finally:
        store.close()


def test_now_expressions_are_evaluated_on_the_server_clock():
    now = START
    expr = {
        "$concat": [
            {
                "$dateToString": {
                    "date": {"$add": ["$$NOW", 1500]},
                    "format": "%Y-%m-%dT%H:%M:%S.%L",
                }
            },
            "000Z",
        ]
    }
    assert START.microsecond == 0
    assert mock.fold_now(expr, now) == iso(START + timedelta(milliseconds=1500))
    assert mock.fold_now({"$lte": ["$lease_until", "$$NOW"]}, now) == {
        "$lte": ["$lease_until", now]
    }  # field paths are left to mongomock


def _crm(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    full_env.update(env or {})
    return subprocess.run(
        [CRM, *args], cwd=tmp_path, capture_output=True, text=True, env=full_env, timeout=300
    )


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_ordinary_cli_runs_on_mongomock(tmp_path):
    """init, add, list, log, worker --once, check: each a separate ``crm`` process."""
    on_mock = {"CRM_STORAGE_BACKEND": "mongodb", "CRM_STORAGE_LOCATION": "mongomock://"}
    init = _crm(tmp_path, "init", "--profile", "retail", env=on_mock)
    assert init.returncode != 0  # the retail profile enables storage_tinydb only …
    assert "no backend named 'mongodb'" in init.stderr
    config = tmp_path / "crm.toml"
    # … so an integrator enables the plugin and points [storage] at mongomock.
    text = config.read_text().replace('"storage_tinydb"', '"storage_mongo"')
    text = text.replace('backend = "tinydb"', 'backend = "mongodb"')
    text = text.replace('location = "crm-data"', 'location = "mongomock://"')
    config.write_text(text)
    assert _crm(tmp_path, "--json", "config", "show").returncode == 0
    added = _json(
        _crm(tmp_path, "--json", "customer", "add", "--name", "Ann", "--phone", "138 0000 0001")
    )
    listed = _json(_crm(tmp_path, "--json", "customer", "list"))
    assert [c["id"] for c in listed] == [added["id"]]
    logged = _json(
        _crm(tmp_path, "--json", "log", added["id"], "--kind", "purchase", "--amount", "12")
    )
    assert logged["id"].startswith("int_")
    worker = _json(_crm(tmp_path, "--json", "worker", "--once"))
    assert "tasks_created" in worker
    counts = {row["collection"]: row["records"] for row in _json(_crm(tmp_path, "--json", "check"))}
    assert counts["customers"] == 1 and counts["interactions"] == 1
    data = tmp_path / "crm-mongomock.bson"
    assert stat.S_IMODE(data.stat().st_mode) == 0o600
    assert b"138" not in _crm(tmp_path, "--json", "check").stderr.encode()
    bad = _crm(tmp_path, "customer", "show", "cus_nope")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_the_python_api_runs_on_mongomock_and_reopens(make_crm, tmp_path, clock):
    storage = {"backend": "mongodb", "location": f"mongomock://{tmp_path}/api.bson"}
    crm = make_crm(["storage_mongo", "followup"], storage=storage)
    ann = crm.customers.add(actor="rep", name="Ann", phone="138 0000 0001")
    crm.interactions.log(actor="rep", customer_id=ann.id, kind="purchase", amount=9)
    task = crm.tasks.create(actor="rep", kind="callback", title="call", due_at=clock.now())
    assert crm.tasks.claim(worker="w1", lease=timedelta(minutes=5)).id == task.id
    crm.close()
    again = make_crm(["storage_mongo", "followup"], storage=storage)
    assert [c.name for c in again.customers.find()] == ["Ann"]
    assert again.interactions.count() == 1
    assert again.tasks.get(task.id).lease_owner == "w1"
    assert "mongomock" in again.store.describe()
