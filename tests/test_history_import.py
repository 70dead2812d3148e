"""Issue 23 item 4: history imports replay every plugin's reaction in time order, as if logged
live, without creating work for people for old events; batched and idempotent (a re-run or a
run resumed after a kill adds nothing twice)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from crmcore import open_crm
from crmcore.clock import ManualClock
from crmcore.history import HistoryRow, replay
from crmcore.testing.factories import make_test_crm

RETAIL_PLUGINS = ["grading", "followup", "complaints", "loyalty"]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
START = datetime(2020, 1, 1, tzinfo=UTC)


def retail(clock):
    profile = tomllib.loads(
        (resources.files("crmcore") / "profiles" / "retail.toml").read_text("utf-8")
    )
    settings = {k: v for k, v in profile.items() if k not in ("core", "storage", "plugins")}
    return make_test_crm(RETAIL_PLUGINS, settings=settings, core=profile["core"], clock=clock)


def history(customer_ids):
    """Purchases, a refund and a praised visit over 2020-2021, not in time order."""
    rows = []
    for n, cid in enumerate(customer_ids):
        for k in range(6):
            at = START + timedelta(days=40 * k + n, hours=3)
            rows.append(
                (
                    cid,
                    {
                        "kind": "purchase",
                        "occurred_at": at,
                        "amount": 150.0 + 90 * k,
                        "channel": "chat",
                    },
                )
            )
        rows.append(
            (
                cid,
                {
                    "kind": "visit",
                    "occurred_at": START + timedelta(days=100 + n),
                    "satisfaction": 5,
                },
            )
        )
    rows.reverse()
    return rows


def state(crm):
    """What history must leave behind, whoever logged it: grades, tiers, ledgers."""
    out = {}
    for c in crm.customers.iter():
        ext = {
            ns: {k: v for k, v in vals.items() if k != "referral_code"}  # random
            for ns, vals in c.ext.items()
            if ns in ("grading", "loyalty")
        }
        out[c.name] = ext
    ledger = sorted(
        (
            crm.customers.get(d["customer_id"]).name,
            d["points"],
            d["reason"],
            d.get("at") or d.get("created_at"),
        )
        for d in crm.collection("loyalty.ledger").find()
    )
    grades = (
        sorted(
            (crm.customers.get(d["customer_id"]).name, d.get("scheme"), d.get("grade"))
            for d in crm.collection("grading.history").find()
        )
        if "grading.history" in {s.name for s in crm.collection_specs()}
        else []
    )
    return out, ledger, grades


def test_replayed_history_equals_live_logging_without_work_for_people():
    live_clock, bulk_clock = ManualClock(START), ManualClock(START)
    live, bulk = retail(live_clock), retail(bulk_clock)
    names = ["Li", "Wang", "Zhao"]
    live_ids = [live.customers.add(actor="ann", name=n, owner="ann").id for n in names]
    bulk_ids = [bulk.customers.add(actor="ann", name=n, owner="ann").id for n in names]
    for cid, fields in sorted(history(live_ids), key=lambda r: r[1]["occurred_at"]):
        live_clock.set(fields["occurred_at"])
        live.interactions.log(actor="import", customer_id=cid, **fields)
    live_clock.set(NOW)
    bulk_clock.set(NOW)
    rows = [HistoryRow(i + 2, cid, fields) for i, (cid, fields) in enumerate(history(bulk_ids))]
    result = replay(bulk, rows, actor="import", batch_size=7)
    assert (len(result.ids), result.skipped, result.errors) == (len(rows), 0, ())
    assert not bulk.replaying and bulk.now() == NOW  # the clock is given back

    assert state(bulk) == state(live)
    assert state(bulk)[1], "the loyalty ledger holds the history's points"
    # live logging in 2020 asked for referrals and planned callbacks; the import, in 2026, not
    assert live.tasks.count({"kind": "referral_ask"}) > 0
    assert live.tasks.count({"kind": "callback"}) > 0
    assert bulk.tasks.count({"kind": "referral_ask"}) == 0
    assert bulk.tasks.count({"kind": "callback"}) == 0
    # interactions carry the event's time; created_at is when they were imported
    first = bulk.interactions.get(result.ids[0])
    assert first.occurred_at < datetime(2021, 1, 1, tzinfo=UTC) and first.created_at == NOW

    again = replay(bulk, rows, actor="import")
    assert (again.ids, again.skipped) == ((), len(rows))
    assert state(bulk) == state(live)


def test_a_purchase_logged_late_gets_no_referral_ask_but_a_recent_one_does():
    clock = ManualClock(NOW)
    crm = retail(clock)
    li = crm.customers.add(actor="ann", name="Li", owner="ann")
    crm.interactions.log(
        actor="ann",
        customer_id=li.id,
        kind="purchase",
        amount=99.0,
        occurred_at=datetime(2020, 3, 1, tzinfo=UTC),
    )
    assert crm.tasks.count({"kind": "referral_ask"}) == 0
    crm.interactions.log(
        actor="ann",
        customer_id=li.id,
        kind="purchase",
        amount=99.0,
        occurred_at=NOW - timedelta(hours=2),
    )
    assert crm.tasks.count({"kind": "referral_ask"}) == 1


def test_identical_rows_are_distinct_events_and_a_bad_row_is_reported_once(make_crm):
    crm = make_crm()
    li = crm.customers.add(actor="ann", name="Li")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        HistoryRow(2, li.id, {"kind": "purchase", "occurred_at": at, "amount": 5.0}),
        HistoryRow(3, li.id, {"kind": "purchase", "occurred_at": at, "amount": 5.0}),
        HistoryRow(4, "cus_nobody", {"kind": "visit", "occurred_at": at}),
    ]
    result = replay(crm, rows, actor="import", batch_size=10)
    assert len(result.ids) == 2 and len(set(result.ids)) == 2
    assert [line for line, _ in result.errors] == [4]
    assert crm.interactions.count() == 2
    assert replay(crm, rows[:2], actor="import").skipped == 2


# -- through the command line, as shipped ---------------------------------------------------


def crm_cmd(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    proc = subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def write_history(path: Path, customers: int, per_customer: int) -> int:
    lines = ["会员号,时间,类型,金额"]
    for c in range(customers):
        for k in range(per_customer):
            day = datetime(2021, 1, 1) + timedelta(days=3 * k + c % 3, minutes=c)
            lines.append(f"shop:{c},{day:%Y-%m-%d %H:%M},purchase,{50 + k}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


@pytest.fixture
def retail_dir(tmp_path):
    crm_cmd(tmp_path, "init", "--profile", "retail")
    people = "name,phone,external_id\n" + "".join(
        f"Customer {c},+86 139{c:08d},shop:{c}\n" for c in range(40)
    )
    (tmp_path / "people.csv").write_text(people)
    proc = crm_cmd(tmp_path, "customer", "import", "people.csv")
    assert "imported 40 of 40 customers" in proc.stdout
    return tmp_path


def counts(directory: Path) -> tuple[int, int, int]:
    with open_crm(directory / "crm.toml") as crm:
        ledger = crm.collection("loyalty.ledger").count()
        return crm.interactions.count(), ledger, crm.tasks.count({"kind": "referral_ask"})


def test_cli_history_import_rerun_adds_nothing(retail_dir):
    total = write_history(retail_dir / "history.csv", 40, 5)
    proc = crm_cmd(
        retail_dir, "--json", "interaction", "import", "history.csv", "--batch-size", "50"
    )
    report = json.loads(proc.stdout)
    assert (report["rows"], report["written"], report["errors"]) == (total, total, [])
    assert "times without a zone read as Asia/Shanghai" in report["notes"]
    first = counts(retail_dir)
    assert first[0] == total and first[1] >= total and first[2] == 0
    proc = crm_cmd(retail_dir, "interaction", "import", "history.csv")
    assert f"imported 0 of {total} interactions, {total} already imported" in proc.stdout
    assert counts(retail_dir) == first


def test_cli_history_import_resumes_after_kill(retail_dir):
    total = write_history(retail_dir / "history.csv", 40, 40)  # 1,600 rows
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmcore.cli.main",
            "--json",
            "interaction",
            "import",
            "history.csv",
            "--batch-size",
            "20",
        ],
        cwd=retail_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journal = retail_dir / "crm-data"
    deadline = time.monotonic() + 240
    try:
        # kill it once some batches are committed (the store's files grow), not before
        base = sum(f.stat().st_size for f in journal.rglob("*") if f.is_file())
        while time.monotonic() < deadline and proc.poll() is None:
            size = sum(f.stat().st_size for f in journal.rglob("*") if f.is_file())
            if size > base + 400_000:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    written, _ledger, _asks = counts(retail_dir)
    assert 0 < written < total
    assert written % 20 == 0, "a killed batch is rolled back whole"
    resumed = json.loads(
        crm_cmd(retail_dir, "--json", "interaction", "import", "history.csv").stdout
    )
    assert (resumed["written"], resumed["skipped"], resumed["errors"]) == (
        total - written,
        written,
        [],
    )
    final = counts(retail_dir)
    assert final[0] == total and final[2] == 0

    # the same rows imported in one go elsewhere leave the same ledger: nothing posted twice
    other = retail_dir / "other"
    other.mkdir()
    crm_cmd(other, "init", "--profile", "retail")
    (other / "people.csv").write_text((retail_dir / "people.csv").read_text())
    crm_cmd(other, "customer", "import", "people.csv")
    (other / "history.csv").write_text((retail_dir / "history.csv").read_text())
    crm_cmd(other, "interaction", "import", "history.csv")
    assert counts(other) == final


class Picky:
    """A plugin that refuses one purchase when it reacts to it (after the insert)."""

    @staticmethod
    def crm_interaction_logged(crm, interaction, customer, actor):
        from crmcore.errors import ValidationError

        if interaction.amount == 13.0:
            raise ValidationError("unlucky amount", field="amount")


def test_a_row_failing_in_a_reaction_rolls_back_its_batch_only_and_is_reported_once(make_crm):
    from crmcore import hookimpl

    Picky.crm_interaction_logged = staticmethod(hookimpl(Picky.crm_interaction_logged))
    crm = make_crm([("picky", Picky())])
    li = crm.customers.add(actor="ann", name="Li")
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        HistoryRow(
            n + 2,
            li.id,
            {"kind": "purchase", "amount": float(n + 10), "occurred_at": at + timedelta(hours=n)},
        )
        for n in range(8)
    ]  # amount 13.0 is row 5 (line 5), in the first batch of 4
    result = replay(crm, rows, actor="import", batch_size=4)
    assert result.errors == ((5, "amount: unlucky amount"),)
    assert len(result.ids) == 7 and crm.interactions.count() == 7
    from crmcore.errors import ValidationError

    good = HistoryRow(2, li.id, {"kind": "visit", "occurred_at": at - timedelta(days=2)})
    bad = HistoryRow(
        3, li.id, {"kind": "purchase", "amount": 13.0, "occurred_at": at - timedelta(days=1)}
    )
    with pytest.raises(ValidationError, match="unlucky"):
        replay(crm, [good, bad], actor="import", atomic=True)
    assert crm.interactions.count() == 7  # --atomic: the good row rolled back too
