"""The grading plugin's JSON API routes (``crm_api_routes``), served under ``/api/v1``.

Each handler calls ``crmcore_grading.api`` acting as the request's actor (``customer.read``
for what is shown, ``grading.update`` for the inputs, under ``[security] enforce``).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import attrs

from crmcore import ApiParam, ApiRequest, ApiRoute, ValidationError
from crmcore.api import query_int, query_text
from crmcore_grading import api
from crmcore_grading.api import GradedCustomer, SchemeInfo
from crmcore_grading.inputs import DEAL_STATUSES, DEMANDS, IMPORTANCE, KEYS
from crmcore_grading.records import HistoryRecord

TAG = "grading"
CUSTOMER = "/grading/customers/{customer_id}"

Demand = Literal[DEMANDS]  # type: ignore[valid-type]
DealStatus = Literal[DEAL_STATUSES]  # type: ignore[valid-type]
Importance = Literal[IMPORTANCE]  # type: ignore[valid-type]
InputName = Literal[KEYS]  # type: ignore[valid-type]


@attrs.frozen
class GradeLine:
    """One scheme's grade, why, and what the scheme computes now (scores, cut-offs)."""

    scheme: str
    grade: str
    reason: str
    details: dict[str, Any]


@attrs.frozen
class PipelineInputs:
    """The A-E pipeline grade's inputs, with DOMAIN §2's time urgency derived from the
    expected close (urgent, soon, not urgent, slow)."""

    demand: str | None = None
    expected_close: str | None = None
    deal_status: str | None = None
    importance: str | None = None
    urgency: str | None = None


@attrs.frozen
class ChurnRisk:
    level: str
    reasons: list[str]


@attrs.frozen
class CustomerGradesView:
    """A customer's grades with their reasons, the pipeline inputs, churn risk and signals."""

    customer_id: str
    grades: list[GradeLine]
    inputs: PipelineInputs
    churn: ChurnRisk
    signals: dict[str, Any]
    population_run: str | None


@attrs.frozen
class InputsBody:
    """Pipeline inputs to set; fields left out (or null) keep their stored value, fields named
    in ``clear`` are removed. Setting any input needs a demand (given now or stored)."""

    demand: Demand | None = None
    expected_close: date | None = None
    deal_status: DealStatus | None = None
    importance: Importance | None = None
    clear: list[InputName] = attrs.field(factory=list)


def _customer(request: ApiRequest) -> str:
    return request.path["customer_id"]


def _view(request: ApiRequest) -> CustomerGradesView:
    info = api.explain(request.crm, _customer(request), actor=request.actor)
    inputs = info["inputs"]
    return CustomerGradesView(
        customer_id=info["customer_id"],
        grades=[
            GradeLine(g["scheme"], g["grade"], g["reason"], g["details"]) for g in info["grades"]
        ],
        inputs=PipelineInputs(**{k: inputs.get(k) for k in (*KEYS, "urgency")}),
        churn=ChurnRisk(info["churn"]["level"], list(info["churn"]["reasons"])),
        signals=info["signals"],
        population_run=info["population_run"],
    )


def show(request: ApiRequest) -> CustomerGradesView:
    return _view(request)


def history(request: ApiRequest) -> list[HistoryRecord]:
    return api.history(
        request.crm,
        _customer(request),
        scheme=query_text(request.query, "scheme"),
        limit=query_int(request.query, "limit", 50, minimum=1, maximum=500),
        actor=request.actor,
    )


def set_inputs(request: ApiRequest) -> CustomerGradesView:
    body: InputsBody = request.body
    given: dict[str, Any] = {k: getattr(body, k) for k in KEYS if getattr(body, k) is not None}
    both = sorted(set(given) & set(body.clear))
    if both:
        raise ValidationError(f"{', '.join(both)} both given and cleared", field="clear")
    given.update(dict.fromkeys(body.clear))
    api.set_inputs(request.crm, _customer(request), actor=request.actor, **given)
    return _view(request)


def by_grade(request: ApiRequest) -> list[GradedCustomer]:
    grades = query_text(request.query, "grade")
    return api.by_grade(
        request.crm,
        scheme=query_text(request.query, "scheme") or "pipeline",
        grades=[g.strip() for g in grades.split(",") if g.strip()] if grades else (),
        owner=query_text(request.query, "owner"),
        limit=query_int(request.query, "limit", 50, minimum=1, maximum=1000),
        actor=request.actor,
    )


def schemes(request: ApiRequest) -> list[SchemeInfo]:
    return api.schemes(request.crm)


def routes() -> list[ApiRoute]:
    """Every grading route."""
    limit = ApiParam("limit", "at most this many (default 50)", type="integer")
    return [
        ApiRoute(
            "GET",
            "/grading/customers",
            by_grade,
            "Customers by grade, best first (within "
            "a pipeline grade: important first, then the soonest expected close)",
            response=list[GradedCustomer],
            tag=TAG,
            query=[
                ApiParam("scheme", "the grading scheme (default pipeline)"),
                ApiParam("grade", "only these grades or tiers, comma-separated (A,B)"),
                ApiParam("owner", "only customers of this rep"),
                limit,
            ],
        ),
        ApiRoute(
            "GET",
            CUSTOMER,
            show,
            "A customer's grades with their reasons, pipeline "
            "inputs and urgency, churn risk and signals",
            response=CustomerGradesView,
            tag=TAG,
        ),
        ApiRoute(
            "GET",
            f"{CUSTOMER}/history",
            history,
            "Stored grade changes, newest first (scheme 'churn' for churn levels)",
            response=list[HistoryRecord],
            tag=TAG,
            query=[ApiParam("scheme", "only this scheme"), limit],
        ),
        ApiRoute(
            "PATCH",
            f"{CUSTOMER}/inputs",
            set_inputs,
            "Set the pipeline inputs (demand, "
            "expected close, deal status, importance) and re-grade the customer",
            body=InputsBody,
            response=CustomerGradesView,
            tag=TAG,
        ),
        ApiRoute(
            "GET",
            "/grading/schemes",
            schemes,
            "Registered grading schemes and whether this configuration runs them",
            response=list[SchemeInfo],
            tag=TAG,
        ),
    ]
