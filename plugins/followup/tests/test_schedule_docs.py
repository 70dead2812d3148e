"""Schedules as stored: without their blank fields (grade, birthday year, lease); the sweep
claims and plans them, and schedules stored whole (by older versions) still read."""

from __future__ import annotations

from datetime import timedelta

from crmcore_followup.records import SCHEDULE, Schedule, schedule_id

from crmcore.converter import to_doc

BLANK = ("grade", "birthday_year", "lease_owner", "lease_until")


def test_a_new_schedule_is_stored_without_blank_fields_and_reads_whole(make_crm, clock):
    crm = make_crm(["followup"])
    c = crm.customers.add(actor="ann", name="Li")
    doc = crm.collection(SCHEDULE).get(schedule_id(c.id))
    for blank in BLANK:
        assert blank not in doc
    schedule = crm.records(SCHEDULE, Schedule).get(schedule_id(c.id))
    assert schedule.grade is None and schedule.lease_owner is None
    assert schedule.customer_id == c.id and schedule.first_contact == "pending"
    # the sweep's claim finds it by check_at; the lease is written and cleared
    (first,) = crm.tasks.open_for(c.id)
    crm.tasks.complete(first.id, actor="ann", outcome="reached")
    schedule = crm.records(SCHEDULE, Schedule).get(schedule_id(c.id))
    clock.advance(timedelta(days=60))
    crm.tick("w1")
    assert [t.kind for t in crm.tasks.open_for(c.id)] == ["follow_up"]
    after = crm.records(SCHEDULE, Schedule).get(schedule_id(c.id))
    assert after.lease_owner is None and after.version > schedule.version


def test_a_schedule_stored_whole_by_an_older_version_reads_the_same(make_crm):
    crm = make_crm(["followup"])
    c = crm.customers.add(actor="ann", name="Li")
    records = crm.records(SCHEDULE, Schedule)
    compact = records.get(schedule_id(c.id))
    whole = {**to_doc(compact), "id": "fus_old"}
    del whole["version"]
    assert all(k in whole and whole[k] is None for k in BLANK)
    crm.collection(SCHEDULE).insert(whole)
    old = records.get("fus_old")
    assert old == Schedule(**{**attrs_fields(compact), "id": "fus_old", "version": old.version})
    assert {s.id for s in records.find({"grade": None, "lease_owner": None})} == {
        compact.id,
        "fus_old",
    }


def attrs_fields(schedule: Schedule) -> dict:
    import attrs

    return attrs.asdict(schedule, recurse=False)


def test_a_customer_added_over_a_left_over_schedule_takes_it_over(make_crm):
    """A new customer's schedule is inserted without being read first; one already stored
    under the id (left over) fails that insert, and is read and updated instead."""
    crm = make_crm(["followup"])
    other = crm.customers.add(actor="ann", name="Li")
    records = crm.records(SCHEDULE, Schedule)
    old = to_doc(records.get(schedule_id(other.id)))
    new_id = "cus_01LEFTOVER0000000000000000"
    old.update(id=schedule_id(new_id), customer_id=new_id, first_contact="none", version=1)
    crm.collection(SCHEDULE).insert(old)
    c = crm.customers.add(actor="ann", name="Bo", restore={"id": new_id})
    schedule = records.get(schedule_id(c.id))
    assert schedule.first_contact == "pending" and schedule.version == 2
    assert [t.kind for t in crm.tasks.open_for(c.id)] == ["first_contact"]
    assert len(records.find({"customer_id": c.id})) == 1
