"""The followup plugin's hook implementations (registered as the plugin ``followup``).

Hooks that move a customer's schedule write it directly through the convergent operations in
``engine`` (see there why); hooks that only add independent tasks return ``Effects``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs
import click

from crmcore import Kinds, LazyCommand, SettingsSpec, hookimpl
from crmcore.markers import N_

if TYPE_CHECKING:
    from crmcore import (
        CRM,
        ApiRoute,
        Customer,
        Effects,
        Interaction,
        ReportSection,
        ReportWindow,
        SummaryLine,
        Task,
        TaskUpdate,
    )
    from crmcore.contracts import Ticket
    from crmcore.registry import (
        CustomerPanel,
        NavEntry,
        TemplateFolder,
        TranslationCatalog,
        WebPage,
    )
    from crmcore.security import Actor
    from crmcore.storage import CollectionSpec
    from crmcore_followup.settings import FollowupSettings

#: Why a callback is due, by interaction kind (marked for the catalog: the callback's title
#: says it in the reader's language); other kinds are named as they are.
CALLBACK_REASONS = {"business": N_("business handled"), "purchase": N_("purchase")}
#: The reason of a callback after a closed complaint.
COMPLAINT_CLOSED = N_("complaint closed")


def _active(customer: Customer) -> bool:
    from crmcore import CustomerStatus

    return customer.status is CustomerStatus.ACTIVE


# -- registration ------------------------------------------------------------------------------


@hookimpl
def crm_config_warnings(crm: CRM) -> list[str]:
    """A ``vip_team`` with no available rep (big customers then keep their owner); a
    holiday calendar without data for this year."""
    from crmcore.calendars import calendar_named
    from crmcore_followup.engine import NAMESPACE
    from crmcore_followup.reps import LoadBook

    settings = crm.settings(NAMESPACE)
    out = []
    team = settings.vip_team
    if team and LoadBook.read(crm, team=team).empty:
        out.append(
            f"followup: vip_team {team!r} has no available rep, so big customers keep "
            f"their owner; add one with 'crm reps add NAME --team {team}'"
        )
    today = crm.now().date()
    if settings.holiday_calendar and not calendar_named(settings.holiday_calendar).covers(today):
        out.append(
            f"followup: the {settings.holiday_calendar!r} holiday calendar has no data "
            f"for {today.year}; no festival greetings until chinesecalendar is upgraded "
            "(pip install -U chinesecalendar) or the dates are listed in holidays"
        )
    return out


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[followup]``: cadence by grade, quiet hours, callbacks, care, assignment."""
    return SettingsSpec(section="followup", type="crmcore_followup.settings:FollowupSettings")


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """``followup.schedule`` (per customer, the sweep's index), ``followup.reps`` (the roster),
    ``followup.state`` (the sweep's backfill cursor) and ``followup.handovers`` (shifts)."""
    from crmcore_followup.storage import collections

    return collections()


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm reps``, ``crm callbacks``, ``crm handover``, ``crm followup``, and ``crm tasks due``
    with ``--grade`` plus ``crm tasks overdue-by-grade`` (the core's ``tasks`` group extended),
    each imported when it runs."""
    target = "crmcore_followup.cli:"
    commands = [
        LazyCommand(
            "reps",
            target + "reps_group",
            "The rep roster: who shares the customers and tasks, by ability and capacity.",
        ),
        LazyCommand(
            "callbacks",
            target + "callbacks_group",
            "Callbacks (回访): within 3 days of business handled, a purchase or a closed "
            "complaint.",
        ),
        LazyCommand(
            "handover",
            target + "handover_command",
            "What this shift hands to the next: urgent open items and prospects to contact.",
        ),
        LazyCommand(
            "followup", target + "followup_group", "The follow-up schedule behind the sweep."
        ),
    ]
    tasks = cli.commands.get("tasks")
    if isinstance(tasks, click.Group):
        commands.append(LazyCommand("tasks", target + "tasks_group", tasks.help or ""))
    return commands


@hookimpl
def crm_api_routes(crm: CRM) -> list[ApiRoute]:
    """Due queue, callbacks and their outcome, handover, overdue by grade under
    ``/api/v1/followup``."""
    from crmcore_followup.api_routes import routes

    return routes()


# -- the workspace (served by the web plugin; these use only crmcore.registry types) -----------


@hookimpl
def crm_web_pages(crm: CRM) -> list[WebPage]:
    """The callbacks with their scripts, and the shift handover, as workspace pages."""
    from crmcore_followup import web_pages

    return web_pages.pages()


@hookimpl
def crm_nav_entries(crm: CRM) -> list[NavEntry]:
    """ "Callbacks" and "Shift handover" in the workspace's navigation."""
    from crmcore_followup import web_pages

    return web_pages.nav_entries()


@hookimpl
def crm_customer_panels(crm: CRM) -> list[CustomerPanel]:
    """The customer's open tasks, next follow-up and last callbacks on the customer page."""
    from crmcore_followup import web_pages

    return web_pages.panels()


@hookimpl
def crm_web_templates() -> list[TemplateFolder]:
    """The templates of the callback, handover and panel pages (``followup/*.html``)."""
    from crmcore_followup import web_pages

    return web_pages.templates()


@hookimpl
def crm_translations() -> list[TranslationCatalog]:
    """The strings of the pages and the callback scripts, in the plugin's own catalog
    (``locale/<locale>/LC_MESSAGES/crmcore_followup.po``)."""
    from crmcore_followup import web_pages

    return web_pages.translations()


@hookimpl
def crm_actor(crm: CRM, name: str) -> Actor | None:
    """Reps on the roster are agents of their team for the permission policy, unless
    ``[security]`` describes them (or they match its system actors)."""
    from crmcore.security import Actor, Role, directory_actor
    from crmcore_followup.reps import Roster

    if directory_actor(crm.config.security, name) is not None:
        return None
    rep = Roster(crm).find(name)
    return None if rep is None else Actor(name, Role.AGENT, team=rep.team)


@hookimpl
def crm_actor_names(crm: CRM) -> list[str]:
    """The reps on the roster (a team's members are listed from them)."""
    from crmcore_followup.reps import Roster

    return [rep.name for rep in Roster(crm).all()]


# -- events ------------------------------------------------------------------------------------


@hookimpl
def crm_customer_created(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    """A new customer: a schedule, an owner from the roster when none was given (balancing
    customers per unit of ability), and a first-contact task due within
    ``first_contact_days``."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_customer_created(crm, customer, actor), "followup: customer created"
    )


def _crm_customer_created(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    from crmcore import Effects, ExtPatch
    from crmcore.converter import iso
    from crmcore_followup import routing
    from crmcore_followup.engine import NAMESPACE, UNREAD, Engine
    from crmcore_followup.reps import LoadBook

    if not _active(customer):
        return None
    engine = Engine.of(crm)
    effects = None
    now = crm.now()
    roster = None  # the whole roster read here, found empty: the first contact's too
    if engine.settings.assign_owners and customer.owner is None:
        vip = routing.wants_vip(crm, engine, customer)
        team = engine.settings.vip_team if vip else None
        book = LoadBook.read(crm, team=team)
        if vip and book.empty:
            book, team = LoadBook.read(crm), None
        if book.empty and team is None:
            roster = book
        owner = None if book.empty else book.pick_owner(crm)
        if owner is not None:
            customer = crm.customers.update(customer.id, actor=actor, owner=owner)
            # also tells the core to re-read the customer it returns from ``add``
            effects = Effects(
                ext=[
                    ExtPatch(
                        customer.id, NAMESPACE, {"owner_assigned": owner, "assigned_at": iso(now)}
                    )
                ]
            )
    # ensure_first_contact writes the schedule (creating it) in the same write as the
    # pending first contact; a do-not-contact customer gets no task, the schedule all the same.
    # A customer just added has no schedule to read (unless the owner given above made one):
    # it is inserted at once, and one left over under the same id fails the insert and is read
    current = UNREAD if effects is not None else None
    first = engine.ensure_first_contact(
        customer, assigned_at=now, actor=actor, current=current, book=roster
    )
    if first is None:
        engine.mutate(customer, lambda s: s, current=current)
    return effects


@hookimpl
def crm_customer_updated(crm: CRM, before: Customer, after: Customer, actor: str) -> Effects | None:
    """Do-not-contact set: open contact tasks are cancelled and nothing new is scheduled;
    cleared: the sweep looks again at once. A new owner: a first contact by that rep, who
    also takes over the customer's open contact tasks. A pipeline grade edited by hand:
    the new cadence. A new time zone: due times placed again out of quiet hours."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_customer_updated(crm, before, after, actor), "followup: customer updated"
    )


def _crm_customer_updated(
    crm: CRM, before: Customer, after: Customer, actor: str
) -> Effects | None:
    from crmcore import Effects, TaskUpdate
    from crmcore_followup.engine import Engine, open_contact_tasks
    from crmcore_followup.grades import pipeline_grade
    from crmcore_followup.reps import LoadBook

    if not _active(after):
        return None
    engine = Engine.of(crm)
    now = crm.now()
    updates: list[TaskUpdate] = []
    if after.do_not_contact and not before.do_not_contact:
        for task in open_contact_tasks(crm, after.id, engine.settings.contact_kinds):
            updates.append(
                TaskUpdate(
                    task_id=task.id, cancel=True, reason=N_("customer asked not to be contacted")
                )
            )
        engine.mutate(after, lambda s: s)
        return Effects(task_updates=updates)
    if before.do_not_contact and not after.do_not_contact:
        engine.mutate(after, lambda s: attrs.evolve(s, check_at=now), recompute=False)
    if after.owner != before.owner and after.owner is not None:
        engine.ensure_first_contact(after, assigned_at=now, actor=actor)
        book = LoadBook.read(crm)
        for task in open_contact_tasks(crm, after.id, engine.settings.assign_kinds):
            if task.kind == "first_contact" or task.assignee == after.owner:
                continue
            if task.assignee is None or task.assignee == before.owner:
                new = engine.assignee_for(task.kind, after, book)
                if new is not None and new != task.assignee:
                    updates.append(TaskUpdate(task_id=task.id, assignee=new))
    if pipeline_grade(before) != pipeline_grade(after):
        engine.grade_changed(after.id, pipeline_grade(after), actor=actor)
    elif before.timezone != after.timezone:
        schedule = engine.schedule_of(after.id)
        if schedule is not None:
            engine.ensure_follow_up(after, schedule, actor=actor)
            if crm.tasks.open_by_key(f"first_contact:{after.id}") is not None:
                engine.ensure_first_contact(
                    after, assigned_at=schedule.assigned_at or now, actor=actor
                )
    return Effects(task_updates=updates) if updates else None


@hookimpl
def crm_customers_merged(crm: CRM, kept: Customer, merged: Customer, actor: str) -> Effects | None:
    """The duplicate's schedule (re-pointed to ``kept`` by the core) is retired; the kept
    customer is looked at on the next sweep (the core cancelled the duplicate's tasks)."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_customers_merged(crm, kept, merged, actor), "followup: customers merged"
    )


def _crm_customers_merged(crm: CRM, kept: Customer, merged: Customer, actor: str) -> Effects | None:
    from crmcore import NotFoundError
    from crmcore_followup import records
    from crmcore_followup.engine import Engine

    engine = Engine.of(crm)
    try:
        retired = engine.schedules.get(records.schedule_id(merged.id))
    except NotFoundError:
        retired = None
    if retired is not None and retired.active:
        engine.schedules.update(retired, active=False, check_at=None)
    now = crm.now()
    engine.mutate(kept, lambda s: attrs.evolve(s, check_at=now), recompute=False)
    return None


@hookimpl
def crm_customer_forgotten(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    """An erased customer is never contacted again: the schedule is retired (the core has
    cancelled the open tasks; the schedule holds no personal data)."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_customer_forgotten(crm, customer, actor), "followup: customer forgotten"
    )


def _crm_customer_forgotten(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    from crmcore_followup.engine import Engine

    engine = Engine.of(crm)
    schedule = engine.schedule_of(customer.id)
    if schedule is not None and schedule.active:
        engine.mutate(
            customer, lambda s: attrs.evolve(s, active=False, check_at=None), recompute=False
        )
    return None


@hookimpl
def crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer, actor: str
) -> Effects | None:
    """A follow-up contact restarts the cadence (from the current grade); business handled
    or a purchase calls for a callback within ``callback_within_days``; an unsatisfied
    callback answer leads to recovery (``recovery``)."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_interaction_logged(crm, interaction, customer, actor),
        "followup: interaction logged",
    )


@hookimpl
def crm_replay_per_row(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """History imported in a batch: the customers with a row this plugin acts on go row by
    row (a follow-up contact, a callback answer, an event recent enough for a callback), and
    everyone when a VIP team or a roster of reps is configured; for everyone else the batch
    changes nothing here (``crm_interactions_replayed``)."""
    from crmcore_followup.engine import Engine
    from crmcore_followup.reps import LoadBook

    settings = Engine.of(crm).settings
    if settings.vip_team or not LoadBook.read(crm).empty:
        # routing to the VIP team and load-balanced assignment depend on other plugins'
        # state at each row and on other customers' open work: row by row, as live
        return sorted(customers)
    recent = crm.wall_now() - timedelta(days=settings.callback_within_days)
    return sorted(
        {
            e.customer_id
            for e in events
            if e.kind in settings.follow_up_kinds
            or e.kind == "callback"
            or (e.kind in settings.callback_kinds and e.occurred_at > recent)
        }
    )


@hookimpl
def crm_interactions_replayed(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer], actor: str
) -> Effects | None:
    """The rows of customers not asked for row by row need nothing: no follow-up contact,
    no callback answer, and a callback's deadline (at most ``callback_within_days`` after
    the event) already past at the present, so the per-row reaction would make none."""
    return None


def _crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer, actor: str
) -> Effects | None:
    from crmcore import Effects
    from crmcore_followup import recovery
    from crmcore_followup.engine import NAMESPACE, Engine

    engine = Engine.of(crm)
    if interaction.kind in engine.settings.follow_up_kinds:
        meta = interaction.ext.get(NAMESPACE) or {}
        ours = meta.get("task_kind")
        engine.follow_up_happened(
            customer.id,
            interaction.occurred_at,
            actor=actor,
            completed=ours in ("follow_up", "first_contact"),
            first_contact_closed=ours == "first_contact"
            and _closed(crm, interaction, meta.get("task_id")),
        )
    if interaction.kind == "callback":
        recovery_task = recovery.on_callback(engine, interaction, customer, actor=actor)
        if recovery_task is not None:
            return Effects(tasks=[recovery_task])
    if interaction.kind in engine.settings.callback_kinds:
        fresh = crm.customers.get(customer.id)
        draft = engine.callback_draft(
            fresh,
            ref=interaction.id,
            event_at=interaction.occurred_at,
            reason=CALLBACK_REASONS.get(interaction.kind, interaction.kind),
        )
        if draft is not None:
            return Effects(tasks=[draft])
    return None


@hookimpl
def crm_kinds() -> Kinds:
    """The task kind ``recovery`` (``recovery.KIND``, spelt out so that opening a CRM does not
    import that module; a test holds them equal): what an unsatisfied callback answer leads
    to."""
    return Kinds(
        tasks=("recovery",),
        task_labels={"recovery": N_("Recovery after an unsatisfied callback")},
    )


@hookimpl
def crm_task_created(crm: CRM, task: Task, actor: str) -> Effects | None:
    """Bookkeeping for our own tasks; other plugins' unassigned contact tasks (and tasks
    given to a rep who is unavailable) are assigned from the roster."""
    from crmcore import Effects
    from crmcore_followup.engine import SOURCE, Engine

    if task.source == SOURCE and not Engine.of(crm).keeps_books_on(task):
        return None  # our own task, nothing to note (a first contact): no Action to run
    return Effects.run(lambda: _crm_task_created(crm, task, actor), "followup: task created")


def _crm_task_created(crm: CRM, task: Task, actor: str) -> Effects | None:
    from crmcore import Effects, TaskUpdate
    from crmcore_followup.engine import SOURCE, Engine
    from crmcore_followup.reps import LoadBook, Roster

    engine = Engine.of(crm)
    engine.task_created(task)
    if (
        task.source == SOURCE
        or task.kind not in engine.settings.assign_kinds
        or task.customer_id is None
    ):
        return None
    roster = Roster(crm)
    if task.assignee is not None:
        rep = roster.find(task.assignee)
        if rep is None or rep.available:
            return None
    book = LoadBook.read(crm, exclude=[task.assignee] if task.assignee else [])
    if book.empty:
        return None
    customer = crm.customers.get_any(task.customer_id)
    new = book.pick_for_task(
        preferred=customer.owner, skill=engine.settings.skills_by_kind.get(task.kind)
    )
    if new is None or new == task.assignee:
        return None
    return Effects(task_updates=[TaskUpdate(task_id=task.id, assignee=new)])


def _closed(crm: CRM, interaction: Interaction, task_id: object) -> bool:
    """Whether ``interaction`` records the completion of first-contact task ``task_id`` (as
    ``crm_task_completed`` logs it): that task, now closed, held the customer's first-contact
    key, so no open one is left. Read by id: the task completed in this transaction is in
    its cache."""
    from crmcore import NotFoundError

    if not isinstance(task_id, str):
        return False
    try:
        task = crm.tasks.get(task_id)
    except NotFoundError:
        return False
    return (
        task.kind == "first_contact"
        and task.customer_id == interaction.customer_id
        and not task.is_open
        and task.completed_at == interaction.occurred_at
    )


@hookimpl
def crm_task_completed(crm: CRM, task: Task, actor: str) -> Effects | None:
    """Completing a follow-up or first contact logs a ``follow_up`` interaction (grading
    re-grades on it, and the next follow-up is scheduled on the grade then current); a
    callback or care task completed without a recorded outcome logs its interaction too."""
    from crmcore import Action, Effects, InteractionDraft, NotFoundError
    from crmcore_followup.engine import NAMESPACE, Engine, ours

    if not ours(task) or task.customer_id is None:
        return None
    try:
        customer = crm.customers.get_any(task.customer_id)
    except NotFoundError:
        return None
    if not _active(customer):
        return None
    engine = Engine.of(crm)
    at = task.completed_at or crm.now()
    rep = task.assignee or actor
    meta = {NAMESPACE: {"task_id": task.id, "task_kind": task.kind}}
    said = {"summary": task.outcome or "", "rep": rep}
    if task.kind in ("follow_up", "first_contact"):
        logged = InteractionDraft(customer.id, "follow_up", at, {**said, "ext": meta})
        if "follow_up" in engine.settings.follow_up_kinds:
            return Effects(interactions=[logged])
        happened = Action(
            lambda: engine.follow_up_happened(customer.id, at, actor=actor, completed=True),
            "followup: a follow-up happened",
        )
        return Effects(interactions=[logged], actions=[happened])
    if task.kind == "callback":
        recorded = crm.interactions.find(
            {"customer_id": customer.id, "kind": "callback", f"ext.{NAMESPACE}.task_id": task.id},
            limit=1,
        )
        if recorded:
            return None
        return Effects(
            interactions=[
                InteractionDraft(
                    customer.id,
                    "callback",
                    at,
                    {
                        **said,
                        "ref": task.ref,
                        "ext": {NAMESPACE: {"satisfied": None, "task_id": task.id}},
                    },
                )
            ]
        )
    if task.kind == "care":
        return Effects(
            interactions=[InteractionDraft(customer.id, "care", at, {**said, "ext": meta})]
        )
    return None


@hookimpl
def crm_tick(crm: CRM, now: datetime, worker: str) -> Effects:
    """Create what has come due: follow-ups for customers lacking one, birthday and holiday
    greetings; only schedules whose ``check_at`` has come are touched, each leased to one
    worker with the storage claim primitive. Customers flagged as big hand over to the VIP
    team first."""
    from crmcore import Effects

    return Effects.run(lambda: _crm_tick(crm, now, worker), "followup: tick")


def _crm_tick(crm: CRM, now: datetime, worker: str) -> Effects:
    from crmcore_followup import routing, sweep
    from crmcore_followup.engine import Engine

    engine = Engine.of(crm)
    if engine.settings.vip_team:
        routing.route_flagged(crm, engine, actor=worker, limit=engine.settings.sweep_batch)
    return sweep.sweep(crm, now, worker)


# -- other plugins' contracts (crmcore.contracts; without those plugins, never called) --------


@hookimpl
def crm_grade_changed(
    crm: CRM, customer: Customer, scheme: str, old: str | None, new: str, reason: str, actor: str
) -> Effects | None:
    """grading re-graded a customer: on the pipeline scheme, or a scheme with a tier plan
    (``tier_cadence_days``), the cadence then due applies from the last follow-up on (the open
    follow-up moves); a customer who became a key customer is routed to ``vip_team``."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_grade_changed(crm, customer, scheme, old, new, reason, actor),
        "followup: grade changed",
    )


def _crm_grade_changed(
    crm: CRM, customer: Customer, scheme: str, old: str | None, new: str, reason: str, actor: str
) -> Effects | None:
    from crmcore_followup import routing
    from crmcore_followup.engine import Engine
    from crmcore_followup.grades import PIPELINE

    if not _active(customer):
        return None
    engine = Engine.of(crm)
    if scheme == PIPELINE or scheme in engine.settings.tier_cadence_days:
        engine.grade_changed(customer.id, new, actor=actor, scheme=scheme)
    if routing.wants_vip(crm, engine, customer, {scheme: new}):
        routing.flag(engine, customer)
    return None


@hookimpl
def crm_tier_changed(
    crm: CRM, customer: Customer, old: str | None, new: str | None, actor: str
) -> Effects | None:
    """loyalty changed a customer's tier: one whose perks now include ``dedicated_rep`` is
    routed to ``vip_team`` on the next tick."""
    from crmcore import Effects

    return Effects.run(
        lambda: _crm_tier_changed(crm, customer, old, new, actor), "followup: tier changed"
    )


def _crm_tier_changed(
    crm: CRM, customer: Customer, old: str | None, new: str | None, actor: str
) -> Effects | None:
    from crmcore_followup import routing
    from crmcore_followup.engine import Engine

    engine = Engine.of(crm)
    if _active(customer) and routing.wants_vip(crm, engine, customer):
        routing.flag(engine, customer)
    return None


@hookimpl
def crm_complaint_closed(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    """complaints closed a ticket: a callback within ``callback_within_days`` (every closed
    complaint, key customer or not), ``ref`` = the ticket id."""
    from crmcore import Effects, NotFoundError
    from crmcore_followup.engine import Engine

    if not ticket.customer_id:
        return None
    try:
        customer = crm.customers.get(ticket.customer_id)
    except NotFoundError:
        return None
    draft = Engine.of(crm).callback_draft(
        customer, ref=ticket.id, event_at=crm.now(), reason=COMPLAINT_CLOSED, trigger="complaint"
    )
    return Effects(tasks=[draft]) if draft is not None else None


# -- faces ---------------------------------------------------------------------------------------


@hookimpl
def crm_report_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Follow-ups due and overdue by grade; callback coverage of key customers and
    satisfaction, and unsatisfied callbacks by department, over the report's window; the
    roster's load."""
    from crmcore_followup import report

    return report.sections(crm, now, window)


@hookimpl
def crm_customer_summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    """The next follow-up and its cadence; do-not-contact; open callbacks."""
    from crmcore_followup import report

    return report.summary(crm, customer)


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    """A demo day: reps record callback outcomes (some unsatisfied); a rep is off sick now
    and then (their tasks move to the others) and back the next day."""
    from crmcore_followup import simulate

    simulate.simulate_day(crm, now, rng, actor)


@hookimpl
def crm_quiet_until(crm: CRM, customer: Customer, now: datetime) -> datetime | None:
    """The end of ``customer``'s quiet hours (``[followup] quiet_hours``, in their own time
    zone) when ``now`` is inside them: the workspace offers no call until then."""
    from crmcore_followup.quiet import quiet_until

    settings: FollowupSettings = crm.settings("followup")
    return quiet_until(now, customer.timezone, settings.windows)
