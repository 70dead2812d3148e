"""``crm audit archive --before DATE`` and ``crm audit verify --archive FILE`` as users run
them: a real ``crm`` process on a store that ``crm init`` created, whose older entries were
written a year and a half ago."""

from __future__ import annotations

import base64
import gzip
import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmcore import ManualClock
from crmcore.app import open_crm
from crmcore.audit import HEAD, SEAL_ID
from crmcore.testing.audit import entries, raw_head, raw_trail
from crmcore.testing.cli import one_line_error

KEY = base64.b64encode(b"k" * 32).decode()
LONG_AGO = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def crm(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "CRMCORE_PLUGINS"
    }
    environ["CRMCORE_PLUGINS"] = "storage_tinydb"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


def opened(folder: Path, clock=None, env: dict[str, str] | None = None):
    for k, v in (env or {}).items():
        os.environ[k] = v
    try:
        return open_crm(folder / "crm.toml", plugins=["storage_tinydb"], clock=clock)
    finally:
        for k in env or {}:
            del os.environ[k]


def build(folder: Path, env: dict[str, str] | None = None) -> None:
    """Four entries written in 2025, then two written now."""
    assert crm(folder, "init", env=env).returncode == 0
    with opened(folder, ManualClock(LONG_AGO), env) as store:
        for i in range(4):
            store.customers.add(actor="ann", name=f"Old customer {i}")
    with opened(folder, env=env) as store:
        for i in range(2):
            store.customers.add(actor="ann", name=f"New customer {i}")


def files_of(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def store(tmp_path):
    build(tmp_path)
    return tmp_path


def test_archive_moves_the_old_entries_and_the_trail_still_verifies(store):
    done = crm(store, "audit", "archive", "--before", "2026-01-01")
    assert done.returncode == 0, done.stderr
    assert "archived entries #1-#4 (4 entries" in done.stdout
    path = store / "audit-000000001-000000004.jsonl.gz"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "crmcore-audit-archive/1"
    assert (header["first"], header["last"], header["entries"]) == (1, 4, 4)
    assert [json.loads(line)["seq"] for line in lines[1:]] == [1, 2, 3, 4]
    assert "Old customer" not in gzip.decompress(path.read_bytes()).decode()  # masked
    with opened(store) as again:
        trail = entries(again)
        assert [e["seq"] for e in trail] == [5, 6, 7]  # the archive itself is entry #7
        assert trail[-1]["ops"][0]["op"] == "archive"
        assert trail[-1]["ops"][0]["diff"]["entries"] == 4
        seal = raw_head(again).get(SEAL_ID)
        assert (seal["seq"], seal["hash"], seal["entries"]) == (4, header["hash"], 4)
    checked = crm(store, "--json", "audit", "verify")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["archived"] == 4
    assert json.loads(checked.stdout)["entries"] == 3
    both = crm(store, "audit", "verify", "--archive", path.name)
    assert both.returncode == 0, both.stderr
    assert "following 4 archived entries" in both.stdout and "1 archive file(s)" in both.stdout
    # the chain goes on after the archive, and a second archive follows the first
    with opened(store) as again:
        again.customers.add(actor="ann", name="Later")
    assert crm(store, "audit", "verify").returncode == 0
    second = crm(store, "audit", "archive", "--before", "+0h", "-o", "second.jsonl.gz")
    assert second.returncode == 0, second.stderr
    assert "archived entries #5-#7" in second.stdout  # the newest entry always stays
    final = crm(store, "audit", "verify", "--archive", path.name, "--archive", "second.jsonl.gz")
    assert final.returncode == 0, final.stderr
    assert "following 7 archived entries" in final.stdout
    with opened(store) as again:
        assert [e["seq"] for e in entries(again)] == [8, 9]
        again.customers.add(actor="ann", name="Later still")
    assert crm(store, "audit", "verify").returncode == 0


def test_nothing_older_than_date_archives_nothing(store):
    before = files_of(store)
    done = crm(store, "audit", "archive", "--before", "2020-01-01")
    assert done.returncode == 0 and "nothing archived" in done.stdout
    assert files_of(store) == before


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--before", "2999-01-01"], "is in the future"),
        (["--before", "+2d"], "is in the future"),
        (["--before", "last tuesday"], "is not a date"),
        (["--before", "2026-02-30"], "is not a date"),
    ],
)
def test_a_bad_date_is_refused_and_nothing_is_written(store, args, expected):
    before = files_of(store)
    done = crm(store, "audit", "archive", *args)
    assert done.returncode != 0
    assert expected in one_line_error(done.stderr)
    assert files_of(store) == before
    with opened(store) as again:
        assert [e["seq"] for e in entries(again)] == [1, 2, 3, 4, 5, 6]


def test_a_broken_trail_is_not_archived(store):
    with opened(store) as again:
        raw = raw_trail(again)
        second = raw.find({"seq": 2})[0]
        raw.update(second["id"], {"actor": "mallory"}, expected_version=second["version"])
    before = files_of(store)
    done = crm(store, "audit", "archive", "--before", "2026-01-01")
    assert done.returncode != 0
    line = one_line_error(done.stderr)
    assert "entry #2 was altered" in line and "not archiving it" in line
    assert files_of(store) == before
    with opened(store) as again:
        assert len(entries(again)) == 6 and raw_head(again).find({"id": SEAL_ID}) == []


def test_an_existing_output_file_is_never_replaced(store):
    (store / "taken.gz").write_text("mine")
    done = crm(store, "audit", "archive", "--before", "2026-01-01", "-o", "taken.gz")
    assert done.returncode != 0 and "never overwritten" in one_line_error(done.stderr)
    assert (store / "taken.gz").read_text() == "mine"
    with opened(store) as again:
        assert len(entries(again)) == 6


def archived(store: Path) -> Path:
    done = crm(store, "audit", "archive", "--before", "2026-01-01")
    assert done.returncode == 0, done.stderr
    return store / "audit-000000001-000000004.jsonl.gz"


def broken(store: Path, *args: str) -> str:
    done = crm(store, "audit", "verify", *args)
    assert done.returncode != 0, done.stdout
    return one_line_error(done.stderr)


def test_verify_catches_a_cut_after_the_seal_and_a_forged_seal(store):
    archived(store)
    with opened(store) as again:
        raw = raw_trail(again)
        raw.delete(raw.find({"seq": 5})[0]["id"])
    assert "entry #5 is missing (the archive seal ends at #4)" in broken(store)


def test_verify_catches_the_seal_removed_or_altered(store):
    archived(store)
    with opened(store) as again:
        heads = raw_head(again)
        seal = heads.get(SEAL_ID)
        heads.update(SEAL_ID, {"entries": 3}, expected_version=seal["version"])
    assert "does not match its archives" in broken(store)
    with opened(store) as again:
        raw_head(again).delete(SEAL_ID)
    assert "entry #1 is missing" in broken(store)


def test_verify_archive_catches_an_edited_or_cut_archive_file(store):
    path = archived(store)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    edited = json.loads(lines[2])
    edited["actor"] = "mallory"
    (store / "edited.gz").write_bytes(
        gzip.compress("\n".join([lines[0], lines[1], json.dumps(edited), *lines[3:]]).encode())
    )
    assert "archived entry #2 was altered" in broken(store, "--archive", "edited.gz")
    (store / "cut.gz").write_bytes(gzip.compress("\n".join(lines[:-1]).encode()))
    assert "entries were cut or added" in broken(store, "--archive", "cut.gz")
    (store / "junk.gz").write_text("not gzip")
    assert "not an audit archive" in broken(store, "--archive", "junk.gz")
    assert "cannot read it" in broken(store, "--archive", "missing.gz")


def test_an_archive_of_another_store_is_refused(store, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    build(other)
    foreign = archived(other)
    assert "it is not an archive of this trail" in broken(store, "--archive", str(foreign))


def test_an_anchor_naming_an_archived_entry_needs_its_archive(store):
    done = crm(store, "audit", "anchor", "-o", "anchor.json")
    assert done.returncode == 0, done.stderr
    with opened(store) as again:  # entries #7 and #8
        again.customers.add(actor="ann", name="After the anchor")
        again.customers.add(actor="ann", name="And another")
    done = crm(store, "audit", "archive", "--before", "+0h")
    assert done.returncode == 0, done.stderr
    path = store / "audit-000000001-000000007.jsonl.gz"  # the anchor's #6 inside it
    assert "which is archived" in broken(store, "--anchor", "anchor.json")
    ok = crm(store, "audit", "verify", "--anchor", "anchor.json", "--archive", path.name)
    assert ok.returncode == 0, ok.stderr


def test_with_the_audit_key_the_seal_carries_a_mac_that_cannot_be_forged(tmp_path):
    env = {"CRM_AUDIT_KEY": KEY}
    build(tmp_path, env)
    done = crm(tmp_path, "audit", "archive", "--before", "2026-01-01", env=env)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "audit-000000001-000000004.jsonl.gz"
    header = json.loads(gzip.decompress(path.read_bytes()).decode().splitlines()[0])
    assert len(header["mac"]) == 64
    ok = crm(tmp_path, "audit", "verify", "--archive", path.name, env=env)
    assert ok.returncode == 0 and "MACs checked" in ok.stdout, ok.stderr
    # someone without the key moves the seal's end back and rewrites its MAC-less fields
    with opened(tmp_path, env=env) as again:
        heads = again.audit.inner.collection(HEAD)
        seal = heads.get(SEAL_ID)
        archives = [{**seal["archives"][0], "archived_at": "2020-01-01T00:00:00.000000Z"}]
        heads.update(SEAL_ID, {"archives": archives}, expected_version=seal["version"])
    done = crm(tmp_path, "audit", "verify", env=env)
    assert done.returncode != 0
    assert "has no valid MAC in the seal" in one_line_error(done.stderr)
