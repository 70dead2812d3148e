"""``crm service …`` as users run it: in-process for the flow, and once in a real subprocess
with a profile written by ``crm init``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crmcore.testing.cli import one_line_error


def ok(cli, *args: str):
    code, out, err = cli("--json", *args)
    assert code == 0, err
    return json.loads(out)


def seed_customer(cli) -> str:
    with cli.open() as crm:
        return crm.customers.add(actor="ann", name="Li Wei", phone="+86 138 0013 8000").id


def test_open_advance_show_list_from_the_command_line(crm_cli):
    cli = crm_cli("service")
    cid = seed_customer(cli)
    opened = ok(
        cli,
        "--as",
        "ann",
        "service",
        "open",
        "billing_dispute",
        "--customer",
        cid,
        "--set",
        "disputed_amount=58",
        "--summary",
        "roaming charged twice",
    )
    oid = opened["id"]
    assert opened["state"] == "report" and opened["assignee"] == "ann"
    ok(cli, "--as", "bo", "service", "advance", oid, "investigate")
    ok(cli, "--as", "bo", "service", "advance", oid, "decision", "--set", "findings=double")
    moved = ok(
        cli,
        "--as",
        "bo",
        "service",
        "advance",
        oid,
        "adjustment",
        "--set",
        "decision=upheld",
        "--set",
        "amount=-58",
        "--set",
        "reason=double",
        "--note",
        "refund approved",
    )
    assert moved["state"] == "adjustment"
    shown = ok(cli, "service", "show", oid)
    assert shown["next"] == ["lessons"]
    assert [c["amount"] for c in shown["charges"]] == [-58.0]
    assert [h["to_state"] for h in shown["history"]] == [
        "report",
        "investigate",
        "decision",
        "adjustment",
    ]
    assert shown["history"][-1]["note"] == "refund approved"
    listed = ok(cli, "service", "list", "--type", "billing_dispute", "--open")
    assert [o["id"] for o in listed] == [oid]
    code, out, _err = cli("service", "show", oid)
    assert code == 0 and "adjustment" in out and "history" in out
    types = ok(cli, "service", "types")
    assert {t["name"] for t in types} >= {"business", "cancellation", "work_order"}


def test_mistakes_give_one_line_and_write_nothing(crm_cli):
    cli = crm_cli("service")
    cid = seed_customer(cli)
    oid = ok(cli, "service", "open", "fault", "--customer", cid, "--set", "symptom=slow")["id"]
    cases = [
        (("service", "advance", oid, "closed"), "cannot move to 'closed' (allowed: diagnosis)"),
        (("service", "open", "fault", "--customer", cid), "needs symptom"),
        (("service", "open", "teleport", "--customer", cid), "unknown order type 'teleport'"),
        (("service", "open", "fault", "--customer", cid, "--set", "symptom"), "NAME=VALUE"),
        (("service", "show", "svc_nope"), "no service order 'svc_nope'"),
        (("service", "list", "--type", "fault", "--step", "nowhere"), "has no step 'nowhere'"),
        (("service", "advance", oid, "diagnosis", "--if-version", "7"), "not 7"),
    ]
    for args, message in cases:
        code, out, err = cli(*args)
        assert code != 0 and out == "", args
        assert message in one_line_error(err), (args, err)
    assert len(ok(cli, "service", "list")) == 1
    assert ok(cli, "service", "show", oid)["version"] == 1


def test_business_acceptance_in_the_telecom_profile_in_a_subprocess(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    env["CRM_ACTOR"] = "admin"

    def crm(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", "--json", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", "init", "--profile", "telecom"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    cid = crm("customer", "add", "--name", "Li Wei", "--phone", "13800138000")["id"]
    oid = crm("service", "open", "business", "--customer", cid, "--set", "product=5G 129")["id"]
    for step, sets in [
        ("document_review", []),
        ("contract", ["documents_checked=id card"]),
        ("provisioning", ["contract_no=C-1"]),
        ("completed", ["service_number=13800138001"]),
    ]:
        args = [a for s in sets for a in ("--set", s)]
        crm("service", "advance", oid, step, *args)
    shown = crm("service", "show", oid)
    assert shown["outcome"] == "done" and shown["next"] == []
    callbacks = crm("tasks", "due", "--customer", cid, "--kind", "callback", "--within", "3d")
    assert len(callbacks) == 1  # followup and service agree on one 3-day callback
    assert callbacks[0]["ref"].startswith("int_")
    assert crm("tasks", "due", "--customer", cid, "--kind", "service", "--within", "30d") == []

    def flow(*window: str) -> list:
        sections = {s["title"].split(",")[0]: s for s in crm("report", *window)}
        return sections["Service orders opened and closed"]["rows"]

    assert flow("--since=-1h", "--until=+1h") == [["business", 1, 1, 1, 0, 0]]
    assert flow("--since=-1h", "--until=+1h", "--rep", "admin") == [["business", 1, 1, 1, 0, 0]]
    assert flow("--since=-1h", "--until=+1h", "--rep", "someone_else") == []
    assert flow("--since=-3d", "--until=-2d") == []


CONFIG = """
[service.surveys.half_year]
title = "Half-year satisfaction"
questions = [{ key = "overall" }, { key = "network", category = "network" }]

[service.campaigns.outage]
title = "Outage"
offer = "free data"
incident = { tag = "outage" }
"""


def test_surveys_campaigns_response_and_qa_from_the_command_line(crm_cli, tmp_path):
    cli = crm_cli("service")
    (tmp_path / "crm.toml").write_text(CONFIG, encoding="utf-8")
    conf = ("--config", str(tmp_path / "crm.toml"))
    cid = ok(
        cli,
        *conf,
        "customer",
        "add",
        "--name",
        "Li",
        "--phone",
        "+86 138 0013 8000",
        "--tag",
        "outage",
        "--owner",
        "ann",
    )["id"]
    enquiry = ok(cli, *conf, "log", cid, "--kind", "inquiry", "--channel", "chat", "--rep", "ann")[
        "id"
    ]
    assert ok(cli, *conf, "service", "survey", "run", "half_year")["asked"] == 1
    answered = ok(
        cli,
        *conf,
        "--as",
        "ann",
        "service",
        "survey",
        "answer",
        "half_year",
        "--customer",
        cid,
        "--score",
        "overall=5",
        "--score",
        "network=3",
    )
    assert answered["satisfaction"] == 4
    by_cat = ok(cli, *conf, "service", "survey", "results", "half_year", "--by", "category")
    assert {r["group"]: r["mean"] for r in by_cat} == {"general": 5.0, "network": 3.0}
    assert ok(cli, *conf, "service", "campaign", "run", "outage")["targeted"] == 1
    ok(
        cli,
        *conf,
        "--as",
        "ann",
        "service",
        "campaign",
        "contact",
        "outage",
        "--customer",
        cid,
        "--satisfaction",
        "4",
    )
    assert ok(cli, *conf, "service", "campaign", "effect", "outage")["contacted"] == 1
    ok(cli, *conf, "--as", "ann", "service", "reply", enquiry, "--summary", "answered")
    [row] = ok(cli, *conf, "service", "response", "--days", "1")
    assert (row["channel"], row["rep"], row["answered"]) == ("chat", "ann", 1)
    assert ok(cli, *conf, "service", "qa", "sample", "--month", "2026-12")["added"] >= 0
    code, _out, err = cli(
        *conf,
        "service",
        "survey",
        "answer",
        "half_year",
        "--customer",
        cid,
        "--score",
        "overall=9",
        "--score",
        "network=3",
    )
    assert code != 0 and "outside 1-5" in one_line_error(err)
    code, _out, err = cli(*conf, "service", "qa", "report", "--month", "Jan")
    assert code != 0 and "YYYY-MM" in one_line_error(err)
