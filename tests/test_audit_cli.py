"""``crm audit anchor`` and ``crm audit verify --anchor`` as users run them: a real ``crm``
process on a store that ``crm init`` created."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crmcore.app import open_crm
from crmcore.testing.audit import cut_tail, entries, rechain_after_edit, set_head
from crmcore.testing.cli import one_line_error


def crm(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("CRM_") and k != "CRMCORE_PLUGINS"
    }
    environ["CRMCORE_PLUGINS"] = "storage_tinydb"  # the core's writes only: simple counts
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


@pytest.fixture
def store(tmp_path):
    assert crm(tmp_path, "init").returncode == 0

    def add_four(opened):
        for i in range(4):
            opened.customers.add(actor="ann", name=f"Customer {i}")

    tamper(tmp_path, add_four)
    return tmp_path


def tamper(folder: Path, move) -> None:
    """Open the store as ``crm`` does (from its crm.toml) and do ``move`` to it."""
    with open_crm(folder / "crm.toml", plugins=["storage_tinydb"]) as opened:
        move(opened)


def test_anchor_then_verify_catches_a_cut_tail_below_the_anchor(store):
    done = crm(store, "audit", "anchor", "-o", "anchor.json")
    assert done.returncode == 0, done.stderr
    assert "anchored entry #4" in done.stdout
    anchor = store / "anchor.json"
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600
    assert json.loads(anchor.read_text())["seq"] == 4
    assert crm(store, "audit", "verify", "--anchor", "anchor.json").returncode == 0

    def cut_and_cover(opened):
        cut_tail(opened, 2)
        set_head(opened, 2, entries(opened)[-1]["hash"])

    tamper(store, cut_and_cover)
    assert crm(store, "audit", "verify").returncode == 0  # no key: the store alone can't tell
    done = crm(store, "audit", "verify", "--anchor", "anchor.json")
    assert done.returncode == 6
    line = one_line_error(done.stderr)
    assert "the trail ends at entry #2" in line and "entries #3-#4 were removed" in line


def test_verify_fails_for_a_cut_tail(store):
    tamper(store, lambda opened: cut_tail(opened, 1))
    done = crm(store, "audit", "verify")
    assert done.returncode == 6
    assert "entry #4 were removed" in one_line_error(done.stderr)


def test_verify_fails_for_a_rechained_edit(store):
    tamper(store, lambda opened: rechain_after_edit(opened, 2, {"actor": "mallory"}))
    done = crm(store, "audit", "verify")
    assert done.returncode == 6
    assert "the trail was rewritten" in one_line_error(done.stderr)


def test_with_a_key_file_the_trail_is_sealed_and_verified(tmp_path):
    assert crm(tmp_path, "init").returncode == 0
    assert crm(tmp_path, "encryption", "new-key", "audit.key").returncode == 0
    text = (tmp_path / "crm.toml").read_text()
    text = text.replace("[core]\n", '[core]\naudit_key_file = "audit.key"\n', 1)
    (tmp_path / "crm.toml").write_text(text)
    for i in range(3):
        assert crm(tmp_path, "customer", "add", "--name", f"C{i}").returncode == 0
    assert "audit.key" in crm(tmp_path, "--json", "config", "show").stdout
    done = crm(tmp_path, "--json", "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["keyed"] is True

    def rewrite(opened):
        last = rechain_after_edit(opened, 2, {"actor": "mallory"})
        head = opened.audit.head_record()
        set_head(opened, 3, last, head["mac"])

    tamper(tmp_path, rewrite)
    done = crm(tmp_path, "audit", "verify")
    assert done.returncode == 6
    assert "entry #2 does not carry a valid MAC" in one_line_error(done.stderr)


def test_an_old_trail_gets_a_note_then_is_anchored(store):
    tamper(store, lambda opened: opened.audit.inner.collection("audit_head").delete("head"))
    done = crm(store, "audit", "verify")
    assert done.returncode == 0 and "note: no head is recorded" in done.stderr
    key = base64.b64encode(os.urandom(32)).decode()
    done = crm(store, "audit", "verify", env={"CRM_AUDIT_KEY": key})
    assert done.returncode == 6 and "run 'crm audit anchor' once" in done.stderr
    done = crm(store, "audit", "anchor", env={"CRM_AUDIT_KEY": key})
    assert done.returncode == 0
    printed = json.loads(done.stdout)  # the anchor itself, on stdout
    assert printed["seq"] == 4 and printed["mac"]
    done = crm(store, "audit", "verify", env={"CRM_AUDIT_KEY": key})
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "--anchor missing.json: cannot read it"),
        ("not json", "not an audit anchor"),
        ('{"format": "crmcore-audit-anchor/1", "seq": -1, "hash": "x"}', "needs a 'seq'"),
    ],
)
def test_bad_anchor_files_are_one_line_errors(store, content, fragment):
    name = "missing.json" if content is None else "bad.json"
    if content is not None:
        (store / name).write_text(content)
    done = crm(store, "audit", "verify", "--anchor", name)
    assert done.returncode == 2
    assert fragment in one_line_error(done.stderr)


def test_anchor_never_overwrites_a_file(store):
    (store / "anchor.json").write_text("keep me")
    done = crm(store, "audit", "anchor", "-o", "anchor.json")
    assert done.returncode == 2 and "never overwritten" in one_line_error(done.stderr)
    assert (store / "anchor.json").read_text() == "keep me"
