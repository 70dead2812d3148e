"""The plugin's Python API, used by its CLI and by host applications.

Everything takes an open CRM; writes name an ``actor``. Reps are managed with ``Roster(crm)``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import (
    Channel,
    Customer,
    Interaction,
    Priority,
    Task,
    TaskStatus,
    ValidationError,
)
from crmcore.converter import iso
from crmcore.customers import require_actor
from crmcore.i18n import msg, term
from crmcore.tasks import URGENCY
from crmcore_followup.engine import NAMESPACE
from crmcore_followup.grades import PIPELINE, pipeline_grade
from crmcore_followup.records import PIPELINE_PATH
from crmcore_followup.reps import Roster
from crmcore_followup.sweep import resync

if TYPE_CHECKING:
    from crmcore import CRM

__all__ = [
    "GradeCounts",
    "Handover",
    "Prospect",
    "Roster",
    "due_tasks",
    "handover",
    "open_callbacks",
    "overdue_by_grade",
    "record_callback",
    "resync",
]

UNGRADED = "ungraded"


# -- callbacks -------------------------------------------------------------------------------


def record_callback(
    crm: CRM,
    task_id: str,
    *,
    satisfied: bool,
    actor: str,
    score: int | None = None,
    notes: str = "",
    channel: Channel | str = Channel.PHONE,
) -> tuple[Interaction, Task]:
    """Record a callback's outcome (DOMAIN §3: every callback fully recorded, the script
    branching on satisfied / unsatisfied): logs an interaction of kind ``callback`` with
    ``ref`` = the task's ref, ``satisfaction`` = ``score`` and ``ext["followup"] =
    {"satisfied": …, "task_id": …}``, then completes the task. Nothing is written when any
    input is wrong."""
    actor = require_actor(actor)
    if not isinstance(satisfied, bool):
        raise ValidationError(
            msg("say whether the customer was satisfied (True or False)"), field="satisfied"
        )
    task = crm.tasks.get(task_id)
    if task.kind != "callback":
        raise ValidationError(
            msg(
                "task %(task)s is a %(kind)s task, not a callback",
                task=task_id,
                kind=term(crm.task_kind_label(task.kind)),
            )
        )
    if not task.is_open:
        raise ValidationError(
            msg("task %(task)s is done; its outcome cannot be recorded again", task=task_id)
            if task.status is TaskStatus.DONE
            else msg(
                "task %(task)s is cancelled; its outcome cannot be recorded again", task=task_id
            )
        )
    if task.customer_id is None:
        raise ValidationError(msg("callback %(task)s names no customer", task=task_id))
    fields: dict[str, Any] = {
        "channel": channel,
        "summary": notes,
        "satisfaction": score,
        "rep": actor,
        "ref": task.ref,
        "ext": {NAMESPACE: {"satisfied": satisfied, "task_id": task.id}},
    }
    try:
        crm.interactions.validate(customer_id=task.customer_id, kind="callback", **fields)
    except ValidationError as exc:
        if exc.field == "satisfaction":
            raise ValidationError(str(exc).split(": ", 1)[-1], field="score") from None
        raise
    with crm.transaction():
        interaction = crm.interactions.log(
            actor=actor, customer_id=task.customer_id, kind="callback", **fields
        )
        done = crm.tasks.complete(
            task.id, actor=actor, outcome="satisfied" if satisfied else "unsatisfied"
        )
    return interaction, done


def open_callbacks(
    crm: CRM,
    *,
    assignee: str | None = None,
    key_only: bool = False,
    overdue: bool = False,
    limit: int | None = None,
    actor: str | None = None,
) -> list[Task]:
    """Open callbacks, most urgent first: ``assignee``'s, key customers' only, past due only.
    With ``actor`` under enforced permissions, only the callbacks that actor may read."""
    query: dict[str, Any] = {"kind": "callback", "status": TaskStatus.OPEN.value}
    if assignee:
        query["assignee"] = assignee
    if key_only:
        query[f"ext.{NAMESPACE}.key_customer"] = True
    if overdue:
        query["due_at"] = {"$lt": crm.now()}
    if actor is not None:
        query = crm.readable_filter(actor, query, owner_field="assignee")
    return crm.tasks.find(query, sort=URGENCY, limit=limit)


# -- due queues --------------------------------------------------------------------------------


def customers_by_grade(crm: CRM, grades: Sequence[str]) -> list[str]:
    """Ids of active customers whose pipeline grade is one of ``grades`` (``ungraded`` for
    those without one)."""
    wanted = [g for g in grades if g != UNGRADED]
    ids: list[str] = []
    if wanted:
        ids += [
            c.id for c in crm.customers.find({f"ext.grading.grades.{PIPELINE}": {"$in": wanted}})
        ]
    if UNGRADED in grades:
        ids += [c.id for c in crm.customers.find({f"ext.grading.grades.{PIPELINE}": None})]
    return ids


def due_tasks(
    crm: CRM,
    *,
    now: datetime | None = None,
    within: timedelta | None = None,
    assignee: str | None = None,
    kinds: Sequence[str] | None = None,
    customer_id: str | None = None,
    grades: Sequence[str] | None = None,
    overdue: bool = False,
    limit: int | None = None,
    actor: str | None = None,
) -> list[Task]:
    """Open tasks due by ``now`` (plus ``within``), most urgent first (priority, then due
    time) — ``crm.tasks.due`` with a filter on the customers' pipeline grade. With
    ``actor`` under enforced permissions, only the tasks that actor may read."""
    when = now or crm.now()
    if not grades:
        return crm.tasks.due(
            now=when,
            within=within,
            assignee=assignee,
            kinds=list(kinds) if kinds else None,
            customer_id=customer_id,
            overdue=overdue,
            limit=limit,
            actor=actor,
        )
    ids = customers_by_grade(crm, grades)
    if customer_id is not None:
        ids = [i for i in ids if i == customer_id]
    if not ids:
        return []
    horizon = when if overdue or within is None else when + within
    query: dict[str, Any] = {
        "status": TaskStatus.OPEN.value,
        "due_at": {"$lt" if overdue else "$lte": horizon},
        "customer_id": {"$in": ids},
    }
    if assignee is not None:
        query["assignee"] = assignee
    if kinds:
        query["kind"] = {"$in": list(kinds)}
    if actor is not None:
        query = crm.readable_filter(actor, query, owner_field="assignee")
    return crm.tasks.find(query, sort=URGENCY, limit=limit)


@attrs.frozen
class GradeCounts:
    """Follow-up load of one pipeline grade (DOMAIN §7: follow-ups overdue by grade)."""

    grade: str
    cadence_days: int
    customers: int
    open_follow_ups: int
    due_now: int
    overdue: int
    overdue_over_a_day: int
    overdue_tasks: int  # open tasks of any kind past due for customers of this grade


def _grade_map(
    crm: CRM, at: datetime | None = None, owners: Callable[[str | None], bool] | None = None
) -> tuple[dict[str, str], Counter[str]]:
    """Each active customer's pipeline grade (created by ``at``), and how many of those
    ``owners`` accepts hold each; read from the stored documents, no ``Customer`` built."""
    grade_of: dict[str, str] = {}
    customers: Counter[str] = Counter()
    until = iso(at) if at is not None else None
    # no filter: the status is checked here, cheaper than by the store's matcher
    for doc in crm.collection("customers").iter():
        if doc.get("status") != "active":
            continue
        if until is not None and doc["created_at"] > until:
            continue  # not a customer yet
        grade = _stored_grade(doc)
        grade_of[doc["id"]] = grade
        if owners is None or owners(doc.get("owner")):
            customers[grade] += 1
    return grade_of, customers


def _stored_grade(doc: dict[str, Any]) -> str:
    """A stored customer document's pipeline grade (``pipeline_grade`` without building the
    ``Customer``), ``UNGRADED`` when it has none."""
    grades = ((doc.get("ext") or {}).get("grading") or {}).get("grades")
    grade = grades.get(PIPELINE) if isinstance(grades, dict) else None
    return grade if isinstance(grade, str) and grade else UNGRADED


def _grade_counts(crm: CRM, settings: Any, owners: list[str] | None) -> Counter[str] | None:
    """Active customers (of ``owners``, else everyone's) per pipeline grade, counted through
    the customers' grade index without reading them: the configured grades and the ungraded.
    None when some customer holds another grade (the caller then reads them all)."""
    base: dict[str, Any] = {"status": "active"}
    if owners is not None:
        base["owner"] = {"$in": owners}
    counts: Counter[str] = Counter()
    for grade in settings.cadence_days:
        n = crm.customers.count({**base, PIPELINE_PATH: grade})
        if n:
            counts[grade] = n
    ungraded = crm.customers.count({**base, PIPELINE_PATH: None})
    if ungraded:
        counts[UNGRADED] = ungraded
    total = crm.customers.count() if owners is None else crm.customers.count(base)
    return counts if sum(counts.values()) == total else None


def _grades_held(
    crm: CRM, settings: Any, at: datetime, owners: list[str] | None
) -> set[str] | None:
    """The pipeline grades an active customer (of ``owners``, else anyone's) created by
    ``at`` holds now, as ``_grade_map`` lists them: per grade the index says whether anyone
    holds it, then its customers are read in id order up to the first created by ``at``
    (most often the first), or, when fewer customers were created by ``at`` than hold those
    grades now (a period before most of them came), those customers through the
    ``created_at`` index. None when some customer holds a grade the cadence does not list
    (the caller then reads them all)."""
    counted = _grade_counts(crm, settings, owners)
    if counted is None:
        return None
    until = iso(at)
    base: dict[str, Any] = {"status": "active"}
    if owners is not None:
        base["owner"] = {"$in": owners}
    held: set[str] = set()
    customers = crm.collection("customers")
    early = crm.customers.count({"created_at": {"$lte": until}})  # anyone's: an upper bound
    if early < counted.total():  # fewer were customers by then: read those (often none)
        for doc in customers.iter({**base, "created_at": {"$lte": until}}, batch_size=200):
            held.add(_stored_grade(doc))
        return held & counted.keys()
    for grade in counted:
        query = {**base, PIPELINE_PATH: None if grade == UNGRADED else grade}
        for doc in customers.iter(query, batch_size=50):
            if doc["created_at"] <= until:
                held.add(grade)
                break
    return held


def _grades_of(crm: CRM, ids: set[str], at: datetime | None = None) -> dict[str, str]:
    """The pipeline grade of each of the active customers ``ids`` (created by ``at``, when
    given), as ``_grade_map`` has it."""
    out: dict[str, str] = {}
    until = iso(at) if at is not None else None
    for doc in crm.collection("customers").find({"id": {"$in": sorted(ids)}}):
        if doc.get("status") != "active":
            continue
        if until is not None and doc["created_at"] > until:
            continue
        out[doc["id"]] = _stored_grade(doc)
    return out


def open_at(task: Task, at: datetime) -> bool:
    """Whether ``task`` was open at ``at``: created by then and not yet done (its
    ``completed_at``) or cancelled (its last change, ``updated_at``)."""
    if task.created_at > at:
        return False
    if task.status is TaskStatus.OPEN:
        return True
    ended = task.completed_at if task.status is TaskStatus.DONE else task.updated_at
    return ended is not None and ended > at


def overdue_by_grade(
    crm: CRM,
    now: datetime | None = None,
    *,
    reps: Callable[[str | None], bool] | None = None,
    assignee: str | None = None,
    overdue_only: bool = False,
    clock: datetime | None = None,
    members: list[str] | None = None,
) -> list[GradeCounts]:
    """Per pipeline grade: customers, open follow-ups, how many are due and overdue, at
    ``now`` (default: the clock; an earlier instant counts the tasks open then). ``reps``:
    only tasks assigned to, and customers owned by, the reps it accepts; ``assignee``: the one
    rep ``reps`` accepts, when it is one (read through the tasks' assignee index).
    ``overdue_only``: only the overdue columns are wanted (``overdue``, ``overdue_over_a_day``,
    ``overdue_tasks``; the grades listed stay the same, the other columns are not computed),
    so only the overdue tasks are read, through the (status, due_at) index (at a past
    instant: the tasks due before it). ``clock``: the time that
    counts as now (default: the clock's), so that a report's own "now" reads the present.
    ``members``: every rep ``reps`` accepts, listed (``ReportWindow.reps``): a team's
    customers are then counted and its tasks read through indexes too."""
    clock = clock or crm.now()
    when = now or clock
    past = when < clock
    settings = crm.settings("followup")
    if overdue_only and past:
        listed, owners = _owners(reps, assignee, members)
        then = _grades_held(crm, settings, when, owners) if listed else None
        if then is not None and owners is not None:
            # a team's tasks may be about others' customers: every grade anyone holds must
            # be the team's too, or a grade only a non-overdue task lists would be missed
            anyone = _grades_held(crm, settings, when, None)
            then = then if anyone is not None and anyone <= then else None
        if then is not None:
            return _overdue_then(crm, settings, when, then, reps, assignee, members)
    counted = None
    if overdue_only and not past:
        if reps is None:
            counted = _grade_counts(crm, settings, None)
        elif assignee is not None:
            counted = _grade_counts(crm, settings, [assignee]) if reps(assignee) else None
        elif members is not None:
            counted = _grade_counts(crm, settings, members)
    if counted is None:
        grade_of, customers = _grade_map(crm, when if past else None, reps)
    else:
        grade_of, customers = {}, counted
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    query: dict[str, Any] = {"status": TaskStatus.OPEN.value}
    if assignee is not None:
        query["assignee"] = assignee
    elif members is not None:
        query["assignee"] = {"$in": members}
    if counted is not None:
        # a task lists its customer's grade even when not overdue; when the counted
        # customers already hold every grade anyone holds (everyone's always do), no task
        # can list another, and only the overdue ones need reading
        held = counted if reps is None else _grade_counts(crm, settings, None)
        if held is not None and set(held) <= set(counted):
            query["due_at"] = {"$lt": when}
    tasks: Any = crm.tasks.iter({"created_at": {"$lte": when}}) if past else crm.tasks.iter(query)
    if counted is not None:
        # the grades of these tasks' customers alone, looked up together
        tasks = list(tasks)
        grade_of = _grades_of(crm, {t.customer_id for t in tasks if t.customer_id})
    for task in tasks:
        if past and not open_at(task, when):
            continue
        if reps is not None and not reps(task.assignee):
            continue
        grade = grade_of.get(task.customer_id or "")
        if grade is None:
            continue
        row = counts[grade]
        if task.due_at < when:
            row["overdue_tasks"] += 1
        if task.kind != "follow_up":
            continue
        row["open"] += 1
        if task.due_at <= when:
            row["due"] += 1
        if task.due_at < when:
            row["overdue"] += 1
        if task.due_at < when - timedelta(days=1):
            row["overdue_day"] += 1
    order = [*settings.cadence_days, UNGRADED]
    grades = sorted(
        set(customers) | set(counts),
        key=lambda g: (order.index(g) if g in order else len(order), g),
    )
    return [
        GradeCounts(
            grade=g,
            cadence_days=settings.cadence_for(None if g == UNGRADED else g),
            customers=customers[g],
            open_follow_ups=counts[g]["open"],
            due_now=counts[g]["due"],
            overdue=counts[g]["overdue"],
            overdue_over_a_day=counts[g]["overdue_day"],
            overdue_tasks=counts[g]["overdue_tasks"],
        )
        for g in grades
    ]


def _owners(
    reps: Callable[[str | None], bool] | None, assignee: str | None, members: list[str] | None
) -> tuple[bool, list[str] | None]:
    """Whether the reps whose customers count can be listed, and the list (None: everyone's);
    not when a filter lists no members."""
    if reps is None:
        return True, None
    if assignee is not None:
        return reps(assignee), [assignee]
    return bool(members), members


def _overdue_then(
    crm: CRM,
    settings: Any,
    when: datetime,
    held: set[str],
    reps: Callable[[str | None], bool] | None,
    assignee: str | None,
    members: list[str] | None,
) -> list[GradeCounts]:
    """``overdue_by_grade``'s overdue columns at a past instant ``when``: only the tasks due
    before it are read (through the (status, due_at) index, or the assignee's), those open
    then counted by their customer's grade; ``held``: the grades listed (``_grades_held``)."""
    query: dict[str, Any] = {
        "status": {"$in": [s.value for s in TaskStatus]},
        "due_at": {"$lt": when},
    }
    if assignee is not None:
        query["assignee"] = assignee
    elif members is not None:
        query["assignee"] = {"$in": members}
    tasks = [
        t for t in crm.tasks.iter(query) if open_at(t, when) and (reps is None or reps(t.assignee))
    ]
    grade_of = _grades_of(crm, {t.customer_id for t in tasks if t.customer_id}, when)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for task in tasks:
        grade = grade_of.get(task.customer_id or "")
        if grade is None:
            continue
        row = counts[grade]
        row["overdue_tasks"] += 1
        if task.kind != "follow_up":
            continue
        row["overdue"] += 1
        if task.due_at < when - timedelta(days=1):
            row["overdue_day"] += 1
    order = [*settings.cadence_days, UNGRADED]
    grades = sorted(
        held | set(counts), key=lambda g: (order.index(g) if g in order else len(order), g)
    )
    return [
        GradeCounts(
            grade=g,
            cadence_days=settings.cadence_for(None if g == UNGRADED else g),
            customers=0,
            open_follow_ups=0,
            due_now=0,
            overdue=counts[g]["overdue"],
            overdue_over_a_day=counts[g]["overdue_day"],
            overdue_tasks=counts[g]["overdue_tasks"],
        )
        for g in grades
    ]


# -- shift handover ----------------------------------------------------------------------------


@attrs.frozen
class Prospect:
    """A prospect the next shift should contact."""

    customer_id: str
    name: str
    grade: str
    task_id: str
    kind: str
    due_at: datetime
    assignee: str | None


@attrs.frozen
class Handover:
    """What one shift hands to the next (DOMAIN §3): urgent open items and prospects."""

    now: datetime
    until: datetime
    urgent: tuple[Task, ...]
    prospects: tuple[Prospect, ...]


def handover(
    crm: CRM,
    *,
    now: datetime | None = None,
    until: datetime | None = None,
    rep: str | None = None,
    team: str | None = None,
    actor: str | None = None,
) -> Handover:
    """Urgent open items (overdue, or high priority and due before ``until``) and prospects
    to contact (first contacts, and follow-ups of customers in ``prospect_grades``, due
    before ``until``; the default ``until`` is ``shift_hours`` from now). With ``actor``
    under enforced permissions, only what that actor may read."""
    settings = crm.settings("followup")
    when = now or crm.now()
    end = until or when + timedelta(hours=settings.shift_hours)
    if end <= when:
        raise ValidationError(
            f"the shift end {end.isoformat()} is not after now ({when.isoformat()})",
            field="shift_end",
        )
    assignees: set[str] | None = None
    if team is not None:
        assignees = {r.name for r in Roster(crm).all() if r.team == team}
        if not assignees:
            raise ValidationError(f"no rep on the roster is in team {team!r}", field="team")
    if rep is not None:
        assignees = {rep} if assignees is None else assignees & {rep}

    def mine(task: Task) -> bool:
        return assignees is None or task.assignee in assignees

    query: dict[str, Any] = {"status": TaskStatus.OPEN.value, "due_at": {"$lte": end}}
    if actor is not None:
        query = crm.readable_filter(actor, query, owner_field="assignee")
    upcoming = [t for t in crm.tasks.find(query, sort=URGENCY) if mine(t)]
    urgent = tuple(t for t in upcoming if t.due_at < when or t.priority >= Priority.HIGH)
    prospects: list[Prospect] = []
    customers: dict[str, Customer] = {}
    for task in upcoming:
        if task.kind not in ("first_contact", "follow_up") or task.customer_id is None:
            continue
        customer = customers.get(task.customer_id)
        if customer is None:
            customer = customers[task.customer_id] = crm.customers.get_any(task.customer_id)
        grade = pipeline_grade(customer)
        if task.kind == "follow_up" and grade not in settings.prospect_grades:
            continue
        prospects.append(
            Prospect(
                customer.id,
                customer.name,
                grade or UNGRADED,
                task.id,
                task.kind,
                task.due_at,
                task.assignee,
            )
        )
    prospects.sort(key=lambda p: (p.due_at, p.customer_id))
    return Handover(when, end, urgent, tuple(prospects))
