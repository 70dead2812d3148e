"""With the real complaints plugin (when installed): a closed complaint gets our callback, and
an unsatisfied answer recorded through us reopens the ticket (contracts.md)."""

from __future__ import annotations

import importlib.metadata

import pytest
from crmcore_followup.api import record_callback

INSTALLED = importlib.metadata.entry_points(group="crmcore").names


@pytest.mark.skipif("complaints" not in INSTALLED, reason="complaints plugin not installed")
def test_closed_complaint_callback_round_trip(make_crm, clock):
    complaints_api = pytest.importorskip("crmcore_complaints.api")
    crm = make_crm(["followup", "complaints"], settings={"complaints": {"require_approval": False}})
    customer = crm.customers.add(actor="t", name="Unhappy", owner="ann")
    desk = complaints_api.Complaints(crm)
    ticket = desk.open(actor="ann", customer_id=customer.id, content="parcel arrived broken")
    desk.judge(ticket.id, actor="ann", valid=True)
    desk.dispatch(ticket.id, actor="ann")
    desk.respond(ticket.id, actor="ann", message="we are on it")
    desk.resolve(ticket.id, actor="ann", resolution="replacement sent")
    closed = desk.close(ticket.id, actor="ann")
    assert str(getattr(closed.status, "value", closed.status)) == "closed"
    [callback] = crm.tasks.find({"kind": "callback", "ref": ticket.id, "status": "open"})
    assert callback.source == "followup" and callback.dedupe_key == f"callback:{ticket.id}"
    record_callback(crm, callback.id, satisfied=False, score=1, notes="still broken", actor="ann")
    reopened = desk.get(ticket.id)
    assert str(getattr(reopened.status, "value", reopened.status)) not in ("closed", "resolved")
    assert reopened.satisfaction == 1
