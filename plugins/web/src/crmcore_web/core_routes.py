"""The core's endpoints (customers, interactions, tasks, reports) as ``ApiRoute`` objects,
served and documented exactly like the routes plugins contribute. Handlers only call the
core's public API acting as the request's actor; no business rule lives here."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from crmcore.api import query_datetime, query_int
from crmcore.app import CRM
from crmcore.entities import Channel, Customer, Gender, Interaction, Task, TaskStatus
from crmcore.errors import ConflictError, ValidationError
from crmcore.registry import ApiParam, ApiRequest, ApiRoute, ReportSection
from crmcore.report import build_report
from crmcore.search import MAX_LIMIT as SEARCH_MAX
from crmcore.security import Resource
from crmcore.tasks import URGENCY
from crmcore_web.errors import PreconditionRequired


class _Unset:
    """A field left out of a body (as opposed to one set to null)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


def given(body: Any) -> dict[str, Any]:
    """The fields of ``body`` that the client sent."""
    return {
        f.name: getattr(body, f.name)
        for f in attrs.fields(type(body))
        if getattr(body, f.name) is not UNSET
    }


# -- bodies and answers --------------------------------------------------------------------


@attrs.frozen
class CustomerNew:
    """A new customer: ``name`` is required, every other field optional. Phones and e-mails
    are normalised; ``owner`` is the responsible rep; ``ext`` holds plugin namespaces."""

    name: str
    phone: str | None = UNSET
    email: str | None = UNSET
    address: str | None = UNSET
    birth_date: date | None = UNSET
    chat_handles: dict[str, str] = UNSET
    gender: Gender | None = UNSET
    region: str | None = UNSET
    occupation: str | None = UNSET
    organisation: str | None = UNSET
    timezone: str = UNSET
    do_not_contact: bool = UNSET
    owner: str | None = UNSET
    tags: list[str] = UNSET
    source: str | None = UNSET
    ext: dict[str, dict[str, Any]] = UNSET


@attrs.frozen
class CustomerChanges:
    """The fields to change (left-out fields stay as they are; null clears one). ``ext``
    namespaces are merged into the customer's."""

    name: str = UNSET
    phone: str | None = UNSET
    email: str | None = UNSET
    address: str | None = UNSET
    birth_date: date | None = UNSET
    chat_handles: dict[str, str] = UNSET
    gender: Gender | None = UNSET
    region: str | None = UNSET
    occupation: str | None = UNSET
    organisation: str | None = UNSET
    timezone: str = UNSET
    do_not_contact: bool = UNSET
    owner: str | None = UNSET
    tags: list[str] = UNSET
    source: str | None = UNSET
    ext: dict[str, dict[str, Any]] = UNSET


@attrs.frozen
class MergeRequest:
    """The duplicate to fold into the customer of the path (it becomes a tombstone)."""

    duplicate_id: str


@attrs.frozen
class InteractionNew:
    """A contact to record: ``kind`` is one the stack declares (purchase, consultation …);
    ``occurred_at`` defaults to now."""

    kind: str
    occurred_at: datetime = UNSET
    channel: Channel = UNSET
    summary: str = UNSET
    amount: float | None = UNSET
    satisfaction: int | None = UNSET
    place: str | None = UNSET
    rep: str | None = UNSET
    ref: str | None = UNSET
    ext: dict[str, dict[str, Any]] = UNSET


@attrs.frozen
class TaskQueue:
    """An actor's open tasks: overdue, due later today (business time zone), and upcoming
    within ``days``."""

    overdue: list[Task]
    due_today: list[Task]
    upcoming: list[Task]


@attrs.frozen
class Completion:
    """What came of the task (plugins read it: a callback's answer, a follow-up's result)."""

    outcome: str | None = None


@attrs.frozen
class NewDueTime:
    """When the task is now due."""

    due_at: datetime


@attrs.frozen
class Assignment:
    """Who the task goes to (null: nobody)."""

    assignee: str | None


@attrs.frozen
class Report:
    """The report's sections (the core's, then the plugins'), as of ``at``."""

    at: datetime
    sections: list[ReportSection]


# -- parameters ------------------------------------------------------------------------------

_EXT_FILTER = re.compile(r"^([a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+):(.*)$")


def _max_page(crm: CRM) -> int:
    return crm.settings("web").max_page


def ext_filters(text: str | None) -> dict[str, Any]:
    """``grading.pipeline:A,grading.rfm:champions`` -> ``{"ext.grading.pipeline": "A", …}``:
    a filter on any plugin's namespaced extension field, without naming the plugin here."""
    out: dict[str, Any] = {}
    if not text:
        return out
    for part in text.split(","):
        match = _EXT_FILTER.match(part.strip())
        if match is None:
            raise ValidationError(
                f"expected namespace.key:value (e.g. grading.pipeline:A), got {part!r}", field="ext"
            )
        out[f"ext.{match.group(1)}"] = match.group(2)
    return out


# -- customers -------------------------------------------------------------------------------


def list_customers(request: ApiRequest) -> list[Customer]:
    crm = request.crm
    limit = query_int(request.query, "limit", 50, minimum=1, maximum=_max_page(crm))
    offset = query_int(request.query, "offset", 0, minimum=0)
    query: dict[str, Any] = {"status": "active"}
    if request.query.get("owner"):
        query["owner"] = request.query["owner"]
    if request.query.get("tag"):
        query["tags"] = request.query["tag"]
    query.update(ext_filters(request.query.get("ext")))
    q = (request.query.get("q") or "").strip()
    if not q:
        return crm.customers.find(
            query, sort=[("id", 1)], limit=limit, skip=offset, actor=request.actor
        )
    # best first, through the store's index on search keys (``crm.customers.search``)
    wanted = min(offset + limit, SEARCH_MAX)
    found = crm.customers.search(q, actor=request.actor, limit=wanted, filter=query)
    return list(found.customers[offset : offset + limit])


def create_customer(request: ApiRequest) -> Customer:
    fields = given(request.body)
    return request.crm.customers.add(actor=request.actor, **fields)


def get_customer(request: ApiRequest) -> Customer:
    return request.crm.customers.get(request.path["customer_id"], actor=request.actor)


def update_customer(request: ApiRequest) -> Customer:
    if request.if_match is None:
        raise PreconditionRequired("a customer")
    return request.crm.customers.update(
        request.path["customer_id"],
        actor=request.actor,
        expected_version=request.if_match,
        **given(request.body),
    )


def merge_customers(request: ApiRequest) -> Customer:
    keep_id = request.path["customer_id"]
    if request.if_match is not None:
        current = request.crm.customers.get(keep_id, actor=request.actor)
        if current.version != request.if_match:
            raise ConflictError(
                f"customer {keep_id} changed since you read it (version "
                f"{current.version}, you read {request.if_match}); reload"
            )
    return request.crm.customers.merge(keep_id, request.body.duplicate_id, actor=request.actor)


def forget_customer(request: ApiRequest) -> Customer:
    return request.crm.customers.forget(request.path["customer_id"], actor=request.actor)


# -- interactions ----------------------------------------------------------------------------


def list_interactions(request: ApiRequest) -> list[Interaction]:
    crm = request.crm
    customer_id = request.path["customer_id"]
    crm.customers.get(customer_id)  # 404 (or "merged into …") for an unknown customer
    kinds = [k for k in (request.query.get("kind") or "").split(",") if k]
    return crm.interactions.for_customer(
        customer_id,
        kinds=kinds or None,
        since=query_datetime(request.query, "since"),
        limit=query_int(request.query, "limit", 50, minimum=1, maximum=_max_page(crm)),
        actor=request.actor,
    )


def log_interaction(request: ApiRequest) -> Interaction:
    fields = given(request.body)
    return request.crm.interactions.log(
        actor=request.actor, customer_id=request.path["customer_id"], **fields
    )


# -- tasks -----------------------------------------------------------------------------------


def task_queue(request: ApiRequest) -> TaskQueue:
    crm = request.crm
    who = request.query.get("assignee") or request.actor
    days = query_int(request.query, "days", 7, minimum=0, maximum=366)
    limit = query_int(request.query, "limit", 100, minimum=1, maximum=_max_page(crm))
    now = crm.now()
    zone = ZoneInfo(crm.config.core.timezone)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    end_of_today = datetime.combine(tomorrow, time(), zone).astimezone(UTC)
    horizon = max(end_of_today, now + timedelta(days=days))
    base = {"status": TaskStatus.OPEN.value, "assignee": who}

    def find(due: dict[str, Any], sort: Any) -> list[Task]:
        query = crm.readable_filter(request.actor, {**base, "due_at": due}, owner_field="assignee")
        return crm.tasks.find(query, sort=sort, limit=limit)

    return TaskQueue(
        overdue=find({"$lt": now}, URGENCY),
        due_today=find({"$gte": now, "$lt": end_of_today}, URGENCY),
        upcoming=find({"$gte": end_of_today, "$lt": horizon}, [("due_at", 1)]),
    )


def get_task(request: ApiRequest) -> Task:
    return request.crm.tasks.get(request.path["task_id"], actor=request.actor)


def claim_task(request: ApiRequest) -> Task:
    crm = request.crm
    task = crm.tasks.get(request.path["task_id"], actor=request.actor)
    if task.assignee not in (None, request.actor):
        raise ConflictError(
            f"task {task.id} is assigned to {task.assignee}; ask a shift lead to reassign it"
        )
    return crm.tasks.assign(
        task.id, request.actor, actor=request.actor, expected_version=request.if_match
    )


def complete_task(request: ApiRequest) -> Task:
    return request.crm.tasks.complete(
        request.path["task_id"],
        actor=request.actor,
        outcome=request.body.outcome,
        expected_version=request.if_match,
    )


def reschedule_task(request: ApiRequest) -> Task:
    return request.crm.tasks.reschedule(
        request.path["task_id"],
        request.body.due_at,
        actor=request.actor,
        expected_version=request.if_match,
    )


def assign_task(request: ApiRequest) -> Task:
    return request.crm.tasks.assign(
        request.path["task_id"],
        request.body.assignee,
        actor=request.actor,
        expected_version=request.if_match,
    )


# -- reports ---------------------------------------------------------------------------------


def report(request: ApiRequest) -> Report:
    crm = request.crm
    crm.authorize(request.actor, "report.read", Resource("report"))
    at = query_datetime(request.query, "at") or crm.now()
    return Report(at=at, sections=build_report(crm, at))


# -- the table -------------------------------------------------------------------------------

_PAGE = (
    ApiParam("limit", "At most this many (default 50)", "integer"),
    ApiParam("offset", "Skip this many first", "integer"),
)
_IF_MATCH = (
    "the If-Match header (optional here) names the version you read; a stale one is answered 409"
)


def core_routes() -> list[ApiRoute]:
    """Every endpoint of the core, in the order the documentation lists them."""
    return [
        ApiRoute(
            "GET",
            "/customers",
            list_customers,
            "Search and filter customers",
            response=list[Customer],
            tag="customers",
            query=(
                ApiParam(
                    "q",
                    "A name or part of one, a phone (any way written, or its last 4+ digits) "
                    "or an e-mail; best matches first",
                ),
                ApiParam("owner", "Only customers of this rep"),
                ApiParam("tag", "Only customers with this tag"),
                ApiParam(
                    "ext",
                    "Filter on plugins' extension fields: namespace.key:value"
                    ", comma-separated (e.g. grading.pipeline:A)",
                ),
                *_PAGE,
            ),
        ),
        ApiRoute(
            "POST",
            "/customers",
            create_customer,
            "Add a customer",
            body=CustomerNew,
            response=Customer,
            status=201,
            tag="customers",
        ),
        ApiRoute(
            "GET",
            "/customers/{customer_id}",
            get_customer,
            "One customer (ETag: its version)",
            response=Customer,
            tag="customers",
        ),
        ApiRoute(
            "PATCH",
            "/customers/{customer_id}",
            update_customer,
            "Change a customer's fields; If-Match is required (428 without, 409 stale)",
            body=CustomerChanges,
            response=Customer,
            tag="customers",
        ),
        ApiRoute(
            "POST",
            "/customers/{customer_id}/merge",
            merge_customers,
            "Fold a duplicate into this customer; " + _IF_MATCH,
            body=MergeRequest,
            response=Customer,
            tag="customers",
        ),
        ApiRoute(
            "POST",
            "/customers/{customer_id}/forget",
            forget_customer,
            "Erase the customer's personal data everywhere (admins only)",
            response=Customer,
            tag="customers",
        ),
        ApiRoute(
            "GET",
            "/customers/{customer_id}/interactions",
            list_interactions,
            "The customer's contacts, newest first",
            response=list[Interaction],
            tag="interactions",
            query=(
                ApiParam("kind", "Only these kinds, comma-separated"),
                ApiParam("since", "Only contacts at or after this time (ISO 8601)"),
                ApiParam("limit", "At most this many (default 50)", "integer"),
            ),
        ),
        ApiRoute(
            "POST",
            "/customers/{customer_id}/interactions",
            log_interaction,
            "Record a contact (plugins react: grading, follow-ups, points …)",
            body=InteractionNew,
            response=Interaction,
            status=201,
            tag="interactions",
        ),
        ApiRoute(
            "GET",
            "/tasks/queue",
            task_queue,
            "My queue: overdue, due today, upcoming",
            response=TaskQueue,
            tag="tasks",
            query=(
                ApiParam(
                    "assignee",
                    "Whose queue (default: yours; the role policy decides what you may see)",
                ),
                ApiParam("days", "How far ahead 'upcoming' looks (default 7)", "integer"),
                ApiParam("limit", "At most this many per list (default 100)", "integer"),
            ),
        ),
        ApiRoute("GET", "/tasks/{task_id}", get_task, "One task", response=Task, tag="tasks"),
        ApiRoute(
            "POST",
            "/tasks/{task_id}/claim",
            claim_task,
            "Take an unassigned task (409 if someone else has it); " + _IF_MATCH,
            response=Task,
            tag="tasks",
        ),
        ApiRoute(
            "POST",
            "/tasks/{task_id}/complete",
            complete_task,
            "Mark a task done with its outcome; " + _IF_MATCH,
            body=Completion,
            response=Task,
            tag="tasks",
        ),
        ApiRoute(
            "POST",
            "/tasks/{task_id}/reschedule",
            reschedule_task,
            "Move a task's due time; " + _IF_MATCH,
            body=NewDueTime,
            response=Task,
            tag="tasks",
        ),
        ApiRoute(
            "POST",
            "/tasks/{task_id}/assign",
            assign_task,
            "Give a task to someone; " + _IF_MATCH,
            body=Assignment,
            response=Task,
            tag="tasks",
        ),
        ApiRoute(
            "GET",
            "/reports",
            report,
            "The report's sections (core and plugins) as JSON",
            response=Report,
            tag="reports",
            query=(ApiParam("at", "As of this time (ISO 8601; default now)"),),
        ),
    ]
