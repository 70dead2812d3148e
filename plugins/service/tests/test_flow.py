"""Every shipped order type driven through its paths with the injected clock: the happy path,
a refusal at each step (a step it does not lead to, a missing required field), and what each
step leaves behind (tasks, transitions, audited writes, the ending event)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_service.model import Order

from crmcore import TaskStatus, ValidationError
from crmcore.testing.audit import entries, operations

# (type, opening fields, [(step, fields needed to enter it), ...]) - the happy path
HAPPY = {
    "business": (
        {"product": "5G plan 129"},
        [
            ("document_review", {}),
            ("contract", {"documents_checked": "id card"}),
            ("provisioning", {"contract_no": "C-1"}),
            ("completed", {"service_number": "138"}),
        ],
    ),
    "change": (
        {"change": "upgrade", "target_plan": "5G 199"},
        [("review", {}), ("apply", {"effective_date": "2026-02-01"}), ("completed", {})],
    ),
    "cancellation": (
        {"reason": "price"},
        [("fee_settlement", {}), ("notice", {"amount": "120.50", "contract_no": "C-9"})],
    ),
    "billing_query": ({}, [("answered", {"answer": "itemised bill explained"})]),
    "billing_dispute": (
        {"disputed_amount": "58"},
        [
            ("investigate", {}),
            ("mediate", {"findings": "roaming charged twice"}),
            ("decision", {}),
            ("adjustment", {"decision": "upheld", "amount": "-58", "reason": "double roaming"}),
            ("lessons", {}),
            ("closed", {"lessons": "fix the roaming rating rule"}),
        ],
    ),
    "fault": (
        {"symptom": "no signal"},
        [
            ("diagnosis", {}),
            ("repair", {"diagnosis": "faulty modem"}),
            ("verification", {"fix": "modem replaced"}),
            ("closed", {}),
        ],
    ),
    "work_order": (
        {"kind": "suggestion"},
        [("handling", {}), ("feedback", {"result": "forwarded"}), ("closed", {})],
    ),
}


def step_tasks(crm, order: Order) -> list:
    return crm.tasks.find({"ref": order.id, "kind": "service"}, sort=[("created_at", 1), ("id", 1)])


@pytest.mark.parametrize("type_name", sorted(HAPPY))
def test_happy_path_creates_a_task_per_step_and_a_transition_per_move(
    setup, customer_id, clock, type_name
):
    crm, api = setup()
    cid = customer_id(crm)
    opening, path = HAPPY[type_name]
    order = api.open(actor="ann", type=type_name, customer_id=cid, fields=opening)
    assert order.state == api.order_type(type_name).first.name and order.is_open
    for number, (step, fields) in enumerate(path, start=1):
        clock.advance(timedelta(hours=1))
        order = api.advance(order, actor="ann", to=step, fields=fields)
        assert order.state == step
        tasks = step_tasks(crm, order)
        # the step left has its task done; the new (unless terminal or waiting) has an open one
        assert tasks[number - 1].status is TaskStatus.DONE
        assert tasks[number - 1].outcome == f"moved to {step}"
        if order.is_open:
            assert tasks[-1].status is TaskStatus.OPEN
            assert tasks[-1].ext["service"]["step"] == step
    history = api.history(order.id)
    assert [h.action for h in history] == ["opened"] + ["advanced"] * len(path)
    assert [h.to_state for h in history[1:]] == [s for s, _ in path]
    assert all(h.hours_in_step == 1.0 for h in history[1:])
    assert order.fields == {**opening, **{k: v for _, f in path for k, v in f.items()}}


@pytest.mark.parametrize("type_name", sorted(HAPPY))
def test_each_step_refuses_a_step_it_does_not_lead_to_and_missing_fields(
    setup, customer_id, type_name
):
    crm, api = setup()
    cid = customer_id(crm)
    opening, path = HAPPY[type_name]
    order_type = api.order_type(type_name)
    if order_type.first.requires:
        with pytest.raises(ValidationError, match="needs"):
            api.open(actor="ann", type=type_name, customer_id=cid, fields={})
    order = api.open(actor="ann", type=type_name, customer_id=cid, fields=opening)
    for step, fields in path:
        allowed = order_type.allowed_from(order.state)
        wrong = next(
            (s.name for s in order_type.steps if s.name not in allowed and s.name != order.state),
            order.state,
        )
        with pytest.raises(ValidationError) as refused:
            api.advance(order, actor="ann", to=wrong)
        assert f"cannot move to '{wrong}'" in str(refused.value)
        assert f"allowed: {', '.join(allowed)}" in str(refused.value)
        for missing in fields:
            partial = {k: v for k, v in fields.items() if k != missing}
            if missing in order.fields:
                continue
            with pytest.raises(ValidationError, match=f"needs {missing}"):
                api.advance(order, actor="ann", to=step, fields=partial)
        assert api.get(order.id).version == order.version  # nothing written
        assert len(api.history(order.id)) == 1 + path.index((step, fields))
        order = api.advance(order, actor="ann", to=step, fields=fields)


def test_an_ended_order_moves_no_more(setup, customer_id):
    crm, api = setup()
    order = api.open(actor="ann", type="billing_query", customer_id=customer_id(crm))
    order = api.advance(order, actor="ann", to="answered", fields={"answer": "fine"})
    assert order.outcome == "done" and not order.is_open and order.wake_at is None
    with pytest.raises(ValidationError, match="has ended"):
        api.advance(order, actor="ann", to="query")


def test_choices_and_field_names_are_checked(setup, customer_id):
    crm, api = setup()
    cid = customer_id(crm)
    with pytest.raises(
        ValidationError,
        match=r"unknown change 'sideways' \(allowed: upgrade, "
        "downgrade, adjust",
    ):
        api.open(
            actor="ann",
            type="change",
            customer_id=cid,
            fields={"change": "sideways", "target_plan": "x"},
        )
    with pytest.raises(ValidationError, match="not a field name"):
        api.open(
            actor="ann",
            type="work_order",
            customer_id=cid,
            fields={"kind": "request", "Bad Name": "x"},
        )
    with pytest.raises(ValidationError, match="field kind is empty"):
        api.open(actor="ann", type="work_order", customer_id=cid, fields={"kind": "  "})
    with pytest.raises(ValidationError, match="unknown order type 'nope'"):
        api.open(actor="ann", type="nope", customer_id=cid)
    assert api.find() == []


def test_stale_version_is_refused(setup, customer_id):
    crm, api = setup()
    order = api.open(
        actor="ann", type="fault", customer_id=customer_id(crm), fields={"symptom": "slow"}
    )
    api.advance(order.id, actor="bob", to="diagnosis")
    from crmcore import ConflictError

    with pytest.raises(ConflictError):
        api.advance(order, actor="ann", to="diagnosis")
    with pytest.raises(ConflictError, match="not 1"):
        api.advance(
            order.id, actor="ann", to="repair", fields={"diagnosis": "x"}, expected_version=1
        )


def test_fault_repair_can_loop_back_from_verification(setup, customer_id):
    crm, api = setup()
    order = api.open(
        actor="ann", type="fault", customer_id=customer_id(crm), fields={"symptom": "no signal"}
    )
    order = api.advance(order, actor="ann", to="diagnosis")
    order = api.advance(order, actor="ann", to="repair", fields={"diagnosis": "cable"})
    order = api.advance(order, actor="ann", to="verification", fields={"fix": "cable swapped"})
    order = api.advance(order, actor="ann", to="repair", note="still no signal")
    assert order.state == "repair" and order.visit == 5
    open_tasks = [t for t in step_tasks(crm, order) if t.status is TaskStatus.OPEN]
    assert len(open_tasks) == 1 and open_tasks[0].ext["service"]["step"] == "repair"
    assert api.history(order.id)[-1].note == "still no signal"


def test_every_transition_goes_through_the_audited_writes_with_fields_masked(setup, customer_id):
    crm, api = setup()
    order = api.open(actor="ann", type="billing_query", customer_id=customer_id(crm))
    api.advance(order, actor="bob", to="answered", fields={"answer": "paid on 13800138000"})
    trail = operations(crm, record_id=order.id)
    assert [(e["actor"], e["op"]) for e in trail] == [("ann", "insert"), ("bob", "update")]
    assert trail[1]["diff"]["state"] == ["query", "answered"]
    assert "13800138000" not in repr(entries(crm))  # the fields are personal: masked
