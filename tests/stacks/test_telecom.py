"""Telecom as shipped (docs/domain.md §8): the 24-hour ladder to named people, phones in one
form, satisfaction callbacks after business, strict confidentiality."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_complaints.api import Complaints
from crmcore_followup.api import record_callback
from crmcore_followup.reps import Roster

from crmcore import PermissionDenied, ValidationError
from crmcore.converter import parse_iso
from crmcore.testing.audit import operations
from crmcore.testing.cli import one_line_error
from tests.stacks.conftest import crm_run, fill_in, uncomment_block

ROSTER = {
    '# manager = "billing-manager"': 'manager = "mei"',
    '# manager = "network-manager"': 'manager = "niu"',
    '# manager = "service-manager"': 'manager = "sun"',
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
    fill_in(
        path,
        {'lead = "day-lead"': 'lead = "wu"', 'lead = "evening-lead"': 'lead = "lin"', **ROSTER},
    )
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
    ticket = api.open(
        actor="ann", customer_id=customer.id, content="charged twice", category="billing_dispute"
    )
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="ann")
    assert ticket.department == "billing"
    for hour in range(1, 73):
        clock.set(ticket.opened_at + timedelta(hours=hour))
        crm.tick("w1")
    traces = sorted(
        (t.details for t in api.escalation_traces(ticket_id=ticket.id)), key=lambda d: d["level"]
    )
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
    ticket = api.open(
        actor="admin", customer_id=customer.id, content="charged twice", category="billing_dispute"
    )
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
    result = crm_run(
        path.parent,
        "--as",
        "admin",
        "customer",
        "add",
        "--name",
        "Zhao L",
        "--phone",
        "138 0013 8000",
    )
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
    fill_in(
        path,
        {
            '[security.actors.ann]\nrole = "agent"\n': (
                '[security.actors.ann]\nrole = "agent"\nteam = "front_desk"\n'
            )
        },
    )
    path.write_text(
        path.read_text("utf-8") + '\n[security.actors.bo]\nrole = "agent"\nteam = "front_desk"\n',
        "utf-8",
    )
    crm, clock = open_profile(path)
    roster = Roster(crm)
    for name in ("ann", "bo"):
        roster.add(name, actor="admin", team="front_desk")
    start = clock.now()
    subscribers = [
        crm.customers.add(
            actor="admin", name=f"Subscriber {i}", owner="ann", phone=f"138 0000 {i:04d}"
        ).id
        for i in range(4)
    ]
    answers = iter([True, False, True, True, False, True, True, True] * 4)
    unsatisfied = []
    for day in range(30):
        clock.set(start + timedelta(days=day))
        if day % 4 == 0:
            cid = subscribers[day // 4 % 4]
            crm.interactions.log(
                actor="ann", customer_id=cid, kind="business", summary="plan upgraded"
            )
        crm.tick("w1")
        for task in crm.tasks.find(
            {"kind": "callback", "status": "open", "due_at": {"$lte": clock.now()}}
        ):
            satisfied = next(answers)
            interaction, _ = record_callback(
                crm, task.id, satisfied=satisfied, score=5 if satisfied else 2, actor="ann"
            )
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
    dispute = api.open(
        actor="ann", customer_id=subscribers[0], content="charged twice", category="billing_dispute"
    )
    assert (dispute.sla_policy, dispute.resolution_due_at - dispute.opened_at) == (
        "billing",
        timedelta(hours=24),
    )

    # strict confidentiality: bo may not read ann's subscriber; the refusal is audited
    with pytest.raises(PermissionDenied):
        crm.customers.get(subscribers[0], actor="bo")
    assert crm.customers.get(subscribers[0], actor="ann").id == subscribers[0]
    denied = operations(crm, op="denied")
    assert [e["actor"] for e in denied][-1:] == ["bo"]
    result = crm_run(path.parent, "--as", "bo", "customer", "show", subscribers[1])
    assert result.returncode == 5 and "Traceback" not in result.stderr


SERVICE_STAFF = """
[security.actors.kai]
role = "agent"
department = "network"

[security.actors.hu]
role = "manager"
department = "network"
"""


def test_business_acceptance_end_to_end_by_the_people_the_profile_names(init_profile, open_profile):
    """Rules (DOMAIN §9): 业务受理 goes application → document review → contract → provisioning
    → completion, each step a task for the department queue that acts there, every transition
    audited, each step on its SLA (a stalled one escalates to the department's lead, then its
    manager), and a satisfaction callback within 3 days of completion whose unsatisfied answer
    gives the rep's team lead a recovery task."""
    from crmcore_service.api import Service

    path = init_profile("telecom")
    staffed(path)
    uncomment_block(path, "# [followup.teams.front_desk]", 3)
    uncomment_block(path, "# [service.departments.customer_service]", 3)
    uncomment_block(
        path, "# [service.departments.network]       # provisioning, applying changes, repairs", 3
    )
    fill_in(
        path,
        {
            'lead = "lead"\nmanager = "manager"': 'lead = "wu"\nmanager = "sun"',
            'lead = "network-lead"\nmanager = "network-head"': 'lead = "kai"\nmanager = "hu"',
            '[security.actors.ann]\nrole = "agent"\n': (
                '[security.actors.ann]\nrole = "agent"\nteam = "front_desk"\n'
                'department = "customer_service"\n'
            ),
            '[security.actors.wu]\nrole = "shift_lead"\n': (
                '[security.actors.wu]\nrole = "shift_lead"\ndepartment = "customer_service"\n'
            ),
        },
    )
    path.write_text(path.read_text("utf-8") + SERVICE_STAFF, "utf-8")
    crm, clock = open_profile(path)
    Roster(crm).add("ann", actor="admin", team="front_desk")
    api = Service(crm)
    start = clock.now()  # Monday 09:00 in Shanghai

    def at(hours: float) -> None:
        clock.set(start + timedelta(hours=hours))
        crm.tick("w1")

    def step_task(order):
        [task] = crm.tasks.find(
            {"kind": "service", "ref": order.id, "status": "open", "ext.service.purpose": "step"}
        )
        return task

    customer = crm.customers.add(actor="ann", name="Zhao Lei", phone="138 0013 8000")
    order = api.open(
        actor="ann",
        type="business",
        customer_id=customer.id,
        fields={"product": "fibre 500M"},
        summary="new broadband line",
    )
    # the application waits in the customer service queue (its lead), 4 calendar hours
    assert (order.state, order.owner, order.assignee) == ("application", "ann", "wu")
    assert order.step_due_at == start + timedelta(hours=4)
    task = step_task(order)
    assert (task.assignee, task.due_at) == ("wu", order.step_due_at)
    assert "application received (customer_service)" in task.title

    at(1)
    order = api.advance(order, actor="wu", to="document_review")
    # 8 business hours from Monday 10:00 (09:00-18:00 in Shanghai): Monday 18:00
    assert order.step_due_at == start + timedelta(hours=9)
    assert crm.tasks.get(task.id).completed_at == clock.now()
    assert step_task(order).assignee == "wu"
    with pytest.raises(ValidationError, match=r"step contract of a .* needs documents_checked"):
        api.advance(order, actor="wu", to="contract")
    at(6)
    order = api.advance(order, actor="wu", to="contract", fields={"documents_checked": True})
    # 24 business hours from Monday 15:00: 3 + 9 + 9 + 3 hours, Thursday 12:00
    assert order.step_due_at == start + timedelta(days=3, hours=3)
    at(25)  # Tuesday 10:00
    order = api.advance(
        order, actor="ann", to="provisioning", fields={"contract_no": "HT-2026-0001"}
    )
    # provisioning is the network department's: its lead's queue, 24 calendar hours
    assert (order.department, order.assignee) == ("network", "kai")
    assert order.step_due_at == clock.now() + timedelta(hours=24)
    provisioning = step_task(order)
    assert provisioning.assignee == "kai"
    with pytest.raises(PermissionDenied, match="department network"):
        api.advance(order, actor="ann", to="completed", fields={"service_number": "x"})
    with pytest.raises(
        ValidationError,
        match=r"cannot move to 'withdrawn' \(allowed: "
        r"completed\)",
    ):
        api.advance(order, actor="kai", to="withdrawn", fields={"reason": "late"})

    # provisioning stalls: past its SLA the lead is told at once, the manager 24 hours on
    at(50)  # Wednesday 11:00
    at(74)  # Thursday 11:00
    order = api.get(order.id)
    assert (order.step_breached, order.escalation_level) == (True, 2)
    escalations = crm.tasks.find(
        {"kind": "service", "ref": order.id, "ext.service.purpose": "escalation"},
        sort=[("due_at", 1)],
    )
    assert [t.assignee for t in escalations] == ["kai", "hu"]
    at(75)
    order = api.advance(
        order, actor="kai", to="completed", fields={"service_number": "+86 139 0000 0001"}
    )
    completed_at = clock.now()
    assert (order.is_open, order.outcome, order.closed_at) == (False, "done", completed_at)
    assert crm.tasks.get(provisioning.id).completed_at == completed_at
    assert (
        crm.tasks.count(
            {"kind": "service", "ref": order.id, "status": "open", "ext.service.purpose": "step"}
        )
        == 0
    )

    # the audit trail: each move, by whom, from where to where, and the breach
    trail = [(t.action, t.actor, t.from_state, t.to_state) for t in api.history(order.id)]
    assert [line for line in trail if line[0] in ("opened", "advanced")] == [
        ("opened", "ann", None, "application"),
        ("advanced", "wu", "application", "document_review"),
        ("advanced", "wu", "document_review", "contract"),
        ("advanced", "ann", "contract", "provisioning"),
        ("advanced", "kai", "provisioning", "completed"),
    ]
    hours_in = [t.hours_in_step for t in api.history(order.id) if t.action == "advanced"]
    assert hours_in == [1.0, 5.0, 19.0, 50.0]
    breaches = [t for t in api.history(order.id) if t.action == "breached"]
    assert [(b.actor, b.details["step"]) for b in breaches] == [("worker:w1", "provisioning")]
    audited = operations(crm, collection="service.orders", record_id=order.id)
    assert [e["actor"] for e in audited if e["op"] != "insert"][:4] == [
        "wu",
        "wu",
        "ann",
        "worker:w1",
    ]
    assert "kai" in {e["actor"] for e in audited}

    # completion is the business interaction, and one 3-day satisfaction callback follows
    [business] = crm.interactions.find({"customer_id": customer.id, "kind": "business"})
    assert (business.ref, business.rep, business.occurred_at) == (order.id, "ann", completed_at)
    # (followup's callback after business and the order's own share one key: one call)
    [callback] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    assert callback.assignee == "ann" and callback.ref == business.id
    deadline = parse_iso(callback.ext["followup"]["deadline"])
    assert deadline == completed_at + timedelta(days=3)
    assert completed_at < callback.due_at <= deadline
    at(75 + 48)
    interaction, done = record_callback(
        crm, callback.id, satisfied=False, score=2, actor="ann", notes="the engineer came late"
    )
    assert done.completed_at <= deadline
    [recovery] = crm.tasks.find({"kind": "recovery", "customer_id": customer.id})
    assert (recovery.ref, recovery.assignee) == (interaction.id, "wu")
