"""Callback scripts by occasion, what an answer led to, and the shift handover log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_followup import handovers
from crmcore_followup.api import Roster, record_callback
from crmcore_followup.scripts import SCRIPTS, outcome_of, script_for

from crmcore import NotFoundError, Priority, ValidationError

TEAMS = {"north": {"lead": "wu", "department": "sales"}}


def staffed(fu, **settings):
    crm = fu(teams=TEAMS, **settings)
    roster = Roster(crm)
    for name in ("ann", "wu", "bo"):
        roster.add(name, actor="admin", team="north")
    return crm


def callback_after(crm, kind: str, owner: str = "ann"):
    customer = crm.customers.add(actor="t", name="Li Wei", owner=owner)
    crm.interactions.log(actor=owner, customer_id=customer.id, kind=kind, amount=10.0)
    [task] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    return task


@pytest.mark.parametrize(
    ("kind", "occasion"),
    [("purchase", "purchase"), ("business", "business"), ("treatment", "treatment")],
)
def test_the_script_follows_the_interaction_that_called_for_the_callback(fu, kind, occasion):
    crm = staffed(fu, callback_kinds=["business", "purchase", "treatment"])
    script = script_for(crm, callback_after(crm, kind))
    assert script is SCRIPTS[occasion]
    assert script.questions and script.if_satisfied and script.if_unsatisfied


def test_a_closed_complaints_callback_gets_the_complaint_script(fu, fakes):
    crm = fu(("complaints", fakes.ComplaintHooksOnly()))
    customer = crm.customers.add(actor="t", name="Li Wei", owner="ann")
    crm.events.complaint_closed(
        actor="t",
        ticket=fakes.Ticket(id="tkt_1", customer_id=customer.id, owner="ann"),
    )
    [task] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    assert script_for(crm, task).occasion == "complaint"


def test_a_callback_for_an_unknown_occasion_gets_the_general_script(fu):
    crm = staffed(fu)
    task = crm.tasks.create(
        actor="ann",
        kind="callback",
        title="call back",
        due_at=crm.now(),
        customer_id=crm.customers.add(actor="t", name="Wang").id,
    )
    assert script_for(crm, task).occasion == "general"


def test_outcome_names_the_recovery_task_an_unsatisfied_answer_created(fu, clock):
    crm = staffed(fu)
    task = callback_after(crm, "purchase")
    clock.advance(timedelta(hours=30))
    interaction, _ = record_callback(crm, task.id, satisfied=False, score=2, actor="ann")
    outcome = outcome_of(crm, interaction)
    assert (outcome.kind, outcome.unsatisfied) == ("task", True)
    assert outcome.task is not None and outcome.task.kind == "recovery"
    assert (outcome.task.assignee, outcome.task.priority) == ("wu", Priority.HIGH)

    happy, _ = record_callback(
        crm, callback_after(crm, "purchase").id, satisfied=True, score=5, actor="ann"
    )
    assert outcome_of(crm, happy).kind == "none" and not outcome_of(crm, happy).unsatisfied


def test_outcome_names_the_complaint_logged_with_unsatisfied_action_ticket(fu, clock):
    crm = staffed(fu, unsatisfied_action="ticket")
    task = callback_after(crm, "purchase")
    interaction, _ = record_callback(crm, task.id, satisfied=False, actor="ann")
    outcome = outcome_of(crm, interaction)
    assert outcome.kind == "ticket"
    logged = crm.interactions.get(outcome.interaction_id)
    assert logged.kind == "complaint" and logged.ext["complaints"]["category"] == "service"


def test_outcome_is_nothing_with_unsatisfied_action_none(fu):
    crm = staffed(fu, unsatisfied_action="none")
    interaction, _ = record_callback(
        crm, callback_after(crm, "purchase").id, satisfied=False, actor="ann"
    )
    outcome = outcome_of(crm, interaction)
    assert (outcome.kind, outcome.unsatisfied) == ("none", True)


# -- shift handover ---------------------------------------------------------------------------


def open_items(crm, rep: str = "ann"):
    customer = crm.customers.add(actor="t", name="Zhao Lei", owner=rep)
    urgent = crm.tasks.create(
        actor=rep,
        kind="follow_up",
        title="call about the quote",
        due_at=crm.now() + timedelta(hours=2),
        customer_id=customer.id,
        assignee=rep,
        priority=Priority.HIGH,
    )
    later = crm.tasks.create(
        actor=rep,
        kind="care",
        title="next month",
        due_at=crm.now() + timedelta(days=30),
        customer_id=customer.id,
        assignee=rep,
    )
    return urgent, later


def test_the_incoming_rep_accepts_and_the_open_items_become_theirs(fu, clock):
    crm = staffed(fu)
    urgent, later = open_items(crm)
    written = handovers.write(crm, actor="ann", to_rep="bo", note="Zhao waits for the quote")
    assert urgent.id in written.task_ids and later.id not in written.task_ids
    assert handovers.waiting_for(crm, "bo") == [written]
    assert handovers.written_by(crm, "ann") == [written]
    clock.advance(timedelta(minutes=10))
    accepted = handovers.accept(crm, written.id, actor="bo")
    assert (accepted.status, accepted.accepted_at, accepted.moved) == ("accepted", clock.now(), 1)
    assert crm.tasks.get(urgent.id).assignee == "bo"
    assert crm.tasks.get(later.id).assignee == "ann"
    assert handovers.waiting_for(crm, "bo") == []
    with pytest.raises(ValidationError, match="accepted already"):
        handovers.accept(crm, written.id, actor="bo")


def test_accepting_leaves_items_done_or_given_to_someone_else_meanwhile(fu):
    crm = staffed(fu)
    urgent, _ = open_items(crm)
    other = crm.tasks.create(
        actor="ann",
        kind="follow_up",
        title="second",
        due_at=crm.now(),
        customer_id=urgent.customer_id,
        assignee="ann",
    )
    written = handovers.write(crm, actor="ann", to_rep="bo")
    crm.tasks.complete(urgent.id, actor="ann", outcome="done")
    crm.tasks.assign(other.id, "wu", actor="ann")
    accepted = handovers.accept(crm, written.id, actor="bo")
    assert accepted.moved == 0
    assert crm.tasks.get(other.id).assignee == "wu"


@pytest.mark.parametrize(
    ("to_rep", "note", "message"),
    [
        ("", "x", "name the rep who takes over"),
        ("ann", "x", "not to yourself"),
        ("nobody", "x", "unknown rep 'nobody'"),
    ],
)
def test_a_wrong_handover_is_refused_and_nothing_is_written(fu, to_rep, note, message):
    crm = staffed(fu)
    open_items(crm)
    with pytest.raises(ValidationError, match=message) as caught:
        handovers.write(crm, actor="ann", to_rep=to_rep, note=note)
    assert caught.value.field == "to_rep"
    assert handovers.written_by(crm, "ann") == []


def test_nothing_to_hand_over_needs_a_note_and_one_waits_at_a_time(fu):
    crm = staffed(fu)
    with pytest.raises(ValidationError, match="nothing to hand over"):
        handovers.write(crm, actor="ann", to_rep="bo")
    first = handovers.write(crm, actor="ann", to_rep="bo", note="quiet shift")
    assert first.task_ids == ()
    with pytest.raises(ValidationError, match="not accepted yet"):
        handovers.write(crm, actor="ann", to_rep="bo", note="again")
    assert handovers.written_by(crm, "ann") == [first]


def test_only_the_incoming_rep_accepts(fu):
    crm = staffed(fu)
    open_items(crm)
    written = handovers.write(crm, actor="ann", to_rep="bo")
    with pytest.raises(ValidationError, match="for bo"):
        handovers.accept(crm, written.id, actor="wu")
    with pytest.raises(NotFoundError):
        handovers.accept(crm, "hnd_missing", actor="bo")
    assert handovers.get(crm, written.id).status == "open"


def test_outcome_of_a_complaints_unsatisfied_callback_is_the_reopen(fu, fakes):
    crm = fu(("complaints", fakes.ComplaintHooksOnly()), teams=TEAMS)
    customer = crm.customers.add(actor="t", name="Li Wei", owner="ann")
    crm.events.complaint_closed(
        actor="t",
        ticket=fakes.Ticket(id="tkt_1", customer_id=customer.id, owner="ann"),
    )
    [task] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    interaction, _ = record_callback(crm, task.id, satisfied=False, actor="ann")
    outcome = outcome_of(crm, interaction)
    assert (outcome.kind, outcome.reopens) == ("task", "tkt_1")  # and the lead recovers it
    assert outcome.task is not None and outcome.task.kind == "recovery"
    satisfied, _ = record_callback(
        crm, callback_after(crm, "purchase").id, satisfied=False, actor="ann"
    )
    assert outcome_of(crm, satisfied).reopens is None  # not a complaint's callback
