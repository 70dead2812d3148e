"""Schema changes are an explicit, recorded step (``crm db upgrade``); opening only checks.

mongomock has no validators: the validator half (no ``collMod`` at open, so old and new code
never flip it during a rolling deploy) runs in ``TestValidatorsOnRealServer`` under
``CRM_TEST_MONGODB_URI``; on mongomock it is covered by the unit tests in test_schema.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mongomock.collection as mm_collection
import pytest
from crmcore_storage_mongo.schema import mongo_validator
from crmcore_storage_mongo.store import SCHEMA_COLLECTION, MongoStore

from crmcore.entities import Customer, Task
from crmcore.errors import StorageError
from crmcore.storage import CollectionSpec, IndexSpec

MOCK = "mongodb://127.0.0.1:27017"
STORAGE = {"backend": "mongodb", "location": MOCK, "options": {"database": "shop"}}
CRM = str(Path(sys.executable).parent / "crm")
PHONE = IndexSpec([("phone", 1)], unique=True, sparse=True)
REGION = IndexSpec([("region", 1)])


def backend(crm) -> MongoStore:
    layer = crm.store
    while not isinstance(layer, MongoStore):
        layer = layer.inner
    return layer


@pytest.fixture
def index_builds(monkeypatch):
    """Every ``create_index`` the backend sends to mongomock, by index name."""
    built: list[str] = []
    original = mm_collection.Collection.create_index

    def spy(self, keys, **kwargs):
        built.append(kwargs.get("name"))
        return original(self, keys, **kwargs)

    monkeypatch.setattr(mm_collection.Collection, "create_index", spy)
    return built


def test_a_new_database_is_set_up_at_first_open_and_recorded(make_crm, use_mongomock, index_builds):
    crm = make_crm(["storage_mongo"], storage=STORAGE)
    store = backend(crm)
    records = {r["_id"]: r for r in store.db[SCHEMA_COLLECTION].find()}
    assert {"customers", "interactions", "tasks"} <= set(records)
    assert records["tasks"]["revision"] == 1 and "u_open_key" in records["tasks"]["indexes"]
    assert SCHEMA_COLLECTION not in store.collection_names()  # not data: not migrated
    assert "u_open_key" in index_builds
    crm.customers.add(actor="rep", name="Ann")
    index_builds.clear()
    again = make_crm(["storage_mongo"], storage=STORAGE)
    assert index_builds == []  # the recorded schema is this code's: nothing is built
    assert backend(again).schema_changes() == []


def test_a_new_index_on_a_collection_with_data_waits_for_the_upgrade(open_mock, index_builds):
    spec = CollectionSpec("people", (PHONE,))
    first = open_mock()
    first.ensure_collection(spec).insert({"id": "p1", "region": "North"})
    index_builds.clear()
    newer = CollectionSpec("people", (PHONE, REGION))
    with pytest.raises(StorageError, match=r"i_region is not built .*crm db upgrade"):
        open_mock().ensure_collection(newer)
    assert index_builds == []  # a worker never starts a build
    upgrade = open_mock(schema_upgrade=True)
    upgrade.ensure_collection(newer)
    assert upgrade.schema_changes() == ["people: built index i_region"]
    record = upgrade.db[SCHEMA_COLLECTION].find_one({"_id": "people"})
    assert record["revision"] == 2 and record["indexes"] == ["u_phone", "i_region"]
    index_builds.clear()
    open_mock().ensure_collection(newer)  # the new version now opens, building nothing
    assert index_builds == []


def test_old_code_after_an_upgrade_opens_without_undoing_it(open_mock, index_builds):
    old, new = CollectionSpec("people", (PHONE,)), CollectionSpec("people", (PHONE, REGION))
    open_mock().ensure_collection(old).insert({"id": "p1"})
    open_mock(schema_upgrade=True).ensure_collection(new)
    index_builds.clear()
    still_old = open_mock()
    still_old.ensure_collection(old)  # a worker not yet redeployed
    assert index_builds == [] and still_old.schema_changes() == []
    assert still_old.db[SCHEMA_COLLECTION].find_one({"_id": "people"})["revision"] == 2


def test_a_database_from_before_the_record_opens_when_its_indexes_exist(open_mock):
    store = open_mock()
    coll = store.collection("people")
    coll.ensure_index(PHONE)
    coll.insert({"id": "p1"})
    assert store.db[SCHEMA_COLLECTION].find_one({"_id": "people"}) is None
    open_mock().ensure_collection(CollectionSpec("people", (PHONE,)))  # no error, no build


def test_an_upgrade_with_nothing_to_do_reports_nothing(open_mock):
    spec = CollectionSpec("people", (PHONE,))
    open_mock().ensure_collection(spec)
    again = open_mock(schema_upgrade=True)
    again.ensure_collection(spec)
    assert again.schema_changes() == []


def _crm(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    return subprocess.run(
        [CRM, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_crm_db_upgrade_through_the_cli(tmp_path):
    """Enabling a unique key on a database with customers: workers refuse with one line
    naming the command; the operator runs it once; everything opens again."""
    config = tmp_path / "crm.toml"
    config.write_text(
        '[storage]\nbackend = "mongodb"\nlocation = "mongomock://"\n'
        '[plugins]\nenabled = ["storage_mongo"]\n'
    )
    assert _crm(tmp_path, "customer", "add", "--name", "Ann").returncode == 0
    config.write_text("[core]\nunique_email = true\n" + config.read_text())
    refused = _crm(tmp_path, "customer", "list")
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert lines[-1].startswith("error: customers: declared index u_email is not built")
    assert "crm db upgrade" in lines[-1] and "Traceback" not in refused.stderr
    done = _crm(tmp_path, "--json", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changes"] == ["customers: built index u_email"]
    assert _crm(tmp_path, "customer", "list").returncode == 0
    again = _crm(tmp_path, "--json", "db", "upgrade")
    assert json.loads(again.stdout)["changes"] == []


def test_crm_db_upgrade_on_an_embedded_store_has_nothing_to_do(tmp_path):
    (tmp_path / "crm.toml").write_text('[storage]\nbackend = "tinydb"\nlocation = "data"\n')
    done = _crm(tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "already up to date" in done.stdout


class TestValidatorsOnRealServer:
    """Where MongoDB enforces validators: only ``crm db upgrade`` runs ``collMod``."""

    def _validator(self, store, name):
        found = next(iter(store.db.list_collections(filter={"name": name})))
        return found["options"].get("validator")

    def test_opening_never_flips_a_validator(self, open_real):
        old = CollectionSpec("things", (), record_type=Task)
        new = CollectionSpec("things", (), record_type=Customer)
        first = open_real()
        first.ensure_collection(old)
        if not first.capabilities.schema_validation:
            pytest.skip("this server does not enforce validators")
        first.collection("things").insert({"id": "x", "note": "keeps the collection non-empty"})
        upgraded = open_real(schema_upgrade=True)
        upgraded.ensure_collection(new)
        assert self._validator(upgraded, "things") == mongo_validator(Customer)
        open_real().ensure_collection(old)  # old code still running: no collMod back
        assert self._validator(upgraded, "things") == mongo_validator(Customer)
