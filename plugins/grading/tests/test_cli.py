"""``crm grade …`` and ``crm customer show``: results, and bad input as one line and a
non-zero exit that writes nothing."""

from __future__ import annotations

import json

import pytest

from crmcore import open_crm


@pytest.fixture
def cli(crm_cli):
    return crm_cli("grading")


@pytest.fixture
def location(cli):
    return cli.location


def ok(result) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def error(result, code: int) -> str:
    got, _out, err = result
    assert got == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


@pytest.fixture
def customer(cli) -> str:
    return json.loads(ok(cli("--json", "customer", "add", "--name", "Li Lei", "--owner", "ann")))[
        "id"
    ]


def test_set_then_show_then_history(cli, customer):
    out = ok(
        cli(
            "--as",
            "ann",
            "grade",
            "set",
            customer,
            "--demand",
            "target",
            "--expected-close",
            "2100-01-20",
            "--deal-status",
            "negotiating",
            "--importance",
            "important",
        )
    )
    assert "pipeline: D: clear need, expected to close 2100-01-20, not within 6 months" in out
    shown = json.loads(ok(cli("--json", "grade", "show", customer)))
    assert shown["grades"][0]["grade"] == "D"
    assert shown["inputs"]["urgency"] == "slow"
    assert shown["history"][0]["new"] == "D" and shown["history"][0]["actor"] == "ann"
    ok(cli("grade", "set", customer, "--expected-close", "2000-01-01"))
    table = ok(cli("grade", "history", customer))
    assert "date passed" in table and "2000-01-01" in table
    text = ok(cli("grade", "show", customer))
    assert "expected to close 2000-01-01, date passed" in text and "churn risk: none" in text


def test_customer_show_prints_the_grade_with_its_reason(cli, customer):
    ok(cli("grade", "set", customer, "--demand", "target", "--expected-close", "1999-12-31"))
    out = ok(cli("customer", "show", customer))
    assert "A: clear need, expected to close 1999-12-31, date passed" in out
    data = json.loads(ok(cli("--json", "customer", "show", customer)))
    assert {
        "label": "grade",
        "text": "A: clear need, expected to close 1999-12-31, date passed",
    } in data["summary"]


def test_grade_all_reports_what_it_did(cli, customer, location):
    with open_crm(
        {"storage": {"backend": "memory", "location": location}}, plugins=["grading"]
    ) as crm:
        crm.interactions.log(actor="ann", customer_id=customer, kind="purchase", amount=99.0)
    data = json.loads(ok(cli("--json", "grade", "all")))
    assert (data["customers"], data["interactions"], data["written"]) == (1, 1, 1)
    assert ok(cli("grade", "all")).startswith("re-graded 1 customer (1 interactions)")
    assert json.loads(ok(cli("--json", "grade", "all")))["written"] == 0
    shown = json.loads(ok(cli("--json", "grade", "show", customer)))
    assert {g["scheme"] for g in shown["grades"]} == {"rfm", "pyramid"}
    assert shown["population_run"] is not None


def test_list_orders_by_grade_then_importance(cli):
    ids = {}
    for name, close, importance in (
        ("Ann", "1999-01-01", "not_important"),
        ("Bo", "1999-06-01", "important"),
        ("Chen", "2100-01-01", "important"),
    ):
        ids[name] = json.loads(ok(cli("--json", "customer", "add", "--name", name)))["id"]
        ok(
            cli(
                "grade",
                "set",
                ids[name],
                "--demand",
                "target",
                "--expected-close",
                close,
                "--importance",
                importance,
            )
        )
    rows = json.loads(ok(cli("--json", "grade", "list")))
    assert [r["name"] for r in rows] == ["Bo", "Ann", "Chen"]
    rows = json.loads(ok(cli("--json", "grade", "list", "--grade", "D")))
    assert [r["name"] for r in rows] == ["Chen"]
    error(cli("grade", "list", "--scheme", "hospital"), 2)


def test_schemes_lists_registered_and_running(cli):
    rows = {r["name"]: r for r in json.loads(ok(cli("--json", "grade", "schemes")))}
    assert rows["pipeline"]["running"] == "yes" and rows["hospital"]["running"] == "no"
    assert rows["rfm"]["population"] == "yes"


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["grade", "set", "{id}"], 2, "nothing to set"),
        (["grade", "set", "{id}", "--demand", "urgent"], 2, "'urgent' is not one of"),
        (
            ["grade", "set", "{id}", "--demand", "target", "--expected-close", "next week"],
            2,
            "expected_close: expected a date as YYYY-MM-DD",
        ),
        (["grade", "set", "{id}", "--expected-close", "2027-01-20"], 2, "demand: set the demand"),
        (["grade", "set", "cus_nope", "--demand", "dead"], 3, "cus_nope"),
        (["grade", "show", "cus_nope"], 3, "cus_nope"),
        (["grade", "history", "cus_nope"], 3, "cus_nope"),
    ],
)
def test_mistakes_are_one_line_and_write_nothing(cli, customer, args, code, says):
    before = json.loads(ok(cli("--json", "grade", "show", customer)))
    err = error(cli(*[a.replace("{id}", customer) for a in args]), code)
    assert says in err
    assert json.loads(ok(cli("--json", "grade", "show", customer))) == before


def test_clearing_the_expected_close(cli, customer):
    ok(cli("grade", "set", customer, "--demand", "target", "--expected-close", "1999-01-01"))
    ok(cli("grade", "set", customer, "--expected-close", "none"))
    shown = json.loads(ok(cli("--json", "grade", "show", customer)))
    assert "expected_close" not in shown["inputs"]
    assert shown["grades"][0]["reason"] == "clear need, no expected closing date yet"
