"""Due queues by rep and grade, overdue counts by grade (DOMAIN §7), and the shift handover."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_followup.api import due_tasks, handover, overdue_by_grade
from crmcore_followup.reps import Roster

from crmcore import Priority, ValidationError
from crmcore.testing import START


@pytest.fixture
def book(crm, clock):
    """Customers of grades A, A, C and ungraded whose first contacts are done at START."""
    roster = Roster(crm)
    roster.add("ann", actor="manager", team="north")
    roster.add("bo", actor="manager", team="south")
    out = {}
    for name, grade, owner in (
        ("a1", "A", "ann"),
        ("a2", "A", "bo"),
        ("c1", "C", "ann"),
        ("u1", None, "bo"),
    ):
        ext = {"grading": {"grades": {"pipeline": grade}}} if grade else {}
        customer = crm.customers.add(actor="t", name=name, owner=owner, ext=ext)
        [first] = crm.tasks.open_for(customer.id, kind="first_contact")
        crm.tasks.complete(first.id, actor=owner)
        out[name] = customer
    return out


def test_due_queue_filters_by_grade_and_rep_sorted_by_urgency(crm, clock, book):
    clock.advance(days=20)  # A (1 day) and C (15 days) follow-ups are overdue; ungraded not
    all_due = due_tasks(crm)
    assert {t.customer_id for t in all_due} == {book[n].id for n in ("a1", "a2", "c1")}
    assert [t.priority for t in all_due] == sorted(
        (t.priority for t in all_due), reverse=True
    )  # A customers are key
    assert {t.customer_id for t in due_tasks(crm, grades=["A"])} == {book["a1"].id, book["a2"].id}
    assert [t.customer_id for t in due_tasks(crm, grades=["C"])] == [book["c1"].id]
    assert [t.customer_id for t in due_tasks(crm, grades=["A"], assignee="bo")] == [book["a2"].id]
    assert due_tasks(crm, grades=["ungraded"]) == []
    assert [
        t.customer_id for t in due_tasks(crm, grades=["ungraded"], within=timedelta(days=11))
    ] == [book["u1"].id]
    assert due_tasks(crm, grades=["B"]) == []
    # overdue: only what is past due now
    assert len(due_tasks(crm, overdue=True)) == 3
    assert due_tasks(crm, overdue=True, now=START + timedelta(days=1)) == []


def test_overdue_counts_by_grade(crm, clock, book):
    clock.advance(days=3)
    rows = {r.grade: r for r in overdue_by_grade(crm)}
    assert list(rows) == ["A", "C", "ungraded"]
    a = rows["A"]
    assert (
        a.customers,
        a.open_follow_ups,
        a.due_now,
        a.overdue,
        a.overdue_over_a_day,
        a.cadence_days,
    ) == (2, 2, 2, 2, 2, 1)
    assert (rows["C"].overdue, rows["C"].cadence_days) == (0, 15)
    assert (rows["ungraded"].customers, rows["ungraded"].cadence_days) == (1, 30)


def test_handover_lists_urgent_items_and_prospects_for_the_next_shift(crm, clock, book):
    clock.advance(days=1, hours=-1)  # A follow-ups due in an hour; nothing overdue yet
    late = crm.tasks.create(
        actor="t",
        kind="other",
        title="send the contract",
        due_at=clock.now() - timedelta(hours=2),
        assignee="bo",
    )
    urgent_soon = crm.tasks.create(
        actor="t",
        kind="other",
        title="call the bank",
        due_at=clock.now() + timedelta(hours=3),
        assignee="ann",
        priority=Priority.URGENT,
    )
    later = crm.tasks.create(
        actor="t",
        kind="other",
        title="next week",
        due_at=clock.now() + timedelta(days=7),
        priority=Priority.URGENT,
    )
    new = crm.customers.add(actor="t", name="prospect", owner="ann")
    result = handover(crm, until=clock.now() + timedelta(days=8))
    urgent_ids = [t.id for t in result.urgent]
    assert late.id in urgent_ids and urgent_soon.id in urgent_ids and later.id in urgent_ids
    prospects = {p.customer_id: p for p in result.prospects}
    assert set(prospects) == {book["a1"].id, book["a2"].id, new.id}  # A grades + new one
    assert prospects[new.id].kind == "first_contact"
    assert prospects[book["a1"].id].grade == "A"
    # the default horizon is one shift; a team narrows it
    shift = handover(crm)
    assert shift.until == clock.now() + timedelta(hours=8)
    assert later.id not in [t.id for t in shift.urgent]
    north = handover(crm, team="north")
    assert {t.assignee for t in north.urgent} == {"ann"}
    assert {p.assignee for p in north.prospects} == {"ann"}
    # bo's: the overdue item, and the key (grade A) customer's follow-up due within the shift
    [a2_follow_up] = crm.tasks.open_for(book["a2"].id, kind="follow_up")
    assert [t.id for t in handover(crm, rep="bo").urgent] == [a2_follow_up.id, late.id]


def test_handover_refuses_a_shift_end_in_the_past_or_an_unknown_team(crm, clock):
    with pytest.raises(ValidationError, match="not after now"):
        handover(crm, until=clock.now() - timedelta(hours=1))
    with pytest.raises(ValidationError, match="team"):
        handover(crm, team="nobody")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grades_held_at_a_past_instant_equal_a_read_of_every_customer(crm, clock, seed):
    """Both ways of listing the grades customers created by an instant hold (per grade in id
    order; or, when fewer customers existed then, those customers through ``created_at``)
    give what a read of every customer gives, at instants before, among and after them."""
    import random

    from crmcore_followup import api

    rng = random.Random(seed)
    owners = ["ann", "bo", "cy"]
    instants = [clock.now() - timedelta(hours=1)]
    for _ in range(40):
        clock.advance(hours=rng.choice([1, 5, 30]))
        grade = rng.choice(["A", "B", "C", "D", None])
        ext = {"grading": {"grades": {"pipeline": grade}}} if grade else {}
        crm.customers.add(actor="t", name="x", owner=rng.choice(owners), ext=ext)
        if rng.random() < 0.3:
            instants.append(clock.now())
    instants.append(clock.now())
    settings = crm.settings("followup")
    docs = crm.collection("customers").find()
    early_reads = 0
    for at in instants:
        for team in (None, ["ann"], ["bo", "cy"]):
            expected = {
                api.UNGRADED
                if not (((d.get("ext") or {}).get("grading") or {}).get("grades") or {}).get(
                    "pipeline"
                )
                else d["ext"]["grading"]["grades"]["pipeline"]
                for d in docs
                if d["status"] == "active"
                and d["created_at"] <= api.iso(at)
                and (team is None or d.get("owner") in team)
            }
            assert api._grades_held(crm, settings, at, team) == expected, (at, team)
            early_reads += crm.customers.count({"created_at": {"$lte": api.iso(at)}}) < len(
                [d for d in docs if team is None or d.get("owner") in team]
            )
    assert early_reads  # some instants took the created_at path
