"""Routes plugins contribute, the OpenAPI document, and the guard that every path has a test."""

from __future__ import annotations

import re
from importlib.metadata import entry_points
from pathlib import Path

import attrs
import pytest
from crmcore_web.app import create_app
from openapi_spec_validator import validate

from crmcore import ApiParam, ApiRoute, PermissionDenied, PluginError, hookimpl
from crmcore.api import api_routes
from crmcore.testing import make_test_crm

REPO = Path(__file__).resolve().parents[3]


@attrs.frozen
class Line:
    sku: str
    quantity: int = attrs.field(validator=attrs.validators.ge(1))


@attrs.frozen
class Order:
    """A shop order."""

    customer_id: str
    lines: list[Line]
    note: str | None = None


@attrs.frozen
class Receipt:
    customer_id: str
    items: int
    by: str


def place_order(request):
    crm = request.crm
    body: Order = request.body
    crm.interactions.log(
        actor=request.actor,
        customer_id=body.customer_id,
        kind="purchase",
        summary=f"{len(body.lines)} lines",
    )
    if body.note == "explode":
        raise PermissionDenied("the shop refuses exploding orders")
    return Receipt(body.customer_id, sum(line.quantity for line in body.lines), request.actor)


def broken(request):
    raise RuntimeError("secret internals /srv/crm")


def shop_stats(request):
    return {
        "orders": request.crm.interactions.count({"kind": "purchase"}),
        "top": request.query.get("top"),
    }


class ShopPlugin:
    @staticmethod
    @hookimpl
    def crm_api_routes(crm):
        return [
            ApiRoute(
                "POST",
                "/shop/orders",
                place_order,
                "Place an order",
                body=Order,
                response=Receipt,
                status=201,
            ),
            ApiRoute(
                "GET",
                "/shop/stats",
                shop_stats,
                "Order statistics",
                response=dict,
                query=(ApiParam("top", "How many"),),
            ),
            ApiRoute("GET", "/shop/broken", broken, "Always fails", response=dict),
        ]


class CopyCat:
    @staticmethod
    @hookimpl
    def crm_api_routes(crm):
        return [ApiRoute("post", "/shop/orders", place_order, "Mine too")]


class Sloppy:
    @staticmethod
    @hookimpl
    def crm_api_routes(crm):
        return [{"method": "GET", "path": "/sloppy"}]


@pytest.fixture
def shop(web_for):
    return web_for(plugins=("web", ("shop", ShopPlugin)))


@pytest.mark.api_covers("POST", "/shop/orders")
def test_a_plugin_route_gets_its_body_structured_and_its_answer_serialised(shop):
    made = shop.customer("Li Lei", owner="ann")
    answer = shop.client.post(
        "/api/v1/shop/orders",
        headers=shop.as_["ann"],
        json={
            "customer_id": made["id"],
            "lines": [{"sku": "tea", "quantity": 2}, {"sku": "cup", "quantity": 1}],
        },
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"customer_id": made["id"], "items": 3, "by": "ann"}


@pytest.mark.api_covers("POST", "/shop/orders")
@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"sku": "tea", "quantity": 0}], "lines[0].quantity"),
        ([{"sku": "tea", "quantity": 1}, {"sku": "cup", "quantity": "1"}], "lines[1].quantity"),
        ([{"sku": "tea", "quantity": 1, "colour": "red"}], "lines[0].colour"),
        ("tea", "lines"),
    ],
)
def test_a_plugin_routes_bad_body_names_the_nested_field(shop, lines, field):
    made = shop.customer("Li Lei", owner="ann")
    before = shop.counts()
    answer = shop.client.post(
        "/api/v1/shop/orders",
        headers=shop.as_["ann"],
        json={"customer_id": made["id"], "lines": lines},
    )
    assert answer.status_code == 422 and answer.json()["error"]["field"] == field
    assert shop.counts() == before


@pytest.mark.api_covers("POST", "/shop/orders")
def test_a_handler_that_fails_after_writing_leaves_nothing_written(shop):
    made = shop.customer("Li Lei", owner="ann")
    before = shop.counts()
    answer = shop.client.post(
        "/api/v1/shop/orders",
        headers=shop.as_["ann"],
        json={
            "customer_id": made["id"],
            "lines": [{"sku": "tea", "quantity": 1}],
            "note": "explode",
        },
    )
    assert answer.status_code == 403 and "exploding" in answer.json()["error"]["message"]
    assert shop.counts() == before


@pytest.mark.api_covers("GET", "/shop/stats")
def test_a_plugin_get_route_reads_its_query(shop):
    answer = shop.client.get("/api/v1/shop/stats?top=3&top=5", headers=shop.as_["ann"])
    assert answer.status_code == 200 and answer.json() == {"orders": 0, "top": "5"}


@pytest.mark.api_covers("GET", "/shop/broken")
def test_a_bug_in_a_handler_is_a_500_with_an_incident_and_no_details(shop):
    answer = shop.client.get("/api/v1/shop/broken", headers=shop.as_["ann"])
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert error["type"] == "internal" and "incident" in error["message"]
    assert "secret" not in answer.text and "Traceback" not in answer.text


def test_head_answers_like_get_without_a_body(shop):
    answer = shop.client.head("/api/v1/shop/stats", headers=shop.as_["ann"])
    assert answer.status_code == 200 and answer.content == b""


def test_an_app_over_a_crm_without_the_web_plugin_is_refused(make_crm):
    from crmcore import ConfigError

    crm = make_crm(plugins=[("shop", ShopPlugin)], settings={"security": {"enforce": True}})
    with pytest.raises(ConfigError, match="must load the 'web' plugin"):
        create_app(crm)


def test_two_plugins_with_one_route_is_an_error_naming_both(make_crm):
    crm = make_crm(
        plugins=["web", ("shop", ShopPlugin), ("copycat", CopyCat)],
        settings={"security": {"enforce": True}},
    )
    with pytest.raises(PluginError, match="both plugin 'copycat' and plugin 'shop'"):
        api_routes(crm)


def test_a_route_that_is_not_an_api_route_is_an_error_naming_the_plugin(make_crm):
    crm = make_crm(plugins=["web", ("sloppy", Sloppy)], settings={"security": {"enforce": True}})
    with pytest.raises(PluginError, match=r"sloppy.*not ApiRoute"):
        create_app(crm)


def test_the_document_is_valid_openapi_3_1_and_public(shop):
    answer = shop.client.get("/api/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    order = document["components"]["schemas"]["Order"]
    assert order["required"] == ["customer_id", "lines"]
    assert order["additionalProperties"] is False
    assert order["properties"]["lines"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Line"},
    }
    post = document["paths"]["/api/v1/shop/orders"]["post"]
    assert set(post["responses"]) >= {"201", "401", "403", "413", "415", "422"}
    assert post["tags"] == ["shop"]
    customer = document["components"]["schemas"]["Customer"]
    assert customer["properties"]["gender"]["anyOf"][0]["enum"] == ["female", "male", "other"]


# -- the guard: every operation in the document has a test ------------------------------------

_MARK = re.compile(r"""api_covers\(\s*["']([A-Za-z]+)["']\s*,\s*["']([^"']+)["']\s*\)""")


def _marked_operations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for folder in (REPO / "tests", *REPO.glob("plugins/*/tests"), *REPO.glob("examples/*")):
        for path in folder.rglob("test_*.py"):
            found.update((m.upper(), p) for m, p in _MARK.findall(path.read_text("utf-8")))
    return found


def test_every_operation_in_the_openapi_document_has_a_test():
    names = sorted({ep.name for ep in entry_points(group="crmcore")})
    crm = make_test_crm(names, settings={"security": {"enforce": True}})
    try:
        routes = api_routes(crm)
    finally:
        crm.close()
    operations = {(route.method, route.path) for _plugin, route in routes}
    untested = sorted(f"{m} {p}" for m, p in operations - _marked_operations())
    assert not untested, (
        f"these endpoints have no test marked @pytest.mark.api_covers(METHOD, PATH): {untested}"
    )
