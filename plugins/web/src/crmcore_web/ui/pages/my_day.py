"""My day (``/``): the signed-in rep's overdue, due-today and this-week tasks, most urgent
first, with one-click outcomes; a shift lead sees their team's queue, filtered by rep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore.entities import Customer, Task, TaskStatus
from crmcore.errors import ValidationError
from crmcore.i18n import lazy, msg, translate
from crmcore.registry import PageRequest, Redirect, Render, WebPage
from crmcore_web.ui.pages import people

WEEK = timedelta(days=7)
LEAD_ROLES = ("shift_lead", "manager", "admin")
#: Outcomes offered with one click (the rep can also type their own).
OUTCOMES = (
    ("reached", lazy("Reached, done")),
    ("no_answer", lazy("No answer")),
    ("call_back_later", lazy("Asked to call back later")),
    ("not_interested", lazy("Not interested")),
)


@attrs.frozen
class Row:
    """One task of the queue with what the rep needs to act on it."""

    task: Task
    customer: Customer | None
    name: str
    phone: str
    badges: tuple[Any, ...]
    group: str  # "overdue", "today", "week"
    quiet_until: datetime | None
    may_call: bool


def pages() -> list[WebPage]:
    return [
        WebPage("/", my_day, name="my_day"),
        WebPage("/tasks/{task_id}/complete", complete, methods=("POST",)),
        WebPage("/tasks/{task_id}/reschedule", reschedule, methods=("POST",)),
    ]


def queue_owners(request: PageRequest) -> tuple[list[str], list[str], str | None]:
    """Whose tasks the queue shows, the reps a lead may filter by, and the chosen rep."""
    crm, actor = request.crm, request.actor
    if request.role not in LEAD_ROLES:
        return [actor], [], None
    me = crm.actor(actor)
    team = me.team if me is not None else getattr(request, "team", None)
    if request.role == "shift_lead":
        reps = people.team_members(crm, team) or [actor]
    else:
        department = me.department if me is not None else None

        def in_scope(name: str) -> bool:
            if request.role == "admin":
                return True
            other = crm.actor(name)
            return department is not None and other is not None and other.department == department

        reps = [
            p.name
            for p in people.staff(crm)
            if p.role in ("agent", "shift_lead") and in_scope(p.name)
        ]
        reps = reps or [actor]
    if actor not in reps:
        reps.append(actor)
    chosen = request.query.get("rep") or None
    if chosen is not None and chosen not in reps:
        raise ValidationError(
            msg("%(rep)s is not one of your team's reps", rep=repr(chosen)), field="rep"
        )
    return ([chosen] if chosen else reps), sorted(reps), chosen


def build_rows(request: PageRequest, tasks: list[Task]) -> list[Row]:
    crm, now = request.crm, request.now
    zone = request.clock.zone  # type: ignore[attr-defined]
    today = now.astimezone(zone).date()
    customers = people.customers_by_id(crm, (t.customer_id for t in tasks))
    marks_of = people.badges_of(crm, customers.values())  # one call per plugin for the page
    rows = []
    for task in tasks:
        customer = customers.get(task.customer_id or "")
        due_day = task.due_at.astimezone(zone).date()
        group = "overdue" if task.due_at < now else "today" if due_day == today else "week"
        marks: tuple[Any, ...] = ()
        quiet = None
        phone = ""
        if customer is not None:
            marks = tuple(marks_of.get(customer.id, ()))
            quiet = people.quiet_until(crm, customer, now)
            phone = people.shown_phone(
                request.role, request.actor, customer, assigned=task.assignee == request.actor
            )
        rows.append(
            Row(
                task,
                customer,
                people.display_name(customer, request.gettext),
                phone,
                marks,
                group,
                quiet,
                customer is not None
                and quiet is None
                and bool(customer.phone)
                and not customer.do_not_contact,
            )
        )
    order = {"overdue": 0, "today": 1, "week": 2}
    rows.sort(
        key=lambda r: (
            order[r.group],
            r.task.due_at,
            people.rank(r.badges),
            -int(r.task.priority),
            r.task.id,
        )
    )
    return rows


def my_day(request: PageRequest) -> Render:
    owners, reps, chosen = queue_owners(request)
    horizon = request.now + WEEK
    query: dict[str, Any] = {
        "status": TaskStatus.OPEN.value,
        "due_at": {"$lte": horizon},
        "assignee": {"$in": owners},
    }
    tasks = request.crm.tasks.find(query, limit=500)
    rows = build_rows(request, tasks)
    groups = [(key, [r for r in rows if r.group == key]) for key in ("overdue", "today", "week")]
    return Render(
        "web/my_day.html",
        {
            "groups": groups,
            "reps": reps,
            "chosen_rep": chosen,
            "is_lead": bool(reps),
            "outcomes": OUTCOMES,
            "total": len(rows),
        },
    )


def _back(request: PageRequest) -> str:
    target = request.form.get("next", "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"


def complete(request: PageRequest) -> Redirect:
    task_id = request.path["task_id"]
    outcome = (request.form.get("outcome_text") or request.form.get("outcome") or "").strip()
    if not outcome:
        raise ValidationError(
            msg("say how it went: choose an outcome or write one"), field="outcome"
        )
    task = request.crm.tasks.get(task_id, actor=request.actor)
    version = int(request.form["version"]) if request.form.get("version", "").isdigit() else None
    request.crm.tasks.complete(
        task.id, actor=request.actor, outcome=outcome, expected_version=version
    )
    return Redirect(
        _back(request),
        notice=request.gettext("Task completed: %(title)s")
        % {"title": translate(task.title_message, request.gettext)},
    )


def reschedule(request: PageRequest) -> Redirect:
    task_id = request.path["task_id"]
    text = request.form.get("due_at", "").strip()
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(msg("give the new time as a date and time"), field="due_at") from None
    zone = request.clock.zone  # type: ignore[attr-defined]
    due = local.replace(tzinfo=zone) if local.tzinfo is None else local
    if due <= request.now:
        raise ValidationError(msg("the new time must be in the future"), field="due_at")
    task = request.crm.tasks.get(task_id, actor=request.actor)
    version = int(request.form["version"]) if request.form.get("version", "").isdigit() else None
    request.crm.tasks.reschedule(task.id, due, actor=request.actor, expected_version=version)
    return Redirect(
        _back(request),
        notice=request.gettext("Task moved: %(title)s")
        % {"title": translate(task.title_message, request.gettext)},
    )
