"""Telecom as shipped (docs/domain.md §8): the 24-hour ladder to named people, phones in one
form, satisfaction callbacks after business, strict confidentiality."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_complaints.api import Complaints
from crmcore_followup.api import record_callback
from crmcore_followup.reps import Roster

from crmcore import PermissionDenied
from crmcore.converter import parse_iso
from crmcore.testing.cli import one_line_error
from tests.stacks.conftest import crm_run, fill_in, uncomment_block

ROSTER = {
    "# manager = \"billing-manager\"": "manager = \"mei\"",
    "# manager = \"network-manager\"": "manager = \"niu\"",
    "# manager = \"service-manager\"": "manager = \"sun\"",
}
ACTORS = """
[security.actors.ann]
role = "agent"

[security.actors.wu]
role = "shift_lead"

[security.actors.lin]
role = "shift_lead"

[security.actors.mei]
role = "manager"
"""


def staffed(path):
    """The rota filled in as the written file's comments say."""
    uncomment_block(path, "# [[complaints.shifts]]", 4)
    uncomment_block(path, "# [[complaints.shifts]]", 4)
    fill_in(path, {'lead = "day-lead"': 'lead = "wu"', 'lead = "evening-lead"': 'lead = "lin"',
                   **ROSTER})
    path.write_text(path.read_text("utf-8") + ACTORS, "utf-8")


def test_check_warns_while_the_rota_is_empty(init_profile):
    path = init_profile("telecom")
    result = crm_run(path.parent, "--as", "admin", "check")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert any("rota is empty" in w and "[[complaints.shifts]]" in w for w in warnings)
    assert any("billing, network, customer_service" in w for w in warnings)
    staffed(path)
    result = crm_run(path.parent, "--as", "admin", "--json", "check")
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr
    assert result.stdout.lstrip().startswith("[")  # pure JSON on stdout


def test_24h_ladder_goes_to_named_people_never_the_owner(init_profile, open_profile):
    """Rule: every ticket open more than 24 hours goes to the shift lead, then to the
    department manager; the owner (first contact) is never their own escalation."""
    path = init_profile("telecom")
    staffed(path)
    crm, clock = open_profile(path)
    api = Complaints(crm)
    customer = crm.customers.add(actor="ann", name="Zhao Lei", phone="138 0013 8000")
    ticket = api.open(actor="ann", customer_id=customer.id, content="charged twice",
                      category="billing_dispute")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="ann")
    assert ticket.department == "billing"
    for hour in range(1, 73):
        clock.set(ticket.opened_at + timedelta(hours=hour))
        crm.tick("w1")
    traces = sorted((t.details for t in api.escalation_traces(ticket_id=ticket.id)),
                    key=lambda d: d["level"])
    # opened Monday 09:00 Shanghai: 24 h later is Tuesday 09:00, the day shift (wu)
    assert [(d["level"], d["assignee"]) for d in traces] == [(1, "wu"), (2, "mei")]
    tasks = [crm.tasks.get(d["task_id"]) for d in traces]
    assert [t.assignee for t in tasks] == ["wu", "mei"]
    assert all(t.assignee != ticket.owner for t in tasks)


def test_unstaffed_ladder_never_falls_back_to_the_owner(init_profile, open_profile):
    path = init_profile("telecom")
    crm, clock = open_profile(path)
    api = Complaints(crm)
    customer = crm.customers.add(actor="admin", name="Zhao Lei", phone="138 0013 8000")
    ticket = api.open(actor="admin", customer_id=customer.id, content="charged twice",
                      category="billing_dispute")
    clock.set(ticket.opened_at + timedelta(hours=25))
    crm.tick("w1")
    [trace] = api.escalation_traces(ticket_id=ticket.id)
    assert trace.details["assignee"] is None
    assert crm.tasks.get(trace.details["task_id"]).assignee is None


def test_china_numbers_are_one_person(init_profile, open_profile):
    """Rule: default_country_code 86 where the time zone is China, so a number written with
    or without +86 is the same subscriber (unique_phone)."""
    path = init_profile("telecom")
    text = path.read_text("utf-8")
    assert 'timezone = "Asia/Shanghai"' in text
    assert '\ndefault_country_code = "86"' in text
    crm, _clock = open_profile(path)
    first = crm.customers.add(actor="admin", name="Zhao Lei", phone="+86 138-0013-8000")
    assert first.phone == "+8613800138000"
    crm.close()
    result = crm_run(path.parent, "--as", "admin", "customer", "add", "--name", "Zhao L",
                     "--phone", "138 0013 8000")
    assert result.returncode != 0
    assert "phone" in one_line_error(result.stderr)


def test_thirty_days_of_satisfaction_callbacks_and_confidentiality(init_profile, open_profile):
    """Rules: satisfaction callbacks within 3 days after business is handled; an unsatisfied
    answer reaches the team lead; billing disputes on their own 24-hour policy; strict
    confidentiality (an agent sees only their own customers)."""
    path = init_profile("telecom")
    staffed(path)
    uncomment_block(path, "# [followup.teams.front_desk]", 3)
    assert '[followup.teams.front_desk]\nlead = "wu"' in path.read_text("utf-8")
    fill_in(path, {'[security.actors.ann]\nrole = "agent"\n':
                   '[security.actors.ann]\nrole = "agent"\nteam = "front_desk"\n'})
    path.write_text(path.read_text("utf-8") + '\n[security.actors.bo]\nrole = "agent"\n'
                    'team = "front_desk"\n', "utf-8")
    crm, clock = open_profile(path)
    roster = Roster(crm)
    for name in ("ann", "bo"):
        roster.add(name, actor="admin", team="front_desk")
    start = clock.now()
    subscribers = [crm.customers.add(actor="admin", name=f"Subscriber {i}", owner="ann",
                                     phone=f"138 0000 {i:04d}").id for i in range(4)]
    answers = iter([True, False, True, True, False, True, True, True] * 4)
    unsatisfied = []
    for day in range(30):
        clock.set(start + timedelta(days=day))
        if day % 4 == 0:
            cid = subscribers[day // 4 % 4]
            crm.interactions.log(actor="ann", customer_id=cid, kind="business",
                                 summary="plan upgraded")
        crm.tick("w1")
        for task in crm.tasks.find({"kind": "callback", "status": "open",
                                    "due_at": {"$lte": clock.now()}}):
            satisfied = next(answers)
            interaction, _ = record_callback(crm, task.id, satisfied=satisfied,
                                             score=5 if satisfied else 2, actor="ann")
            if not satisfied:
                unsatisfied.append(interaction.id)
    callbacks = crm.tasks.find({"kind": "callback"})
    assert len(callbacks) >= 7
    for task in callbacks:
        deadline = parse_iso(task.ext["followup"]["deadline"])
        assert deadline - parse_iso(task.ext["followup"]["event_at"]) == timedelta(days=3)
        if deadline <= clock.now():
            assert task.completed_at is not None and task.completed_at <= deadline
    recoveries = crm.tasks.find({"kind": "recovery"})
    assert unsatisfied and sorted(t.ref for t in recoveries) == sorted(unsatisfied)
    assert {t.assignee for t in recoveries} == {"wu"}

    api = Complaints(crm)
    dispute = api.open(actor="ann", customer_id=subscribers[0], content="charged twice",
                       category="billing_dispute")
    assert (dispute.sla_policy, dispute.resolution_due_at - dispute.opened_at) == (
        "billing", timedelta(hours=24))

    # strict confidentiality: bo may not read ann's subscriber; the refusal is audited
    with pytest.raises(PermissionDenied):
        crm.customers.get(subscribers[0], actor="bo")
    assert crm.customers.get(subscribers[0], actor="ann").id == subscribers[0]
    denied = crm.audit.inner.collection("audit").find({"op": "denied"})
    assert [e["actor"] for e in denied][-1:] == ["bo"]
    result = crm_run(path.parent, "--as", "bo", "customer", "show", subscribers[1])
    assert result.returncode == 5 and "Traceback" not in result.stderr
