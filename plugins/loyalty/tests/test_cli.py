"""``crm loyalty …`` and ``crm referral …`` end to end, on a process-wide in-memory store."""

from __future__ import annotations

import json

import pytest

from crmcore.cli.main import run
from crmcore.storage.memory import MemoryStore


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    for name in (
        "CRMCORE_PLUGINS",
        "CRM_CONFIG",
        "CRM_ACTOR",
        "CRM_STORAGE_BACKEND",
        "CRM_STORAGE_LOCATION",
    ):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "crm.toml"
    config.write_text(
        '[storage]\nbackend = "memory"\nlocation = "cli-store"\n'
        '[plugins]\nenabled = ["loyalty"]\n'
        "[loyalty.asks]\nenabled = false\n",
        encoding="utf-8",
    )

    def invoke(*args: str, json_out: bool = True) -> tuple[int, object, str]:
        argv = ["--config", str(config), "--as", "clerk"]
        argv += ["--json"] if json_out else []
        code = run([*argv, *args])
        captured = capsys.readouterr()
        out = captured.out
        if json_out and code == 0 and out.strip():
            return code, json.loads(out), captured.err
        return code, out, captured.err

    yield invoke
    MemoryStore.drop_shared(str(tmp_path / "cli-store"))


def add(cli, name: str, phone: str) -> str:
    code, data, err = cli("customer", "add", "--name", name, "--phone", phone)
    assert code == 0, err
    return data["id"]


def test_points_commands(cli):
    ann = add(cli, "Ann", "+86 138 0000 0001")
    assert cli("log", ann, "--kind", "purchase", "--amount", "250")[0] == 0
    code, view, _ = cli("loyalty", "balance", ann)
    assert code == 0 and (view["balance"], view["available"]) == (250, 250)

    code, data, _ = cli("loyalty", "redeem", ann, "100", "--reference", "order-7")
    assert code == 0 and (data["points"], data["balance"]) == (100, 150)
    code, data, _ = cli("loyalty", "redeem", ann, "100", "--reference", "order-7")
    assert data["balance"] == 150  # the same reference does not spend twice

    code, out, err = cli("loyalty", "redeem", ann, "1000")
    assert code == 2 and "cannot redeem 1000 points" in err and "Traceback" not in err

    code, data, _ = cli("loyalty", "adjust", ann, "-50", "--reason", "typo in the order")
    assert code == 0 and (data["points"], data["balance"]) == (-50, 100)
    code, data, _ = cli("loyalty", "adjust", ann, "25", "--reason", "birthday")
    assert data["balance"] == 125
    code, out, err = cli("loyalty", "adjust", ann, "-500", "--reason", "x")
    assert code == 2 and "cannot remove 500 points" in err

    code, rows, _ = cli("loyalty", "history", ann, "--limit", "3")
    assert [(r["kind"], r["points"]) for r in rows] == [
        ("adjust", 25),
        ("adjust", -50),
        ("redeem", -100),
    ]
    code, out, _ = cli("loyalty", "history", ann, json_out=False)
    assert code == 0 and "purchase" in out and "birthday" in out


def test_referral_commands(cli):
    ann = add(cli, "Ann", "+86 138 0000 0001")
    bob = add(cli, "Bob", "+86 138 0000 0002")
    twin = add(cli, "Ann Twin", "+86 138-0000-0001")
    code, data, _ = cli("referral", "code", ann)
    assert code == 0 and len(data["code"]) == 6
    ann_code = data["code"]

    code, data, _ = cli("referral", "link", bob, ann_code.lower())
    assert code == 0 and data["referrer_id"] == ann and data["status"] == "linked"
    code, out, err = cli("referral", "link", twin, ann_code)
    assert code == 2 and "self-referral" in err and "same phone" in err
    code, out, err = cli("referral", "link", twin, "ZZZZZZ")
    assert code == 3 and "no customer has referral code" in err

    cli("log", bob, "--kind", "purchase", "--amount", "80")
    code, stats, _ = cli("referral", "stats", ann)
    assert (stats["links"], stats["rewarded"], stats["points_earned"]) == (1, 1, 500)
    code, board, _ = cli("referral", "stats")
    assert board == [{"referrer": ann, "links": 1, "rewarded": 1, "points": 500}]
    code, out, _ = cli("referral", "stats", json_out=False)
    assert code == 0 and "top referrers" in out


def test_unknown_customer_is_one_line_not_found(cli):
    code, _out, err = cli("loyalty", "balance", "cus_nobody")
    assert code == 3 and err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_customer_show_has_the_loyalty_summary(cli):
    ann = add(cli, "Ann", "+86 138 0000 0001")
    cli("log", ann, "--kind", "purchase", "--amount", "600")
    _code, data, _ = cli("customer", "show", ann)
    lines = {s["label"]: s["text"] for s in data["summary"]}
    assert lines["Loyalty"].startswith("600 points; silver since ")
    assert lines["Perks"] == "exclusive_offers"
    assert lines["Referral"].startswith("code ")
