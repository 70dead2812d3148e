"""DOMAIN §3: a newly assigned customer must be contacted by their rep within one week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crmcore_followup.quiet import is_quiet

from crmcore.testing import START


def _first(crm, customer_id):
    return crm.tasks.open_for(customer_id, kind="first_contact")


@pytest.mark.parametrize(
    ("created", "due", "zone"),
    [
        (START, START + timedelta(days=7), "UTC"),  # Monday 09:00
        (
            datetime(2026, 1, 5, 21, 30, tzinfo=UTC),  # in the night window:
            datetime(2026, 1, 12, 21, 0, tzinfo=UTC),
            "UTC",
        ),  # back, keeps 7 days
        (datetime(2026, 1, 5, 12, 30, tzinfo=UTC), datetime(2026, 1, 12, 12, 0, tzinfo=UTC), "UTC"),
        # 14:00 UTC is 22:00 in Shanghai: due 21:00 there on the seventh day (13:00 UTC)
        (
            datetime(2026, 1, 5, 14, 0, tzinfo=UTC),
            datetime(2026, 1, 12, 13, 0, tzinfo=UTC),
            "Asia/Shanghai",
        ),
    ],
)
def test_first_contact_is_due_within_seven_days_outside_quiet_hours(crm, clock, created, due, zone):
    clock.set(created)
    customer = crm.customers.add(actor="t", name="New", timezone=zone)
    [task] = _first(crm, customer.id)
    assert task.due_at == due
    assert task.due_at <= created + timedelta(days=7)
    assert not is_quiet(task.due_at, zone, crm.settings("followup").windows)
    assert task.dedupe_key == f"first_contact:{customer.id}"


def test_the_first_contact_window_is_configurable(fu):
    crm = fu(first_contact_days=2)
    customer = crm.customers.add(actor="t", name="New")
    assert _first(crm, customer.id)[0].due_at == START + timedelta(days=2)


def test_completing_the_first_contact_starts_the_cadence(crm, clock):
    customer = crm.customers.add(
        actor="t", name="New", ext={"grading": {"grades": {"pipeline": "B"}}}
    )
    assert crm.tasks.open_for(customer.id, kind="follow_up") == []
    clock.advance(days=3)
    crm.tasks.complete(_first(crm, customer.id)[0].id, actor="rep", outcome="met")
    [follow_up] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert follow_up.due_at == clock.now() + timedelta(days=7)
    assert crm.interactions.count({"customer_id": customer.id, "kind": "follow_up"}) == 1


def test_another_follow_up_contact_counts_as_the_first_contact(crm, clock):
    customer = crm.customers.add(actor="t", name="New")
    clock.advance(days=1)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="follow_up")
    assert _first(crm, customer.id) == []
    [cancelled] = crm.tasks.find({"customer_id": customer.id, "kind": "first_contact"})
    assert cancelled.status.value == "cancelled"
    assert len(crm.tasks.open_for(customer.id, kind="follow_up")) == 1


def test_a_contact_naming_the_open_first_contact_still_closes_it(crm, clock):
    """Completing the first contact skips looking for an open one (it was that task); an
    interaction that only names the open first contact in its ``ext`` is not taken for it."""
    customer = crm.customers.add(actor="t", name="New")
    [pending] = _first(crm, customer.id)
    clock.advance(days=1)
    crm.interactions.log(
        actor="rep",
        customer_id=customer.id,
        kind="follow_up",
        ext={"followup": {"task_id": pending.id, "task_kind": "first_contact"}},
    )
    assert _first(crm, customer.id) == []
    assert crm.tasks.get(pending.id).status.value == "cancelled"
    assert len(crm.tasks.open_for(customer.id, kind="follow_up")) == 1


def test_a_cancelled_first_contact_hands_over_to_the_cadence(crm, clock):
    customer = crm.customers.add(actor="t", name="New")
    crm.tasks.cancel(_first(crm, customer.id)[0].id, actor="m", reason="duplicate lead")
    for _ in range(8):
        clock.advance(days=1)
        crm.tick("w1")
    [follow_up] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert follow_up.due_at == START + timedelta(days=30)  # ungraded: default cadence
    assert _first(crm, customer.id) == []  # not recreated


def test_repeated_events_never_make_two_first_contacts(crm, clock):
    customer = crm.customers.add(actor="t", name="New", owner="ann")
    for owner in ("bo", "ann", "bo"):
        crm.customers.update(customer.id, actor="m", owner=owner)
        crm.tick("w1")
    assert len(_first(crm, customer.id)) == 1
    assert crm.tasks.count({"customer_id": customer.id, "kind": "first_contact"}) == 1


def test_a_new_customer_s_schedule_is_written_once(crm):
    """The schedule is created together with the pending first contact (one write, not an
    empty schedule and then an update), and a do-not-contact customer still gets one."""
    from crmcore_followup.engine import Engine

    engine = Engine(crm)
    customer = crm.customers.add(actor="t", name="New")
    schedule = engine.schedule_of(customer.id)
    assert schedule is not None and schedule.version == 1
    assert schedule.first_contact == "pending" and schedule.assigned_at == crm.now()
    quiet = crm.customers.add(actor="t", name="Quiet", do_not_contact=True)
    schedule = engine.schedule_of(quiet.id)
    assert schedule is not None and schedule.first_contact != "pending"
    assert _first(crm, quiet.id) == []


def test_an_overdue_first_contact_is_looked_at_weekly_not_daily(crm, clock):
    """Nobody made the first contact: past its week the sweep looks again weekly, as at an
    overdue follow-up, not every day (a store where many first contacts wait had every such
    customer planned again by every day's sweeps, with nothing to do)."""
    from crmcore_followup.engine import OVERDUE_RECHECK_DAYS, Engine

    customer = crm.customers.add(actor="t", name="New")
    engine = Engine.of(crm)
    clock.advance(days=8)  # the first contact was due on day 7: looked at on day 8
    crm.tick("w1")
    looked = engine.schedule_of(customer.id)
    assert looked is not None and looked.first_contact == "pending"
    assert looked.check_at == clock.now() + timedelta(days=OVERDUE_RECHECK_DAYS)
    for _ in range(OVERDUE_RECHECK_DAYS - 1):
        clock.advance(days=1)
        crm.tick("w1")
        again = engine.schedule_of(customer.id)
        assert again is not None and again.version == looked.version  # not planned again
    clock.advance(days=1)
    crm.tick("w1")
    again = engine.schedule_of(customer.id)
    assert again is not None and again.version > looked.version
    assert again.check_at == clock.now() + timedelta(days=OVERDUE_RECHECK_DAYS)
    assert len(_first(crm, customer.id)) == 1  # still waiting, not recreated


def test_an_overdue_first_contact_cancelled_hands_over_at_the_weekly_look(crm, clock):
    from crmcore_followup.engine import OVERDUE_RECHECK_DAYS

    customer = crm.customers.add(actor="t", name="New")
    clock.advance(days=8)
    crm.tick("w1")
    crm.tasks.cancel(_first(crm, customer.id)[0].id, actor="m", reason="duplicate lead")
    for _ in range(OVERDUE_RECHECK_DAYS):
        assert crm.tasks.open_for(customer.id, kind="follow_up") == []
        clock.advance(days=1)
        crm.tick("w1")
    [follow_up] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert follow_up.due_at == START + timedelta(days=30)  # ungraded: default cadence
    assert _first(crm, customer.id) == []


def test_a_new_customer_with_no_roster_reads_it_once(crm, monkeypatch):
    """With nobody on the roster, the roster read to pick an owner is the one the first
    contact's assignee is chosen from (not read a second time)."""
    from crmcore_followup import reps

    reads: list[str | None] = []
    original = reps.LoadBook.read.__func__

    def counting(cls, crm, **kwargs):
        reads.append(kwargs.get("team"))
        return original(cls, crm, **kwargs)

    monkeypatch.setattr(reps.LoadBook, "read", classmethod(counting))
    customer = crm.customers.add(actor="t", name="New")
    [task] = _first(crm, customer.id)
    assert task.assignee is None and customer.owner is None
    assert reads == [None]
