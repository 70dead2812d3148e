"""What the command line prints: ``--json`` anywhere, pure JSON on stdout, logs on stderr, and a
library that prints nothing unless asked; user mistakes that used to reach "internal error"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from crmcore.cli.main import build
from crmcore.testing.cli import one_line_error

CRM = Path(sys.executable).with_name("crm")
INSTALLED = ["grading", "followup", "complaints", "loyalty", "nps", "storage_tinydb"]


@pytest.fixture
def cli(crm_cli):
    return crm_cli(*INSTALLED)


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_command_of_every_installed_plugin_takes_json_after_its_name(monkeypatch):
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    group, _pm = build([])
    group.load_all()  # plugins' lazy commands get --json when they are imported
    found = list(_commands(group))
    assert len(found) > 40  # the core's and every bundled plugin's
    lacking = [
        " ".join(path)
        for path, command in found
        if not any("--json" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert lacking == []


@pytest.mark.parametrize(
    "args",
    [
        ("customer", "list"),
        ("plugins",),
        ("tasks", "due"),
        ("config", "show"),
        ("loyalty", "balance", "CID"),
        ("complaints", "list"),
        ("grade", "show", "CID"),
    ],
)
def test_json_after_the_command_is_the_same_as_before_it(cli, args):
    cid = json.loads(cli("--json", "--as", "ann", "customer", "add", "--name", "Ann")[1])["id"]
    args = tuple(cid if a == "CID" else a for a in args)
    before = cli("--json", *args)
    after = cli(*args, "--json")
    assert before[0] == after[0] == 0, (before[2], after[2])
    assert json.loads(before[1]) == json.loads(after[1])


def test_json_after_a_group_name_and_after_a_plugin_command(cli):
    code, out, err = cli("--as", "ann", "customer", "add", "--name", "Ann", "--json")
    assert code == 0, err
    cid = json.loads(out)["id"]
    code, out, err = cli("customer", "--json", "show", cid)
    assert code == 0 and json.loads(out)["customer"]["id"] == cid, err
    code, out, err = cli("grade", "show", cid, "--json")
    assert code == 0 and isinstance(json.loads(out), dict), err


def test_an_option_value_that_reads_json_is_still_a_value(cli):
    code, out, err = cli("--as", "ann", "customer", "add", "--name", "--json")
    assert code == 0 and out.startswith("added customer"), err
    code, out, _ = cli("--json", "customer", "list")
    assert [c["name"] for c in json.loads(out)] == ["--json"]


# -- in a real subprocess ------------------------------------------------------------------------


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CRM_", "CRMCORE_")) and k != "PYTHONPATH"
    }
    env.update(
        {
            "CRM_STORAGE_BACKEND": "tinydb",
            "CRM_STORAGE_LOCATION": str(tmp_path / "data"),
            "COLUMNS": "120",
        },
        **extra,
    )
    return env


def _broken_plugin(tmp_path: Path) -> Path:
    """A distribution installed (on PYTHONPATH) with an entry point that fails to import."""
    site = tmp_path / "site"
    info = site / "crmcore_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crmcore-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[crmcore]\nbroken = crmcore_broken_missing.plugin\n")
    return site


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_stays_pure_when_an_installed_plugin_fails_to_load(tmp_path, where):
    env = _environ(tmp_path, PYTHONPATH=str(_broken_plugin(tmp_path)))
    args = ["--json", "plugins"] if where == "before" else ["plugins", "--json"]
    done = subprocess.run(
        [str(CRM), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    assert listed["broken"]["status"] == "failed"
    assert "plugin failed to load" in done.stderr and "broken" in done.stderr
    done = subprocess.run(
        [str(CRM), "--log-format", "json", "customer", "list", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [], done.stderr
    assert json.loads(done.stderr.splitlines()[0])["event"] == "plugin failed to load"


HOST_APP = textwrap.dedent("""
    from datetime import UTC, datetime, timedelta
    import crmcore

    clock = crmcore.ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    with crmcore.open_crm({"storage": {"backend": "tinydb", "location": "data"}},
                          clock=clock) as crm:
        for i in range(5):
            c = crm.customers.add(actor="web:ann", name=f"Li {i}", phone=f"1380013800{i}")
            for _ in range(6):
                crm.interactions.log(actor="web:ann", customer_id=c.id, kind="purchase",
                                     amount=5000.0, channel="chat")
            crm.tasks.create(actor="web:ann", kind="callback", title="Call",
                             due_at=clock.now() - timedelta(days=3), customer_id=c.id)
        for _ in range(3):
            clock.advance(timedelta(days=10))
            crm.tick("worker:host")
        assert crm.plugins.infos()
""")


def test_a_host_application_that_configures_no_logging_gets_no_output(tmp_path):
    (tmp_path / "host.py").write_text(HOST_APP)
    done = subprocess.run(
        [sys.executable, "host.py"],
        env=_environ(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_a_host_application_that_configures_structlog_gets_crmcores_logs_masked(tmp_path):
    script = (
        "import structlog\nstructlog.configure(processors=["
        "structlog.processors.JSONRenderer()])\n" + HOST_APP
    )
    (tmp_path / "host.py").write_text(script)
    done = subprocess.run(
        [sys.executable, "host.py"],
        env=_environ(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(e["event"] == "tier changed" for e in events)
    assert "13800138" not in done.stdout and "Li 1" not in done.stdout


# -- mistakes that used to be "internal error" ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[core]\ntimezone = 'UTC'\n".encode("utf-16"), "not UTF-8 text (it looks like UTF-16)"),
        (b"[core]\ntimezone = '\xff\xfe'\n", "not UTF-8 text"),
        (("a = " + "[" * 50_000 + "]" * 50_000).encode(), "nested too deeply"),
        (("a = " + "{b=" * 3_000 + "1" + "}" * 3_000).encode(), "nested too deeply"),
        (b"[plugins]\nenabled = [[1]]\n", "plugins.enabled[0]: expected str"),
    ],
)
def test_an_unreadable_configuration_is_one_line(cli, tmp_path, monkeypatch, content, expected):
    (tmp_path / "crm.toml").write_bytes(content)
    monkeypatch.delenv("CRMCORE_PLUGINS")
    code, out, err = cli("--config", str(tmp_path / "crm.toml"), "customer", "list")
    assert code == 2 and out == "" and expected in one_line_error(err)


@pytest.mark.parametrize(
    "args",
    [
        ("log", "CID", "--kind", "purchase", "--at", "0001-01-01"),
        ("log", "CID", "--kind", "purchase", "--at", "9999-12-31T23:59:59-05:00"),
        ("log", "CID", "--kind", "purchase", "--at", "+99999999999d"),
        ("log", "CID", "--kind", "purchase", "--at", "-999999999w"),
        ("tasks", "add", "--kind", "callback", "--title", "x", "--due", "0001-01-01T00:00+01:00"),
        ("tasks", "reschedule", "TID", "9999-12-31"),
        ("tasks", "due", "--within", "1e400d"),
        ("tasks", "due", "--within", "99999999999999w"),
        ("tasks", "due", "--rep", ""),
        ("tasks", "due", "--rep", "  "),
        ("tasks", "due", "--customer", ""),
        ("tasks", "assign", "TID", ""),
    ],
)
def test_date_extremes_and_blank_filters_are_refused_in_one_line(cli, args):
    code, out, err = cli("--json", "--as", "ann", "customer", "add", "--name", "Ann")
    cid = json.loads(out)["id"]
    code, out, err = cli(
        "--json",
        "--as",
        "ann",
        "tasks",
        "add",
        "--kind",
        "callback",
        "--title",
        "x",
        "--due",
        "+1d",
        "--rep",
        "ann",
    )
    tid = json.loads(out)["id"]
    args = tuple(cid if a == "CID" else tid if a == "TID" else a for a in args)
    before = cli("--json", "tasks", "due", "--within", "100d")[1]
    code, out, err = cli(*args)
    assert code == 2 and out == "", err
    one_line_error(err)
    assert cli("--json", "tasks", "due", "--within", "100d")[1] == before
    assert json.loads(cli("--json", "interaction", "list", cid)[1]) == []


def test_the_api_refuses_a_blank_assignee_instead_of_matching_nothing(crm):
    from crmcore.errors import ValidationError

    with pytest.raises(ValidationError, match=r"^assignee: must not be empty"):
        crm.tasks.due(assignee="")
