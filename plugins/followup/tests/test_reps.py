"""The rep roster and assignment: customers and tasks shared balancing open load against
ability (DOMAIN §3); an unavailable rep's tasks go to the others."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from crmcore_followup.reps import LoadBook, Roster

from crmcore import NotFoundError, ValidationError


@pytest.fixture
def roster(crm):
    return Roster(crm)


def _task(crm, kind="callback", customer=None, assignee=None, source="other-plugin"):
    # a do-not-contact customer gets no first contact, so only these tasks count as load
    customer = customer or crm.customers.add(
        actor="t", name="C", owner="nobody", do_not_contact=True
    )
    task = crm.tasks.create(
        actor="t",
        kind=kind,
        title="x",
        due_at=crm.now(),
        customer_id=customer.id,
        assignee=assignee,
        source=source,
    )
    return crm.tasks.get(task.id)  # as stored, after the plugin assigned it


def test_roster_add_list_update_remove(crm, roster):
    roster.add(
        "ann",
        actor="manager",
        team="north",
        skills=["Callback", "vip", "callback"],
        ability=5,
        capacity=20,
        shift="day",
    )
    roster.add("bo", actor="manager", team="south")
    assert [r.name for r in roster.all()] == ["ann", "bo"]
    ann = roster.get("ann")
    assert ann.skills == ("callback", "vip") and ann.ability == 5 and ann.available
    updated, moved = roster.update("bo", actor="m", ability=4, team="north")
    assert (updated.ability, updated.team, moved) == (4, "north", 0)
    assert roster.remove("bo", actor="m") == 0
    with pytest.raises(NotFoundError):
        roster.get("bo")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "ann smith"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "ok", "ability": 0}, "ability"),
        ({"name": "ok", "ability": 6}, "ability"),
        ({"name": "ok", "ability": "5"}, "ability"),
        ({"name": "ok", "ability": True}, "ability"),
        ({"name": "ok", "capacity": 0}, "capacity"),
        ({"name": "ok", "skills": 3}, "skills"),
    ],
)
def test_bad_rep_fields_are_refused_and_nothing_is_written(crm, roster, fields, field):
    with pytest.raises(ValidationError) as err:
        roster.add(**fields, actor="manager")
    assert err.value.field == field
    assert roster.all() == []


def test_duplicate_names_and_unknown_fields_are_refused(roster):
    roster.add("ann", actor="manager")
    with pytest.raises(ValidationError, match="already on the roster"):
        roster.add("ann", actor="manager")
    with pytest.raises(ValidationError, match="unknown rep field"):
        roster.add("bo", actor="manager", level=3)
    with pytest.raises(ValidationError, match="unknown rep field"):
        roster.update("ann", actor="m", salary=1)
    with pytest.raises(ValidationError, match="nothing to change"):
        roster.update("ann", actor="m")
    with pytest.raises(ValidationError):
        roster.update("ann", actor="m", ability=9)
    assert roster.get("ann").ability == 3


def test_tasks_are_shared_by_open_load_per_unit_of_ability(crm, roster):
    roster.add("ann", actor="manager", ability=5)
    roster.add("bo", actor="manager", ability=1)
    for _ in range(12):
        _task(crm)
    load = Counter(t.assignee for t in crm.tasks.find({"status": "open"}))
    assert load == {"ann": 10, "bo": 2}


def test_ties_go_by_name_and_capacity_is_a_ceiling(crm, roster):
    roster.add("cy", actor="manager", ability=3, capacity=2)
    roster.add("ann", actor="manager", ability=3, capacity=1)
    assignees = [_task(crm).assignee for _ in range(4)]
    book = LoadBook.read(crm)
    assert assignees[:3] == ["ann", "cy", "cy"]
    assert assignees[3] is None  # nobody has room: stays unassigned (shared queue)
    assert book.open_tasks == {"ann": 1, "cy": 2}


def test_the_customers_own_rep_is_preferred_while_available(crm, roster):
    roster.add("ann", actor="manager", ability=1)
    roster.add("bo", actor="manager", ability=5)
    mine = crm.customers.add(actor="t", name="Mine", owner="ann")
    assert _task(crm, customer=mine).assignee == "ann"
    roster.update("ann", actor="m", available=False)
    assert _task(crm, customer=mine).assignee == "bo"


def test_skills_route_task_kinds_when_someone_has_them(fu):
    crm = fu(skills_by_kind={"callback": "callback"})
    roster = Roster(crm)
    roster.add("ann", actor="manager", ability=5)
    roster.add("bo", actor="manager", ability=1, skills=["callback"])
    assert {_task(crm).assignee for _ in range(3)} == {"bo"}
    assert _task(crm, kind="care").assignee == "ann"


def test_marking_a_rep_unavailable_reassigns_their_open_tasks(crm, roster):
    roster.add("ann", actor="manager", ability=3)
    roster.add("bo", actor="manager", ability=3)
    roster.add("cy", actor="manager", ability=3)
    tasks = [_task(crm) for _ in range(6)]
    anns = [t.id for t in tasks if t.assignee == "ann"]
    assert anns
    _rep, moved = roster.update("ann", actor="manager", available=False)
    assert moved == len(anns)
    for task_id in anns:
        assert crm.tasks.get(task_id).assignee in ("bo", "cy")
    assert crm.tasks.count({"assignee": "ann", "status": "open"}) == 0
    # new work skips her until she is back
    assert {_task(crm).assignee for _ in range(4)} <= {"bo", "cy"}
    roster.update("ann", actor="manager", available=True)
    assert _task(crm).assignee == "ann"


def test_removing_the_last_rep_leaves_their_tasks_in_the_shared_queue(crm, roster):
    roster.add("ann", actor="manager")
    task = _task(crm)
    assert task.assignee == "ann"
    assert roster.remove("ann", actor="m") == 1
    assert crm.tasks.get(task.id).assignee is None


def test_a_task_given_to_an_unavailable_rep_is_reassigned_at_once(crm, roster):
    roster.add("ann", actor="manager")
    roster.add("bo", actor="manager", available=False)
    assert _task(crm, assignee="bo").assignee == "ann"
    assert _task(crm, assignee="someone-off-roster").assignee == "someone-off-roster"
    assert _task(crm, kind="complaint").assignee is None  # not a contact kind


def test_new_customers_get_an_owner_balancing_customers_per_ability(crm, roster):
    roster.add("ann", actor="manager", ability=4)
    roster.add("bo", actor="manager", ability=2)
    owners = Counter()
    for i in range(9):
        customer = crm.customers.add(actor="import", name=f"C{i}")
        assert customer.owner is not None  # what add returns is current
        assert crm.customers.get(customer.id).version == customer.version
        owners[customer.owner] += 1
        [first] = crm.tasks.open_for(customer.id, kind="first_contact")
        assert first.assignee == customer.owner
    assert owners == {"ann": 6, "bo": 3}
    given = crm.customers.add(actor="import", name="Given", owner="zed")
    assert given.owner == "zed"


def test_owner_assignment_can_be_switched_off(fu):
    crm = fu(assign_owners=False)
    Roster(crm).add("ann", actor="manager")
    customer = crm.customers.add(actor="t", name="X")
    assert customer.owner is None
    [first] = crm.tasks.open_for(customer.id, kind="first_contact")
    assert first.assignee == "ann"  # the task is still shared out


def test_a_new_owner_takes_over_and_gets_a_first_contact(crm, roster, clock):
    roster.add("ann", actor="manager")
    roster.add("bo", actor="manager")
    customer = crm.customers.add(
        actor="t", name="X", owner="ann", ext={"grading": {"grades": {"pipeline": "B"}}}
    )
    [first] = crm.tasks.open_for(customer.id, kind="first_contact")
    crm.tasks.complete(first.id, actor="ann")
    [follow_up] = crm.tasks.open_for(customer.id, kind="follow_up")
    assert follow_up.assignee == "ann"
    clock.advance(days=2)
    crm.customers.update(customer.id, actor="manager", owner="bo")
    assert crm.tasks.get(follow_up.id).assignee == "bo"
    [again] = crm.tasks.open_for(customer.id, kind="first_contact")
    assert again.assignee == "bo"
    assert again.due_at == clock.now() + timedelta(days=7)
