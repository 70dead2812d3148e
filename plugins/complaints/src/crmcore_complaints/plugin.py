"""The complaints plugin's hook implementations (registered as the ``complaints`` plugin)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from crmcore import Kinds, LazyCommand, SettingsSpec, hookimpl
from crmcore.markers import N_

if TYPE_CHECKING:
    import click

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
    )
    from crmcore.contracts import BusinessClock
    from crmcore.registry import (
        CustomerPanel,
        NavEntry,
        TemplateFolder,
        TranslationCatalog,
        WebPage,
    )
    from crmcore.storage import CollectionSpec
    from crmcore_complaints.model import Notification


# followup's contract (crmcore.contracts): a rep left, their open tickets move
@hookimpl
def crm_rep_left(crm: CRM, rep: str, successor: str, actor: str) -> int:
    """A rep left: their open tickets go to each customer's new owner (else ``successor``)."""
    from crmcore_complaints.api import Complaints

    return Complaints.of(crm).hand_over(rep, successor=successor, actor=actor)


@hookimpl
def crm_config_warnings(crm: CRM) -> list[str]:
    """An escalation ladder with no one to escalate to; a holiday calendar out of date."""
    from crmcore_complaints.api import SECTION
    from crmcore_complaints.roles import staffing_warnings

    return staffing_warnings(crm.settings(SECTION), crm.now().date())


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[complaints]``; its class is imported when the section is first structured."""
    return SettingsSpec(section="complaints", type="crmcore_complaints.settings:ComplaintsSettings")


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """The record classes named (``crmcore_complaints.model``), with their personal fields,
    so that opening a CRM does not define them (a test holds names and fields equal)."""
    from crmcore.storage import CollectionSpec, IndexSpec

    model = "crmcore_complaints.model"
    return [
        CollectionSpec(
            "complaints.tickets",
            (
                IndexSpec([("wake_at", 1)], sparse=True),  # the worker's sweep
                IndexSpec([("status", 1), ("opened_at", 1)]),
                IndexSpec([("customer_id", 1), ("opened_at", 1)]),
                IndexSpec([("department", 1), ("status", 1)]),
                IndexSpec([("owner", 1), ("status", 1)]),
                IndexSpec([("opened_at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Ticket",
            personal=("content", "complainant", "contact", "explanation", "resolution"),
        ),
        CollectionSpec(
            "complaints.traces",
            (
                IndexSpec([("ticket_id", 1), ("at", 1)]),
                IndexSpec([("action", 1), ("at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Trace",
            personal=("note",),
        ),
        CollectionSpec(
            "complaints.outbox",
            (
                IndexSpec([("ticket_id", 1)]),
                IndexSpec([("created_at", 1)]),
            ),
            customer_key="customer_id",
            record_type=f"{model}:Notification",
            personal=(),
        ),
        CollectionSpec(
            "complaints.actions",
            (IndexSpec([("status", 1), ("due_at", 1)]),),
            record_type=f"{model}:ImprovementAction",
            personal=(),
        ),
    ]


@hookimpl
def crm_kinds() -> Kinds:
    return Kinds(tasks=("improvement",), task_labels={"improvement": N_("Improvement action")})


@hookimpl
def crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer, actor: str
) -> Effects | None:
    """A "complaint" interaction logged by someone else registers a ticket; a "callback"
    interaction about a ticket stores the satisfaction answer (and reopens when unhappy)."""
    from crmcore import Effects

    if not _reacts_to(interaction):
        return None  # most interactions (a purchase, a follow-up): nothing to do, no Action
    return Effects.run(
        lambda: _crm_interaction_logged(crm, interaction, customer, actor),
        "complaints: interaction logged",
    )


def _reacts_to(interaction: Interaction) -> bool:
    """Whether ``_crm_interaction_logged`` acts on ``interaction`` (else it returns None)."""
    ref = interaction.ref or ""
    return (interaction.kind == "complaint" and not ref.startswith("tkt_")) or (
        interaction.kind == "callback" and ref.startswith("tkt_")
    )


@hookimpl
def crm_replay_per_row(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """History imported in a batch: customers with a complaint or a ticket's callback in it
    go row by row."""
    return sorted({e.customer_id for e in events if _reacts_to(e)})


@hookimpl
def crm_interactions_replayed(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer], actor: str
) -> Effects | None:
    """The other rows of a batch are neither complaints nor callbacks: nothing to do."""
    return None


def _crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer, actor: str
) -> Effects | None:
    from crmcore_complaints.api import Complaints

    ref = interaction.ref or ""
    if interaction.kind == "complaint" and not ref.startswith("tkt_"):
        api = Complaints.of(crm)
        if api.settings.register_from_interactions:
            api.register_from_interaction(interaction, actor)
    elif interaction.kind == "callback" and ref.startswith("tkt_"):
        Complaints.of(crm).apply_callback(interaction, actor)
    return None


@hookimpl
def crm_task_completed(crm: CRM, task: Task, actor: str) -> Effects | None:
    """When the target of an escalation marks its task done, the ticket's trail shows it."""
    from crmcore import Effects, RecordWrite
    from crmcore.converter import to_doc
    from crmcore_complaints.api import SECTION, TASK_SOURCE
    from crmcore_complaints.model import TICKETS, TRACES, Ticket, Trace

    purpose = task.ext.get(SECTION, {}).get("purpose")
    if task.source != TASK_SOURCE or purpose != "escalation" or not task.ref:
        return None
    ticket = crm.records(TICKETS, Ticket).find_one({"id": task.ref})
    if ticket is None:
        return None
    trace = Trace(
        id=crm.new_id("trc_"),
        ticket_id=ticket.id,
        customer_id=ticket.customer_id,
        at=crm.now(),
        actor=actor,
        action="escalation_handled",
        details={
            "level": task.ext[SECTION].get("level"),
            "task_id": task.id,
            "outcome": task.outcome,
        },
    )
    return Effects(records=[RecordWrite(TRACES, to_doc(trace))])


@hookimpl
def crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    """Record SLA breaches, escalate along the ladder and auto-close what is due."""
    from crmcore import Effects

    return Effects.run(lambda: _crm_tick(crm, now, worker), "complaints: tick")


def _crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    from crmcore_complaints.api import Complaints

    Complaints.of(crm).sweep(now, worker)
    return None


@hookimpl(trylast=True)
def crm_complaint_notify(crm: CRM, notification: Notification) -> bool | None:
    """The default notifier: the outbox collection and the log."""
    from crmcore_complaints.api import Complaints

    return Complaints.of(crm).deliver_to_outbox(notification)


@hookimpl
def crm_business_clock(crm: CRM) -> BusinessClock:
    """Offer the ``[complaints.calendar]`` business clock to other plugins (a contract)."""
    from crmcore_complaints.api import Complaints

    return Complaints.of(crm).scheduler.business


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm complaints``, imported when it runs."""
    return [
        LazyCommand(
            "complaints",
            "crmcore_complaints.cli:complaints_group",
            "Complaint tickets: register, judge, dispatch, resolve, close, reopen and analyse.",
        )
    ]


@hookimpl
def crm_api_routes(crm: CRM) -> list[ApiRoute]:
    """The whole complaint flow under ``/api/v1/complaints``."""
    from crmcore_complaints.api_routes import routes

    return routes()


# -- the workspace (served by the web plugin; these use only crmcore.registry types) -----------


@hookimpl
def crm_web_pages(crm: CRM) -> list[WebPage]:
    """The complaint desk, the intake form and the ticket page with every action."""
    from crmcore_complaints import web_pages

    return web_pages.pages()


@hookimpl
def crm_nav_entries(crm: CRM) -> list[NavEntry]:
    """ "Complaint desk" in the workspace's navigation."""
    from crmcore_complaints import web_pages

    return web_pages.nav_entries()


@hookimpl
def crm_customer_panels(crm: CRM) -> list[CustomerPanel]:
    """The customer's open and latest closed tickets on the customer page."""
    from crmcore_complaints import web_pages

    return web_pages.panels()


@hookimpl
def crm_web_templates() -> list[TemplateFolder]:
    """The templates of the desk, intake, ticket and panel (``complaints/*.html``)."""
    from crmcore_complaints import web_pages

    return web_pages.templates()


@hookimpl
def crm_translations() -> list[TranslationCatalog]:
    """The desk's strings (``locale/<locale>/LC_MESSAGES/crmcore_complaints.po``)."""
    from crmcore_complaints import web_pages

    return web_pages.translations()


@hookimpl
def crm_report_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    from crmcore_complaints.analysis import domain_sections
    from crmcore_complaints.api import Complaints

    return domain_sections(Complaints.of(crm), now, window)


@hookimpl
def crm_customer_summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    from crmcore_complaints.analysis import customer_summary
    from crmcore_complaints.api import Complaints

    return customer_summary(Complaints.of(crm), customer.id)


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    from crmcore_complaints.api import Complaints
    from crmcore_complaints.simulate import simulate_day

    simulate_day(Complaints.of(crm), now, rng, actor)
