"""``crm complaints …`` end to end against a shared in-memory store."""

from __future__ import annotations

import json
import uuid

import pytest

from crmcore.cli.main import run
from crmcore.testing.cli import one_line_error

CONFIG = """
[complaints]
extra_categories = ["billing_dispute"]

[complaints.departments.billing]
manager = "mei"
categories = ["billing_dispute"]

[complaints.departments.customer_service]
manager = "cs-boss"
"""


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crm.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("CRMCORE_PLUGINS", "complaints")
    monkeypatch.setenv("CRM_STORAGE_BACKEND", "memory")
    monkeypatch.setenv("CRM_STORAGE_LOCATION", f"complaints-cli-{uuid.uuid4()}")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    monkeypatch.delenv("CRM_ACTOR", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = run(["--config", str(tmp_path / "crm.toml"), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def ok(cli, *args: str) -> dict:
    code, out, err = cli("--json", *args)
    assert code == 0, err
    return json.loads(out)


def test_the_whole_flow_from_the_command_line(cli):
    cid = ok(cli, "--as", "ann", "customer", "add", "--name", "Li Wei")["id"]
    opened = ok(
        cli,
        "--as",
        "ann",
        "complaints",
        "open",
        "--customer",
        cid,
        "--content",
        "charged twice for May",
        "--category",
        "billing_dispute",
        "--channel",
        "phone",
        "--claim",
        "compensation",
        "--emotion",
        "angry",
        "--emotion",
        "loud",
    )
    tid = opened["id"]
    assert opened["status"] == "registered"
    assert ok(cli, "--as", "ann", "complaints", "judge", tid, "valid")["status"] == "valid"
    dispatched = ok(cli, "--as", "dana", "complaints", "dispatch", tid, "--handler", "hu")
    assert dispatched["status"] == "dispatched"
    ok(cli, "--as", "dana", "complaints", "chase", tid, "--note", "news?")
    ok(cli, "--as", "hu", "complaints", "respond", tid, "--message", "checking the bill")
    ok(
        cli,
        "--as",
        "hu",
        "complaints",
        "propose",
        tid,
        "--solution",
        "refund May",
        "--compensation",
        "25",
    )
    code, _out, err = cli("--as", "hu", "complaints", "approve", tid)
    assert code == 5 and "only mei" in one_line_error(err)
    ok(cli, "--as", "mei", "complaints", "approve", tid)
    resolved = ok(cli, "--as", "hu", "complaints", "resolve", tid, "--cause", "double charge")
    assert resolved["status"] == "resolved"
    ok(cli, "--as", "ann", "complaints", "close", tid)
    reopened = ok(cli, "--as", "ann", "complaints", "callback", tid, "--score", "2")
    assert reopened["status"] == "in_progress"

    shown = ok(cli, "complaints", "show", tid)
    assert (shown["department"], shown["owner"], shown["compensation"]) == ("billing", "ann", 25.0)
    assert shown["emotions"] == ["angry", "loud"] and shown["satisfaction"] == 2
    assert [t["action"] for t in shown["traces"]] == [
        "registered",
        "judged",
        "dispatched",
        "chased",
        "responded",
        "proposed",
        "approved",
        "resolved",
        "closed",
        "callback",
        "reopened",
    ]
    listed = ok(cli, "complaints", "list", "--open")
    assert [t["id"] for t in listed] == [tid]
    assert ok(cli, "complaints", "list", "--status", "closed") == []
    code, out, _ = cli("complaints", "show", tid)
    assert code == 0 and "trail" in out and "reopened" in out
    code, out, _ = cli("complaints", "list")
    assert code == 0 and tid in out

    report = ok(cli, "complaints", "report")
    assert report["tickets"] == 1 and report["by_category"] == {"billing_dispute": 1}
    assert report["reopened"] == 1 and report["customers_served"] == 1
    code, out, _ = cli("complaints", "report")
    assert code == 0 and "Complaints: overview" in out and "week over week" in out
    assert ok(cli, "complaints", "escalations") == []
    assert ok(cli, "complaints", "outbox", "--ticket", tid)[0]["kind"] == "approval"

    action = ok(
        cli,
        "--as",
        "boss",
        "complaints",
        "actions",
        "add",
        "--what",
        "Fix the billing run",
        "--owner",
        "ops",
        "--due",
        "+14d",
        "--category",
        "billing_dispute",
    )["id"]
    assert ok(cli, "complaints", "actions", "list")[0]["status"] == "open"
    ok(cli, "--as", "ops", "complaints", "actions", "done", action, "--effect", "no repeats")
    assert ok(cli, "complaints", "actions", "list")[0]["effect"] == "no repeats"


def test_user_mistakes_are_one_line_errors(cli):
    cid = ok(cli, "--as", "ann", "customer", "add", "--name", "Li Wei")["id"]
    tid = ok(
        cli,
        "--as",
        "ann",
        "complaints",
        "open",
        "--customer",
        cid,
        "--content",
        "rude staff",
        "--category",
        "service",
    )["id"]
    code, _, err = cli("complaints", "resolve", tid)
    assert code == 2 and f"ticket {tid} is registered: cannot resolve" in one_line_error(err)
    code, _, err = cli("complaints", "judge", tid, "invalid")
    assert code == 2 and "explanation" in one_line_error(err)
    code, _, err = cli("complaints", "judge", tid, "valid", "--if-version", "7")
    assert code == 4 and tid in one_line_error(err)
    code, _, err = cli("complaints", "show", "tkt_missing")
    assert code == 3 and "no complaint ticket" in one_line_error(err)
    code, _, err = cli(
        "complaints", "open", "--customer", cid, "--content", "x", "--category", "weather"
    )
    assert code == 2 and "unknown category 'weather'" in one_line_error(err)
    code, _, err = cli("complaints", "report", "--since", "+1d")
    assert code == 2 and "--since" in one_line_error(err)
    assert len(ok(cli, "complaints", "list")) == 1  # nothing else was written


def test_bad_settings_in_the_file_name_the_key(cli, tmp_path):
    (tmp_path / "crm.toml").write_text(
        '[complaints]\n[[complaints.escalation]]\nafter_hours = 24\ntarget = "ceo"\n',
        encoding="utf-8",
    )
    code, _, err = cli("complaints", "list")
    assert code == 2 and "complaints.escalation[0].target" in one_line_error(err)
