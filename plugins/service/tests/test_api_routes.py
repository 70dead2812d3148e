"""The service routes of the JSON API, called as served (``crmcore.testing.api``: over the
web plugin's app when it is installed) with permissions enforced: values, refusals naming the
field, stale versions, permissions and not found."""

from __future__ import annotations

import pytest
from crmcore_service.routes import routes

from crmcore import ConflictError, NotFoundError, PermissionDenied, ValidationError
from crmcore.testing.api import ApiClient, with_server

SECURITY = {
    "enforce": True,
    "actors": {
        "ann": {"role": "agent", "team": "front"},
        "bob": {"role": "agent", "team": "front"},
        "boss": {"role": "admin"},
    },
}


@pytest.fixture
def desk(make_crm):
    """Service orders with permissions enforced; Ann owns a customer."""
    crm = make_crm(with_server(["service"]), settings={"security": SECURITY})
    cid = crm.customers.add(actor="ann", name="Li Wei", phone="+86 138 0013 8000", owner="ann").id
    return ApiClient(crm), cid


def open_order(client, cid, actor="ann"):
    answer = client.call(
        "POST",
        "/service/orders",
        actor=actor,
        body={"type": "work_order", "customer_id": cid, "fields": {"kind": "suggestion"}},
    )
    assert answer.status == 201
    assert answer.http == bool(with_server([]))  # served by the real app when one is installed
    return answer.json


def test_every_route_is_served_by_the_plugin(desk):
    client, _ = desk
    mine = {(r.method, r.path) for plugin, r in client.routes if plugin == "service"}
    assert mine == {(r.method, r.path) for r in routes()}
    assert all(path.startswith("/service/") for _m, path in mine)


@pytest.mark.api_covers("GET", "/service/types")
def test_types_list_each_type_with_its_steps(desk):
    client, _ = desk
    types = client.call("GET", "/service/types", actor="ann").json
    assert types["business"]["steps"][0]["name"] == "application"
    assert "work_order" in types


@pytest.mark.api_covers("POST", "/service/orders")
@pytest.mark.api_covers("POST", "/service/orders/{order_id}/advance")
@pytest.mark.api_covers("GET", "/service/orders/{order_id}")
def test_open_advance_and_show_an_order(desk):
    client, cid = desk
    opened = open_order(client, cid)
    assert opened["state"] == "submitted" and opened["next"] == ["handling", "declined"]
    assert opened["customer_id"] == cid and opened["version"] == 1
    path = f"/service/orders/{opened['id']}"
    moved = client.call(
        "POST", f"{path}/advance", actor="ann", body={"to": "handling"}, if_match=1
    ).json
    assert moved["state"] == "handling" and len(moved["history"]) == 2
    shown = client.call("GET", path, actor="ann").json
    assert (shown["version"], shown["state"]) == (2, "handling")
    assert (shown["history"][-1]["to_state"], shown["history"][-1]["actor"]) == ("handling", "ann")


@pytest.mark.api_covers("POST", "/service/orders/{order_id}/advance")
@pytest.mark.api_covers("GET", "/service/orders/{order_id}")
def test_refused_moves_name_the_problem_and_change_nothing(desk):
    client, cid = desk
    path = f"/service/orders/{open_order(client, cid)['id']}"
    with pytest.raises(ValidationError, match="allowed: handling, declined"):
        client.call("POST", f"{path}/advance", actor="ann", body={"to": "closed"})
    with pytest.raises(ValidationError) as caught:
        client.call("POST", f"{path}/advance", actor="ann", body={"to": 5})
    assert caught.value.field == "to"
    with pytest.raises(ValidationError) as caught:
        client.call(
            "POST", f"{path}/advance", actor="ann", body={"to": "handling", "colour": "red"}
        )
    assert caught.value.field == "colour"
    with pytest.raises(ConflictError):
        client.call("POST", f"{path}/advance", actor="ann", body={"to": "handling"}, if_match=7)
    assert client.call("GET", path, actor="ann").json["version"] == 1


@pytest.mark.api_covers("POST", "/service/orders")
def test_an_order_needs_a_known_type_and_customer(desk):
    client, cid = desk
    with pytest.raises(ValidationError) as caught:
        client.call(
            "POST", "/service/orders", actor="ann", body={"type": "work_order", "customer_id": 5}
        )
    assert caught.value.field == "customer_id"
    with pytest.raises(ValidationError, match="nonsense"):
        client.call(
            "POST", "/service/orders", actor="ann", body={"type": "nonsense", "customer_id": cid}
        )
    with pytest.raises(NotFoundError):
        client.call(
            "POST",
            "/service/orders",
            actor="ann",
            body={"type": "work_order", "customer_id": "cus_nobody"},
        )
    assert client.call("GET", "/service/orders", actor="boss").json == []


@pytest.mark.api_covers("GET", "/service/orders")
def test_list_filters_and_reads_its_query_strictly(desk):
    client, cid = desk
    first = open_order(client, cid)
    second = open_order(client, cid)
    client.call(
        "POST",
        f"/service/orders/{second['id']}/advance",
        actor="ann",
        body={"to": "declined", "fields": {"reason": "duplicate"}},
    )
    listed = client.call(
        "GET", "/service/orders", actor="ann", query={"type": "work_order", "open": True}
    ).json
    assert [o["id"] for o in listed] == [first["id"]]
    every = client.call("GET", "/service/orders", actor="ann", query={"limit": 1}).json
    assert [o["id"] for o in every] == [first["id"]]
    for name, value in (("limit", "x"), ("limit", 0), ("open", "perhaps")):
        with pytest.raises(ValidationError) as caught:
            client.call("GET", "/service/orders", actor="ann", query={name: value})
        assert caught.value.field == name


@pytest.mark.api_covers("GET", "/service/orders/{order_id}")
def test_unknown_order_is_not_found_and_strangers_are_refused(desk):
    client, cid = desk
    oid = open_order(client, cid)["id"]
    with pytest.raises(NotFoundError):
        client.call("GET", "/service/orders/svc_nothing", actor="ann")
    with pytest.raises(PermissionDenied):
        client.call("GET", f"/service/orders/{oid}", actor="bob")
