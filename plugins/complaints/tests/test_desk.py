"""The complaint desk's read models: SLA countdown, the desk queue and the chase trail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_complaints.api import Complaints
from crmcore_complaints.desk import chase_trail, countdown, desk

from crmcore.testing import START  # Monday 2026-01-05 09:00 UTC

ROTA = {
    "shifts": [{"lead": "wu", "start": "00:00", "end": "24:00"}],
    "departments": {"customer_service": {"manager": "mei"}},
}
TEAMS = {
    "enforce": False,
    "actors": {
        "ann": {"role": "agent", "team": "north"},
        "bo": {"role": "agent", "team": "north"},
        "cy": {"role": "agent", "team": "south"},
        "wu": {"role": "shift_lead", "team": "north"},
    },
}


def test_countdown_runs_first_response_then_resolution(setup, customer_id, clock):
    crm, api = setup()
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="broken kettle")
    now = START + timedelta(hours=2)
    first = countdown(ticket, now)
    # the standard policy: first response within 12 h, resolution within 48 h
    assert (first.target, first.due_at) == ("first_response", START + timedelta(hours=12))
    assert first.seconds_left == 10 * 3600
    assert not first.breached and not first.overdue
    clock.set(now)
    ticket = api.respond(ticket, actor="ann", message="we are on it")
    second = countdown(ticket, now)
    assert (second.target, second.due_at) == ("resolution", START + timedelta(hours=48))
    late = countdown(ticket, START + timedelta(hours=49))
    assert late.seconds_left == -3600 and late.overdue and late.breached


def test_countdown_stops_while_waiting_and_when_resolved(setup, customer_id, clock):
    crm, api = setup({"require_approval": False})
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="late parcel")
    ticket = api.wait_on_customer(ticket, actor="ann", reason="photos")
    stopped = countdown(ticket, START + timedelta(hours=30))
    assert stopped.waiting and stopped.seconds_left is None and stopped.due_at is None
    ticket = api.resume(ticket, actor="ann")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="ann")
    ticket = api.propose(ticket, actor="ann", solution="resend it")
    ticket = api.resolve(ticket, actor="ann", resolution="resent")
    done = countdown(ticket, START + timedelta(days=9))
    assert done.target is None and done.seconds_left is None and not done.breached


def test_a_missed_target_stays_breached_on_the_countdown(setup, customer_id, clock):
    crm, api = setup()
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="rude staff")
    clock.set(START + timedelta(hours=13))
    crm.tick("w1")  # the first response is breached
    ticket = api.respond(api.get(ticket.id), actor="ann", message="sorry")
    state = countdown(ticket, START + timedelta(hours=14))
    assert state.target == "resolution" and state.seconds_left > 0
    assert state.breached  # the first response was late in this cycle


def test_desk_scopes_mine_team_and_all_most_urgent_first(make_crm, customer_id, clock):
    crm = make_crm(["complaints"], settings={"complaints": ROTA, "security": TEAMS})
    api = Complaints(crm)
    cid = customer_id(crm)
    a_old = api.open(actor="ann", customer_id=cid, content="one")
    clock.set(START + timedelta(hours=1))
    b = api.open(actor="bo", customer_id=cid, content="two", priority="urgent")
    c = api.open(actor="cy", customer_id=cid, content="three")
    now = START + timedelta(hours=2)
    assert [r.ticket.id for r in desk(api, "ann", now=now)] == [a_old.id]
    # team north: ann and bo; the urgent one (1 h first response) is due first
    assert [r.ticket.id for r in desk(api, "ann", scope="team", now=now)] == [b.id, a_old.id]
    assert [r.ticket.id for r in desk(api, "ann", scope="all", now=now)] == [b.id, a_old.id, c.id]
    # mei manages customer_service: tickets dispatched there are her team's work
    clock.set(now)
    api.dispatch(api.judge(c, actor="cy", valid=True), actor="cy")
    assert [r.ticket.id for r in desk(api, "mei", scope="team", now=now)] == [c.id]
    assert desk(api, "mei", now=now) == []
    with pytest.raises(ValueError, match="unknown scope"):
        desk(api, "ann", scope="everyone")


def test_desk_lists_what_was_escalated_to_me_and_filters(setup, customer_id, clock):
    crm, api = setup(ROTA)
    ticket = api.open(
        actor="ann", customer_id=customer_id(crm), content="no refund yet", category="price"
    )
    clock.set(START + timedelta(hours=10))
    api.open(
        actor="ann", customer_id=customer_id(crm, "Wang Fang"), content="slow", category="service"
    )
    assert desk(api, "wu") == []
    clock.set(START + timedelta(hours=24))
    crm.tick("w1")
    [row] = desk(api, "wu")
    assert (row.ticket.id, row.escalated_to) == (ticket.id, "wu")
    assert [r.ticket.category for r in desk(api, "ann", category="service")] == ["service"]
    assert [r.ticket.status for r in desk(api, "ann", status="registered")] == [
        "registered",
        "registered",
    ]
    assert len(desk(api, "ann", overdue=True)) == 2  # both missed the 12 h first response


def test_chase_trail_names_who_was_asked_and_when(setup, customer_id, clock):
    crm, api = setup(ROTA)
    ticket = api.open(actor="ann", customer_id=customer_id(crm), content="no signal")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="dana")
    clock.set(START + timedelta(hours=3))
    ticket = api.chase(ticket, actor="dana", note="any news?")  # no handler: the manager
    ticket = api.dispatch(ticket, actor="dana", handler="hu")
    clock.set(START + timedelta(hours=5))
    ticket = api.chase(ticket, actor="dana")
    clock.set(START + timedelta(hours=24))
    crm.tick("w1")
    trail = chase_trail(api, api.get(ticket.id))
    assert [(c.kind, c.at, c.by, c.asked, c.role) for c in trail] == [
        ("chase", START + timedelta(hours=3), "dana", "mei", "department_manager"),
        ("chase", START + timedelta(hours=5), "dana", "hu", "handler"),
        ("escalation", START + timedelta(hours=24), "worker:w1", "wu", "shift_lead"),
    ]
    assert (trail[0].number, trail[0].note) == (1, "any news?")
    assert trail[2].level == 1
