"""Administrative commands under the permission policy, and who may be named with ``--as``
(issue 18, "Permissions")."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from crmcore import PermissionDenied
from crmcore.cli.main import run
from crmcore.security import ADMIN_ACTIONS, Resource
from crmcore.testing.cli import one_line_error

ACTORS = {
    "ann": {"role": "agent", "team": "north"},
    "lee": {"role": "shift_lead", "team": "north"},
    "max": {"role": "manager", "department": "service"},
    "aud": {"role": "auditor"},
    "root": {"role": "admin"},
}
READ_ONLY = {a for a, read in ADMIN_ACTIONS.items() if read}


@pytest.mark.parametrize("action", sorted(ADMIN_ACTIONS))
def test_admin_actions_are_for_admins_and_the_read_only_ones_for_auditors(make_crm, action):
    crm = make_crm(settings={"security": {"enforce": True, "actors": ACTORS}})
    allowed = set()
    for who in [*ACTORS, "system", "worker:w1"]:
        try:
            crm.authorize(who, action, Resource(action.split(".")[0]))
        except PermissionDenied:
            continue
        allowed.add(who)
    expected = {"root", "system", "worker:w1"} | ({"aud"} if action in READ_ONLY else set())
    assert allowed == expected


CONFIG = """[core]
timezone = "UTC"

[storage]
backend = "tinydb"
location = "crm-data"

[security]
enforce = {enforce}

[security.actors.ann]
role = "agent"

[security.actors.aud]
role = "auditor"

[security.actors.root]
role = "admin"
"""


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(*args, enforce=True)``: ``crm`` in-process on an embedded store configured as
    ``crm init`` writes it, plus a ``[security]`` table."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMCORE_PLUGINS", "storage_tinydb")
    for name in (
        "CRM_CONFIG",
        "CRM_ACTOR",
        "CRM_STORAGE_BACKEND",
        "CRM_STORAGE_LOCATION",
        "CRM_ENCRYPTION_KEY",
        "CRM_AUDIT_KEY",
    ):
        monkeypatch.delenv(name, raising=False)

    def call(*args: str, enforce: bool = True) -> tuple[int, str, str]:
        (tmp_path / "crm.toml").write_text(CONFIG.format(enforce=str(enforce).lower()))
        (tmp_path / "crm.toml").chmod(0o600)
        code = run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


COMMANDS = {
    "store.backup": ["backup", "bk"],
    "store.compact": ["compact"],
    "store.check": ["check"],
    "store.repair": ["check", "--repair"],
    "store.migrate": ["migrate", "--to", "tinydb", "--to-location", "copy"],
    "config.read": ["config", "show"],
    "config.write": ["init", "--force"],
    "audit.anchor": ["audit", "anchor"],
    "audit.archive": ["audit", "archive", "--before", "2000-01-01"],
}


@pytest.mark.parametrize("action", sorted(COMMANDS))
def test_every_admin_command_is_refused_to_an_agent_and_allowed_to_an_admin(cli, tmp_path, action):
    args = COMMANDS[action]
    code, _, err = cli("--as", "ann", *args)
    assert code == 5, err
    assert "ann (agent) may not" in one_line_error(err) and "it is for admins" in err
    assert not (tmp_path / "bk").exists() and not (tmp_path / "copy").exists()
    code, out, err = cli("--json", "--as", "root", "audit", "--limit", "5")
    denied = [e for e in json.loads(out) if e["op"] == "denied"]
    assert denied[0]["diff"]["action"] == action and denied[0]["actor"] == "ann"
    code, _, err = cli("--as", "aud", *args)
    assert (code == 0) == (action in READ_ONLY), err
    code, _, err = cli("--as", "root", *args)
    assert code == 0, err


def test_encryption_commands_are_under_the_policy(cli, tmp_path, monkeypatch):
    key, old = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))
    monkeypatch.setenv("CRM_ENCRYPTION_KEY", key)
    monkeypatch.setenv("CRM_ENCRYPTION_PREVIOUS_KEYS", old)
    text = CONFIG.replace('timezone = "UTC"', 'timezone = "UTC"\nencrypt_personal = true')

    def call(*args):
        (tmp_path / "crm.toml").write_text(text.format(enforce="true"))
        code = run(list(args))
        return code

    assert call("--as", "ann", "encryption", "status") == 5
    assert call("--as", "aud", "encryption", "status") == 0
    assert call("--as", "aud", "encryption", "rotate") == 5
    assert call("--as", "root", "encryption", "rotate") == 0


def test_init_force_over_a_configuration_without_enforcement_needs_no_permission(cli):
    assert cli("--as", "ann", "init", "--force", enforce=False)[0] == 0


@pytest.mark.parametrize("enforce", [True, False])
def test_an_empty_actor_is_refused_not_replaced_by_system(cli, enforce):
    code, _, err = cli("--as", "", "customer", "add", "--name", "Li", enforce=enforce)
    assert code == 2 and "--as needs a name; it is empty" in one_line_error(err)
    code, _, err = cli("--as", "  ", "check", enforce=enforce)
    assert code == 2 and "--as needs a name" in one_line_error(err)
    code, _, err = cli("--as", "", "worker", "--once", enforce=enforce)  # acts as itself
    assert code == 2 and "--as needs a name" in one_line_error(err)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ann\x1b[31m", "control or formatting character U+001B"),
        ("\u202eann", "control or formatting character U+202E"),
        ("an\x00n", "control or formatting character U+0000"),
        ("a" * 201, "longer than 200 characters"),
    ],
)
def test_actor_names_that_are_not_plain_text_are_refused(cli, name, fragment):
    code, _, err = cli("--as", name, "customer", "add", "--name", "Li", enforce=False)
    assert code == 2 and fragment in one_line_error(err)


@pytest.mark.parametrize("enforce", [True, False])
@pytest.mark.parametrize("name", ["worker:followup", "system"])
def test_system_actor_names_cannot_be_claimed(cli, monkeypatch, enforce, name):
    code, _, err = cli("--as", name, "customer", "add", "--name", "Li", enforce=enforce)
    assert code == 5 and "is reserved for crmcore's own processes" in one_line_error(err)
    monkeypatch.setenv("CRM_ACTOR", name)
    code, _, err = cli("customer", "add", "--name", "Li", enforce=enforce)
    assert code == 5 and f"$CRM_ACTOR '{name}' is reserved" in one_line_error(err)


def test_under_enforcement_the_default_system_actor_is_not_used(cli):
    code, _, err = cli("customer", "add", "--name", "Li", enforce=True)
    assert code == 5
    assert "[core] default_actor 'system' is reserved" in one_line_error(err)
    assert cli("customer", "add", "--name", "Li", enforce=False)[0] == 0  # as before


def test_the_worker_still_acts_as_a_system_actor_under_enforcement(cli):
    code, out, err = cli("--json", "worker", "--once", "--name", "w1")
    assert code == 0, err
    assert "tasks_created" in json.loads(out)


def test_an_actor_that_is_not_valid_text_is_one_line_in_a_real_process(tmp_path):
    """``--as $'\\ud800'`` in bash: bytes that are not UTF-8 reach Python as lone surrogates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    env["CRMCORE_PLUGINS"] = "storage_tinydb"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmcore.cli.main",
            "--as",
            b"\xed\xa0\x80",
            "customer",
            "add",
            "--name",
            "Li",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, err
    assert "--as is not valid text" in one_line_error(err)
    from crmcore.app import open_crm

    storage = {"backend": "tinydb", "location": str(tmp_path / "crm-data")}
    with open_crm({"storage": storage}, plugins=["storage_tinydb"]) as crm:
        assert crm.customers.count() == 0  # nothing written


@pytest.mark.parametrize("name", ["ann\u202e", "a\x1bb", "\ud800"])
def test_the_python_api_refuses_actor_names_that_are_not_plain_text(make_crm, name):
    from crmcore import ValidationError

    crm = make_crm()
    with pytest.raises(ValidationError, match="actor"):
        crm.customers.add(actor=name, name="Li")
    assert crm.customers.count() == 0
