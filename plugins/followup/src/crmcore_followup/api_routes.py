"""The followup plugin's JSON API routes (``crm_api_routes``), served under ``/api/v1``.

Each handler calls ``crmcore_followup.api`` acting as the request's actor: lists are narrowed
to the tasks the actor may read, recording a callback is checked as logging the interaction
and completing the task (``[security] enforce``).
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from crmcore import ApiParam, ApiRequest, ApiRoute, Channel, Interaction, Task
from crmcore.api import query_bool, query_datetime, query_int, query_text
from crmcore_followup import api
from crmcore_followup.api import GradeCounts, Handover

TAG = "followup"


@attrs.frozen
class CallbackOutcomeBody:
    """The customer's answer on a callback (DOMAIN §3: the script branches on it)."""

    satisfied: bool
    score: int | None = None  # 1 (worst) to 5
    notes: str = ""
    channel: Channel = Channel.PHONE


@attrs.frozen
class CallbackOutcome:
    """The ``callback`` interaction logged and the completed task."""

    interaction: Interaction
    task: Task


def _names(text: str | None) -> list[str] | None:
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or None


def queue(request: ApiRequest) -> list[Task]:
    q = request.query
    everyone = query_bool(q, "all", False)
    assignee = query_text(q, "assignee") or (None if everyone else request.actor)
    hours = query_int(q, "within_hours", minimum=0, maximum=24 * 366)
    return api.due_tasks(
        request.crm,
        assignee=assignee,
        kinds=_names(q.get("kind")),
        customer_id=query_text(q, "customer_id"),
        grades=_names(q.get("grade")),
        overdue=bool(query_bool(q, "overdue")),
        within=None if hours is None else timedelta(hours=hours),
        limit=query_int(q, "limit", 50, minimum=1, maximum=500),
        actor=request.actor,
    )


def callbacks(request: ApiRequest) -> list[Task]:
    q = request.query
    return api.open_callbacks(
        request.crm,
        assignee=query_text(q, "assignee"),
        key_only=bool(query_bool(q, "key")),
        overdue=bool(query_bool(q, "overdue")),
        limit=query_int(q, "limit", 50, minimum=1, maximum=500),
        actor=request.actor,
    )


def callback_outcome(request: ApiRequest) -> CallbackOutcome:
    body: CallbackOutcomeBody = request.body
    interaction, task = api.record_callback(
        request.crm,
        request.path["task_id"],
        satisfied=body.satisfied,
        score=body.score,
        notes=body.notes,
        channel=body.channel,
        actor=request.actor,
    )
    return CallbackOutcome(interaction, task)


def handover(request: ApiRequest) -> Handover:
    q = request.query
    return api.handover(
        request.crm,
        until=query_datetime(q, "until"),
        rep=query_text(q, "rep"),
        team=query_text(q, "team"),
        actor=request.actor,
    )


def overdue_by_grade(request: ApiRequest) -> list[GradeCounts]:
    return api.overdue_by_grade(request.crm)


def routes() -> list[ApiRoute]:
    """Every followup route."""
    limit = ApiParam("limit", "at most this many (default 50)", type="integer")
    overdue = ApiParam("overdue", "only those past due", type="boolean")
    return [
        ApiRoute(
            "GET",
            "/followup/queue",
            queue,
            "A rep's due queue, most urgent first "
            "(open tasks due now, with a filter on the customers' pipeline grade)",
            response=list[Task],
            tag=TAG,
            query=[
                ApiParam("assignee", "whose queue (default: the caller's own)"),
                ApiParam("all", "every assignee's tasks the caller may read", type="boolean"),
                ApiParam("kind", "only these task kinds, comma-separated"),
                ApiParam(
                    "grade",
                    "only customers of these pipeline grades, "
                    "comma-separated ('ungraded' for none)",
                ),
                ApiParam("customer_id", "only this customer's tasks"),
                overdue,
                ApiParam("within_hours", "also tasks due within this many hours", type="integer"),
                limit,
            ],
        ),
        ApiRoute(
            "GET",
            "/followup/callbacks",
            callbacks,
            "Open callbacks, most urgent first",
            response=list[Task],
            tag=TAG,
            query=[
                ApiParam("assignee", "only callbacks assigned to this rep"),
                ApiParam("key", "only key customers' callbacks", type="boolean"),
                overdue,
                limit,
            ],
        ),
        ApiRoute(
            "POST",
            "/followup/callbacks/{task_id}/outcome",
            callback_outcome,
            "Record a callback's outcome (satisfied or not, score 1-5, notes): logs a "
            "'callback' interaction and completes the task",
            body=CallbackOutcomeBody,
            response=CallbackOutcome,
            tag=TAG,
        ),
        ApiRoute(
            "GET",
            "/followup/handover",
            handover,
            "Shift handover: urgent open items and prospects to contact before the shift ends",
            response=Handover,
            tag=TAG,
            query=[
                ApiParam(
                    "until",
                    "end of the next shift, ISO 8601 with a time zone "
                    "(default: [followup] shift_hours from now)",
                ),
                ApiParam("rep", "only items assigned to this rep"),
                ApiParam("team", "only items assigned to reps of this team"),
            ],
        ),
        ApiRoute(
            "GET",
            "/followup/overdue-by-grade",
            overdue_by_grade,
            "Follow-ups due and overdue per pipeline grade (DOMAIN §7)",
            response=list[GradeCounts],
            tag=TAG,
        ),
    ]
