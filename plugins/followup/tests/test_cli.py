"""``crm reps``, ``crm callbacks``, ``crm handover``, ``crm followup`` and the extended
``crm tasks due``: results, and bad input as one line and a non-zero exit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import crmcore.cli.tasks as core_tasks
from crmcore import open_crm


@pytest.fixture
def cli(crm_cli):
    return crm_cli("followup")


@pytest.fixture
def location(cli):
    return cli.location


@pytest.fixture
def seed(location):
    """The same store opened from Python (to give customers grades, which the CLI cannot)."""
    crm = open_crm({"storage": {"backend": "memory", "location": location}}, plugins=["followup"])
    yield crm
    crm.close()


def ok(result):
    code, out, err = result
    assert code == 0, err
    return out


def error(result, code):
    got, _out, err = result
    assert got == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_reps_round_trip(cli):
    ok(cli("reps", "add", "ann", "--team", "north", "--skill", "vip", "--ability", "5"))
    ok(cli("reps", "add", "bo", "--capacity", "10"))
    reps = json.loads(ok(cli("--json", "reps", "list")))
    assert [(r["name"], r["ability"], r["open_tasks"]) for r in reps] == [
        ("ann", 5, 0),
        ("bo", 3, 0),
    ]
    assert "north" in ok(cli("reps", "list"))
    ok(cli("--json", "customer", "add", "--name", "Li Lei", "--owner", "ann"))
    out = json.loads(ok(cli("--json", "reps", "unavailable", "ann")))
    assert out["reassigned"] == 1  # her new customer's first contact went to bo
    assert json.loads(ok(cli("--json", "reps", "list", "--team", "north")))[0]["available"] is False
    ok(cli("reps", "available", "ann"))
    ok(cli("reps", "update", "bo", "--ability", "4", "--skill", "callback"))
    assert "removed" in ok(cli("reps", "remove", "bo"))
    assert [r["name"] for r in json.loads(ok(cli("--json", "reps", "list")))] == ["ann"]


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("reps", "add", "ann"), 2, "already on the roster"),
        (("reps", "add", "x y"), 2, "name"),
        (("reps", "add", "cy", "--ability", "9"), 2, "ability"),
        (("reps", "update", "nobody", "--ability", "2"), 3, "no rep named 'nobody'"),
        (("reps", "update", "ann"), 2, "nothing to change"),
        (("reps", "remove", "nobody"), 3, "no rep named"),
    ],
)
def test_reps_mistakes_are_one_line(cli, args, code, text):
    ok(cli("reps", "add", "ann"))
    assert text in error(cli(*args), code)


def test_callbacks_list_and_record_an_outcome(cli):
    customer = json.loads(
        ok(cli("--json", "customer", "add", "--name", "Wang Fang", "--tag", "vip"))
    )["id"]
    ok(cli("log", customer, "--kind", "purchase", "--amount", "20"))
    [task] = json.loads(ok(cli("--json", "callbacks", "list", "--key")))
    assert task["kind"] == "callback" and task["customer_id"] == customer
    assert "no open callbacks" in ok(cli("callbacks", "list", "--overdue"))
    assert "say --satisfied or --unsatisfied" in cli("callbacks", "done", task["id"])[2]
    assert "score" in error(cli("callbacks", "done", task["id"], "--satisfied", "--score", "7"), 2)
    out = json.loads(
        ok(
            cli(
                "--json",
                "--as",
                "ann",
                "callbacks",
                "done",
                task["id"],
                "--unsatisfied",
                "--score",
                "2",
                "--notes",
                "late delivery",
            )
        )
    )
    [logged] = json.loads(ok(cli("--json", "interaction", "list", customer, "--kind", "callback")))
    assert logged["id"] == out["interaction_id"] and logged["satisfaction"] == 2
    assert logged["ext"]["followup"]["satisfied"] is False
    assert "cannot be recorded again" in error(
        cli("callbacks", "done", task["id"], "--satisfied"), 2
    )
    assert error(cli("callbacks", "done", "tsk_nope", "--satisfied"), 3)


def test_tasks_due_keeps_its_options_and_adds_grade(cli, seed):
    a = seed.customers.add(
        actor="t", name="A", owner="ann", ext={"grading": {"grades": {"pipeline": "A"}}}
    )
    c = seed.customers.add(actor="t", name="C", ext={"grading": {"grades": {"pipeline": "C"}}})
    for customer in (a, c):
        seed.tasks.create(
            actor="t",
            kind="other",
            title="call",
            customer_id=customer.id,
            due_at=seed.now() - timedelta(hours=1),
            assignee="ann",
        )
    rows = json.loads(ok(cli("--json", "tasks", "due", "--grade", "A")))
    assert {r["customer_id"] for r in rows} == {a.id}
    rows = json.loads(
        ok(
            cli(
                "--json",
                "tasks",
                "due",
                "--grade",
                "A",
                "--grade",
                "C",
                "--overdue",
                "--rep",
                "ann",
                "--kind",
                "other",
                "--limit",
                "5",
            )
        )
    )
    assert {r["customer_id"] for r in rows} == {a.id, c.id}
    rows = json.loads(ok(cli("--json", "tasks", "due", "--within", "8d", "--customer", a.id)))
    assert {r["kind"] for r in rows} == {"other", "first_contact"}
    assert "nothing is due" in ok(cli("tasks", "due", "--grade", "E"))
    counts = {r["grade"]: r for r in json.loads(ok(cli("--json", "tasks", "overdue-by-grade")))}
    assert counts["A"]["overdue_tasks"] == 1 and counts["C"]["cadence_days"] == 15
    assert "overdue > 1 day" in ok(cli("tasks", "overdue-by-grade"))
    # the core's own group object is left as it was for other CLIs in this process
    assert core_tasks.tasks_group.commands["due"] is core_tasks.due


def test_handover_and_the_schedule(cli, seed):
    customer = seed.customers.add(actor="t", name="Prospect", owner="ann")
    seed.tasks.create(
        actor="t",
        kind="other",
        title="overdue",
        assignee="ann",
        due_at=seed.now() - timedelta(hours=3),
    )
    out = json.loads(ok(cli("--json", "handover", "--shift-end", "+8d")))
    assert [t["title"] for t in out["urgent"]] == ["overdue"]
    assert [p["customer_id"] for p in out["prospects"]] == [customer.id]
    text = ok(cli("handover"))
    assert "Urgent open items" in text and "Prospects to contact" in text
    assert "not after now" in error(cli("handover", "--shift-end", "-1h"), 2)
    shown = json.loads(ok(cli("--json", "followup", "show", customer.id)))
    assert shown["first_contact"] == "pending" and shown["cadence_days"] == 30
    assert error(cli("followup", "show", "cus_nope"), 3)
    assert "looked at again" in ok(cli("followup", "resync"))
    assert "sweep 1" in ok(cli("worker", "--once"))
