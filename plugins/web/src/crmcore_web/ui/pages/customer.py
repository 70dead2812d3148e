"""The customer page (``/customers/{id}``): the file, history, open tasks and every plugin's
panel; editing with version-conflict handling; logging a contact or a purchase."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmcore.entities import Channel, Customer
from crmcore.errors import ConflictError, ValidationError
from crmcore.i18n import Message, lazy, msg, restored, translate
from crmcore.logs import get_logger
from crmcore.registry import PageRequest, Redirect, Render, SummaryLine, WebPage
from crmcore_web.ui.pages import people
from crmcore_web.ui.pages.my_day import OUTCOMES

log = get_logger("web")

#: The fields the edit form shows, with their labels, in order.
EDIT_FIELDS: tuple[tuple[str, Any], ...] = (
    ("name", lazy("Name")),
    ("phone", lazy("Phone")),
    ("email", lazy("E-mail")),
    ("address", lazy("Address")),
    ("birth_date", lazy("Birth date")),
    ("gender", lazy("Gender")),
    ("region", lazy("Region")),
    ("occupation", lazy("Occupation")),
    ("organisation", lazy("Organisation")),
    ("owner", lazy("Rep")),
    ("tags", lazy("Tags")),
    ("timezone", lazy("Time zone")),
    ("do_not_contact", lazy("Do not contact")),
    ("notes", lazy("Notes")),
)
CONTACT_FIELDS = ("kind", "channel", "summary", "amount", "satisfaction", "occurred_at")
GENDERS = (
    ("", lazy("Not given")),
    ("female", lazy("Female")),
    ("male", lazy("Male")),
    ("other", lazy("Other")),
)
CHANNELS = {
    "phone": lazy("Phone"),
    "email": lazy("E-mail"),
    "chat": lazy("Chat"),
    "sms": lazy("SMS"),
    "letter": lazy("Letter"),
    "in_person": lazy("In person"),
    "web": lazy("Web"),
    "app": lazy("App"),
    "other": lazy("Other"),
}
KINDS = {
    "purchase": lazy("Purchase"),
    "consultation": lazy("Consultation"),
    "complaint": lazy("Complaint"),
    "callback": lazy("Callback"),
    "care": lazy("Care"),
    "visit": lazy("Visit"),
    "inquiry": lazy("Inquiry"),
    "feedback": lazy("Feedback"),
    "follow_up": lazy("Follow-up"),
    "refund": lazy("Refund"),
    "treatment": lazy("Treatment"),
    "business": lazy("Business"),
    "billing": lazy("Billing"),
    "event": lazy("Event"),
    "survey": lazy("Survey"),
    "referral": lazy("Referral"),
    "note": lazy("Note"),
    "other": lazy("Other"),
}


#: The one-click outcomes of My day, shown by their labels where a contact's summary is one.
OUTCOME_LABELS = dict(OUTCOMES)


def pages() -> list[WebPage]:
    return [
        WebPage("/customers/{customer_id}", show, name="customer"),
        WebPage("/customers/{customer_id}/edit", edit, methods=("GET", "POST")),
        WebPage("/customers/{customer_id}/interactions", log_contact, methods=("POST",)),
    ]


def kind_label(kind: str) -> str:
    """A contact kind as people say it (``return_refund`` -> ``Return refund``)."""
    label = KINDS.get(kind)
    return str(label) if label is not None else kind.replace("_", " ").capitalize()


def summary_text(summary: str | None) -> str:
    """A contact's summary as shown: a task outcome picked with one click (``reached``,
    logged as the summary of the follow-up) by its label; a summary a plugin wrote as a
    message id of its catalog (loyalty's "referred a new customer") in the page's language;
    anything typed as it was."""
    label = OUTCOME_LABELS.get(summary or "")
    return str(label) if label is not None else restored(summary or "")


def channel_label(channel: str) -> str:
    label = CHANNELS.get(channel)
    return str(label) if label is not None else channel


def field_text(customer: Customer, name: str) -> str:
    """A field's value as the edit form shows it."""
    value = getattr(customer, name)
    if value is None:
        return ""
    if name == "tags":
        return ", ".join(value)
    if name == "gender":
        return str(value.value)
    if name == "do_not_contact":
        return "yes" if value else ""
    return str(value)


def _contact_form(request: PageRequest, values: dict[str, str] | None = None) -> dict[str, Any]:
    kinds = sorted(request.crm.interaction_kinds, key=lambda k: (k != "purchase", k))
    return {
        "kinds": [(k, kind_label(k)) for k in kinds],
        "channels": [(c.value, channel_label(c.value)) for c in Channel],
        "contact": {
            **dict.fromkeys(CONTACT_FIELDS, ""),
            "kind": "purchase",
            "channel": "phone",
            **(values or {}),
        },
    }


def page_context(request: PageRequest, customer: Customer) -> dict[str, Any]:
    """Everything the customer page shows."""
    crm, actor = request.crm, request.actor
    history = crm.interactions.for_customer(customer.id, limit=100)
    tasks = sorted(crm.tasks.open_for(customer.id), key=lambda t: t.due_at)
    assigned = any(t.assignee == actor for t in tasks)
    panels = []
    panel_plugins = set()
    for plugin, panel in request.workspace.contributions.panels:  # type: ignore[attr-defined]
        panel_plugins.add(plugin)
        try:
            result = panel.render(request, customer)
            html = request.fragment(result)  # type: ignore[attr-defined]
        except Exception as exc:  # one broken panel must not take the page down
            log.error(
                "panel failed",
                panel=panel.name,
                failing_plugin=plugin,
                error=type(exc).__name__,
                exc_info=exc,
            )
            panels.append(
                {"name": panel.name, "title": str(panel.title), "html": None, "plugin": plugin}
            )
            continue
        if result is not None:
            panels.append(
                {"name": panel.name, "title": str(panel.title), "html": html, "plugin": plugin}
            )
    summary: list[SummaryLine] = []
    for plugin, line in crm.plugins.crm_customer_summary_by_plugin(crm=crm, customer=customer):
        if plugin not in panel_plugins and isinstance(line, SummaryLine):
            summary.append(line)  # a plugin with a panel says it better there
    quiet = people.quiet_until(crm, customer, request.now)
    return {
        "customer": customer,
        "phone": people.shown_phone(request.role, actor, customer, assigned),
        "badges": people.badges(crm, customer),
        "quiet_until": quiet,
        "history": [
            {
                "item": i,
                "kind": kind_label(i.kind),
                "channel": channel_label(i.channel.value),
                "summary": summary_text(i.summary),
            }
            for i in history
        ],
        "tasks": tasks,
        "panels": panels,
        "summary": summary,
        "gender_label": dict(GENDERS).get(customer.gender.value if customer.gender else ""),
        **_contact_form(request),
    }


def show(request: PageRequest) -> Render:
    customer = request.crm.customers.get(request.path["customer_id"], actor=request.actor)
    return Render("web/customer.html", page_context(request, customer))


def _changes(request: PageRequest, customer: Customer) -> dict[str, Any]:
    """The fields the form changed, as ``Customers.update`` takes them."""
    form = request.form
    changes: dict[str, Any] = {}
    for name, _label in EDIT_FIELDS:
        if name == "do_not_contact":
            wanted: Any = form.get("do_not_contact") == "yes"
        elif name not in form:
            continue
        else:
            text = form[name] if name == "notes" else form[name].strip()
            if name == "tags":
                wanted = tuple(sorted({t.strip() for t in text.split(",") if t.strip()}))
            elif name in ("name", "notes"):
                wanted = text
            elif name == "timezone":
                wanted = text or "UTC"
            else:
                wanted = text or None
        if field_text(customer, name) != field_text_of(name, wanted):
            changes[name] = wanted
    return changes


def field_text_of(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "tags":
        return ", ".join(value)
    if name == "do_not_contact":
        return "yes" if value else ""
    return str(value)


def _edit_context(
    request: PageRequest, customer: Customer, values: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "customer": customer,
        "fields": EDIT_FIELDS,
        "genders": GENDERS,
        "values": values or {n: field_text(customer, n) for n, _l in EDIT_FIELDS},
        "version": customer.version,
        "staff": [p.name for p in people.staff(request.crm)],
        "error": None,
        "error_field": None,
        "conflict": None,
        **extra,
    }


def edit(request: PageRequest) -> Render | Redirect:
    crm = request.crm
    customer = crm.customers.get(request.path["customer_id"], actor=request.actor)
    if request.method == "GET":
        crm.authorize(request.actor, "customer.update", _resource(customer))
        return Render("web/customer_edit.html", _edit_context(request, customer))
    values = {n: request.form.get(n, "") for n, _l in EDIT_FIELDS}
    read = request.form.get("version", "")
    if not read.isdigit():
        raise ValidationError(
            msg("the form lacks the version it was read at; reload the page"), field="version"
        )
    if int(read) != customer.version:
        return conflict(request, customer, values)
    changes = _changes(request, customer)
    if not changes:
        return Redirect(f"/customers/{customer.id}", notice=request.gettext("Nothing changed"))
    try:
        crm.customers.update(
            customer.id, actor=request.actor, expected_version=int(read), **changes
        )
    except ConflictError:
        return conflict(request, crm.customers.get(customer.id, actor=request.actor), values)
    except ValidationError as exc:
        return Render(
            "web/customer_edit.html",
            _edit_context(
                request, customer, values, version=int(read), error=str(exc), error_field=exc.field
            ),
            status=422,
        )
    return Redirect(f"/customers/{customer.id}", notice=request.gettext("Saved"))


def conflict(request: PageRequest, current: Customer, values: dict[str, str]) -> Render:
    """Someone saved this customer since the form was read: show, field by field, what they
    stored and what this rep typed; the form now carries the new version, so saving again
    (after choosing) applies the rep's values over theirs."""
    differences = []
    for name, label in EDIT_FIELDS:
        stored = field_text(current, name)
        mine = values.get(name, "")
        if name == "do_not_contact":
            mine = "yes" if mine == "yes" else ""
        if stored != mine:
            differences.append({"name": name, "label": str(label), "stored": stored, "mine": mine})
    return Render(
        "web/customer_edit.html",
        _edit_context(request, current, values, conflict=differences),
        status=409,
    )


def _resource(customer: Customer) -> Any:
    from crmcore.customers import resource

    return resource(customer)


def log_contact(request: PageRequest) -> Render | Redirect:
    crm = request.crm
    customer = crm.customers.get(request.path["customer_id"], actor=request.actor)
    form = request.form
    values = {k: form.get(k, "") for k in CONTACT_FIELDS}
    fields: dict[str, Any] = {
        "channel": values["channel"] or "other",
        "summary": values["summary"],
        "rep": request.actor,
    }
    try:
        if values["amount"].strip():
            try:
                fields["amount"] = float(values["amount"].replace(",", "").strip())
            except ValueError:
                raise ValidationError(
                    msg("give the amount as a number (129.50)"), field="amount"
                ) from None
        if values["satisfaction"].strip():
            if not values["satisfaction"].strip().isdigit():
                raise ValidationError(
                    msg("satisfaction is a score from 1 to 5"), field="satisfaction"
                )
            fields["satisfaction"] = int(values["satisfaction"])
        occurred = None
        if values["occurred_at"].strip():
            try:
                local = datetime.fromisoformat(values["occurred_at"].strip())
            except ValueError:
                raise ValidationError(
                    msg("give the time as a date and time"), field="occurred_at"
                ) from None
            zone = request.clock.zone  # type: ignore[attr-defined]
            occurred = local.replace(tzinfo=zone) if local.tzinfo is None else local
            if occurred > request.now:
                raise ValidationError(msg("a contact cannot be in the future"), field="occurred_at")
        crm.interactions.log(
            actor=request.actor,
            customer_id=customer.id,
            kind=values["kind"],
            occurred_at=occurred,
            **fields,
        )
    except ValidationError as exc:
        ctx = page_context(request, customer)
        ctx.update(_contact_form(request, values))
        # the rule's words in the page's language (a message of a catalog), else as raised
        shown = (
            translate(exc.message, request.gettext)
            if isinstance(exc.message, Message)
            else str(exc)
        )
        ctx.update({"contact_error": shown, "contact_error_field": exc.field})
        return Render("web/customer.html", ctx, status=422)
    return Redirect(
        f"/customers/{customer.id}",
        notice=request.gettext("Recorded: %(kind)s") % {"kind": kind_label(values["kind"])},
    )
