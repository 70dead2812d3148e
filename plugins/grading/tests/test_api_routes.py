"""The grading routes of the JSON API, called as the web plugin serves them
(``crmcore.testing.api``): values, refusals naming the field, permissions, not found."""

from __future__ import annotations

import pytest
from crmcore_grading.api_routes import routes
from grading_helpers import ALL_SCHEMES

from crmcore import NotFoundError, PermissionDenied, ValidationError
from crmcore.testing.api import ApiClient, with_server

SECURITY = {
    "enforce": True,
    "actors": {"ann": {"role": "agent"}, "bob": {"role": "agent"}, "boss": {"role": "admin"}},
}


@pytest.fixture
def desk(make_crm):
    """Grading with permissions enforced; Ann and Bob own one customer each."""
    crm = make_crm(
        with_server(["grading"]),
        settings={"grading": {"schemes": list(ALL_SCHEMES)}, "security": SECURITY},
    )
    anns = crm.customers.add(actor="ann", name="Li Wei", owner="ann").id
    bobs = crm.customers.add(actor="bob", name="Zhang Min", owner="bob").id
    return ApiClient(crm), anns, bobs


def test_every_route_is_served_by_the_plugin(desk):
    client, _, _ = desk
    mine = {(r.method, r.path) for plugin, r in client.routes if plugin == "grading"}
    assert mine == {(r.method, r.path) for r in routes()}
    assert all(path.startswith("/grading/") for _m, path in mine)


@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}")
@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}/history")
@pytest.mark.api_covers("PATCH", "/grading/customers/{customer_id}/inputs")
def test_set_inputs_regrades_and_shows_reasons_and_urgency(desk):
    client, anns, _ = desk
    answer = client.call(
        "PATCH",
        f"/grading/customers/{anns}/inputs",
        actor="ann",
        body={
            "demand": "target",
            "expected_close": "2026-01-20",
            "deal_status": "negotiating",
            "importance": "important",
        },
    )
    assert answer.status == 200
    view = answer.json
    assert view["customer_id"] == anns
    pipeline = next(g for g in view["grades"] if g["scheme"] == "pipeline")
    assert pipeline["grade"] == "A" and "2026-01-20" in pipeline["reason"]
    assert view["inputs"] == {
        "demand": "target",
        "expected_close": "2026-01-20",
        "deal_status": "negotiating",
        "importance": "important",
        "urgency": "soon",
    }
    assert view["churn"] == {"level": "none", "reasons": []}
    shown = client.call("GET", f"/grading/customers/{anns}", actor="ann").json
    assert shown == view
    # clearing the date: a clear need without a date waits in D; other inputs are kept
    view = client.call(
        "PATCH",
        f"/grading/customers/{anns}/inputs",
        actor="ann",
        body={"clear": ["expected_close"]},
    ).json
    assert next(g["grade"] for g in view["grades"] if g["scheme"] == "pipeline") == "D"
    assert view["inputs"]["expected_close"] is None
    assert view["inputs"]["importance"] == "important"
    history = client.call(
        "GET", f"/grading/customers/{anns}/history", actor="ann", query={"scheme": "pipeline"}
    ).json
    assert [(h["old"], h["new"], h["actor"]) for h in history] == [
        ("A", "D", "ann"),
        (None, "A", "ann"),
    ]
    one = client.call(
        "GET",
        f"/grading/customers/{anns}/history",
        actor="ann",
        query={"scheme": "pipeline", "limit": 1},
    ).json
    assert [h["new"] for h in one] == ["D"]


@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}")
@pytest.mark.api_covers("PATCH", "/grading/customers/{customer_id}/inputs")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"demand": "hot"}, "demand"),
        ({"demand": "target", "expected_close": "soon"}, "expected_close"),
        ({"demand": "target", "expected_close": 20260120}, "expected_close"),
        ({"demand": "target", "urgency": "urgent"}, "urgency"),
        ({"clear": ["budget"]}, "clear[0]"),
        ({"demand": "target", "clear": ["demand"]}, "clear"),
        ({"importance": "important"}, "demand"),  # the demand comes first
    ],
)
def test_bad_inputs_name_the_field_and_write_nothing(desk, body, field):
    client, anns, _ = desk
    with pytest.raises(ValidationError) as caught:
        client.call("PATCH", f"/grading/customers/{anns}/inputs", actor="ann", body=body)
    assert caught.value.field == field
    assert client.call("GET", f"/grading/customers/{anns}", actor="ann").json["inputs"] == {
        "demand": None,
        "expected_close": None,
        "deal_status": None,
        "importance": None,
        "urgency": None,
    }


@pytest.mark.api_covers("GET", "/grading/customers")
@pytest.mark.api_covers("PATCH", "/grading/customers/{customer_id}/inputs")
def test_customers_by_grade_within_what_the_actor_may_read(desk):
    client, anns, bobs = desk
    for actor, cid, demand in (("ann", anns, "target"), ("bob", bobs, "dead")):
        client.call(
            "PATCH",
            f"/grading/customers/{cid}/inputs",
            actor=actor,
            body={"demand": demand, "expected_close": "2026-03-01"},
        )
    everyone = client.call("GET", "/grading/customers", actor="boss").json
    assert [(c["id"], c["grade"]) for c in everyone] == [(anns, "B"), (bobs, "E")]
    assert everyone[0]["expected_close"] == "2026-03-01" and everyone[0]["owner"] == "ann"
    only_e = client.call("GET", "/grading/customers", actor="boss", query={"grade": "E,D"}).json
    assert [c["id"] for c in only_e] == [bobs]
    assert [c["id"] for c in client.call("GET", "/grading/customers", actor="ann").json] == [anns]
    with pytest.raises(ValidationError) as caught:
        client.call("GET", "/grading/customers", actor="boss", query={"scheme": "vibes"})
    assert caught.value.field == "scheme"


@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}")
@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}/history")
@pytest.mark.api_covers("PATCH", "/grading/customers/{customer_id}/inputs")
def test_another_agents_customer_is_refused(desk):
    client, anns, _ = desk
    with pytest.raises(PermissionDenied, match="belongs to ann"):
        client.call(
            "PATCH", f"/grading/customers/{anns}/inputs", actor="bob", body={"demand": "dead"}
        )
    with pytest.raises(PermissionDenied):
        client.call("GET", f"/grading/customers/{anns}", actor="bob")
    with pytest.raises(PermissionDenied):
        client.call("GET", f"/grading/customers/{anns}/history", actor="bob")


@pytest.mark.api_covers("GET", "/grading/customers/{customer_id}")
@pytest.mark.api_covers("PATCH", "/grading/customers/{customer_id}/inputs")
def test_unknown_customer_is_not_found(desk):
    client, _, _ = desk
    with pytest.raises(NotFoundError):
        client.call("GET", "/grading/customers/cus_nobody", actor="boss")
    with pytest.raises(NotFoundError):
        client.call(
            "PATCH", "/grading/customers/cus_nobody/inputs", actor="boss", body={"demand": "dead"}
        )


@pytest.mark.api_covers("GET", "/grading/schemes")
def test_schemes(desk):
    client, _, _ = desk
    found = {s["name"]: s for s in client.call("GET", "/grading/schemes", actor="ann").json}
    assert set(ALL_SCHEMES) <= set(found)
    assert found["pipeline"]["running"] is True and found["rfm"]["population"] is True
