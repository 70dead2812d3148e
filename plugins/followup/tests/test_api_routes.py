"""The followup routes of the JSON API, called as the web plugin serves them
(``crmcore.testing.api``): values, refusals naming the field, permissions, not found."""

from __future__ import annotations

import pytest
from crmcore_followup.api_routes import routes

from crmcore import NotFoundError, PermissionDenied, ValidationError
from crmcore.testing.api import ApiClient, with_server

SECURITY = {
    "enforce": True,
    "actors": {"ann": {"role": "agent"}, "bob": {"role": "agent"}, "boss": {"role": "admin"}},
}


@pytest.fixture
def desk(make_crm):
    """Followup with permissions enforced: Ann's customer bought something, so Ann has a
    callback due tomorrow 09:00 and a first contact due in 7 days."""
    crm = make_crm(with_server(["followup"]), settings={"security": SECURITY})
    customer = crm.customers.add(actor="ann", name="Li Wei", owner="ann", phone="+86 138 0000 0001")
    crm.interactions.log(actor="ann", customer_id=customer.id, kind="purchase", amount=10)
    [callback] = crm.tasks.find({"kind": "callback"})
    return ApiClient(crm), customer, callback


def test_every_route_is_served_by_the_plugin(desk):
    client, _, _ = desk
    mine = {(r.method, r.path) for plugin, r in client.routes if plugin == "followup"}
    assert mine == {(r.method, r.path) for r in routes()}
    assert all(path.startswith("/followup/") for _m, path in mine)


@pytest.mark.api_covers("GET", "/followup/queue")
def test_my_queue_is_mine_and_readable_only(desk):
    client, _customer, callback = desk
    assert client.call("GET", "/followup/queue", actor="ann").json == []  # nothing due yet
    week = client.call("GET", "/followup/queue", actor="ann", query={"within_hours": 24 * 7})
    assert [(t["kind"], t["assignee"], t["due_at"]) for t in week.json] == [
        ("callback", "ann", "2026-01-06T09:00:00.000000Z"),
        ("first_contact", "ann", "2026-01-12T09:00:00.000000Z"),
    ]
    only = client.call(
        "GET", "/followup/queue", actor="ann", query={"within_hours": 24 * 7, "kind": "callback"}
    ).json
    assert [t["id"] for t in only] == [callback.id]
    ungraded = client.call(
        "GET", "/followup/queue", actor="ann", query={"within_hours": 24 * 7, "grade": "ungraded"}
    ).json
    assert len(ungraded) == 2
    assert (
        client.call(
            "GET", "/followup/queue", actor="ann", query={"within_hours": 24 * 7, "grade": "A,B"}
        ).json
        == []
    )
    # Bob sees no task of Ann's, even asking for everyone's or for Ann's queue
    for query in ({"all": True}, {"assignee": "ann"}):
        assert (
            client.call(
                "GET", "/followup/queue", actor="bob", query={**query, "within_hours": 24 * 7}
            ).json
            == []
        )
    assert (
        len(
            client.call(
                "GET", "/followup/queue", actor="boss", query={"all": True, "within_hours": 24 * 7}
            ).json
        )
        == 2
    )
    with pytest.raises(ValidationError) as caught:
        client.call("GET", "/followup/queue", actor="ann", query={"overdue": "maybe"})
    assert caught.value.field == "overdue"


@pytest.mark.api_covers("GET", "/followup/callbacks")
def test_open_callbacks(desk):
    client, _, callback = desk
    assert [t["id"] for t in client.call("GET", "/followup/callbacks", actor="ann").json] == [
        callback.id
    ]
    assert (
        client.call("GET", "/followup/callbacks", actor="ann", query={"overdue": True}).json == []
    )
    assert client.call("GET", "/followup/callbacks", actor="bob").json == []


@pytest.mark.api_covers("POST", "/followup/callbacks/{task_id}/outcome")
def test_record_a_callback_outcome(desk):
    client, customer, callback = desk
    path = f"/followup/callbacks/{callback.id}/outcome"
    answer = client.call(
        "POST",
        path,
        actor="ann",
        body={"satisfied": False, "score": 2, "notes": "delivery was late", "channel": "chat"},
    )
    assert answer.status == 200
    interaction, task = answer.json["interaction"], answer.json["task"]
    assert (
        interaction["kind"],
        interaction["customer_id"],
        interaction["satisfaction"],
        interaction["channel"],
        interaction["summary"],
    ) == ("callback", customer.id, 2, "chat", "delivery was late")
    assert interaction["ext"]["followup"] == {"satisfied": False, "task_id": callback.id}
    assert (task["id"], task["status"], task["outcome"]) == (callback.id, "done", "unsatisfied")
    with pytest.raises(ValidationError, match="cannot be recorded again"):
        client.call("POST", path, actor="ann", body={"satisfied": True})


@pytest.mark.api_covers("POST", "/followup/callbacks/{task_id}/outcome")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"satisfied": "yes"}, "satisfied"),
        ({}, "satisfied"),
        ({"satisfied": True, "score": 9}, "score"),
        ({"satisfied": True, "score": "5"}, "score"),
        ({"satisfied": True, "channel": "pigeon"}, "channel"),
        ({"satisfied": True, "mood": "happy"}, "mood"),
    ],
)
def test_bad_outcomes_name_the_field_and_write_nothing(desk, body, field):
    client, customer, callback = desk
    with pytest.raises(ValidationError) as caught:
        client.call("POST", f"/followup/callbacks/{callback.id}/outcome", actor="ann", body=body)
    assert caught.value.field == field
    assert client.crm.tasks.get(callback.id).is_open
    assert client.crm.interactions.count({"customer_id": customer.id, "kind": "callback"}) == 0


@pytest.mark.api_covers("POST", "/followup/callbacks/{task_id}/outcome")
def test_another_agent_may_not_record_anns_callback(desk):
    client, customer, callback = desk
    with pytest.raises(PermissionDenied):
        client.call(
            "POST",
            f"/followup/callbacks/{callback.id}/outcome",
            actor="bob",
            body={"satisfied": True, "score": 5},
        )
    assert client.crm.tasks.get(callback.id).is_open
    assert client.crm.interactions.count({"customer_id": customer.id, "kind": "callback"}) == 0


@pytest.mark.api_covers("POST", "/followup/callbacks/{task_id}/outcome")
def test_unknown_task_is_not_found(desk):
    client, _, _ = desk
    with pytest.raises(NotFoundError):
        client.call(
            "POST",
            "/followup/callbacks/tsk_nothing/outcome",
            actor="boss",
            body={"satisfied": True},
        )


@pytest.mark.api_covers("GET", "/followup/handover")
@pytest.mark.api_covers("GET", "/followup/overdue-by-grade")
def test_handover_and_overdue_by_grade(desk, clock):
    client, customer, _callback = desk
    answer = client.call(
        "GET", "/followup/handover", actor="ann", query={"until": "2026-01-13T00:00:00+08:00"}
    ).json
    assert (answer["now"], answer["until"]) == (
        "2026-01-05T09:00:00.000000Z",
        "2026-01-12T16:00:00.000000Z",
    )
    assert answer["urgent"] == []
    assert [(p["customer_id"], p["name"], p["kind"], p["grade"]) for p in answer["prospects"]] == [
        (customer.id, "Li Wei", "first_contact", "ungraded")
    ]
    assert (
        client.call(
            "GET", "/followup/handover", actor="bob", query={"until": "2026-01-13T00:00:00Z"}
        ).json["prospects"]
        == []
    )
    for until, words in (("2026-01-13", "time zone"), ("2026-01-01T00:00:00Z", "not after")):
        with pytest.raises(ValidationError, match=words):
            client.call("GET", "/followup/handover", actor="ann", query={"until": until})
    clock.advance(days=2)
    [row] = client.call("GET", "/followup/overdue-by-grade", actor="ann").json
    assert (row["grade"], row["customers"], row["overdue_tasks"]) == ("ungraded", 1, 1)
