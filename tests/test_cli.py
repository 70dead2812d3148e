"""The crm command line: results, and every kind of bad input as one line + exit code."""

import json
import os
import stat
import uuid

import pytest

from crmcore.testing.cli import one_line_error


@pytest.fixture
def cli(crm_cli):
    """``crm`` in-process with only the core loaded (no installed plugin interferes)."""
    return crm_cli()


def count_customers(cli) -> int:
    code, out, _ = cli("--json", "customer", "list", "--limit", "1000")
    assert code == 0
    return len(json.loads(out))


def add(cli, *args: str) -> str:
    code, out, err = cli("--json", "--as", "ann", "customer", "add", *args)
    assert code == 0, err
    return json.loads(out)["id"]


def test_customer_round_trip(cli):
    cid = add(cli, "--name", "Li Lei", "--phone", "138 0013 8000", "--tag", "vip")
    code, out, _ = cli("--json", "customer", "show", cid)
    shown = json.loads(out)
    assert code == 0 and shown["customer"]["phone"] == "13800138000"
    assert shown["customer"]["created_by"] == "ann" and shown["customer"]["tags"] == ["vip"]
    code, out, _ = cli("customer", "show", cid)
    assert code == 0 and "Li Lei" in out and "Recent interactions" in out


def test_log_then_tasks_due_and_done(cli):
    cid = add(cli, "--name", "Li")
    assert (
        cli(
            "--as", "bo", "log", cid, "--kind", "purchase", "--amount", "12.5", "--channel", "chat"
        )[0]
        == 0
    )
    code, out, _ = cli(
        "--json",
        "--as",
        "bo",
        "tasks",
        "add",
        "--kind",
        "callback",
        "--title",
        "call Li",
        "--due",
        "-1h",
        "--customer",
        cid,
        "--rep",
        "bo",
    )
    task_id = json.loads(out)["id"]
    code, out, _ = cli("--json", "tasks", "due", "--rep", "bo")
    assert [t["id"] for t in json.loads(out)] == [task_id]
    assert cli("--as", "bo", "tasks", "done", task_id, "--outcome", "reached")[0] == 0
    code, out, _ = cli("tasks", "due")
    assert code == 0 and "nothing is due" in out
    code, out, _ = cli("--json", "interaction", "list", cid)
    assert json.loads(out)[0]["amount"] == 12.5


def test_worker_once(cli):
    code, out, err = cli("worker", "--once", "--name", "w1")
    assert code == 0 and "sweep 1" in out, err


def test_a_worker_runs_a_rolled_back_sweep_again_and_never_stops_for_one(cli, monkeypatch):
    from crmcore import retry
    from crmcore.errors import TransientConflict
    from crmcore.kernel import Kernel

    real_apply, calls = Kernel.apply, []

    def apply(self, effects, *, actor, applied=None):  # where a sweep writes
        calls.append(actor)
        if len(calls) <= 2 or 4 <= len(calls) <= 3 + retry.ATTEMPTS:
            raise TransientConflict("simulated: a concurrent transaction won")
        return real_apply(self, effects, actor=actor, applied=applied)

    monkeypatch.setattr(Kernel, "apply", apply)
    monkeypatch.setattr(retry.time, "sleep", lambda _s: None)
    monkeypatch.setattr("crmcore.cli.tasks.time.sleep", lambda _s: None)
    code, out, err = cli("worker", "--iterations", "2", "--name", "w1")
    assert code == 0, err
    first, second = out.strip().splitlines()
    assert "sweep 1: 0 task(s) created" in first  # third try of the first sweep
    assert "sweep 2: rolled back" in second  # every try of the second lost: went on
    assert len(calls) == 2 + 1 + retry.ATTEMPTS


def test_plugins_lists_the_core(cli):
    code, out, _ = cli("--json", "plugins")
    assert code == 0
    core = next(p for p in json.loads(out) if p["name"] == "core")
    assert core["status"] == "ok" and "crm_storage_backends" in core["hooks"]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["frobnicate"], 2, "No such command 'frobnicate'"),
        (["customer", "add", "--nme", "Li"], 2, "No such option '--nme'"),
        (["customer", "add"], 2, "Missing option '--name'"),
        (["customer", "add", "--name", "Li", "--phone", "12"], 2, "phone: malformed phone number"),
        (["customer", "add", "--name", "Li", "--email", "li@"], 2, "email: malformed e-mail"),
        (["customer", "add", "--name", "Li", "--gender", "x"], 2, "Invalid value for '--gender'"),
        (
            ["customer", "add", "--name", "Li", "--birth-date", "1/2/90"],
            2,
            "birth_date: expected a date",
        ),
        (["customer", "show", "cus_missing"], 3, "no record with id 'cus_missing'"),
        (["tasks", "done", "tsk_missing"], 3, "no record with id 'tsk_missing'"),
        (["log", "cus_missing", "--kind", "visit"], 3, "no record with id 'cus_missing'"),
        (
            ["tasks", "add", "--kind", "other", "--title", "x", "--due", "tomorrow"],
            2,
            "is not a date",
        ),
        (["tasks", "due", "--within", "soon"], 2, "is not a duration"),
        (["customer", "import", "nowhere.csv"], 2, "nowhere.csv: no such file"),
        (["compact"], 6, "memory"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(cli, args, code, fragment):
    got, _out, err = cli(*args)
    assert got == code
    assert fragment in one_line_error(err)
    assert count_customers(cli) == 0


def test_stale_version_is_a_conflict(cli):
    cid = add(cli, "--name", "Li")
    assert cli("customer", "update", cid, "--region", "North", "--expected-version", "1")[0] == 0
    code, _, err = cli("customer", "update", cid, "--region", "South", "--expected-version", "1")
    assert code == 4 and "changed since you read it" in one_line_error(err)
    _, out, _ = cli("--json", "customer", "show", cid)
    assert json.loads(out)["customer"]["region"] == "North"


def test_unknown_interaction_kind_lists_the_allowed_ones(cli):
    cid = add(cli, "--name", "Li")
    code, _, err = cli("log", cid, "--kind", "gossip")
    assert code == 2 and "unknown interaction kind 'gossip' (allowed: " in one_line_error(err)


def test_invalid_configuration_names_file_and_key(cli, tmp_path):
    (tmp_path / "crm.toml").write_text('[core]\ntimezone = "Nowhere/Land"\n')
    code, _, err = cli("customer", "list")
    assert code == 2
    assert "crm.toml: core.timezone: unknown time zone 'Nowhere/Land'" in one_line_error(err)
    (tmp_path / "crm.toml").write_text('[core]\ncolour = "blue"\n')
    code, _, err = cli("customer", "list")
    assert code == 2 and "core: unknown key(s): colour" in one_line_error(err)


CSV = """name,Phone Number,email,tags
Li Lei,138 0013 8000,li@example.com,vip;new
,139 0000 0000,,
Wang Fang,12,wang@example.com,
Zhao Min,137 1111 2222,zhao@example.com,
Chen Jie,136 2222 3333,chen@,
"""


def test_import_reports_bad_rows_with_line_numbers_and_keeps_good_ones(cli, tmp_path):
    (tmp_path / "clients.csv").write_text(CSV)
    code, out, err = cli("customer", "import", "clients.csv", "--map", "Phone Number=phone")
    assert code == 2
    lines = err.strip().splitlines()
    assert lines == [
        "clients.csv:3: name: is required",
        "clients.csv:4: phone: malformed phone number '12': expected 6 to 15 digits",
        "clients.csv:6: email: malformed e-mail address 'chen@'",
    ]
    assert "imported 2 of 5 customers; 3 bad row(s)" in out
    code, out, _ = cli("--json", "customer", "list")
    assert sorted(c["name"] for c in json.loads(out)) == ["Li Lei", "Zhao Min"]
    assert [c["tags"] for c in json.loads(out) if c["name"] == "Li Lei"] == [["new", "vip"]]


def test_atomic_and_dry_run_imports_write_nothing(cli, tmp_path):
    (tmp_path / "clients.csv").write_text(CSV)
    code, out, _ = cli(
        "customer", "import", "clients.csv", "--map", "Phone Number=phone", "--atomic"
    )
    assert code == 2 and count_customers(cli) == 0
    code, out, _ = cli(
        "customer", "import", "clients.csv", "--map", "Phone Number=phone", "--dry-run"
    )
    assert code == 2 and "would import 2 of 5" in out and count_customers(cli) == 0


def test_unmapped_columns_are_reported_once_not_guessed(cli, tmp_path):
    rows = "".join(f"Li {i},1380013{i:04d},{i}\n" for i in range(300))
    (tmp_path / "clients.csv").write_text("name,Phone Number,Shoe Size\n" + rows)
    code, _, err = cli("customer", "import", "clients.csv")
    assert code == 2
    assert one_line_error(err) == (
        "error: clients.csv:1: unknown column(s) Shoe Size (map them with --map COLUMN=FIELD, "
        "or pass --skip-unknown to leave them out)"
    )
    assert count_customers(cli) == 0
    code, out, err = cli("customer", "import", "clients.csv", "--skip-unknown")
    assert code == 0, err
    assert "imported 300 of 300 customers" in out and "left out column(s) Shoe Size" in out


def test_jsonl_import_reports_malformed_lines(cli, tmp_path):
    (tmp_path / "c.jsonl").write_text('{"name": "Li"}\n{not json\n[1, 2]\n{"name": "Wang"}\n')
    code, _out, err = cli("customer", "import", "c.jsonl")
    assert code == 2
    assert err.strip().splitlines() == [
        "c.jsonl:2: not valid JSON (Expecting property name enclosed in double quotes)",
        "c.jsonl:3: each line must be a JSON object",
    ]
    assert count_customers(cli) == 2


def test_export_file_is_private_and_reimports(cli, tmp_path):
    add(cli, "--name", "Li Lei", "--phone", "13800138000")
    add(cli, "--name", "Wang Fang", "--email", "wang@example.com")
    for fmt in ("csv", "jsonl"):
        code, _, err = cli("customer", "export", "--format", fmt, "-o", f"all.{fmt}")
        assert code == 0, err
        mode = stat.S_IMODE(os.stat(tmp_path / f"all.{fmt}").st_mode)
        assert mode == 0o600
    rows = (tmp_path / "all.jsonl").read_text().splitlines()
    assert sorted(json.loads(r)["name"] for r in rows) == ["Li Lei", "Wang Fang"]
    assert "Li Lei" in (tmp_path / "all.csv").read_text()


def test_export_one_customer_holds_everything(cli):
    cid = add(cli, "--name", "Li Lei")
    cli("log", cid, "--kind", "visit", "--summary", "came in")
    _code, out, _ = cli("customer", "export", cid)
    held = json.loads(out)
    assert held["customer"]["name"] == "Li Lei"
    assert held["collections"]["interactions"][0]["summary"] == "came in"


def test_config_show_masks_credentials(cli, tmp_path):
    (tmp_path / "crm.toml").write_text('[storage]\nbackend = "memory"\n')
    os.environ.pop("CRM_STORAGE_LOCATION")
    os.environ["CRM_STORAGE_LOCATION"] = "mongodb://admin:s3cret@db.example.com/crm"
    code, out, _ = cli("--json", "config", "show")
    assert code == 0 and "s3cret" not in out
    assert json.loads(out)["storage"]["location"] == "mongodb://admin:***@db.example.com/crm"


def test_init_writes_a_private_config(cli, tmp_path):
    code, _out, err = cli("init", "--path", "site/crm.toml")
    # the default profile names the tinydb backend, overridden here to memory by the env
    assert code == 0, err
    assert stat.S_IMODE(os.stat(tmp_path / "site" / "crm.toml").st_mode) == 0o600
    code, _, err = cli("init", "--path", "site/crm.toml")
    assert code == 2 and "exists; pass --force" in one_line_error(err)
    code, _, err = cli("init", "--profile", "bakery")
    assert code == 2 and "unknown profile 'bakery'" in one_line_error(err)


def test_audit_lists_and_verifies(cli):
    cid = add(cli, "--name", "Li Lei", "--phone", "13800138000")
    cli("--as", "bo", "customer", "update", cid, "--region", "North")
    code, out, _ = cli("--json", "audit", "--customer", cid)
    entries = json.loads(out)
    assert code == 0 and [(e["op"], e["actor"]) for e in entries] == [
        ("update", "bo"),
        ("insert", "ann"),
    ]
    assert "13800138000" not in out
    assert entries[0]["details"] == "changed: region, updated_at, updated_by"
    code, out, _ = cli("audit", "verify")
    assert code == 0 and "audit trail intact: 2 entries" in out


def test_audit_details_say_what_an_entry_is_about():
    from crmcore.cli.audit import details

    assert details({"op": "insert", "diff": {"after": {"name": "***"}}}) == ""
    assert (
        details(
            {
                "op": "denied",
                "diff": {"action": "customer.update", "reason": "bo may not update customer c1"},
            }
        )
        == "customer.update: bo may not update customer c1"
    )
    assert (
        details({"op": "rekey", "diff": {"resealed": 12, "complete": True}})
        == "complete=True, resealed=12"
    )


def test_forget_needs_confirmation_then_erases(cli):
    cid = add(cli, "--name", "Li Lei", "--phone", "13800138000")
    code, _, err = cli("customer", "forget", cid)
    assert code == 2 and "repeat with --yes" in one_line_error(err)
    assert cli("customer", "forget", cid, "--yes")[0] == 0
    code, out, _ = cli("customer", "export", cid)
    assert "Li Lei" not in out and "13800138000" not in out and '"status": "erased"' in out


def test_migrate_copies_everything_and_verifies(cli):
    cid = add(cli, "--name", "Li Lei")
    cli("log", cid, "--kind", "visit")
    target = f"migrate-target-{uuid.uuid4()}"
    code, out, err = cli("--json", "migrate", "--to", "memory", "--to-location", target)
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and result["collections"]["customers"] == {
        "source": 1,
        "target": 1,
        "copied": 1,
        "checksum": result["collections"]["customers"]["checksum"],
    }
    assert result["collections"]["interactions"]["target"] == 1
    assert result["resumed"] is False
    code, _, err = cli("migrate", "--to", "memory", "--to-location", target)
    assert code == 6 and "is not empty" in one_line_error(err)
    code, _, err = cli("migrate", "--to", "memory", "--to-location", target, "--resume")
    assert code == 6 and "nothing to resume" in one_line_error(err)
    code, _, err = cli("migrate", "--to", "nosql", "--to-location", "x")
    assert code == 2 and "no backend named 'nosql'" in one_line_error(err)


def test_interaction_import_with_mapping_and_per_row_errors(cli, tmp_path):
    cid = add(cli, "--name", "Li Lei")
    (tmp_path / "visits.csv").write_text(
        "client,type,when,value\n"
        f"{cid},purchase,2026-01-04T10:00,99.5\n"
        f"{cid},gossip,2026-01-04T11:00,\n"
        f"cus_nobody,visit,2026-01-04T12:00,\n"
        f"{cid},purchase,yesterday,5\n"
    )
    code, out, err = cli(
        "interaction",
        "import",
        "visits.csv",
        "--map",
        "client=customer_id",
        "--map",
        "type=kind",
        "--map",
        "when=occurred_at",
        "--map",
        "value=amount",
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("visits.csv:3: kind: unknown interaction kind 'gossip'")
    assert lines[1].startswith("visits.csv:4: ") and "cus_nobody" in lines[1]
    assert lines[2] == "visits.csv:5: occurred_at: expected an ISO date and time, got 'yesterday'"
    assert "imported 1 of 4 interactions" in out
    _, out, _ = cli("--json", "interaction", "list", cid)
    (only,) = json.loads(out)
    assert (only["kind"], only["amount"]) == ("purchase", 99.5)
    assert only["occurred_at"].startswith("2026-01-04T10:00")  # UTC: the default zone


def test_interactions_export_and_reimport_round_trip(cli, tmp_path):
    cid = add(cli, "--name", "Li Lei")
    cli("log", cid, "--kind", "purchase", "--amount", "12.5", "--summary", "kettle; blue")
    cli("log", cid, "--kind", "visit", "--channel", "in_person")
    for fmt in ("csv", "jsonl"):
        code, _, err = cli(
            "interaction", "export", "--customer", cid, "--format", fmt, "-o", f"i.{fmt}"
        )
        assert code == 0, err
        assert stat.S_IMODE(os.stat(tmp_path / f"i.{fmt}").st_mode) == 0o600
    rows = [json.loads(line) for line in (tmp_path / "i.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["amount"]) for r in rows] == [("purchase", 12.5), ("visit", None)]
    text = (tmp_path / "i.csv").read_text()
    assert text.splitlines()[0].startswith("id,customer_id,kind,occurred_at")
    other = add(cli, "--name", "Wang Fang")
    # re-import the CSV for another customer: the columns read back as they were written
    lines = text.splitlines()
    (tmp_path / "again.csv").write_text(
        "\n".join(
            ["customer_id,kind,occurred_at,channel,summary,amount"]
            + [",".join([other, *line.split(",")[2:7]]) for line in lines[1:]]
        )
        + "\n"
    )
    code, out, err = cli("interaction", "import", "again.csv")
    assert code == 0, err
    _, out, _ = cli("--json", "interaction", "list", other)
    assert sorted(i["kind"] for i in json.loads(out)) == ["purchase", "visit"]
