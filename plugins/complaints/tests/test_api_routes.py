"""The complaints routes of the JSON API, called as the web plugin serves them
(``crmcore.testing.api``) with permissions enforced: the whole flow with values asserted, the
SLA and escalation state, refusals naming the field, permissions, If-Match, not found."""

from __future__ import annotations

import pytest
from crmcore_complaints.api import Complaints
from crmcore_complaints.api_routes import routes
from crmcore_complaints.model import Ticket

from crmcore import ConflictError, NotFoundError, PermissionDenied, ValidationError
from crmcore.testing.api import ApiClient, HttpAnswerError, with_server

SECURITY = {
    "enforce": True,
    "actors": {
        "ann": {"role": "agent", "team": "front", "department": "customer_service"},
        "dana": {"role": "shift_lead", "team": "front"},
        "hu": {"role": "agent", "department": "customer_service"},
        "mei": {"role": "manager", "department": "customer_service"},
        "bob": {"role": "agent", "team": "back"},
        "boss": {"role": "admin"},
    },
}
FORM = {
    "content": "the kettle leaks",
    "category": "product_quality",
    "channel": "phone",
    "claim": "compensation",
    "emotions": ["angry"],
    "priority": 3,
}


@pytest.fixture
def desk(make_crm):
    """Complaints with permissions enforced: Ann (agent) owns a customer; Dana leads Ann's
    team; Hu handles tickets in customer service, which Mei manages; Bob is another agent."""
    crm = make_crm(
        with_server(["complaints"]),
        settings={
            "security": SECURITY,
            "complaints": {"departments": {"customer_service": {"manager": "mei"}}},
        },
    )
    customer = crm.customers.add(actor="ann", name="Li Wei", owner="ann", phone="+86 138 0013 8000")
    return ApiClient(crm), customer.id


def tickets(client: ApiClient) -> int:
    return client.crm.records("complaints.tickets", Ticket).count()


def opened(client: ApiClient, customer_id: str) -> dict:
    return client.call(
        "POST", "/complaints", actor="ann", body={"customer_id": customer_id, **FORM}
    ).json


def test_every_route_is_served_by_the_plugin(desk):
    client, _ = desk
    mine = {(r.method, r.path) for plugin, r in client.routes if plugin == "complaints"}
    assert mine == {(r.method, r.path) for r in routes()}
    assert all(path.startswith("/complaints") for _m, path in mine)
    assert {p.rsplit("/", 1)[-1] for _m, p in mine if p.startswith("/complaints/{")} >= {
        "judge",
        "dispatch",
        "chase",
        "propose",
        "approve",
        "resolve",
        "feedback",
        "reopen",
    }


@pytest.mark.api_covers("POST", "/complaints")
def test_open_answers_201_with_the_sla_and_ladder(desk):
    client, cid = desk
    answer = client.call("POST", "/complaints", actor="ann", body={"customer_id": cid, **FORM})
    assert answer.status == 201
    ticket, state = answer.json["ticket"], answer.json["state"]
    assert (
        ticket["status"],
        ticket["owner"],
        ticket["priority"],
        ticket["category"],
        ticket["emotions"],
        ticket["claim"],
    ) == ("registered", "ann", 3, "product_quality", ["angry"], "compensation")
    assert ticket["opened_at"] == "2026-01-05T09:00:00.000000Z"
    sla = state["sla"]
    assert (sla["policy"], sla["clock"], sla["cycle"], sla["elapsed_hours"]) == (
        "standard",
        "calendar",
        0,
        0.0,
    )
    assert sla["first_response"] == {
        "target": "first_response",
        "due_at": "2026-01-05T21:00:00.000000Z",
        "met_at": None,
        "breached": False,
        "overdue": False,
    }
    assert sla["resolution"]["due_at"] == "2026-01-07T09:00:00.000000Z"
    ladder = state["escalation"]
    assert (ladder["level"], ladder["next_escalation_at"]) == (0, "2026-01-06T09:00:00.000000Z")
    assert [
        (s["level"], s["target"], s["after_hours"], s["reached"], s["due_at"])
        for s in ladder["steps"]
    ] == [
        (1, "shift_lead", 24.0, False, "2026-01-06T09:00:00.000000Z"),
        (2, "department_manager", 48.0, False, None),
    ]
    assert [t["action"] for t in answer.json["traces"]] == ["registered"]
    logged = client.crm.interactions.for_customer(cid, kinds=["complaint"])
    assert [i.ref for i in logged] == [ticket["id"]]


@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/approve")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/chase")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/close")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/dispatch")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/feedback")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/propose")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/reopen")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/resolve")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/respond")
def test_the_whole_flow_through_the_api(desk, clock):
    client, cid = desk
    tid = opened(client, cid)["ticket"]["id"]
    path = f"/complaints/{tid}"
    clock.advance(minutes=30)
    view = client.call("POST", f"{path}/judge", actor="ann", body={"valid": True}).json
    assert view["ticket"]["status"] == "valid"
    assert view["state"]["sla"]["first_response"]["met_at"] == "2026-01-05T09:30:00.000000Z"
    view = client.call("POST", f"{path}/dispatch", actor="dana", body={"handler": "hu"}).json
    assert (
        view["ticket"]["status"],
        view["ticket"]["department"],
        view["ticket"]["dispatched_by"],
        view["ticket"]["handler"],
    ) == ("dispatched", "customer_service", "dana", "hu")
    view = client.call("POST", f"{path}/chase", actor="dana", body={"note": "any news?"}).json
    assert view["ticket"]["chases"] == 1
    [chase] = [t for t in view["traces"] if t["action"] == "chased"]
    assert (chase["actor"], chase["note"], chase["details"]) == (
        "dana",
        "any news?",
        {"chase": 1, "by_dispatcher": True, "asked": "hu", "role": "handler"},
    )
    view = client.call(
        "POST", f"{path}/respond", actor="hu", body={"message": "we will replace it"}
    ).json
    assert view["ticket"]["status"] == "in_progress"
    view = client.call(
        "POST",
        f"{path}/propose",
        actor="hu",
        body={"solution": "replace the kettle", "compensation": 30},
    ).json
    assert [(p["number"], p["state"], p["compensation"]) for p in view["ticket"]["proposals"]] == [
        (1, "pending", 30.0)
    ]
    approval = client.crm.tasks.open_by_key(f"complaint-approval:{tid}:1")
    assert approval is not None and approval.assignee == "mei"
    with pytest.raises(PermissionDenied, match="only mei"):
        client.call("POST", f"{path}/approve", actor="hu", body={})
    view = client.call("POST", f"{path}/approve", actor="mei", body={"reason": "fair"}).json
    assert view["ticket"]["proposals"][0]["state"] == "approved"
    assert view["ticket"]["proposals"][0]["decided_by"] == "mei"
    view = client.call(
        "POST", f"{path}/resolve", actor="hu", body={"cause": "Defective batch"}
    ).json
    assert (
        view["ticket"]["status"],
        view["ticket"]["compensation"],
        view["ticket"]["cause"],
        view["ticket"]["resolution"],
    ) == ("resolved", 30.0, "defective_batch", "replace the kettle")
    assert view["state"]["sla"]["resolution"]["met_at"] == "2026-01-05T09:30:00.000000Z"
    view = client.call("POST", f"{path}/close", actor="ann", body={}).json
    assert view["ticket"]["status"] == "closed"
    # the customer is not satisfied: the ticket goes back to its department, a new cycle
    view = client.call(
        "POST", f"{path}/feedback", actor="ann", body={"score": 2, "note": "it still leaks"}
    ).json
    ticket = view["ticket"]
    assert (
        ticket["status"],
        ticket["satisfaction"],
        ticket["satisfied"],
        ticket["reopen_count"],
        ticket["cycle"],
    ) == ("in_progress", 2, False, 1, 1)
    assert view["state"]["sla"]["cycle"] == 1
    assert view["state"]["sla"]["resolution"]["due_at"] == "2026-01-07T09:30:00.000000Z"
    client.call("POST", f"{path}/propose", actor="hu", body={"solution": "refund"})
    client.call("POST", f"{path}/approve", actor="mei", body={})
    client.call("POST", f"{path}/resolve", actor="hu", body={})
    view = client.call(
        "POST", f"{path}/reopen", actor="ann", body={"reason": "refund never arrived"}
    ).json
    assert (view["ticket"]["status"], view["ticket"]["cycle"]) == ("in_progress", 2)
    actions = [t["action"] for t in client.call("GET", path, actor="ann").json["traces"]]
    assert actions == [
        "registered",
        "judged",
        "dispatched",
        "chased",
        "responded",
        "proposed",
        "approved",
        "resolved",
        "closed",
        "callback",
        "reopened",
        "proposed",
        "approved",
        "resolved",
        "reopened",
    ]


@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
def test_invalid_complaint_is_closed_with_the_explanation(desk):
    client, cid = desk
    tid = opened(client, cid)["ticket"]["id"]
    with pytest.raises(ValidationError) as caught:
        client.call("POST", f"/complaints/{tid}/judge", actor="ann", body={"valid": False})
    assert caught.value.field == "explanation"
    view = client.call(
        "POST",
        f"/complaints/{tid}/judge",
        actor="ann",
        body={"valid": False, "explanation": "the warranty ended in 2024"},
    ).json
    assert (
        view["ticket"]["status"],
        view["ticket"]["validity"],
        view["ticket"]["explanation"],
    ) == ("closed", "invalid", "the warranty ended in 2024")


@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/notes")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/resume")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/wait")
def test_waiting_on_the_customer_and_notes(desk, clock):
    client, cid = desk
    tid = opened(client, cid)["ticket"]["id"]
    view = client.call(
        "POST", f"/complaints/{tid}/wait", actor="ann", body={"reason": "photos"}
    ).json
    assert view["state"]["sla"]["waiting_since"] == "2026-01-05T09:00:00.000000Z"
    assert view["state"]["sla"]["first_response"]["due_at"] is None
    clock.advance(hours=2)
    view = client.call("POST", f"/complaints/{tid}/resume", actor="ann", body={}).json
    assert view["state"]["sla"]["waiting_since"] is None
    assert view["state"]["sla"]["first_response"]["due_at"] == "2026-01-05T23:00:00.000000Z"
    note = client.call(
        "POST", f"/complaints/{tid}/notes", actor="ann", body={"note": "called back twice"}
    )
    assert note.status == 201
    assert (note.json["action"], note.json["note"], note.json["ticket_id"]) == (
        "note",
        "called back twice",
        tid,
    )
    with pytest.raises(ValidationError) as caught:
        client.call("POST", f"/complaints/{tid}/notes", actor="ann", body={"note": " "})
    assert caught.value.field == "note"


@pytest.mark.api_covers("GET", "/complaints")
@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("POST", "/complaints")
def test_escalation_state_overdue_and_the_list(desk, clock):
    client, cid = desk
    late = opened(client, cid)["ticket"]["id"]
    clock.advance(hours=25)
    Complaints(client.crm).sweep(clock.now(), "w1")
    fresh = opened(client, cid)["ticket"]["id"]
    view = client.call("GET", f"/complaints/{late}", actor="ann").json
    first = view["state"]["sla"]["first_response"]
    assert (first["breached"], first["overdue"], first["met_at"]) == (True, True, None)
    assert view["state"]["sla"]["elapsed_hours"] == 25.0
    ladder = view["state"]["escalation"]
    assert (ladder["level"], ladder["escalations"]) == (1, 1)
    one, two = ladder["steps"]
    # no shift lead is on duty (no rota): the department manager gets level 1
    assert (one["reached"], one["assignee"], one["escalated_at"]) == (
        True,
        "mei",
        "2026-01-06T10:00:00.000000Z",
    )
    assert (two["reached"], two["due_at"]) == (False, "2026-01-07T09:00:00.000000Z")
    listed = client.call("GET", "/complaints", actor="ann", query={"overdue": True}).json
    assert [t["id"] for t in listed] == [late]
    every = client.call("GET", "/complaints", actor="ann").json
    assert [t["id"] for t in every] == [late, fresh]
    assert (
        client.call("GET", "/complaints", actor="ann", query={"status": "valid,closed"}).json == []
    )
    assert [
        t["id"]
        for t in client.call(
            "GET",
            "/complaints",
            actor="ann",
            query={
                "status": "registered",
                "category": "product_quality",
                "owner": "ann",
                "limit": 1,
            },
        ).json
    ] == [late]
    with pytest.raises(ValidationError) as caught:
        client.call("GET", "/complaints", actor="ann", query={"status": "open"})
    assert caught.value.field == "status"


@pytest.mark.api_covers("GET", "/complaints")
@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/dispatch")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/notes")
def test_only_people_on_the_ticket_or_the_policy_see_and_change_it(desk):
    client, cid = desk
    tid = opened(client, cid)["ticket"]["id"]
    path = f"/complaints/{tid}"
    version = client.call("GET", path, actor="ann").json["ticket"]["version"]
    with pytest.raises(PermissionDenied, match="belongs to ann"):
        client.call("GET", path, actor="bob")
    with pytest.raises(PermissionDenied):
        client.call("POST", f"{path}/judge", actor="bob", body={"valid": True})
    with pytest.raises(PermissionDenied):
        client.call("POST", f"{path}/notes", actor="bob", body={"note": "hi"})
    assert client.call("GET", "/complaints", actor="bob").json == []
    assert client.call("GET", path, actor="ann").json["ticket"]["version"] == version
    # Mei manages the department that handles it; the admin sees everything
    assert client.call("GET", path, actor="mei").json["ticket"]["id"] == tid
    assert [t["id"] for t in client.call("GET", "/complaints", actor="mei").json] == [tid]
    assert [t["id"] for t in client.call("GET", "/complaints", actor="boss").json] == [tid]
    # the handler is on it once dispatched, though the ticket is Ann's
    with pytest.raises(PermissionDenied):
        client.call("GET", path, actor="hu")
    client.call("POST", f"{path}/judge", actor="ann", body={"valid": True})
    client.call("POST", f"{path}/dispatch", actor="dana", body={"handler": "hu"})
    assert client.call("GET", path, actor="hu").json["ticket"]["handler"] == "hu"
    assert [t["id"] for t in client.call("GET", "/complaints", actor="hu").json] == [tid]


@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mood": "angry"}, "mood"),
        ({"emotions": ["furious"]}, "emotions[0]"),
        ({"emotions": "angry"}, "emotions"),
        ({"priority": 9}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"channel": "pigeon"}, "channel"),
        ({"received_at": "2026-01-05T08:00:00"}, "received_at"),
        ({"content": ""}, "content"),
        ({"content": 42}, "content"),
        ({"category": "weather"}, "category"),
        ({"customer_id": None}, "customer_id"),
    ],
)
def test_bad_forms_name_the_field_and_write_nothing(desk, change, field):
    client, cid = desk
    with pytest.raises(ValidationError) as caught:
        client.call("POST", "/complaints", actor="ann", body={"customer_id": cid, **FORM, **change})
    assert caught.value.field == field
    assert tickets(client) == 0
    assert client.crm.interactions.for_customer(cid, kinds=["complaint"]) == []


@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/feedback")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/propose")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/reopen")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/resolve")
def test_bad_action_bodies_and_illegal_moves(desk):
    client, cid = desk
    tid = opened(client, cid)["ticket"]["id"]
    for route, body, field in (
        ("judge", {"valid": "yes"}, "valid"),
        ("judge", {}, "valid"),
        ("propose", {"solution": "x", "compensation": "5"}, "compensation"),
        ("feedback", {"score": 5, "happy": True}, "happy"),
        ("reopen", {}, "reason"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.call("POST", f"/complaints/{tid}/{route}", actor="ann", body=body)
        assert caught.value.field == field, route
    with pytest.raises(ValidationError, match="is registered: cannot resolve"):
        client.call("POST", f"/complaints/{tid}/resolve", actor="ann", body={})
    assert client.call("GET", f"/complaints/{tid}", actor="ann").json["ticket"]["version"] == 1


@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/notes")
def test_if_match_refuses_a_stale_change(desk):
    client, cid = desk
    ticket = opened(client, cid)["ticket"]
    client.call("POST", f"/complaints/{ticket['id']}/notes", actor="ann", body={"note": "x"})
    with pytest.raises(ConflictError, match="not 0"):
        client.call(
            "POST",
            f"/complaints/{ticket['id']}/judge",
            actor="ann",
            body={"valid": True},
            if_match=ticket["version"] - 1,
        )
    view = client.call(
        "POST",
        f"/complaints/{ticket['id']}/judge",
        actor="ann",
        body={"valid": True},
        if_match=ticket["version"],
    ).json
    assert view["ticket"]["version"] == ticket["version"] + 1


@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
def test_unknown_ticket_is_not_found(desk):
    client, _cid = desk
    with pytest.raises(NotFoundError):
        client.call("GET", "/complaints/tkt_nothing", actor="boss")
    with pytest.raises(NotFoundError):
        client.call("POST", "/complaints/tkt_nothing/judge", actor="boss", body={"valid": True})
    with pytest.raises(NotFoundError):
        client.call("POST", "/complaints", actor="ann", body={**FORM, "customer_id": "cus_nobody"})


def test_a_handler_agent_may_propose_under_enforced_permissions(desk):
    """The approval task for the manager is part of proposing, not the handler's own
    task.create for someone else (refused before: no agent could propose)."""
    client, cid = desk
    api = Complaints(client.crm)
    ticket = api.open(actor="ann", customer_id=cid, content="late delivery")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="dana", handler="hu")
    ticket = api.propose(ticket, actor="hu", solution="a voucher", compensation=10)
    task = client.crm.tasks.open_by_key(f"complaint-approval:{ticket.id}:1")
    assert (task.assignee, task.created_by) == ("mei", "hu")
    api.resolve(api.approve(ticket, actor="mei"), actor="hu")
    reopened = api.reopen(api.close(ticket.id, actor="ann"), actor="hu", reason="no voucher")
    assert reopened.status == "in_progress"
    assert client.crm.tasks.open_by_key(f"callback:{ticket.id}") is None  # cancelled


@pytest.mark.api_covers("GET", "/complaints/{ticket_id}")
@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}")
@pytest.mark.api_covers("POST", "/complaints")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/judge")
def test_routes_of_the_telecom_profile_as_crm_init_writes_it(crm_cli, tmp_path):
    """The telecom stack (enforced permissions, reps from the followup roster) opened from
    the crm.toml that ``crm init --profile telecom`` writes: every bundled plugin's routes
    load together, and the flow works for reps while strangers are refused."""
    from crmcore_followup.api import Roster

    from crmcore import open_crm

    cli = crm_cli("complaints", "followup", "grading", "loyalty", *with_server([]))
    code, _out, err = cli("init", "--profile", "telecom", "--path", "crm.toml")
    assert code == 0, err
    crm = open_crm(tmp_path / "crm.toml")
    try:
        assert crm.config.security.enforce
        client = ApiClient(crm)
        plugins = {plugin for plugin, _route in client.routes}
        assert plugins == {"complaints", "followup", "grading", "loyalty", *with_server([])}
        for name, team in (("ann", "front"), ("hu", "billing")):
            Roster(crm).add(name, actor="admin", team=team)
        cid = crm.customers.add(
            actor="ann", name="Li Wei", owner="ann", phone="+86 138 0013 8000"
        ).id
        ticket = client.call(
            "POST",
            "/complaints",
            actor="ann",
            body={
                "customer_id": cid,
                "content": "charged twice",
                "category": "billing_dispute",
                "channel": "phone",
            },
        ).json["ticket"]
        assert (ticket["sla_policy"], ticket["owner"]) == ("billing", "ann")
        view = client.call(
            "POST", f"/complaints/{ticket['id']}/judge", actor="ann", body={"valid": True}
        ).json
        assert view["ticket"]["status"] == "valid"
        if client.transport is not None:  # served: an unknown actor can hold no API key
            with pytest.raises(HttpAnswerError) as refused:
                client.call("GET", f"/complaints/{ticket['id']}", actor="mallory")
            assert refused.value.status == 401
        else:
            with pytest.raises(PermissionDenied, match="unknown actor 'mallory'"):
                client.call("GET", f"/complaints/{ticket['id']}", actor="mallory")
        with pytest.raises(PermissionDenied):
            client.call("GET", f"/loyalty/accounts/{cid}", actor="hu")
        assert client.call("GET", f"/loyalty/accounts/{cid}", actor="ann").json["balance"] == 0
    finally:
        crm.close()


@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/propose")
@pytest.mark.api_covers("POST", "/complaints/{ticket_id}/resolve")
def test_a_refund_goes_through_the_api_and_is_logged_as_a_refund(desk):
    client, cid = desk
    purchase = client.crm.interactions.log(
        actor="ann", customer_id=cid, kind="purchase", amount=399.0
    )
    tid = opened(client, cid)["ticket"]["id"]
    path = f"/complaints/{tid}"
    client.call("POST", f"{path}/judge", actor="ann", body={"valid": True})
    client.call("POST", f"{path}/dispatch", actor="dana", body={"handler": "hu"})
    view = client.call(
        "POST",
        f"{path}/propose",
        actor="hu",
        body={"solution": "take it back", "refund": 399, "purchase_id": purchase.id},
    ).json
    assert view["ticket"]["proposals"][0]["refund"] == 399.0
    client.call("POST", f"{path}/approve", actor="mei", body={})
    view = client.call("POST", f"{path}/resolve", actor="hu", body={}).json
    [refund] = client.crm.interactions.for_customer(cid, kinds=["refund"])
    assert (refund.amount, refund.ref) == (399.0, purchase.id)
    assert view["ticket"]["refund_interaction_id"] == refund.id


def test_a_note_the_plugin_wrote_is_answered_in_the_asked_language(desk):
    """The JSON API translates a trace's note by its ``note_key`` (``?lang=`` or
    ``Accept-Language`` activate the language); the ids stay beside it, people's notes
    stay as typed."""
    from crmcore_complaints.tickets import note_fields

    from crmcore import i18n
    from crmcore.api import to_json

    client, cid = desk
    ticket = Complaints(client.crm).open(actor="ann", customer_id=cid, content="late delivery")
    book = Complaints(client.crm).book
    written = book.trace(
        ticket, "ann", "handed_over", None, None, {}, i18n.msg("%(rep)s left", rep="hu")
    )
    typed = book.trace(ticket, "ann", "note", None, None, {}, "hu left early today")
    assert note_fields(typed.note) == {"note": "hu left early today"}
    with i18n.activate(i18n.translations("zh_CN", client.crm.plugins)):
        answer = to_json([written, typed])
    assert answer[0]["note"] == "hu 已离职"
    assert (answer[0]["note_key"], answer[0]["note_args"]) == ("%(rep)s left", {"rep": "hu"})
    assert answer[1]["note"] == "hu left early today"
    assert to_json(written)["note"] == "hu left"  # no language asked: the English
