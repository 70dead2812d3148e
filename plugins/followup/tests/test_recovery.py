"""An unsatisfied callback leads somewhere (DOMAIN §9): a recovery task for the rep's team
lead, or a complaint ticket by configuration, and it shows in the report by department."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_followup.api import Roster, record_callback
from crmcore_followup.report import unsatisfied_by_department

from crmcore import ConfigError, Priority, hookimpl

TEAMS = {
    "north": {"lead": "wu", "department": "sales"},
    "south": {"lead": "lin", "department": "care"},
}


def a_callback(crm, owner: str = "ann", kind: str = "purchase"):
    customer = crm.customers.add(actor="t", name="Li Wei", owner=owner)
    crm.interactions.log(actor=owner, customer_id=customer.id, kind=kind, amount=10.0)
    [task] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    return customer, task


def recoveries(crm):
    return crm.tasks.find({"kind": "recovery"}, sort=[("created_at", 1)])


def staffed(fu, **settings):
    crm = fu(teams=TEAMS, **settings)
    roster = Roster(crm)
    for name, team in (("ann", "north"), ("wu", "north"), ("bo", "south")):
        roster.add(name, actor="admin", team=team)
    return crm


def test_unsatisfied_answer_gives_the_owners_lead_a_recovery_task(fu, clock):
    crm = staffed(fu)
    customer, task = a_callback(crm)
    clock.advance(timedelta(hours=30))  # 15:00 UTC: outside the default quiet hours
    interaction, _done = record_callback(
        crm, task.id, satisfied=False, score=2, actor="ann", notes="the parcel came late"
    )
    [recovery] = recoveries(crm)
    assert (recovery.assignee, recovery.customer_id, recovery.ref) == (
        "wu",
        customer.id,
        interaction.id,
    )
    assert recovery.priority is Priority.HIGH
    assert recovery.due_at == clock.now() + timedelta(hours=24)
    assert recovery.dedupe_key == f"recovery:{interaction.id}"
    assert recovery.ext["followup"] == {
        "callback": interaction.id,
        "rep": "ann",
        "team": "north",
        "department": "sales",
        "score": 2,
        "ref": task.ref,
    }


@pytest.mark.parametrize(
    ("satisfied", "score", "expected"),
    [
        (True, 1, 0),  # said satisfied: the answer outranks the score
        (True, None, 0),
        (False, 5, 1),
        (False, None, 1),
    ],
)
def test_what_counts_as_unsatisfied(fu, satisfied, score, expected):
    crm = staffed(fu)
    _customer, task = a_callback(crm)
    record_callback(crm, task.id, satisfied=satisfied, score=score, actor="ann")
    assert len(recoveries(crm)) == expected


@pytest.mark.parametrize(("score", "expected"), [(2, 1), (3, 0)])
def test_a_plain_completion_counts_by_its_score(fu, score, expected):
    crm = staffed(fu)
    customer, _task = a_callback(crm)
    crm.interactions.log(actor="ann", customer_id=customer.id, kind="callback", satisfaction=score)
    assert len(recoveries(crm)) == expected


def test_a_lead_is_never_their_own_recovery(fu):
    crm = staffed(fu)
    _customer, task = a_callback(crm, owner="wu")
    record_callback(crm, task.id, satisfied=False, actor="wu")
    [recovery] = recoveries(crm)
    assert recovery.assignee is None
    assert "set [followup.teams] lead" in recovery.title


def test_without_teams_the_task_waits_in_the_shared_queue(fu):
    crm = fu()
    _customer, task = a_callback(crm)
    record_callback(crm, task.id, satisfied=False, actor="ann")
    [recovery] = recoveries(crm)
    assert recovery.assignee is None


def test_none_does_nothing(fu):
    crm = staffed(fu, unsatisfied_action="none")
    _customer, task = a_callback(crm)
    record_callback(crm, task.id, satisfied=False, actor="ann")
    assert recoveries(crm) == []


def test_bad_action_is_refused(fu):
    with pytest.raises(ConfigError, match="unsatisfied_action"):
        fu(unsatisfied_action="email")


class ComplaintInteractions:
    """Stands in for complaints' contract: a "complaint" interaction becomes a ticket."""

    def __init__(self) -> None:
        self.seen: list = []

    @hookimpl
    def crm_interaction_logged(self, crm, interaction, customer, actor):
        if interaction.kind == "complaint":
            self.seen.append(interaction)


def test_ticket_mode_logs_a_complaint_for_the_complaints_plugin(fu):
    complaints = ComplaintInteractions()
    crm = fu(
        ("complaints-contract", complaints),
        unsatisfied_action="ticket",
        recovery_category="service",
        teams=TEAMS,
    )
    _customer, task = a_callback(crm)
    interaction, _ = record_callback(
        crm, task.id, satisfied=False, actor="ann", notes="rude on the phone"
    )
    [complaint] = complaints.seen
    assert complaint.ext["complaints"] == {"category": "service"}
    assert complaint.rep == "ann"
    assert interaction.id in complaint.summary and "rude on the phone" in complaint.summary
    assert recoveries(crm) == []


def test_report_counts_by_department_and_team(fu):
    crm = staffed(fu)
    for owner, satisfied in (("ann", False), ("ann", True), ("bo", False), ("bo", False)):
        _customer, task = a_callback(crm, owner=owner)
        record_callback(crm, task.id, satisfied=satisfied, actor=owner)
    crm.tasks.complete(recoveries(crm)[0].id, actor="wu", outcome="apologised, voucher")
    section = unsatisfied_by_department(crm)
    assert list(section.rows) == [
        ("care", "south", 2, 2, "100.0%", 2, 0),
        ("sales", "north", 2, 1, "50.0%", 0, 1),
    ]


def test_the_real_stack_reopens_complaints_and_adds_recovery(make_crm, clock):
    """With complaints installed, a complaint's callback answered unsatisfied reopens the
    ticket (complaints) and gives the lead a recovery task (followup)."""
    crm = make_crm(
        ["followup", "complaints"],
        settings={"followup": {"teams": TEAMS}, "complaints": {"require_approval": False}},
    )
    Roster(crm).add("ann", actor="admin", team="north")
    from crmcore_complaints.api import Complaints

    api = Complaints(crm)
    customer = crm.customers.add(actor="ann", name="Li Wei", owner="ann")
    ticket = api.open(actor="ann", customer_id=customer.id, content="late", category="service")
    ticket = api.dispatch(api.judge(ticket, actor="ann", valid=True), actor="ann")
    ticket = api.respond(ticket, actor="ann", message="on it")
    ticket = api.close(api.resolve(ticket, actor="ann", resolution="sent again"), actor="ann")
    [task] = crm.tasks.find({"kind": "callback", "ref": ticket.id})
    record_callback(crm, task.id, satisfied=False, actor="ann")
    assert api.get(ticket.id).status == "in_progress"
    assert [t.assignee for t in recoveries(crm)] == ["wu"]


def test_report_window_narrows_to_a_team_and_a_period(fu, clock):
    from crmcore_followup.report import callback_sections

    from crmcore import ReportWindow

    crm = staffed(fu)
    for owner, satisfied in (("ann", False), ("bo", False)):
        _customer, task = a_callback(crm, owner=owner)
        record_callback(crm, task.id, satisfied=satisfied, actor=owner)
    clock.advance(timedelta(days=10))
    _customer, task = a_callback(crm, owner="bo")
    record_callback(crm, task.id, satisfied=True, actor="bo")
    south = unsatisfied_by_department(crm, ReportWindow(team="south"))
    assert list(south.rows) == [("care", "south", 2, 1, "50.0%", 1, 0)]
    recent = unsatisfied_by_department(crm, ReportWindow(since=clock.now() - timedelta(days=1)))
    assert list(recent.rows) == [("care", "south", 1, 0, "0.0%", 0, 0)]
    satisfaction = dict(callback_sections(crm, clock.now(), ReportWindow(rep="ann"))[1].rows)
    assert (satisfaction["callbacks recorded"], satisfaction["unsatisfied"]) == (1, 1)
