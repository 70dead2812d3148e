"""Expiry across the injected clock: lots, the sweep, the reminder before expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_loyalty.records import EXPIRE
from crmcore_loyalty.sweeps import REMINDER_KIND

from crmcore import ValidationError


@pytest.fixture
def exp(kit_for):
    return kit_for({"asks": {"enabled": False}, "expiry": {"days": 100, "reminder_days": 10}})


def expired(kit, customer):
    return sorted((e for e in kit.entries(customer) if e.kind == EXPIRE), key=lambda e: e.seq)


def test_points_expire_exactly_at_their_date(exp, clock):
    ann = exp.customer()
    exp.buy(ann, 100)
    clock.advance(days=100)
    clock.set(clock.now() - timedelta(seconds=1))
    exp.crm.tick("w")
    assert exp.balance(ann) == 100
    clock.advance(seconds=1)
    exp.crm.tick("w")
    assert exp.balance(ann) == 0
    [entry] = expired(exp, ann)
    assert (entry.points, entry.source) == (-100, f"expire:{entry.lot}")


def test_expiry_takes_only_what_is_left_of_each_lot_soonest_first(exp, clock):
    ann = exp.customer()
    exp.buy(ann, 100)  # lot A, expires day 100
    clock.advance(days=10)
    exp.buy(ann, 50)  # lot B, expires day 110
    exp.loyalty.redeem(ann.id, 120, actor="t")  # A gives 100, B gives 20
    clock.advance(days=90)
    exp.crm.tick("w")  # A expires with nothing left: no entry
    assert expired(exp, ann) == []
    assert exp.balance(ann) == 30
    clock.advance(days=10)
    exp.crm.tick("w")
    assert [e.points for e in expired(exp, ann)] == [-30]
    assert exp.balance(ann) == 0


def test_expired_points_cannot_be_spent_before_the_sweep(exp, clock):
    ann = exp.customer()
    exp.buy(ann, 100)
    clock.advance(days=50)
    exp.buy(ann, 40)
    clock.advance(days=50)  # the first lot is past its date, no sweep yet
    view = exp.loyalty.account(ann.id)
    assert (view.balance, view.available) == (140, 40)
    with pytest.raises(ValidationError, match="has 40 available"):
        exp.loyalty.redeem(ann.id, 41, actor="t")
    assert expired(exp, ann) == []  # the refused redemption wrote nothing
    exp.loyalty.redeem(ann.id, 40, actor="t")  # expires the old lot first, then spends
    assert [e.points for e in expired(exp, ann)] == [-100]
    assert exp.balance(ann) == 0


def test_a_reminder_task_before_expiry_once_per_lot(exp, clock):
    ann = exp.customer(owner="bo")
    exp.buy(ann, 100)
    clock.advance(days=89, hours=23)
    exp.crm.tick("w")
    assert exp.tasks(REMINDER_KIND) == []
    clock.advance(hours=1)  # exactly 10 days before the date
    exp.crm.tick("w")
    exp.crm.tick("w2")
    [task] = exp.tasks(REMINDER_KIND)
    assert task.title == "Remind the customer: 100 points expire from 2026-04-15"
    assert (task.assignee, task.customer_id, task.ext["loyalty"]["points"]) == ("bo", ann.id, 100)
    exp.crm.tasks.complete(task.id, actor="bo")
    clock.advance(days=1)
    exp.crm.tick("w")
    assert len(exp.tasks(REMINDER_KIND)) == 1  # reminded once, even after the task is done


def test_no_reminder_for_spent_points_or_when_disabled(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}, "expiry": {"days": 100, "reminder_days": 0}})
    ann = kit.customer()
    kit.buy(ann, 100)
    clock.advance(days=95)
    kit.crm.tick("w")
    assert kit.tasks(REMINDER_KIND) == []
    exp = kit_for({"asks": {"enabled": False}, "expiry": {"days": 100, "reminder_days": 10}})
    bob = exp.customer()
    exp.buy(bob, 100)
    exp.loyalty.redeem(bob.id, 100, actor="t")
    clock.advance(days=5)
    exp.crm.tick("w")
    assert exp.tasks(REMINDER_KIND) == []


def test_points_never_expire_with_days_zero(kit_for, clock):
    kit = kit_for({"asks": {"enabled": False}, "expiry": {"days": 0, "reminder_days": 0}})
    ann = kit.customer()
    kit.buy(ann, 100)
    clock.advance(days=3650)
    kit.crm.tick("w")
    assert kit.balance(ann) == 100
    assert kit.entries(ann)[0].expires_at is None


def test_a_late_worker_catches_up_on_every_lot(exp, clock):
    ann, bob = exp.customer(), exp.customer("Bob")
    exp.buy(ann, 10)
    clock.advance(days=30)
    exp.buy(bob, 20)
    clock.advance(days=400)  # no sweep for over a year
    exp.crm.tick("late")
    assert (exp.balance(ann), exp.balance(bob)) == (0, 0)
    assert len(expired(exp, ann)) == len(expired(exp, bob)) == 1


def test_positive_adjustments_expire_too_negative_ones_do_not_create_lots(exp, clock):
    ann = exp.customer()
    exp.loyalty.adjust(ann.id, 60, actor="t", reason="welcome gift")
    exp.loyalty.adjust(ann.id, -10, actor="t", reason="typo")
    clock.advance(days=100)
    exp.crm.tick("w")
    assert exp.balance(ann) == 0
    assert [e.points for e in expired(exp, ann)] == [-50]
