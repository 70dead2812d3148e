"""The plugin: the ``tinydb`` backend through the core, its options, and a CRM on it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions, files
from tinydb import TinyDB

from crmcore import open_crm
from crmcore.config import Config
from crmcore.errors import ConfigError, StorageError
from crmcore.plugins import make_plugin_manager
from crmcore.testing.audit import entries as raw_entries
from crmcore.testing.audit import operations


def _storage(path, **options):
    return {"backend": "tinydb", "location": str(path), **({"options": options} if options else {})}


def test_the_plugin_provides_the_tinydb_backend():
    pm = make_plugin_manager(allowed={"storage_tinydb"})
    assert "storage_tinydb" in pm.names()
    backends = [b for _plugin, b in pm.contributions("crm_storage_backends")]
    assert "tinydb" in [b.name for b in backends]


def test_a_crm_on_the_store_keeps_customers_interactions_and_tasks(store_dir, make_crm, clock):
    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    assert crm.store.capabilities.persistent and crm.store.capabilities.multi_process
    assert crm.store.capabilities.transactions
    ann = crm.customers.add(
        actor="rep1",
        name="Ann Example",
        phone="+86 138 0013 8000",
        email="ann@example.com",
        tags=["vip"],
    )
    crm.interactions.log(actor="rep1", customer_id=ann.id, kind="purchase", amount=120.5)
    task = crm.tasks.create(
        actor="rep1",
        kind="follow_up",
        title="call back",
        due_at=clock.now() + timedelta(hours=1),
        customer_id=ann.id,
        assignee="rep1",
    )
    crm.close()

    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    again = crm.customers.get(ann.id)
    assert again == ann
    assert crm.customers.find_by_contact(email="ANN@example.com") == [ann]
    assert [i.amount for i in crm.interactions.for_customer(ann.id)] == [120.5]
    assert crm.tasks.due(now=clock.now()) == []
    clock.advance(hours=2)
    assert [t.id for t in crm.tasks.due(assignee="rep1")] == [task.id]
    leased = crm.tasks.claim(worker="w1", lease=timedelta(minutes=5))
    assert leased is not None and leased.id == task.id
    assert crm.tasks.claim(worker="w2", lease=timedelta(minutes=5)) is None
    crm.tasks.complete(task.id, actor="rep1", outcome="reached")
    crm.close()
    db = TinyDB(store_dir / "tasks.json", access_mode="r")
    assert [d["status"] for d in db.all()] == ["done"]
    db.close()


def test_the_location_is_relative_to_crm_toml(tmp_path, monkeypatch):
    (tmp_path / "crm.toml").write_text(
        '[storage]\nbackend = "tinydb"\nlocation = "data"\n'
        '[plugins]\nenabled = ["storage_tinydb"]\n'
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with open_crm(
        Config.load(tmp_path / "crm.toml", environ={}), plugins=["storage_tinydb"]
    ) as crm:
        crm.customers.add(actor="t", name="Ann Example")
        assert "tinydb" in crm.store.describe()
    assert (tmp_path / "data" / "customers.json").exists()
    assert not (elsewhere / "data").exists()


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"durability": "sometimes"}, "storage.options.durability", "os, fsync"),
        ({"durability": 1}, "storage.options.durability", "expected str"),
        ({"lock_timeout": 0}, "storage.options.lock_timeout", "greater than 0"),
        ({"lock_timeout": "soon"}, "storage.options.lock_timeout", "expected"),
        ({"compact_on_close_mb": -1}, "storage.options.compact_on_close_mb", "negative"),
        (
            {"allow_network_filesystem": "yes"},
            "storage.options.allow_network_filesystem",
            "expected bool",
        ),
        ({"durabilty": "os"}, "storage.options", "durabilty"),
    ],
)
def test_bad_options_are_refused_with_their_key_path(store_dir, make_crm, options, path, words):
    with pytest.raises(ConfigError) as caught:
        make_crm(["storage_tinydb"], storage=_storage(store_dir, **options))
    assert path in str(caught.value) and words in str(caught.value)
    assert not store_dir.exists()  # nothing was written


def test_good_options_are_used(store_dir, make_crm):
    crm = make_crm(
        ["storage_tinydb"],
        storage=_storage(store_dir, durability="fsync", lock_timeout=2.5, compact_on_close_mb=1),
    )
    inner = getattr(crm.store, "inner", crm.store)
    assert inner.options == TinyStoreOptions(
        durability="fsync", lock_timeout=2.5, compact_on_close_mb=1
    )
    assert "durability=fsync" in crm.store.describe()


def test_a_uri_or_no_location_is_refused(make_crm):
    with pytest.raises(ConfigError, match=r"storage\.location"):
        make_crm(["storage_tinydb"], storage={"backend": "tinydb", "location": "mongodb://x"})
    with pytest.raises(ConfigError, match=r"storage\.location"):
        make_crm(["storage_tinydb"], storage={"backend": "tinydb", "location": None})


def test_a_network_file_system_is_refused_unless_allowed(store_dir, monkeypatch):
    monkeypatch.setattr(files, "filesystem_type", lambda path: "nfs4")
    with pytest.raises(StorageError, match="network file system \\(nfs4\\)"):
        TinyStore(store_dir)
    assert not store_dir.exists()
    store = TinyStore(store_dir, TinyStoreOptions(allow_network_filesystem=True))
    store.close()


def test_the_file_system_type_is_read_from_the_mount_table(tmp_path):
    assert files.filesystem_type(tmp_path) not in (None, "")


def test_a_closed_store_refuses_work(store_dir):
    store = TinyStore(store_dir)
    things = store.collection("things")
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StorageError, match="closed"):
        things.count()


def test_a_location_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "crm-data").write_text("not a folder")
    with pytest.raises(StorageError, match="is not a folder"):
        TinyStore(tmp_path / "crm-data")


def test_audit_entries_kept_as_the_text_they_were_hashed_from_verify_after_reopening(
    store_dir, make_crm
):
    # The audit trail hands the store each entry with the text it hashed, non-ASCII escaped,
    # and the store keeps it as it is: it must read back as what was hashed, whichever
    # encoder wrote it (orjson, or json for small floats and huge integers).
    from crmcore.audit import GENESIS, chained_hash, record_digest

    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    plain = crm.customers.add(
        actor="rep1", name="Ann", region="North", ext={"note": {"text": "a\x7f"}}
    )
    accented = crm.customers.add(actor="r\u00e9p", name="Zo\u00e9", region="\u534e\u5317\U0001f600")
    crm.customers.update(plain.id, actor="rep1", region="S\u00fcd")
    crm.audit.record_event("rekey", "customers", {"share": 1e-05, "big": 2**70, "n": 2.5})
    assert crm.audit.verify().ok
    crm.close()
    again = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    report = again.audit.verify()
    assert report.ok and report.entries == 4
    entries = operations(again)
    assert [e["record_id"] for e in entries] == [plain.id, accented.id, plain.id, None]
    assert entries[1]["actor"] == "r\u00e9p" and entries[2]["diff"]["region"] == [
        "North",
        "S\u00fcd",
    ]
    stored_accented = again.store.collection("customers").get(accented.id)
    personal = again.audit.masked_fields("customers")
    assert entries[1]["diff"] == {"sha": record_digest(stored_accented, personal)}
    assert entries[3]["diff"] == {"share": 1e-05, "big": 2**70, "n": 2.5}
    stored = raw_entries(again)
    prevs = [GENESIS, *(e["hash"] for e in stored[:-1])]  # the hash covers the one before
    assert all(
        chained_hash(e, p) == e["hash"] and e["version"] == 1
        for e, p in zip(stored, prevs, strict=True)
    )
    again.close()
    kept = [p for p in store_dir.iterdir() if p.suffix in (".json", ".log")]
    assert "audit.json" in [p.name for p in kept]
    assert all(p.read_bytes().isascii() for p in kept)  # what stock TinyDB writes


def test_a_write_whose_journal_line_fails_leaves_the_audit_chain_able_to_go_on(
    store_dir, make_crm, monkeypatch
):
    # The failed write rolls back with its audit entry; the next entry must follow the last
    # one kept, not the one rolled back, inside a transaction or alone.
    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    crm.customers.add(actor="rep1", name="Ann")
    real_write_all = files.write_all

    def disk_full(fd, data):
        raise OSError(28, "No space left on device")

    for attempt in ("alone", "in a transaction"):
        monkeypatch.setattr(files, "write_all", disk_full)
        with pytest.raises(StorageError, match="No space left"):
            if attempt == "alone":
                crm.store.collection("customers").insert({"id": "cus_x", "name": "Bo"})
            else:
                with crm.transaction("rep1"):
                    crm.customers.add(actor="rep1", name="Bo")
        monkeypatch.setattr(files, "write_all", real_write_all)
        crm.customers.add(actor="rep1", name=f"Cy {attempt}")
    report = crm.audit.verify()
    assert report.ok and report.entries == 3
    assert crm.customers.count() == 3
