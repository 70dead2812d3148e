"""Callbacks and the shift handover in the workspace (served by the ``web`` plugin through
``crm_web_pages``), and the followup panel of the customer page.

- ``/followup/callbacks``: open callbacks, most urgent first; each opens its script
  (``scripts.script_for``) with the satisfied / unsatisfied answer and the score. Recording an
  unsatisfied answer does what the plugin does (``recovery``) and the page says what it did.
- ``/followup/handover``: the outgoing rep's open items and note, handed to the incoming rep
  (``handovers``), who accepts them.

Only the core's contribution types (``crmcore.registry``) are used: no import of the web
plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from crmcore import Channel, Customer, NotFoundError, Task, TaskStatus, ValidationError
from crmcore.i18n import N_, Message, lazy, translate
from crmcore.registry import (
    CustomerPanel,
    NavEntry,
    PageRequest,
    Redirect,
    Render,
    TemplateFolder,
    TranslationCatalog,
    WebPage,
)
from crmcore.tasks import URGENCY
from crmcore_followup import handovers
from crmcore_followup.api import handover, open_callbacks, record_callback
from crmcore_followup.engine import NAMESPACE
from crmcore_followup.records import SCHEDULE, Schedule
from crmcore_followup.reps import Roster
from crmcore_followup.scripts import Outcome, occasion_of, outcome_of, script_for

HERE = Path(__file__).parent
DOMAIN = "crmcore_followup"
LEAD_ROLES = ("shift_lead", "manager", "admin")

OCCASION_LABELS = {
    "complaint": lazy("After a complaint"),
    "purchase": lazy("After a purchase"),
    "treatment": lazy("After a treatment"),
    "business": lazy("After a service"),
    "general": lazy("Callback"),
}
CHANNEL_LABELS = {
    "phone": lazy("Phone"),
    "sms": lazy("SMS"),
    "chat": lazy("Online chat"),
    "email": lazy("E-mail"),
    "in_person": lazy("In person"),
}


#: The workspace's one-click outcomes, which the summary of a callback completed from My day
#: holds: marked for the catalog, so the panel and the script show them translated.
OUTCOME_WORDS = (N_("reached"), N_("no_answer"), N_("call_back_later"), N_("not_interested"))


def said(request: PageRequest, exc: ValidationError) -> str:
    """A refusal in the page's language when raised as a message (``msg(...)``)."""
    if isinstance(exc.message, Message):
        return translate(exc.message, request.gettext)
    return str(exc)


def label(labels: Mapping[str, Any], value: Any) -> str:
    key = str(value or "")
    found = labels.get(key)
    return str(found) if found is not None else key.replace("_", " ")


def kind_labeller(request: PageRequest) -> Callable[[str], str]:
    """A task kind as the reader says it: the label the declaring plugin gave it
    (``Kinds.task_labels``), in the page's language."""
    return lambda kind: request.gettext(request.crm.task_kind_label(kind))


def pages() -> list[WebPage]:
    return [
        WebPage("/followup/callbacks", callbacks_page, name="followup_callbacks"),
        WebPage(
            "/followup/callbacks/{task_id}",
            callback_page,
            methods=("GET", "POST"),
            name="followup_callback",
        ),
        WebPage(
            "/followup/handover", handover_page, methods=("GET", "POST"), name="followup_handover"
        ),
        WebPage("/followup/handover/{handover_id}/accept", accept_page, methods=("POST",)),
    ]


def nav_entries() -> list[NavEntry]:
    return [
        NavEntry("/followup/callbacks", lazy("Callbacks"), order=40),
        NavEntry("/followup/handover", lazy("Shift handover"), order=45),
    ]


def panels() -> list[CustomerPanel]:
    return [CustomerPanel("followup", lazy("Follow-up and callbacks"), customer_panel, order=30)]


def templates() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def translations() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", DOMAIN)]


def _customers(request: PageRequest, ids: Iterable[str | None]) -> dict[str, Customer]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {
        c.id: c for c in request.crm.customers.find({"id": {"$in": wanted}}, include_inactive=True)
    }


# -- callbacks --------------------------------------------------------------------------------


def callbacks_page(request: PageRequest) -> Render:
    lead = request.role in LEAD_ROLES
    everyone = lead and request.query.get("scope") == "all"
    overdue = request.query.get("overdue") == "1"
    tasks = open_callbacks(
        request.crm,
        assignee=None if everyone else request.actor,
        overdue=overdue,
        limit=200,
        actor=request.actor,
    )
    customers = _customers(request, (t.customer_id for t in tasks))
    rows = [
        {
            "task": t,
            "customer": customers.get(t.customer_id or ""),
            "occasion": label(OCCASION_LABELS, occasion_of(request.crm, t)),
            "key": bool(t.ext.get(NAMESPACE, {}).get("key_customer")),
            "overdue": t.due_at < request.now,
        }
        for t in tasks
    ]
    return Render(
        "followup/callbacks.html",
        {"rows": rows, "lead": lead, "everyone": everyone, "overdue": overdue},
    )


def callback_page(request: PageRequest) -> Render | Redirect:
    crm = request.crm
    task = crm.tasks.get(request.path["task_id"], actor=request.actor)
    if task.kind != "callback":
        raise NotFoundError(f"task {task.id} is a {task.kind} task, not a callback")
    if request.method == "GET" or not task.is_open:
        return _callback(request, task, {}, {})
    form = request.form
    errors: dict[str, str] = {}
    answer = form.get("satisfied", "")
    if answer not in ("1", "0"):
        errors["satisfied"] = request.gettext("Say whether the customer is satisfied.")
    score: int | None = None
    if form.get("score"):
        try:
            score = int(form["score"])
        except ValueError:
            score = 0
        if not 1 <= score <= 5:
            errors["score"] = request.gettext("A score is 1 to 5.")
    channel = form.get("channel") or "phone"
    if channel not in CHANNEL_LABELS:
        errors["channel"] = request.gettext("Choose how you reached the customer.")
    if errors:
        return _callback(request, task, errors, form, status=422)
    try:
        interaction, _done = record_callback(
            crm,
            task.id,
            satisfied=answer == "1",
            score=score,
            notes=form.get("notes", ""),
            channel=Channel(channel),
            actor=request.actor,
        )
    except ValidationError as exc:
        errors[exc.field or "form"] = said(request, exc)
        return _callback(request, task, errors, form, status=422)
    outcome = outcome_of(crm, interaction)
    return Redirect(f"/followup/callbacks/{task.id}", notice=outcome_text(request, outcome))


def outcome_text(request: PageRequest, outcome: Outcome) -> str:
    """One sentence saying what recording the answer did."""
    _ = request.gettext
    if not outcome.unsatisfied:
        return _("Recorded: the customer is satisfied.")
    parts = [_("Recorded: the customer is not satisfied.")]
    if outcome.task is not None:
        if outcome.task.assignee:
            parts.append(
                _("A recovery task was created for %(name)s.") % {"name": outcome.task.assignee}
            )
        else:
            parts.append(_("A recovery task waits in the shared queue: no team lead is set."))
    elif outcome.kind == "ticket":
        parts.append(_("A complaint was logged for the complaint desk."))
    if outcome.reopens:
        parts.append(_("Complaint %(id)s is reopened.") % {"id": outcome.reopens})
    if len(parts) == 1:
        parts.append(_("Nothing else follows (unsatisfied answers lead nowhere here)."))
    return " ".join(parts)


def _callback(
    request: PageRequest,
    task: Task,
    errors: Mapping[str, str],
    values: Mapping[str, str],
    status: int = 200,
) -> Render:
    crm = request.crm
    customer = crm.customers.get_any(task.customer_id) if task.customer_id else None
    recorded = None
    outcome = None
    if not task.is_open and task.customer_id:
        found = crm.interactions.find(
            {
                "customer_id": task.customer_id,
                "kind": "callback",
                f"ext.{NAMESPACE}.task_id": task.id,
            },
            limit=1,
        )
        if found:
            recorded = found[0]
            outcome = outcome_of(crm, recorded)
    previous = []
    if customer is not None:
        previous = [
            i
            for i in crm.interactions.for_customer(customer.id, kinds=["callback"], limit=6)
            if recorded is None or i.id != recorded.id
        ][:5]
    return Render(
        "followup/callback.html",
        {
            "task": task,
            "customer": customer,
            "script": script_for(crm, task),
            "occasion": label(OCCASION_LABELS, occasion_of(crm, task)),
            "errors": errors,
            "values": values,
            "recorded": recorded,
            "outcome": outcome,
            "outcome_text": outcome_text(request, outcome) if outcome else "",
            "previous": previous,
            "channels": [(k, str(v)) for k, v in CHANNEL_LABELS.items()],
            "key": bool(task.ext.get(NAMESPACE, {}).get("key_customer")),
        },
        status=status,
    )


# -- shift handover ---------------------------------------------------------------------------


def handover_page(request: PageRequest) -> Render | Redirect:
    if request.method == "GET":
        return _handover(request, {}, {})
    form = request.form
    try:
        written = handovers.write(
            request.crm,
            actor=request.actor,
            to_rep=form.get("to_rep", ""),
            note=form.get("note", ""),
        )
    except ValidationError as exc:
        return _handover(request, {exc.field or "form": said(request, exc)}, form, status=422)
    return Redirect(
        "/followup/handover",
        notice=request.gettext("Handed over to %(name)s: %(count)s open items.")
        % {"name": written.to_rep, "count": len(written.task_ids)},
    )


def accept_page(request: PageRequest) -> Redirect:
    accepted = handovers.accept(request.crm, request.path["handover_id"], actor=request.actor)
    return Redirect(
        "/followup/handover",
        notice=request.gettext("Handover from %(name)s accepted: %(count)s items are yours now.")
        % {"name": accepted.from_rep, "count": accepted.moved},
    )


def _handover(
    request: PageRequest, errors: Mapping[str, str], values: Mapping[str, str], status: int = 200
) -> Render:
    crm = request.crm
    mine = handover(crm, rep=request.actor, actor=request.actor)
    waiting = handovers.waiting_for(crm, request.actor)
    written = handovers.written_by(crm, request.actor, limit=5)
    ids = {i for h in waiting for i in h.task_ids}
    items = {t.id: t for t in crm.tasks.find({"id": {"$in": sorted(ids)}})} if ids else {}
    tasks: list[Task] = [*mine.urgent, *items.values()]
    customers = _customers(
        request, [t.customer_id for t in tasks] + [p.customer_id for p in mine.prospects]
    )
    reps = sorted(r.name for r in Roster(crm).all() if r.name != request.actor)
    return Render(
        "followup/handover.html",
        {
            "shift": mine,
            "waiting": waiting,
            "written": written,
            "items": items,
            "customers": customers,
            "reps": reps,
            "errors": errors,
            "values": values,
            "kind_label": kind_labeller(request),
        },
        status=status,
    )


# -- the customer page's panel ----------------------------------------------------------------


def customer_panel(request: PageRequest, customer: Any) -> Render | None:
    crm = request.crm
    query = crm.readable_filter(
        request.actor,
        {"customer_id": customer.id, "status": TaskStatus.OPEN.value},
        owner_field="assignee",
    )
    open_tasks = crm.tasks.find(query, sort=URGENCY, limit=20)
    callbacks = crm.interactions.for_customer(customer.id, kinds=["callback"], limit=5)
    schedule = crm.records(SCHEDULE, Schedule).find_one({"customer_id": customer.id})
    return Render(
        "followup/panel.html",
        {
            "customer": customer,
            "open_tasks": open_tasks,
            "callbacks": callbacks,
            "schedule": schedule,
            "kind_label": kind_labeller(request),
        },
    )
