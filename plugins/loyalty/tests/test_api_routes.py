"""The loyalty routes of the JSON API, called as the web plugin serves them
(``crmcore.testing.api``): values, refusals naming the field, permissions, not found."""

from __future__ import annotations

import pytest
from crmcore_loyalty.api_routes import routes

from crmcore import NotFoundError, PermissionDenied, ValidationError
from crmcore.testing.api import ApiClient, with_server

SECURITY = {
    "enforce": True,
    "actors": {"ann": {"role": "agent"}, "bob": {"role": "agent"}, "boss": {"role": "admin"}},
}


@pytest.fixture
def shop(make_crm):
    """A loyalty stack with permissions enforced: Ann owns a customer who bought for 300."""
    crm = make_crm(
        with_server(["loyalty"]),
        settings={"loyalty": {"asks": {"enabled": False}}, "security": SECURITY},
    )
    customer = crm.customers.add(actor="ann", name="Li Wei", phone="+86 138 0000 0001", owner="ann")
    crm.interactions.log(actor="ann", customer_id=customer.id, kind="purchase", amount=300)
    return ApiClient(crm), customer


def test_every_route_is_served_by_the_plugin(shop):
    client, _ = shop
    mine = {(r.method, r.path) for plugin, r in client.routes if plugin == "loyalty"}
    assert mine == {(r.method, r.path) for r in routes()}
    assert all(path.startswith("/loyalty/") for _m, path in mine)


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}")
@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}/history")
def test_account_and_history(shop):
    client, customer = shop
    answer = client.call("GET", f"/loyalty/accounts/{customer.id}", actor="ann")
    assert answer.status == 200
    assert answer.json["customer_id"] == customer.id
    assert answer.json["balance"] == 300 and answer.json["available"] == 300
    assert answer.json["referral_code"]
    [entry] = client.call("GET", f"/loyalty/accounts/{customer.id}/history", actor="ann").json
    assert (entry["kind"], entry["points"], entry["customer_id"]) == ("earn", 300, customer.id)
    assert entry["at"] == "2026-01-05T09:00:00.000000Z"


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}/history")
@pytest.mark.api_covers("POST", "/loyalty/accounts/{customer_id}/redeem")
def test_redeem_spends_and_a_repeated_reference_spends_once(shop):
    client, customer = shop
    path = f"/loyalty/accounts/{customer.id}/redeem"
    answer = client.call(
        "POST", path, actor="ann", body={"points": 120, "reference": "o-1", "note": "mug"}
    )
    assert answer.status == 200
    assert answer.json["entry"]["points"] == -120
    assert (answer.json["balance"], answer.json["available"]) == (180, 180)
    again = client.call("POST", path, actor="ann", body={"points": 120, "reference": "o-1"})
    assert again.json["entry"]["id"] == answer.json["entry"]["id"]
    assert again.json["balance"] == 180
    history = client.call(
        "GET", f"/loyalty/accounts/{customer.id}/history", actor="ann", query={"limit": 1}
    ).json
    assert [e["points"] for e in history] == [-120]


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}")
@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}/history")
@pytest.mark.api_covers("POST", "/loyalty/accounts/{customer_id}/redeem")
def test_redeem_refusals_name_the_field_and_write_nothing(shop):
    client, customer = shop
    path = f"/loyalty/accounts/{customer.id}/redeem"
    for body, field in (
        ({"points": 301}, "points"),
        ({"points": 0}, "points"),
        ({"points": "10"}, "points"),
        ({"points": 10, "coupon": "x"}, "coupon"),
        ({"points": 10, "reference": 5}, "reference"),
        ({}, "points"),
    ):
        with pytest.raises(ValidationError) as caught:
            client.call("POST", path, actor="ann", body=body)
        assert caught.value.field == field, body
    assert (
        client.call("GET", f"/loyalty/accounts/{customer.id}", actor="ann").json["balance"] == 300
    )
    with pytest.raises(ValidationError) as caught:
        client.call(
            "GET", f"/loyalty/accounts/{customer.id}/history", actor="ann", query={"limit": "lots"}
        )
    assert caught.value.field == "limit"


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}")
@pytest.mark.api_covers("POST", "/loyalty/accounts/{customer_id}/redeem")
def test_another_agents_customer_is_refused(shop):
    client, customer = shop
    with pytest.raises(PermissionDenied, match="belongs to ann"):
        client.call("GET", f"/loyalty/accounts/{customer.id}", actor="bob")
    with pytest.raises(PermissionDenied):
        client.call(
            "POST", f"/loyalty/accounts/{customer.id}/redeem", actor="bob", body={"points": 10}
        )
    assert (
        client.call("GET", f"/loyalty/accounts/{customer.id}", actor="boss").json["balance"] == 300
    )


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}")
def test_unknown_customer_is_not_found(shop):
    client, _ = shop
    with pytest.raises(NotFoundError):
        client.call("GET", "/loyalty/accounts/cus_nobody", actor="boss")


@pytest.mark.api_covers("GET", "/loyalty/accounts/{customer_id}/referrals")
@pytest.mark.api_covers("POST", "/loyalty/accounts/{customer_id}/referral-code")
@pytest.mark.api_covers("POST", "/loyalty/referrals")
def test_referral_code_link_and_stats(shop):
    client, customer = shop
    code = client.call("POST", f"/loyalty/accounts/{customer.id}/referral-code", actor="ann").json
    assert code["customer_id"] == customer.id and code["code"]
    friend = client.crm.customers.add(
        actor="ann", name="Zhang Min", phone="+86 139 0000 0002", owner="ann"
    )
    answer = client.call(
        "POST",
        "/loyalty/referrals",
        actor="ann",
        body={"customer_id": friend.id, "code": code["code"]},
    )
    assert answer.status == 201
    assert (answer.json["referrer_id"], answer.json["referred_id"]) == (customer.id, friend.id)
    stats = client.call("GET", f"/loyalty/accounts/{customer.id}/referrals", actor="ann").json
    assert (stats["code"], stats["links"], stats["waiting"]) == (code["code"], 1, 1)
    with pytest.raises(ValidationError):  # a customer cannot refer themself
        client.call(
            "POST",
            "/loyalty/referrals",
            actor="ann",
            body={"customer_id": customer.id, "code": code["code"]},
        )
