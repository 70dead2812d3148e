"""Erasure that a full disk interrupts finishes on the next call; killed backups leave nothing."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from crmcore_storage_tinydb import TinyStore, files

from crmcore.entities import CustomerStatus
from crmcore.errors import StorageError, ValidationError

SECRET = "Zebulon Quartermaine"


def _storage(path: Path) -> dict:
    return {"backend": "tinydb", "location": str(path)}


def _holding(folder: Path, text: str) -> list[str]:
    """The store files (not the set-aside ones) whose bytes contain ``text``."""
    needle = text.encode()
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and RECOVERED not in p.parts and needle in p.read_bytes()
    )


RECOVERED = files.RECOVERED


def test_forget_on_a_full_disk_is_finished_by_the_second_call(store_dir, make_crm, monkeypatch):
    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    ann = crm.customers.add(actor="rep1", name=SECRET, phone="+86 138 0013 8000")
    for n in range(5):
        crm.customers.add(actor="rep1", name=f"Other {n}")
    crm.store.compact()
    crm.customers.update(ann.id, actor="rep1", region="North")  # in the journal too
    assert _holding(store_dir, SECRET)

    real = files.write_snapshot
    calls = {"n": 0}

    def full_disk(path, meta, docs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first collection file is written, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, meta, docs)

    monkeypatch.setattr(files, "write_snapshot", full_disk)
    with pytest.raises(StorageError) as caught:
        crm.customers.forget(ann.id, actor="admin")
    message = str(caught.value)
    assert "is erased" in message and "No space left on device" in message
    assert f"crm customer forget {ann.id} --yes" in message
    assert crm.customers.get_any(ann.id).status is CustomerStatus.ERASED  # committed
    assert _holding(store_dir, SECRET)  # ... but not yet out of the files

    monkeypatch.setattr(files, "write_snapshot", real)  # room again
    again = crm.customers.forget(ann.id, actor="admin")
    assert again.status is CustomerStatus.ERASED
    assert _holding(store_dir, SECRET) == []
    assert crm.customers.count() == 5
    crm.close()
    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir))
    assert crm.store.check()["customers"] == 6


KILLED_BACKUP = """
import time
from crmcore_storage_tinydb import files
real = files.copy_private
def slow(source, target):
    real(source, target)
    say("copying", target.parent)
    time.sleep(60)
files.copy_private = slow
store = TinyStore(sys.argv[1])
store.backup(sys.argv[2])
"""


def _killed_backup(child, store_dir: Path, dest: Path) -> Path:
    proc = child(KILLED_BACKUP, str(store_dir), str(dest))
    line = proc.stdout.readline().split()
    assert line and line[0] == "copying", proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = Path(line[1])
    assert partial.is_dir() and partial.name == f".{dest.name}.partial-{proc.pid}"
    return partial


def _a_store(store_dir: Path) -> None:
    store = TinyStore(store_dir)
    store.collection("customers").insert_many({"id": f"c{i}", "name": SECRET} for i in range(10))
    store.close()


def test_a_killed_backup_is_cleaned_at_the_next_open(store_dir, tmp_path, child):
    _a_store(store_dir)
    partial = _killed_backup(child, store_dir, tmp_path / "backups" / "monday")
    assert _holding(partial, SECRET)
    TinyStore(store_dir).close()
    assert not partial.exists()


def test_a_killed_backup_is_cleaned_at_the_next_backup_even_unrecorded(store_dir, tmp_path, child):
    _a_store(store_dir)
    partial = _killed_backup(child, store_dir, tmp_path / "backups" / "monday")
    (store_dir / files.BACKUPS).unlink()  # as a backup by an older version left it
    store = TinyStore(store_dir)
    assert partial.exists()  # unrecorded: the next open cannot know where it is
    unrelated = tmp_path / "backups" / ".notes.partial-1"  # not a backup's folder
    unrelated.mkdir()
    (unrelated / "mine.txt").write_text("keep")
    store.backup(str(tmp_path / "backups" / "tuesday"))
    assert not partial.exists()
    assert (unrelated / "mine.txt").read_text() == "keep"
    assert store.known_backups() == [tmp_path / "backups" / "tuesday"]
    store.close()


def test_a_backup_is_private_whatever_the_umask_and_checks_sound(store_dir, tmp_path):
    _a_store(store_dir)
    old = os.umask(0)
    try:
        store = TinyStore(store_dir)
        store.backup(str(tmp_path / "bk"))
        store.close()
    finally:
        os.umask(old)
    for path in [tmp_path / "bk", *(tmp_path / "bk").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    copy = TinyStore(tmp_path / "bk")
    assert copy.check() == {"customers": 10}
    assert copy.check_notes == []
    copy.close()


def test_a_backup_path_with_a_nul_is_refused(store_dir):
    _a_store(store_dir)
    store = TinyStore(store_dir)
    with pytest.raises(ValidationError, match="NUL"):
        store.backup("bk\0x")
    store.close()


def _cli(folder: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert crm("init").returncode == 0
    from crmcore import open_crm

    with open_crm(folder / "crm.toml") as app:
        for n in range(30):
            app.customers.add(actor="rep1", name=f"Customer {n}")
        app.store.compact()
    return crm


def test_the_cli_reports_a_deleted_file_and_audit_verify_does_not_say_intact(tmp_path):
    crm = _cli(tmp_path)
    data = tmp_path / "crm-data"
    for name in ("customers.json", "audit.json"):
        (data / name).unlink()
    done = crm("check")
    assert done.returncode == 6
    assert "is damaged: it is missing" in done.stderr and "30 document(s)" in done.stderr
    assert "store is sound" not in done.stdout
    done = crm("audit", "verify")
    assert done.returncode != 0 and "intact" not in done.stdout, done.stdout
    assert "audit.json is damaged: it is missing" in done.stderr
    done = crm("check", "--repair")
    assert done.returncode == 0, done.stderr
    assert "note:" in done.stderr and "customers.json: missing" in done.stderr


def test_repair_sets_aside_a_salvaged_document_that_does_not_load(tmp_path):
    crm = _cli(tmp_path)
    snapshot = tmp_path / "crm-data" / "customers.json"
    lines = snapshot.read_bytes().split(b"\n")
    assert b'"status":"active"' in lines[5]
    lines[5] = lines[5].replace(b'"status":"active"', b'"status":"activf"')  # one bit
    snapshot.write_bytes(b"\n".join(lines))
    done = crm("check")
    assert done.returncode == 6 and "customers.json is damaged" in done.stderr
    done = crm("check", "--repair")
    assert done.returncode == 0, done.stderr
    assert "1 salvaged document(s) do not load" in done.stderr, done.stderr
    assert "customers.unloadable.jsonl" in done.stderr
    aside = list((tmp_path / "crm-data" / "recovered").rglob("customers.unloadable.jsonl"))
    assert len(aside) == 1 and b"activf" in aside[0].read_bytes()
    done = crm("check")
    assert done.returncode == 0 and "store is sound" in done.stdout, done.stderr
    done = crm("--json", "customer", "list", "--limit", "100")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"id"') == 29


def test_check_validates_encrypted_records_as_their_readers_see_them(
    store_dir, make_crm, monkeypatch
):
    import base64
    from datetime import date

    from crmcore.cli.admin import schema_validator

    monkeypatch.setenv("CRM_ENCRYPTION_KEY", base64.b64encode(b"k" * 32).decode())
    crm = make_crm(["storage_tinydb"], storage=_storage(store_dir), core={"encrypt_personal": True})
    for n in range(5):
        crm.customers.add(actor="rep1", name=f"{SECRET} {n}", birth_date=date(1980, 1, n + 1))
    assert not _holding(store_dir, SECRET)  # sealed on disk: a stored birth date is no date
    validate = schema_validator(crm)
    assert crm.store.check(validate=validate)["customers"] == 5
    assert crm.store.check(repair=True, validate=validate)["customers"] == 5
    assert not list((store_dir / RECOVERED).rglob("*.unloadable.jsonl"))
    # ... while a record that does not load is caught, through the layers too:
    backend = crm.store  # the backend under the layers
    while not isinstance(backend, TinyStore):
        backend = backend.inner
    first = backend.collection("customers").find(limit=1)[0]
    backend.collection("customers").update(
        first["id"], {"status": "activf"}, expected_version=first["version"]
    )
    with pytest.raises(StorageError, match=r"1 document\(s\) do not load"):
        crm.store.check(validate=validate)
    assert crm.store.check(repair=True, validate=validate)["customers"] == 4
    assert crm.customers.count() == 4
