"""The JSON API of service orders (``crm_api_routes``), served by the web plugin under
``/api/v1/service``. Handlers call the same ``Service`` API as the CLI, acting as the request's
actor, so the role policy and the step rules apply alike."""

from __future__ import annotations

from typing import Any

import attrs

from crmcore import ApiParam, ApiRequest, ApiRoute
from crmcore.api import query_bool, query_int, query_text
from crmcore.converter import to_doc
from crmcore_service.api import Service
from crmcore_service.model import Order


@attrs.frozen
class OpenOrder:
    """Body of ``POST /service/orders``."""

    type: str
    customer_id: str
    fields: dict[str, Any] = attrs.field(factory=dict)
    summary: str = ""
    owner: str | None = None
    assignee: str | None = None


@attrs.frozen
class AdvanceOrder:
    """Body of ``POST /service/orders/{order_id}/advance``."""

    to: str
    fields: dict[str, Any] = attrs.field(factory=dict)
    note: str = ""
    assignee: str | None = None


def _detail(api: Service, order: Order) -> dict[str, Any]:
    return {
        **to_doc(order),
        "next": api.allowed_next(order),
        "charges": [to_doc(c) for c in api.charges_for(order.id)],
        "history": [to_doc(t) for t in api.history(order.id)],
    }


def list_orders(request: ApiRequest) -> list[Order]:
    api = Service(request.crm)
    query = request.query
    return api.find(
        type=query_text(query, "type"),
        state=query_text(query, "step"),
        customer_id=query_text(query, "customer"),
        assignee=query_text(query, "assignee"),
        open_only=bool(query_bool(query, "open", False)),
        limit=query_int(query, "limit", 100, minimum=1),
        actor=request.actor,
    )


def open_order(request: ApiRequest) -> dict[str, Any]:
    api = Service(request.crm)
    body: OpenOrder = request.body
    order = api.open(
        actor=request.actor,
        type=body.type,
        customer_id=body.customer_id,
        fields=body.fields,
        summary=body.summary,
        owner=body.owner,
        assignee=body.assignee,
    )
    return _detail(api, order)


def show_order(request: ApiRequest) -> dict[str, Any]:
    api = Service(request.crm)
    return _detail(api, api.get(request.path["order_id"], actor=request.actor))


def advance_order(request: ApiRequest) -> dict[str, Any]:
    api = Service(request.crm)
    body: AdvanceOrder = request.body
    order = api.get(request.path["order_id"], actor=request.actor)
    moved = api.advance(
        order,
        actor=request.actor,
        to=body.to,
        fields=body.fields,
        note=body.note,
        assignee=body.assignee,
        expected_version=request.if_match,
    )
    return _detail(api, moved)


def list_types(request: ApiRequest) -> dict[str, Any]:
    return {name: to_doc(t) for name, t in Service(request.crm).types.items()}


def routes() -> list[ApiRoute]:
    """Every route of the plugin."""
    return [
        ApiRoute(
            "GET",
            "/service/types",
            list_types,
            "Order types and their steps",
            response=dict,
            tag="service",
        ),
        ApiRoute(
            "GET",
            "/service/orders",
            list_orders,
            "List service orders, oldest first",
            response=list[Order],
            tag="service",
            query=(
                ApiParam("type", "Only this order type"),
                ApiParam("step", "Only orders at this step"),
                ApiParam("customer", "Only this customer's orders"),
                ApiParam("assignee", "Only orders this person acts on"),
                ApiParam("open", "Only orders that have not ended", "boolean"),
                ApiParam("limit", "At most this many (default 100)", "integer"),
            ),
        ),
        ApiRoute(
            "POST",
            "/service/orders",
            open_order,
            "Open a service order",
            body=OpenOrder,
            response=dict,
            status=201,
            tag="service",
        ),
        ApiRoute(
            "GET",
            "/service/orders/{order_id}",
            show_order,
            "A service order with its charges and history",
            response=dict,
            tag="service",
        ),
        ApiRoute(
            "POST",
            "/service/orders/{order_id}/advance",
            advance_order,
            "Move an order to a step its current step leads to (If-Match: version)",
            body=AdvanceOrder,
            response=dict,
            tag="service",
        ),
    ]
