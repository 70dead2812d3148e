"""DOMAIN §3 cadence: at least one follow-up every N days by grade; after every follow-up the
customer is re-graded and the new grade's cadence applies from then on."""

from __future__ import annotations

import importlib.metadata
import itertools
from datetime import timedelta

import pytest
from crmcore_followup.engine import follow_up_key
from crmcore_followup.settings import FollowupSettings

from crmcore.testing import START

DOMAIN_TABLE = {"A": 1, "B": 7, "C": 15, "D": 30, "E": 365}


def _start_cadence(crm, customer):
    """Complete the customer's first contact now (it is the first follow-up)."""
    first = crm.tasks.open_for(customer.id, kind="first_contact")
    assert len(first) == 1
    crm.tasks.complete(first[0].id, actor="rep")


def _open_follow_ups(crm, customer_id):
    return crm.tasks.open_for(customer_id, kind="follow_up")


def test_default_cadence_is_the_domain_tracking_log_table():
    settings = FollowupSettings()
    assert settings.cadence_days == DOMAIN_TABLE
    assert settings.cadence_for(None) == settings.default_cadence_days == 30
    assert settings.cadence_for("Z") == 30  # a grade the table does not know


@pytest.mark.parametrize(("grade", "days"), sorted(DOMAIN_TABLE.items()))
def test_next_follow_up_is_due_the_grade_cadence_after_the_last(crm, add_customer, grade, days):
    customer = add_customer(grade)
    _start_cadence(crm, customer)
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=days)
    assert task.dedupe_key == follow_up_key(customer.id)
    assert task.source == "followup"


def test_ungraded_customers_use_the_configured_default(fu, clock):
    crm = fu(default_cadence_days=10, cadence_days={"A": 2, "B": 5})
    customer = crm.customers.add(actor="t", name="No Grade")
    _start_cadence(crm, customer)
    assert _open_follow_ups(crm, customer.id)[0].due_at == START + timedelta(days=10)
    graded = crm.customers.add(
        actor="t", name="Graded", ext={"grading": {"grades": {"pipeline": "A"}}}
    )
    _start_cadence(crm, graded)
    assert _open_follow_ups(crm, graded.id)[0].due_at == START + timedelta(days=2)


def test_a_year_of_an_A_customer_yields_one_follow_up_a_day(crm, add_customer, tick_and_work):
    customer = add_customer("A")
    _start_cadence(crm, customer)
    done = []
    for _day in range(365):
        day_done = tick_and_work(1)
        assert len(_open_follow_ups(crm, customer.id)) == 1  # never two open
        assert [t.kind for t in day_done] == ["follow_up"]
        done += day_done
    assert len(done) == 365
    gaps = {b.completed_at - a.completed_at for a, b in itertools.pairwise(done)}
    assert gaps == {timedelta(days=1)}
    # each completion logged its follow-up interaction (plus the first contact)
    assert crm.interactions.count({"customer_id": customer.id, "kind": "follow_up"}) == 366


def _follow_up_days(done):
    return [(t.completed_at - START).days for t in done if t.kind == "follow_up"]


@pytest.mark.parametrize("mode", ["emit-then-patch", "patch-then-emit"])
@pytest.mark.parametrize("order", ["GradingFirst", "GradingLast"])
def test_regrade_from_A_to_C_switches_to_15_day_spacing_from_that_follow_up(
    fu, fakes, clock, order, mode
):
    # the 5th follow-up interaction (first contact + 4 daily follow-ups) re-grades A -> C,
    # whichever order the two plugins' hooks run in and however grading writes the grade
    grading = getattr(fakes, order)(after=5, to="C", mode=mode)
    crm = fu(("fakegrading", grading))
    customer = crm.customers.add(
        actor="t", name="Ann", ext={"grading": {"grades": {"pipeline": "A"}}}
    )
    _start_cadence(crm, customer)
    done = []
    for _ in range(50):
        clock.advance(days=1)
        crm.tick("w1")
        done += fakes.complete_due(crm)
        assert len(_open_follow_ups(crm, customer.id)) == 1
    assert grading.fired == 1
    assert _follow_up_days(done) == [1, 2, 3, 4, 19, 34, 49]
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=64)


def test_regrade_event_moves_the_open_follow_up_from_the_last_follow_up(fu, fakes, clock):
    crm = fu(("gradinghooks", fakes.GradingHooksOnly()))
    customer = crm.customers.add(
        actor="t", name="Bo", ext={"grading": {"grades": {"pipeline": "D"}}}
    )
    _start_cadence(crm, customer)  # last follow-up at START; D: due in 30 days
    assert _open_follow_ups(crm, customer.id)[0].due_at == START + timedelta(days=30)
    clock.advance(days=3)
    fakes.set_grade(crm, customer.id, "B")
    crm.events.grade_changed(
        actor="grading",
        customer=crm.customers.get(customer.id),
        scheme="pipeline",
        old="D",
        new="B",
        reason="clear need",
    )
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=7)  # from the last follow-up, not from now
    # another scheme's change leaves the cadence alone
    crm.events.grade_changed(
        actor="grading",
        customer=crm.customers.get(customer.id),
        scheme="rfm",
        old=None,
        new="gold",
        reason="spend",
    )
    assert _open_follow_ups(crm, customer.id)[0].due_at == START + timedelta(days=7)


def test_regrade_without_grading_installed_by_editing_the_grade(crm, add_customer, clock):
    customer = add_customer("A")
    _start_cadence(crm, customer)
    clock.advance(hours=2)
    crm.customers.update(
        customer.id, actor="manager", ext={"grading": {"grades": {"pipeline": "C"}}}
    )
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=15)
    assert (
        crm.records("followup.schedule", object).collection.get(f"fus_{customer.id}")["grade"]
        == "C"
    )


def test_the_sweep_adopts_a_grade_written_without_an_event(crm, add_customer, clock, fakes):
    customer = add_customer("A")
    _start_cadence(crm, customer)
    fakes.set_grade(crm, customer.id, "E")  # an ext patch fires no event
    clock.advance(days=31)  # the sweep's longest gap between two looks is 30 days
    crm.tick("w1")
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=365)


@pytest.mark.skipif(
    "grading" not in importlib.metadata.entry_points(group="crmcore").names,
    reason="the grading plugin is not installed in this environment",
)
def test_with_the_real_grading_plugin_a_regrade_from_A_to_C_switches_spacing(make_crm, clock):
    crm = make_crm(["followup", "grading"])
    customer = crm.customers.add(
        actor="t",
        name="Real Grading",
        ext={"grading": {"inputs": {"demand": "target", "expected_close": "2026-01-25"}}},
    )  # closes within a month
    assert crm.customers.get(customer.id).ext["grading"]["grades"]["pipeline"] == "A"
    _start_cadence(crm, customer)
    done = []
    for day in range(1, 50):
        clock.advance(days=1)
        crm.tick("w1")
        if day == 3:
            # the rep learns on this call that the deal moved to the summer: the grade's
            # inputs change, and grading re-grades when the follow-up is completed
            crm.customers.patch_ext(
                customer.id,
                "grading",
                {"inputs": {"demand": "target", "expected_close": "2026-06-30"}},
                actor="rep",
            )
        done += complete_due_follow_ups(crm)
        assert len(_open_follow_ups(crm, customer.id)) == 1
    assert crm.customers.get(customer.id).ext["grading"]["grades"]["pipeline"] == "C"
    assert _follow_up_days(done) == [1, 2, 3, 18, 33, 48]


def complete_due_follow_ups(crm):
    return [crm.tasks.complete(t.id, actor="rep") for t in crm.tasks.due(kinds=["follow_up"])]


def test_a_logged_follow_up_contact_restarts_the_cadence(crm, add_customer, clock):
    customer = add_customer("B")
    _start_cadence(crm, customer)
    clock.advance(days=2)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="follow_up", summary="called")
    [task] = _open_follow_ups(crm, customer.id)
    assert task.due_at == START + timedelta(days=9)
    # a contact logged late (backdated) never moves the cadence backwards
    crm.interactions.log(
        actor="rep",
        customer_id=customer.id,
        kind="follow_up",
        occurred_at=START + timedelta(days=1),
    )
    assert _open_follow_ups(crm, customer.id)[0].due_at == START + timedelta(days=9)


def test_completion_logs_the_follow_up_interaction_with_the_task(crm, add_customer, clock):
    customer = add_customer("A")
    _start_cadence(crm, customer)
    clock.advance(days=1)
    [task] = _open_follow_ups(crm, customer.id)
    crm.tasks.complete(task.id, actor="ann", outcome="reached; wants a quote")
    [logged] = crm.interactions.find(
        {"customer_id": customer.id, "kind": "follow_up", "ext.followup.task_id": task.id}
    )
    assert logged.occurred_at == clock.now()
    assert logged.summary == "reached; wants a quote"


def test_never_two_open_follow_ups_however_often_events_repeat(crm, add_customer, clock):
    customer = add_customer("A")
    _start_cadence(crm, customer)
    for _ in range(5):
        crm.interactions.log(actor="rep", customer_id=customer.id, kind="follow_up")
        crm.tick("w1")
        crm.tick("w2")
        crm.customers.update(customer.id, actor="m", ext={"grading": {"grades": {"pipeline": "B"}}})
        crm.customers.update(customer.id, actor="m", ext={"grading": {"grades": {"pipeline": "A"}}})
        clock.advance(hours=5)
    assert len(_open_follow_ups(crm, customer.id)) == 1
    assert crm.tasks.count({"customer_id": customer.id, "kind": "follow_up"}) == 1
