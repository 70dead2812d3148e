"""The complaint desk in the workspace (served by the ``web`` plugin through ``crm_web_pages``):
the desk's queue with SLA countdowns, the intake form, the ticket page with every action of the
flow as a form, and the complaints panel of the customer page.

Handlers use only the core's contribution types (``crmcore.registry``) and ``Complaints``, so
this module never imports the web plugin. Every action reads the ticket at the version the
form was drawn from, so a change someone made meanwhile is shown, never overwritten; a wrong
entry shows the form again with the error beside it (422) and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crmcore import ConflictError, NotFoundError, ValidationError
from crmcore.entities import Channel, Customer, Priority
from crmcore.i18n import Message, lazy, msg, translate
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
from crmcore_complaints.api import Complaints
from crmcore_complaints.desk import SCOPES, chase_trail, countdown, desk
from crmcore_complaints.model import ALLOWED_FROM, Claim, Emotion, Status, Ticket

HERE = Path(__file__).parent
DOMAIN = "crmcore_complaints"

STATUS_LABELS = {
    "registered": lazy("Registered"),
    "valid": lazy("Valid, to dispatch"),
    "dispatched": lazy("Dispatched"),
    "in_progress": lazy("In progress"),
    "resolved": lazy("Resolved, awaiting the customer"),
    "closed": lazy("Closed"),
}
CATEGORY_LABELS = {
    "product_quality": lazy("Product quality"),
    "service": lazy("Service"),
    "price": lazy("Price"),
    "false_advertising": lazy("False advertising"),
    "other": lazy("Other"),
    "billing_dispute": lazy("Billing dispute"),
    "return_refund": lazy("Return or refund"),
}
CHANNEL_LABELS = {
    "phone": lazy("Phone"),
    "email": lazy("E-mail"),
    "chat": lazy("Online chat"),
    "letter": lazy("Letter"),
    "in_person": lazy("In person"),
    "sms": lazy("SMS"),
    "web": lazy("Website"),
    "app": lazy("App"),
    "other": lazy("Other"),
}
CLAIM_LABELS = {
    "compensation": lazy("Compensation for the damage"),
    "repair_replace_redo": lazy("Repair, replace or redo"),
    "non_material_compensation": lazy("Non-material compensation (an apology)"),
}
EMOTION_LABELS = {
    "angry": lazy("Angry"),
    "anxious": lazy("Anxious"),
    "sad": lazy("Sad"),
    "loud": lazy("Loud"),
    "calm": lazy("Calm"),
}
PRIORITY_LABELS = {
    "low": lazy("Low"),
    "normal": lazy("Normal"),
    "high": lazy("High"),
    "urgent": lazy("Urgent"),
}
TARGET_LABELS = {"first_response": lazy("First response"), "resolution": lazy("Resolution")}
ROLE_LABELS = {
    "shift_lead": lazy("Shift lead"),
    "department_manager": lazy("Department manager"),
    "handler": lazy("Handler"),
    "dispatcher": lazy("Dispatcher"),
    "owner": lazy("Owner"),
}
SCOPE_LABELS = {"mine": lazy("Mine"), "team": lazy("My team"), "all": lazy("All I may see")}
ACTION_LABELS = {
    "registered": lazy("Registered"),
    "judged": lazy("Judged"),
    "dispatched": lazy("Dispatched"),
    "responded": lazy("Answered the customer"),
    "chased": lazy("Chased"),
    "proposed": lazy("Proposed a solution"),
    "approved": lazy("Decided on a solution"),
    "resolved": lazy("Resolved"),
    "closed": lazy("Closed"),
    "reopened": lazy("Reopened"),
    "waiting": lazy("Waiting on the customer"),
    "resumed": lazy("Resumed"),
    "note": lazy("Note"),
    "callback": lazy("Customer's answer"),
    "escalated": lazy("Escalated"),
    "sla_breached": lazy("SLA target missed"),
    "handed_over": lazy("Handed over"),
}


def message_of(exc: ValidationError, gettext: Callable[[str], str] | None = None) -> str:
    """The error's message without the ``field: `` prefix (the form shows it by the field),
    in the page's language when the API raised it as a message (``msg(...)``)."""
    if gettext is not None and isinstance(exc.message, Message):
        return translate(exc.message, gettext)
    text = str(exc)
    prefix = f"{exc.field}: " if exc.field else ""
    return text[len(prefix) :] if prefix and text.startswith(prefix) else text


def label(labels: Mapping[str, Any], value: Any) -> str:
    """The translated label of a code, or the code made readable (``billing_dispute`` →
    ``billing dispute``) for one configured locally."""
    key = str(getattr(value, "value", value) or "")
    found = labels.get(key)
    return str(found) if found is not None else key.replace("_", " ")


# -- contributions ---------------------------------------------------------------------------


def pages() -> list[WebPage]:
    out = [
        WebPage("/complaints", desk_page, name="complaints_desk"),
        WebPage("/complaints/new", intake_page, methods=("GET", "POST"), name="complaints_new"),
        WebPage("/complaints/{ticket_id}", ticket_page, name="complaints_ticket"),
    ]
    out += [
        WebPage(f"/complaints/{{ticket_id}}/{name}", _action_page(name, act), methods=("POST",))
        for name, act in ACTIONS.items()
    ]
    return out


def nav_entries() -> list[NavEntry]:
    return [NavEntry("/complaints", lazy("Complaint desk"), order=30)]


def panels() -> list[CustomerPanel]:
    return [CustomerPanel("complaints", lazy("Complaints"), customer_panel, order=40)]


def templates() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def translations() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", DOMAIN)]


# -- the desk ---------------------------------------------------------------------------------


def desk_page(request: PageRequest) -> Render:
    api = Complaints.of(request.crm)
    q = request.query
    scope = q.get("scope") or "mine"
    if scope not in SCOPES:
        raise ValidationError(
            msg(
                "unknown view %(scope)s (allowed: %(allowed)s)",
                scope=repr(scope),
                allowed=", ".join(SCOPES),
            ),
            field="scope",
        )
    status = q.get("status") or None
    if status is not None and status not in STATUS_LABELS:
        raise ValidationError(msg("unknown status %(status)s", status=repr(status)), field="status")
    category = q.get("category") or None
    if category is not None and category not in api.settings.all_categories:
        raise ValidationError(
            msg("unknown category %(category)s", category=repr(category)), field="category"
        )
    overdue = q.get("overdue") == "1"
    rows = desk(
        api,
        request.actor,
        scope=scope,
        status=status,
        category=category,
        overdue=overdue,
        now=request.now,
    )
    names = _names(request, (r.ticket.customer_id for r in rows))
    return Render(
        "complaints/desk.html",
        {
            "rows": rows,
            "names": names,
            "scope": scope,
            "status": status,
            "category": category,
            "overdue": overdue,
            **_choices(api),
        },
    )


def _choices(api: Complaints) -> dict[str, Any]:
    return {
        "scopes": [(s, label(SCOPE_LABELS, s)) for s in SCOPES],
        "statuses": [(s.value, label(STATUS_LABELS, s)) for s in Status],
        "categories": [(c, label(CATEGORY_LABELS, c)) for c in api.settings.all_categories],
        "channels": [(c.value, label(CHANNEL_LABELS, c)) for c in Channel],
        "claims": [(c.value, label(CLAIM_LABELS, c)) for c in Claim],
        "emotions": [(e.value, label(EMOTION_LABELS, e)) for e in Emotion],
        "priorities": [(p.name.lower(), label(PRIORITY_LABELS, p.name.lower())) for p in Priority],
        "departments": list(api.settings.departments),
        "label": label,
        "status_labels": STATUS_LABELS,
        "category_labels": CATEGORY_LABELS,
        "target_labels": TARGET_LABELS,
        "role_labels": ROLE_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "action_labels": ACTION_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "claim_labels": CLAIM_LABELS,
        "emotion_labels": EMOTION_LABELS,
    }


def _names(request: PageRequest, ids: Any) -> dict[str, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    found = request.crm.customers.find({"id": {"$in": wanted}}, include_inactive=True)
    return {c.id: c.name for c in found}


# -- intake -----------------------------------------------------------------------------------


def intake_page(request: PageRequest) -> Render | Redirect:
    api = Complaints.of(request.crm)
    if request.method == "GET":
        values = {
            "customer_id": request.query.get("customer_id", ""),
            "channel": "phone",
            "category": api.settings.default_category,
            "priority": api.settings.default_priority,
        }
        return _intake(request, api, values, {}, request.query.get("find", ""))
    form = request.form
    values = dict(form)
    emotions = request.form_list("emotions")
    values["emotions"] = emotions  # type: ignore[assignment]
    if form.get("find_customer"):  # the search button of the form: look the customer up
        return _intake(request, api, values, {}, form.get("find", ""))
    errors: dict[str, str] = {}
    customer_id = (form.get("customer_id") or "").strip()
    if not customer_id:
        errors["customer_id"] = request.gettext("Choose the customer who complains.")
    if not (form.get("content") or "").strip():
        errors["content"] = request.gettext("Say what the customer complains about.")
    if errors:
        return _intake(request, api, values, errors, form.get("find", ""), status=422)
    try:
        ticket = api.open(
            actor=request.actor,
            customer_id=customer_id,
            content=form.get("content", ""),
            category=form.get("category") or None,
            channel=form.get("channel") or "other",
            claim=form.get("claim") or None,
            emotions=emotions,
            priority=form.get("priority") or None,
            complainant=(form.get("complainant") or "").strip() or None,
            contact=(form.get("contact") or "").strip() or None,
        )
    except NotFoundError:
        errors["customer_id"] = request.gettext("No such customer: choose one from the list.")
        return _intake(request, api, values, errors, form.get("find", ""), status=422)
    except ValidationError as exc:
        errors[exc.field or "form"] = message_of(exc, request.gettext)
        return _intake(request, api, values, errors, form.get("find", ""), status=422)
    return Redirect(
        f"/complaints/{ticket.id}",
        notice=request.gettext("Complaint registered: %(id)s") % {"id": ticket.id},
    )


def _intake(
    request: PageRequest,
    api: Complaints,
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    find: str,
    status: int = 200,
) -> Render:
    customer = None
    if values.get("customer_id"):
        try:
            customer = request.crm.customers.get(str(values["customer_id"]), actor=request.actor)
        except NotFoundError:
            customer = None
    matches = find_customers(request, find) if find.strip() else []
    return Render(
        "complaints/new.html",
        {
            "values": values,
            "errors": errors,
            "customer": customer,
            "find": find,
            "matches": matches,
            "searched": bool(find.strip()),
            **_choices(api),
        },
        status=status,
    )


def find_customers(request: PageRequest, text: str, limit: int = 20) -> list[Customer]:
    """Active customers whose phone or e-mail is ``text`` (normalised as everywhere), or whose
    name is exactly ``text``; only those the signed-in person may read."""
    text = text.strip()
    found: dict[str, Customer] = {}
    crm = request.crm
    looks_like = ("@" in text and "email") or "phone"
    try:
        for c in crm.customers.find_by_contact(**{looks_like: text}, actor=request.actor):
            found[c.id] = c
    except ValidationError:
        pass  # not a phone number or e-mail: try the name
    for c in crm.customers.find({"name": text}, limit=limit, actor=request.actor):
        found.setdefault(c.id, c)
    return list(found.values())[:limit]


# -- the ticket page --------------------------------------------------------------------------


def ticket_page(request: PageRequest) -> Render:
    api = Complaints.of(request.crm)
    ticket = api.get(request.path["ticket_id"], actor=request.actor)
    return _ticket(request, api, ticket, {}, {})


def _ticket(
    request: PageRequest,
    api: Complaints,
    ticket: Ticket,
    errors: Mapping[str, str],
    values: Mapping[str, str],
    status: int = 200,
) -> Render:
    customer = request.crm.customers.get_any(ticket.customer_id)
    purchases = request.crm.interactions.for_customer(
        ticket.customer_id, kinds=list(api.settings.purchase_kinds), limit=20
    )
    allowed = {action for action, statuses in ALLOWED_FROM.items() if ticket.status in statuses}
    if ticket.pending_proposal is None:
        allowed.discard("approve")
    if ticket.waiting_since is None:
        allowed.discard("resume")
    else:
        allowed.discard("wait")
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        allowed.add("feedback")
    return Render(
        "complaints/ticket.html",
        {
            "ticket": ticket,
            "customer": customer,
            "state": api.state(ticket, request.now),
            "countdown": countdown(ticket, request.now),
            "chases": chase_trail(api, ticket),
            "traces": api.history(ticket.id),
            "allowed": allowed,
            "errors": errors,
            "values": values,
            "purchases": purchases,
            "require_approval": api.settings.require_approval,
            **_choices(api),
        },
        status=status,
    )


def _number(form: Mapping[str, str], name: str, *, whole: bool = False) -> Any:
    text = (form.get(name) or "").strip()
    if not text:
        return None
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        expected = (
            msg("expected a whole number, got %(text)s", text=repr(text))
            if whole
            else msg("expected a number, got %(text)s", text=repr(text))
        )
        raise ValidationError(expected, field=name) from None
    return value


def _flag(form: Mapping[str, str], name: str) -> bool | None:
    text = form.get(name)
    return None if text in (None, "") else text in ("1", "true", "yes", "on")


Act = Callable[[Complaints, Ticket, Mapping[str, str], str], Ticket]


def _judge(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    valid = _flag(f, "valid")
    if valid is None:
        raise ValidationError(msg("say whether the complaint is valid"), field="valid")
    return api.judge(
        t,
        actor=actor,
        valid=valid,
        explanation=f.get("explanation") or None,
        department=f.get("department") or None,
        category=f.get("category") or None,
    )


def _dispatch(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    return api.dispatch(
        t,
        actor=actor,
        department=f.get("department") or None,
        handler=(f.get("handler") or "").strip() or None,
        priority=f.get("priority") or None,
        force=bool(_flag(f, "force")),
    )


def _propose(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    refund = _number(f, "refund")
    return api.propose(
        t,
        actor=actor,
        solution=f.get("solution", ""),
        compensation=_number(f, "compensation"),
        refund=refund,
        purchase_id=(f.get("purchase_id") or None) if refund else None,
    )


def _approve(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    return api.approve(
        t, actor=actor, approve=f.get("decision", "approve") != "reject", reason=f.get("reason", "")
    )


def _resolve(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    approved = t.approved_proposal
    refund = approved.refund if approved is not None and approved.refund else None
    return api.resolve(
        t,
        actor=actor,
        resolution=f.get("resolution") or None,
        compensation=_number(f, "compensation"),
        cause=(f.get("cause") or "").strip() or None,
        refund=refund,
        purchase_id=approved.purchase_id if refund and approved else None,
    )


def _feedback(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    score = _number(f, "score", whole=True)
    if score is not None and not 1 <= score <= 5:
        raise ValidationError(msg("a score is 1 to 5, got %(score)s", score=score), field="score")
    return api.record_callback(
        t, actor=actor, score=score, satisfied=_flag(f, "satisfied"), note=f.get("note", "")
    )


def _note(api: Complaints, t: Ticket, f: Mapping[str, str], actor: str) -> Ticket:
    api.note(t, actor=actor, note=f.get("note", ""))
    return t


ACTIONS: dict[str, Act] = {
    "judge": _judge,
    "dispatch": _dispatch,
    "respond": lambda api, t, f, a: api.respond(t, actor=a, message=f.get("message", "")),
    "chase": lambda api, t, f, a: api.chase(t, actor=a, note=f.get("note", "")),
    "propose": _propose,
    "approve": _approve,
    "resolve": _resolve,
    "close": lambda api, t, f, a: api.close(t, actor=a, note=f.get("note", "")),
    "feedback": _feedback,
    "reopen": lambda api, t, f, a: api.reopen(t, actor=a, reason=f.get("reason", "")),
    "wait": lambda api, t, f, a: api.wait_on_customer(t, actor=a, reason=f.get("reason", "")),
    "resume": lambda api, t, f, a: api.resume(t, actor=a, note=f.get("note", "")),
    "note": _note,
}

DONE = {
    "judge": lazy("Judged."),
    "dispatch": lazy("Dispatched."),
    "respond": lazy("Answer recorded."),
    "chase": lazy("Chased."),
    "propose": lazy("Solution proposed."),
    "approve": lazy("Decision recorded."),
    "resolve": lazy("Resolved."),
    "close": lazy("Closed."),
    "feedback": lazy("The customer's answer is recorded."),
    "reopen": lazy("Reopened."),
    "wait": lazy("The SLA clocks are stopped."),
    "resume": lazy("The SLA clocks run again."),
    "note": lazy("Note added."),
}


def _action_page(name: str, act: Act) -> Callable[[PageRequest], Render | Redirect]:
    def handler(request: PageRequest) -> Render | Redirect:
        api = Complaints.of(request.crm)
        ticket_id = request.path["ticket_id"]
        version = _number(request.form, "version", whole=True)
        try:
            ticket = api.get(ticket_id, actor=request.actor, version=version)
            act(api, ticket, request.form, request.actor)
        except (ValidationError, ConflictError) as exc:
            current = api.get(ticket_id, actor=request.actor)
            message = message_of(exc, request.gettext) if isinstance(exc, ValidationError) else ""
            if isinstance(exc, ConflictError):
                message = request.gettext(
                    "Someone changed this ticket while you were working "
                    "on it; check it below and try again."
                )
            status = 409 if isinstance(exc, ConflictError) else 422
            return _ticket(
                request, api, current, {name: message}, dict(request.form), status=status
            )
        return Redirect(f"/complaints/{ticket_id}", notice=str(DONE[name]))

    handler.__name__ = f"complaint_{name}"
    return handler


# -- the customer page's panel ----------------------------------------------------------------


def customer_panel(request: PageRequest, customer: Any) -> Render | None:
    api = Complaints.of(request.crm)
    tickets = api.find(customer_id=customer.id, actor=request.actor)
    open_ = [t for t in tickets if t.is_open]
    closed = [t for t in tickets if not t.is_open][-5:]
    return Render(
        "complaints/panel.html",
        {
            "customer": customer,
            "open_tickets": open_,
            "closed_tickets": list(reversed(closed)),
            "countdowns": {t.id: countdown(t, request.now) for t in open_},
            "label": label,
            "status_labels": STATUS_LABELS,
            "category_labels": CATEGORY_LABELS,
            "target_labels": TARGET_LABELS,
        },
    )
