"""``crm user add|list|disable|password`` as users run them: real processes on a store made by
``crm init``; mistakes are one line and write nothing; the password never on the command line
and never stored or printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from crmcore_web.users import Users

from crmcore import open_crm
from crmcore.testing.cli import one_line_error

PASSWORD = "correct horse battery"


class Store:
    def __init__(self, folder: Path, profile: str = "retail") -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
        self.folder = folder
        self.config = folder / "crm.toml"
        self.run("init", "--profile", profile, "--path", str(self.config), check=True)

    def run(
        self, *args: str, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", "--config", str(self.config), *args],
            env=self.env,
            cwd=self.folder,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def users(self) -> list:
        with open_crm(str(self.config)) as crm:
            return Users(crm).list(actor="system", include_disabled=True)


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path)


def test_add_list_disable_and_change_a_password(store):
    added = store.run(
        "user",
        "add",
        "ann",
        "--role",
        "agent",
        "--team",
        "north",
        "--password-stdin",
        input=PASSWORD + "\n",
        check=True,
    )
    assert "added user ann (role agent, team north)" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr
    listed = json.loads(store.run("--json", "user", "list", check=True).stdout)
    assert [(u["name"], u["role"], u["team"], u["status"]) for u in listed] == [
        ("ann", "agent", "north", "active")
    ]
    assert "password" not in json.dumps(listed)
    with open_crm(str(store.config)) as crm:
        assert Users(crm).verify("ann", PASSWORD) is not None
    store.run("user", "password", "ann", "--password-stdin", input="another secret 2\n", check=True)
    with open_crm(str(store.config)) as crm:
        assert Users(crm).verify("ann", PASSWORD) is None
        assert Users(crm).verify("ann", "another secret 2") is not None
    store.run("user", "disable", "ann", check=True)
    assert store.run("user", "list", check=True).stdout.strip() == "no users"
    assert "disabled" in store.run("user", "list", "--all", check=True).stdout
    with open_crm(str(store.config)) as crm:
        assert Users(crm).verify("ann", "another secret 2") is None


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (("ann", "--role", "agent", "--password-stdin"), "short\n", "at least 8 characters"),
        (("ann", "--role", "agent", "--password-stdin"), "", "nothing on standard input"),
        (("ann", "--password-stdin"), PASSWORD + "\n", "not a known actor; pass --role"),
        (("worker:x", "--role", "admin", "--password-stdin"), PASSWORD + "\n", "system actor"),
        (("a\x1bb", "--role", "agent", "--password-stdin"), PASSWORD + "\n", "control"),
        (("ann", "--role", "wizard", "--password-stdin"), PASSWORD + "\n", "wizard"),
        (("ann", "--role", "agent"), PASSWORD + "\n", "--password-stdin"),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(store, args, stdin, says):
    done = store.run("user", "add", *args, input=stdin)
    assert done.returncode != 0
    assert says in one_line_error(done.stderr)
    assert store.users() == []


def test_a_second_user_of_the_same_name_is_refused(store):
    store.run(
        "user",
        "add",
        "ann",
        "--role",
        "agent",
        "--password-stdin",
        input=PASSWORD + "\n",
        check=True,
    )
    again = store.run(
        "user", "add", "ann", "--role", "admin", "--password-stdin", input=PASSWORD + "\n"
    )
    assert again.returncode == 2 and "exists already" in one_line_error(again.stderr)
    assert [u.role for u in store.users()] == ["agent"]


def test_unknown_users_are_named_in_one_line(store):
    done = store.run("user", "disable", "nobody")
    assert done.returncode == 3 and "no user named 'nobody'" in one_line_error(done.stderr)


def test_only_admins_manage_users_when_permissions_are_enforced(tmp_path):
    store = Store(tmp_path, profile="telecom")  # enforces, ships admin and auditor
    refused = store.run(
        "--as",
        "auditor",
        "user",
        "add",
        "eve",
        "--role",
        "admin",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert refused.returncode == 5 and "it is for admins" in one_line_error(refused.stderr)
    assert store.users() == []
    store.run(
        "--as",
        "admin",
        "user",
        "add",
        "eve",
        "--role",
        "agent",
        "--password-stdin",
        input=PASSWORD + "\n",
        check=True,
    )
    assert store.run("--as", "auditor", "user", "list", check=True).stdout.count("eve") == 1
