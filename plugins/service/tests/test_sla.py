"""Step SLAs with the injected clock: breaches recorded once, the escalation ladder followed
like a complaint's, business hours through the complaints plugin's contract or calendar hours
without it, and notice periods ended by the worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmcore_service.api import Service

from crmcore import Priority, TaskStatus

DEPARTMENTS = {
    "customer_service": {"lead": "lena", "manager": "max"},
    "billing": {"lead": "bill-lead", "manager": "bill-boss"},
}


def escalation_tasks(crm, order_id: str) -> list:
    return [
        t
        for t in crm.tasks.find({"ref": order_id}, sort=[("created_at", 1), ("id", 1)])
        if t.ext.get("service", {}).get("purpose") == "escalation"
    ]


def test_a_stalled_step_breaches_then_climbs_the_ladder(setup, customer_id, clock):
    crm, api = setup({"departments": DEPARTMENTS})
    order = api.open(
        actor="ann", type="business", customer_id=customer_id(crm), fields={"product": "broadband"}
    )
    assert order.step_due_at == datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # 4 calendar hours
    assert order.assignee == "lena"  # the department's lead takes its queue
    clock.advance(timedelta(hours=3, minutes=59))
    crm.tick("w1")
    assert not api.get(order.id).step_breached and escalation_tasks(crm, order.id) == []
    clock.advance(timedelta(minutes=1))
    crm.tick("w1")
    crm.tick("w2")  # a second worker does nothing twice
    order = api.get(order.id)
    assert order.step_breached and order.breaches == 1 and order.escalation_level == 1
    [level1] = escalation_tasks(crm, order.id)
    assert (level1.assignee, level1.priority) == ("lena", Priority.HIGH)
    assert [h.action for h in api.history(order.id)] == ["opened", "breached", "escalated"]
    clock.advance(timedelta(hours=23, minutes=59))
    crm.tick("w1")
    assert len(escalation_tasks(crm, order.id)) == 1
    clock.advance(timedelta(minutes=1))
    crm.tick("w1")
    order = api.get(order.id)
    assert order.escalation_level == 2 and order.escalations == 2
    assert [t.assignee for t in escalation_tasks(crm, order.id)] == ["lena", "max"]
    assert order.wake_at is None  # the ladder is spent; nothing more to do
    # moving on restarts the step's SLA and ladder
    order = api.advance(order, actor="lena", to="document_review")
    assert (order.step_breached, order.escalation_level, order.wake_at is not None) == (
        False,
        0,
        True,
    )


def test_a_worker_that_slept_escalates_every_level_due_at_once(setup, customer_id, clock):
    crm, api = setup({"departments": DEPARTMENTS})
    order = api.open(actor="ann", type="billing_query", customer_id=customer_id(crm))
    clock.advance(timedelta(days=5))
    crm.tick("w1")
    order = api.get(order.id)
    assert (order.breaches, order.escalation_level) == (1, 2)
    assert [t.assignee for t in escalation_tasks(crm, order.id)] == ["bill-lead", "bill-boss"]


def test_without_a_department_lead_the_owner_is_escalated_to(setup, customer_id, clock):
    crm, api = setup({"escalation": [{"after_hours": 0, "target": "department_manager"}]})
    order = api.open(
        actor="ann", type="work_order", customer_id=customer_id(crm), fields={"kind": "request"}
    )
    clock.advance(timedelta(hours=25))
    crm.tick("w1")
    [task] = escalation_tasks(crm, order.id)
    assert task.assignee == "ann"
    assert "the owner" in api.history(order.id)[-1].details["how"]


def test_business_hours_come_from_the_complaints_contract(setup, customer_id, clock):
    # Friday 17:00 Shanghai; the review step has 8 business hours (09:00-18:00 weekdays)
    clock.set(datetime(2026, 1, 9, 9, 0, tzinfo=UTC))
    crm, api = setup(plugins=("complaints",), core={"timezone": "Asia/Shanghai"})
    order = api.open(
        actor="ann", type="business", customer_id=customer_id(crm), fields={"product": "5G"}
    )
    order = api.advance(order, actor="ann", to="document_review")
    assert order.step_clock == "business"
    # 1 hour on Friday, 7 on Monday: due Monday 16:00 Shanghai = 08:00 UTC
    assert order.step_due_at == datetime(2026, 1, 12, 8, 0, tzinfo=UTC)


def test_without_complaints_business_hours_count_as_calendar_hours(setup, customer_id, clock):
    clock.set(datetime(2026, 1, 9, 9, 0, tzinfo=UTC))
    crm, api = setup(core={"timezone": "Asia/Shanghai"})
    order = api.open(
        actor="ann", type="business", customer_id=customer_id(crm), fields={"product": "5G"}
    )
    order = api.advance(order, actor="ann", to="document_review")
    assert order.step_clock == "calendar"
    assert order.step_due_at == datetime(2026, 1, 9, 17, 0, tzinfo=UTC)
    assert api.history(order.id)[-1].details["due"].startswith("2026-01-09T17:00")


def test_cancellation_settles_fees_then_the_notice_period_closes_it(setup, customer_id, clock):
    crm, api = setup()
    cid = customer_id(crm)
    order = api.open(actor="ann", type="cancellation", customer_id=cid, fields={"reason": "moving"})
    order = api.advance(order, actor="bill", to="fee_settlement")
    order = api.advance(
        order, actor="bill", to="notice", fields={"amount": "86.40", "contract_no": "C-77"}
    )
    [charge] = api.charges_for(order.id)
    assert (charge.kind, charge.amount, charge.reference, charge.decided_by) == (
        "fee_settlement",
        86.4,
        "C-77",
        "bill",
    )
    assert order.advance_at == clock.now() + timedelta(days=30)
    refused = None
    try:
        api.advance(order, actor="ann", to="closed")
    except Exception as exc:
        refused = str(exc)
    assert refused and "waits at step notice" in refused
    clock.advance(timedelta(days=29, hours=23))
    crm.tick("w1")
    assert api.get(order.id).state == "notice"
    clock.advance(timedelta(hours=1))
    crm.tick("w1")
    order = api.get(order.id)
    assert (order.state, order.outcome, order.closed_at) == ("closed", "done", clock.now())
    assert api.history(order.id)[-1].actor == "worker:w1"
    notice_task = crm.tasks.find({"ref": order.id, "kind": "service"})[-1]
    assert notice_task.status is TaskStatus.DONE
    # a cancellation logs no "business" interaction and asks no satisfaction callback
    assert crm.tasks.count({"kind": "callback"}) == 0


def test_cancellation_withdrawn_when_the_customer_is_retained(setup, customer_id):
    crm, api = setup()
    order = api.open(
        actor="ann", type="cancellation", customer_id=customer_id(crm), fields={"reason": "price"}
    )
    order = api.advance(order, actor="ann", to="retained", fields={"offer": "half price"})
    assert order.outcome == "cancelled" and api.charges_for(order.id) == []


def test_a_dispute_ends_in_a_charge_adjustment_record(setup, customer_id):
    crm, api = setup()
    cid = customer_id(crm)
    order = api.open(
        actor="ann",
        type="billing_dispute",
        customer_id=cid,
        fields={"disputed_amount": "58", "bill": "2026-01"},
    )
    for step, fields in [
        ("investigate", {}),
        ("decision", {"findings": "double roaming"}),
        ("adjustment", {"decision": "upheld", "amount": "-58", "reason": "roaming charged twice"}),
        ("lessons", {}),
        ("closed", {"lessons": "fix the rating rule"}),
    ]:
        order = api.advance(order, actor="bo", to=step, fields=fields)
    [charge] = api.charges_for(order.id)
    assert (charge.kind, charge.amount, charge.reference, charge.customer_id) == (
        "charge_adjustment",
        -58.0,
        "2026-01",
        cid,
    )
    adjusted = [h for h in api.history(order.id) if h.to_state == "adjustment"]
    assert adjusted[0].details["charge"] == charge.id
    # the dispute's ending event: a "billing" interaction and the 3-day callback
    [logged] = crm.interactions.for_customer(cid, kinds=["billing"])
    [callback] = crm.tasks.find({"kind": "callback"})
    assert callback.due_at == order.closed_at + timedelta(days=3)
    assert callback.ref == logged.id


def test_a_rejected_dispute_skips_the_adjustment(setup, customer_id):
    crm, api = setup()
    order = api.open(
        actor="ann",
        type="billing_dispute",
        customer_id=customer_id(crm),
        fields={"disputed_amount": "10"},
    )
    order = api.advance(order, actor="bo", to="investigate")
    order = api.advance(order, actor="bo", to="decision", fields={"findings": "correct"})
    order = api.advance(order, actor="bo", to="lessons", fields={"decision": "rejected"})
    assert api.charges_for(order.id) == []


def test_an_adjustment_amount_must_be_a_number(setup, customer_id):
    crm, api = setup()
    order = api.open(
        actor="ann",
        type="billing_dispute",
        customer_id=customer_id(crm),
        fields={"disputed_amount": "10"},
    )
    order = api.advance(order, actor="bo", to="investigate")
    order = api.advance(order, actor="bo", to="decision", fields={"findings": "x"})
    import pytest

    from crmcore import ValidationError

    with pytest.raises(ValidationError, match="amount must be a number"):
        api.advance(
            order,
            actor="bo",
            to="adjustment",
            fields={"decision": "upheld", "amount": "ten", "reason": "x"},
        )
    assert api.get(order.id).state == "decision" and api.charges.count() == 0


def test_business_acceptance_ends_with_one_3_day_callback_with_followup(setup, customer_id, clock):
    crm, api = setup(plugins=("followup",))
    cid = customer_id(crm)
    order = api.open(actor="ann", type="business", customer_id=cid, fields={"product": "5G"})
    for step, fields in [
        ("document_review", {}),
        ("contract", {"documents_checked": "id"}),
        ("provisioning", {"contract_no": "C-1"}),
        ("completed", {"service_number": "138"}),
    ]:
        order = api.advance(order, actor="ann", to=step, fields=fields)
    [business] = crm.interactions.for_customer(cid, kinds=["business"])
    assert business.ref == order.id
    callbacks = crm.tasks.find({"kind": "callback", "status": "open"})
    assert len(callbacks) == 1  # followup's and ours share the key callback:<interaction>
    assert callbacks[0].dedupe_key == f"callback:{business.id}"
    assert callbacks[0].due_at <= order.closed_at + timedelta(days=3)


def test_service_api_reads_settings_of_a_plain_crm(setup):
    _crm, api = setup()
    assert isinstance(api, Service) and set(api.types) == {
        "business",
        "change",
        "cancellation",
        "billing_query",
        "billing_dispute",
        "fault",
        "work_order",
    }


def test_the_worker_leaves_orders_of_a_type_no_longer_configured_alone(
    make_crm, customer_id, clock
):
    settings = {
        "types": {
            "porting": {
                "title": "P",
                "steps": [{"name": "a", "next": ["b"], "sla_hours": 1}, {"name": "b"}],
            }
        }
    }
    crm = make_crm(
        ["service"],
        settings={"service": settings},
        storage={"backend": "memory", "location": "service-removed-type"},
    )
    order = Service(crm).open(actor="ann", type="porting", customer_id=customer_id(crm))
    crm.close()
    later = make_crm(["service"], storage={"backend": "memory", "location": "service-removed-type"})
    clock.advance(timedelta(hours=5))
    later.tick("w1")  # no crash
    assert Service(later).get(order.id).breaches == 0
