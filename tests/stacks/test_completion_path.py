"""Completing a follow-up on the retail stack (W7, issue 24 item 1): what the reactions build
and compute, counted (not timed), and that the shortcuts taken keep every behaviour."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import attrs
import pytest
from crmcore_followup.engine import Engine as FollowupEngine
from crmcore_followup.records import FIRST_CONTACT_DONE, schedule_id
from crmcore_grading.engine import Engine as GradingEngine
from crmcore_grading.engine import engine_for

from crmcore.records import Records


@pytest.fixture
def counted(monkeypatch) -> Iterator[Counter[str]]:
    """How often follow-up reads a schedule, grading assesses a customer and a record is
    written back whole through ``Records.update``."""
    calls: Counter[str] = Counter()
    for owner, name in (
        (FollowupEngine, "schedule_of"),
        (GradingEngine, "assess"),
        (Records, "update"),
    ):
        original = getattr(owner, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, counting)
    yield calls


def _stack_with_customers(init_profile, open_profile, n: int = 3):
    crm, clock = open_profile(init_profile("retail"))
    customers = []
    for i in range(n):
        clock.advance(timedelta(minutes=1))
        customers.append(
            crm.customers.add(actor="ann", name=f"Customer {i}", phone=f"+8613900000{i:03d}")
        )
    return crm, clock, customers


def test_a_completion_reads_the_schedule_once_and_grades_once(init_profile, open_profile, counted):
    crm, clock, customers = _stack_with_customers(init_profile, open_profile)
    followup = FollowupEngine.of(crm)
    for customer in customers:
        (task,) = crm.tasks.find(
            {"customer_id": customer.id, "kind": "first_contact", "status": "open"}
        )
        clock.advance(timedelta(hours=2))
        counted.clear()
        done = crm.tasks.complete(task.id, actor="ann", outcome="reached")
        # the schedule read once for the cadence restart and its write; grading's
        # re-grade after the completed task sees what the re-grade of the follow-up
        # interaction saw a moment before in the same transaction: skipped
        assert counted["schedule_of"] == 1, counted
        assert counted["assess"] == 1, counted
        assert counted["update"] == 0, counted  # the schedule written as built
        # and everything the two did before is there
        schedule = followup.schedule_of(customer.id)
        assert schedule is not None
        assert schedule.first_contact == FIRST_CONTACT_DONE
        assert schedule.last_follow_up_at == done.completed_at
        (follow_up,) = crm.tasks.find(
            {"customer_id": customer.id, "kind": "follow_up", "status": "open"}
        )
        assert schedule.next_due_at == follow_up.due_at
        assert schedule.check_at == followup.check_time(schedule, crm.customers.get(customer.id))
        # the re-grade skipped would have changed nothing: one now finds nothing to change
        again = engine_for(crm).regrade(customer.id, actor="ann")
        assert again is not None and not again.patch, again


def test_the_regrade_after_a_completion_runs_when_anything_it_reads_changed(
    init_profile, open_profile, counted
):
    crm, clock, customers = _stack_with_customers(init_profile, open_profile, n=1)
    (customer,) = customers
    engine = engine_for(crm)
    # outside a transaction nothing is remembered: every call grades
    counted.clear()
    engine.regrade(customer.id, actor="ann")
    assert engine.regrade_again(customer.id, actor="ann") is not None
    assert counted["assess"] == 2
    # in one transaction, unchanged: skipped
    counted.clear()
    with crm.transaction("ann"):
        engine.regrade(customer.id, actor="ann")
        assert engine.regrade_again(customer.id, actor="ann") is None
    assert counted["assess"] == 1
    # the customer's grading inputs changed in between (an ext patch kept for the end)
    counted.clear()
    with crm.transaction("ann"):
        engine.regrade(customer.id, actor="ann")
        crm.customers.patch_ext(customer.id, "grading", {"inputs": {"demand": 5}}, actor="ann")
        outcome = engine.regrade_again(customer.id, actor="ann")
        assert outcome is not None
    assert counted["assess"] == 2
    # another day began in between (the clock moved within the transaction)
    counted.clear()
    with crm.transaction("ann"):
        engine.regrade(customer.id, actor="ann")
        clock.advance(timedelta(days=1))
        assert engine.regrade_again(customer.id, actor="ann") is not None
    assert counted["assess"] == 2
    # a write to the customer in between forgets what was remembered
    counted.clear()
    with crm.transaction("ann"):
        engine.regrade(customer.id, actor="ann")
        crm.customers.update(customer.id, actor="ann", name="Renamed")
        assert engine.regrade_again(customer.id, actor="ann") is not None
    assert counted["assess"] == 2


def test_mutate_given_a_stale_schedule_retries_from_the_stored_one(init_profile, open_profile):
    crm, _clock, customers = _stack_with_customers(init_profile, open_profile, n=1)
    (customer,) = customers
    engine = FollowupEngine.of(crm)
    stale = engine.schedule_of(customer.id)
    assert stale is not None
    # someone else writes the schedule after it was read
    engine.mutate(customer, lambda s: attrs.evolve(s, birthday_year=2030))
    written = engine.mutate(
        customer, lambda s: attrs.evolve(s, cadence_days=11), recompute=False, current=stale
    )
    assert written.cadence_days == 11
    assert written.birthday_year == 2030  # not lost: the change was applied to the stored one
    assert written.version == stale.version + 2
    assert engine.schedule_of(customer.id) == written


def test_records_replace_writes_only_what_differs(init_profile, open_profile, monkeypatch):
    crm, _clock, customers = _stack_with_customers(init_profile, open_profile, n=1)
    (customer,) = customers
    engine = FollowupEngine.of(crm)
    current = engine.schedule_of(customer.id)
    assert current is not None
    written: list[dict] = []
    collection = engine.schedules.collection
    original = collection.update

    def spying(id, changes, *, expected_version):
        written.append(dict(changes))
        return original(id, changes, expected_version=expected_version)

    monkeypatch.setattr(collection, "update", spying)
    assert engine.schedules.replace(current, current) is current
    assert written == []
    new = attrs.evolve(current, cadence_days=current.cadence_days + 1, route_vip=True)
    stored = engine.schedules.replace(current, new)
    assert written == [{"cadence_days": current.cadence_days + 1, "route_vip": True}]
    assert stored == attrs.evolve(new, version=current.version + 1)
    with pytest.raises(ValueError):
        engine.schedules.replace(stored, attrs.evolve(stored, id=schedule_id("cus_other")))
