"""A customer's interactions over HTTP, and the report as JSON."""

from __future__ import annotations

import pytest

from crmcore.converter import parse_iso


@pytest.mark.api_covers("POST", "/customers/{customer_id}/interactions")
def test_log_an_interaction_answers_201_and_fires_the_plugins(web_for):
    web = web_for(plugins=("web", "followup"))
    made = web.customer("Li Lei", owner="ann")
    url = f"/api/v1/customers/{made['id']}/interactions"
    answer = web.client.post(
        url,
        headers=web.as_["ann"],
        json={
            "kind": "purchase",
            "amount": 120,
            "channel": "chat",
            "occurred_at": "2026-01-05T08:00:00Z",
        },
    )
    assert answer.status_code == 201, answer.text
    stored = web.crm.interactions.get(answer.json()["id"])
    assert stored.created_by == "ann" and stored.amount == 120.0
    # the followup plugin reacted in the same request (a callback after a purchase)
    assert any(t.kind == "callback" for t in web.crm.tasks.open_for(made["id"]))


@pytest.mark.api_covers("POST", "/customers/{customer_id}/interactions")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "teleport"}, "kind"),
        ({"kind": "callback", "satisfaction": 9}, "satisfaction"),
        ({"kind": "purchase", "amount": -5}, "amount"),
        ({"kind": "purchase", "amount": "5"}, "amount"),
        ({"kind": "purchase", "channel": "pigeon"}, "channel"),
        ({"kind": "purchase", "mood": "happy"}, "mood"),
    ],
)
def test_a_bad_interaction_is_a_422_and_writes_nothing(web, body, field):
    made = web.customer("Li Lei", owner="ann")
    before = web.counts()
    answer = web.client.post(
        f"/api/v1/customers/{made['id']}/interactions", headers=web.as_["ann"], json=body
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert web.counts() == before


@pytest.mark.api_covers("GET", "/customers/{customer_id}/interactions")
def test_list_a_customers_interactions_newest_first_with_filters(web):
    made = web.customer("Li Lei", owner="ann")
    for kind, when in (
        ("purchase", "2026-01-01T10:00:00Z"),
        ("callback", "2026-01-03T10:00:00Z"),
        ("purchase", "2026-01-04T10:00:00Z"),
    ):
        web.crm.interactions.log(
            actor="ann", customer_id=made["id"], kind=kind, occurred_at=parse_iso(when)
        )
    url = f"/api/v1/customers/{made['id']}/interactions"
    every = web.client.get(url, headers=web.as_["ann"]).json()
    assert [i["occurred_at"][:10] for i in every] == ["2026-01-04", "2026-01-03", "2026-01-01"]
    bought = web.client.get(
        url, params={"kind": "purchase", "since": "2026-01-02T00:00:00Z"}, headers=web.as_["ann"]
    ).json()
    assert [i["occurred_at"][:10] for i in bought] == ["2026-01-04"]
    assert len(web.client.get(url, params={"limit": 1}, headers=web.as_["ann"]).json()) == 1
    assert web.client.get(url, headers=web.as_["bo"]).status_code == 403
    assert (
        web.client.get(
            "/api/v1/customers/cus_nope/interactions", headers=web.as_["ann"]
        ).status_code
        == 404
    )


@pytest.mark.api_covers("GET", "/reports")
def test_the_report_has_the_core_and_plugin_sections_as_json(web_for):
    web = web_for(plugins=("web", "loyalty"))
    made = web.customer("Li Lei", owner="ann")
    web.crm.interactions.log(actor="ann", customer_id=made["id"], kind="purchase", amount=50)
    answer = web.client.get("/api/v1/reports", headers=web.as_["aud"])
    assert answer.status_code == 200
    sections = {s["title"]: s for s in answer.json()["sections"]}
    first = sections["Customers and contacts"]
    assert first["columns"] == ["measure", "value"]
    assert ["active customers", 1] in first["rows"]
    assert ["interactions logged", 1] in first["rows"]
    plugin_titles = set(sections) - {
        "Customers and contacts",
        "Interactions by kind",
        "Tasks due by kind",
        "Conversion rate per rep",
    }
    assert plugin_titles  # the loyalty plugin contributed
    bad = web.client.get("/api/v1/reports", params={"at": "tuesday"}, headers=web.as_["aud"])
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "at"
