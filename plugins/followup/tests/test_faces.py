"""The report sections, the customer page, the demo day, and the roster as the permission
directory."""

from __future__ import annotations

import inspect
import random
from datetime import date, timedelta

import pytest
from crmcore_followup import plugin
from crmcore_followup.reps import Roster
from crmcore_followup.simulate import simulate_day

from crmcore import PermissionDenied
from crmcore.report import build_report
from crmcore.security import Role


def test_report_sections_cover_follow_ups_by_grade_callbacks_and_load(crm, clock):
    Roster(crm).add("ann", actor="manager", team="north", ability=4)
    a = crm.customers.add(
        actor="t", name="A", owner="ann", ext={"grading": {"grades": {"pipeline": "A"}}}
    )
    crm.tasks.complete(crm.tasks.open_for(a.id, kind="first_contact")[0].id, actor="ann")
    crm.interactions.log(actor="ann", customer_id=a.id, kind="purchase", amount=3.0)
    clock.advance(days=5)
    sections = {s.title: s for s in build_report(crm)}
    grades = sections["Follow-ups by grade"]
    assert grades.rows[0] == ("A", 1, 1, 1, 1, 1, 1)
    assert grades.chart == {"A": 1}
    [overdue] = grades.charts
    assert overdue.kind == "stacked" and overdue.x[0] == "A"
    assert {s.name: s.values[0] for s in overdue.series} == {
        "overdue up to a day": 0,
        "overdue more than a day": 1,
    }
    coverage = dict((r[0], r) for r in sections["Callback coverage"].rows)
    assert coverage["key customers"][1:4] == (1, 0, "0.0%")
    assert "Callback satisfaction" in sections
    load = sections["Rep load"].rows
    assert load == (("ann", "north", 4, "yes", 2, 50, 1),)


def test_the_customer_page_shows_the_next_follow_up_and_its_cadence(crm, clock):
    customer = crm.customers.add(
        actor="t",
        name="P",
        timezone="Asia/Shanghai",
        ext={"grading": {"grades": {"pipeline": "B"}}},
    )
    lines = {
        s.label: s.text
        for s in crm.plugins.flat("crm_customer_summary", crm=crm, customer=customer)
    }
    assert lines["First contact"].startswith("due 2026-01-12 17:00 CST")
    assert lines["Follow-up"] == "starts after the first contact (grade B: at least every 7 days)"
    crm.tasks.complete(crm.tasks.open_for(customer.id, kind="first_contact")[0].id, actor="rep")
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="business")
    lines = {
        s.label: s.text
        for s in crm.plugins.flat(
            "crm_customer_summary", crm=crm, customer=crm.customers.get(customer.id)
        )
    }
    assert lines["Follow-up"].startswith(
        "next due 2026-01-12 17:00 CST (grade B: at least every 7 days); last 2026-01-05 17:00 CST"
    )
    assert lines["Callbacks"].startswith("1 open, next due 2026-01-06")
    quiet = crm.customers.update(customer.id, actor="rep", do_not_contact=True)
    [line] = crm.plugins.flat("crm_customer_summary", crm=crm, customer=quiet)
    assert "do not contact" in line.text


def test_a_demo_day_records_callbacks_and_moves_work_off_absent_reps(crm, clock):
    rng = random.Random(7)
    ids = [
        crm.customers.add(actor="demo", name=f"C{i}", owner=("ann", "bo", "cy")[i % 3]).id
        for i in range(30)
    ]
    for customer_id in ids:
        crm.interactions.log(actor="rep", customer_id=customer_id, kind="purchase", amount=5.0)
    for _ in range(25):
        clock.advance(days=1)
        simulate_day(crm, clock.now(), rng, "demo-staff")
        crm.tick("demo")
    assert [r.name for r in Roster(crm).all()] == ["ann", "bo", "cy"]
    outcomes = crm.interactions.find({"kind": "callback"})
    answers = {i.ext["followup"]["satisfied"] for i in outcomes}
    assert len(outcomes) >= 20 and answers == {True, False}
    unavailable = [r.name for r in Roster(crm).all() if not r.available]
    for name in unavailable:
        assert crm.tasks.count({"assignee": name, "status": "open"}) == 0


def test_roster_reps_are_agents_of_their_team_under_enforced_permissions(make_crm, clock):
    crm = make_crm(
        ["followup"],
        settings={
            "security": {
                "enforce": True,
                "actors": {"lead": {"role": "shift_lead", "team": "north"}},
            }
        },
    )
    roster = Roster(crm)
    roster.add("ann", actor="system", team="north")
    roster.add("bo", actor="system", team="south")
    roster.add("lead", actor="system", team="north")  # configured in [security]: that wins
    assert (crm.actor("ann").role, crm.actor("ann").team) == (Role.AGENT, "north")
    assert crm.actor("lead").role is Role.SHIFT_LEAD
    assert crm.actor("stranger") is None
    # a rep owns their roster entry: bo may not change ann's, her team lead may
    with pytest.raises(PermissionDenied):
        roster.update("ann", actor="bo", ability=1)
    with pytest.raises(PermissionDenied):
        roster.remove("ann", actor="stranger")
    assert roster.update("ann", actor="lead", ability=4)[0].ability == 4
    assert roster.update("bo", actor="bo", shift="late")[0].shift == "late"
    customer = crm.customers.add(
        actor="system", name="X", owner="ann", ext={"grading": {"grades": {"pipeline": "A"}}}
    )
    [first] = crm.tasks.open_for(customer.id, kind="first_contact")
    with pytest.raises(PermissionDenied):
        crm.tasks.complete(first.id, actor="bo")
    crm.tasks.complete(first.id, actor="ann")  # her own: the follow-up chain runs on
    [follow_up] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert follow_up.assignee == "ann"
    assert follow_up.due_at == clock.now() + timedelta(days=1)


def test_care_is_skipped_for_customers_without_a_birth_date(crm, clock):
    crm.customers.add(actor="t", name="No birthday")
    with_birthday = crm.customers.add(actor="t", name="B", birth_date=date(1990, 1, 7))
    crm.tick("w1")
    assert [t.customer_id for t in crm.tasks.find({"kind": "care"})] == [with_birthday.id]


def test_every_hook_implementation_is_documented():
    hooks = [
        f for name, f in inspect.getmembers(plugin, inspect.isfunction) if name.startswith("crm_")
    ]
    assert len(hooks) >= 15
    for hook in hooks:
        assert hook.__doc__ and len(hook.__doc__.split()) > 5, hook.__name__


def test_quiet_until_answers_with_the_end_of_the_customers_quiet_hours(make_crm):
    from datetime import UTC, datetime

    crm = make_crm(plugins=["followup"])
    customer = crm.customers.add(actor="system", name="Night Owl", timezone="Asia/Shanghai")
    night = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: 21:00-08:00 quiet
    assert crm.plugins.call("crm_quiet_until", crm=crm, customer=customer, now=night) == [
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    ]  # 08:00 the next morning there
    lunch = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)  # 12:30: the 12:00-14:00 window
    assert crm.plugins.call("crm_quiet_until", crm=crm, customer=customer, now=lunch) == [
        datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    ]
    morning = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00: may be called
    assert crm.plugins.call("crm_quiet_until", crm=crm, customer=customer, now=morning) == [None]
