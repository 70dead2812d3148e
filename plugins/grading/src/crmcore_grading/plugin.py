"""The grading plugin's hook implementations (registered as the plugin ``grading``).

Event hooks re-grade the customer concerned and apply the resulting ``Effects`` (the ext patch,
history records, a retention task) through ``crm.apply`` before firing ``crm_grade_changed`` /
``crm_churn_risk_changed``, so implementers of those hooks see the stored new grade. They run
inside the transaction of the write that caused the event, and return None.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from crmcore import LazyCommand, SettingsSpec, hookimpl

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
    )
    from crmcore.contracts import Ticket
    from crmcore.storage import CollectionSpec
    from crmcore_grading.scheme import GradingScheme

# -- start-up ---------------------------------------------------------------------------------


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[grading]``; its class is imported when the section is first structured."""
    return SettingsSpec(section="grading", type="crmcore_grading.settings:GradingSettings")


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    from crmcore_grading import storage

    return storage.collections()


@hookimpl
def crm_grading_schemes() -> list[GradingScheme]:
    from crmcore_grading.schemes import BUILTIN

    return list(BUILTIN)


# -- events -----------------------------------------------------------------------------------


@hookimpl
def crm_customer_created(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    from crmcore import Effects
    from crmcore_grading.engine import NAMESPACE, engine_for
    from crmcore_grading.inputs import clean_inputs

    given = (customer.ext.get(NAMESPACE) or {}).get("inputs")
    inputs = clean_inputs(given) if given else None

    def grade() -> None:
        engine = engine_for(crm)  # also notes when grading started on this store
        if inputs:
            engine.regrade(customer.id, actor=actor, changes={"inputs": inputs})

    return Effects.run(grade, "grading: inputs given at creation")


def interaction_doc(interaction: Interaction) -> dict[str, Any]:
    """The stored fields the signal fold reads (without a full unstructure)."""
    from crmcore.converter import iso

    return {
        "customer_id": interaction.customer_id,
        "kind": interaction.kind,
        "occurred_at": iso(interaction.occurred_at),
        "amount": interaction.amount,
        "satisfaction": interaction.satisfaction,
        "ref": interaction.ref,
        "ext": interaction.ext,
    }


@hookimpl(trylast=True)
def crm_interaction_logged(crm: CRM, interaction: Interaction, actor: str) -> Effects | None:
    # trylast: other plugins' reactions (a complaint ticket registered from this interaction)
    # are stored first, so one re-grade sees them.
    from crmcore import Effects
    from crmcore_grading.engine import engine_for
    from crmcore_grading.outcomes import win_back

    doc = interaction_doc(interaction)

    def regrade() -> None:
        engine = engine_for(crm)
        edit = None
        if interaction.kind in engine.settings.signals.spend_kinds:

            def edit(grading: dict[str, Any]) -> None:  # a lost customer buys again: won back
                win_back(grading, doc["occurred_at"])

        engine.regrade(interaction.customer_id, actor=actor, fold=doc, edit=edit)

    return Effects.run(regrade, "grading: re-grade on an interaction")


@hookimpl(trylast=True)
def crm_interactions_replayed(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer], actor: str
) -> Effects | None:
    """History imported in a batch: each customer's events graded in order as the per-row
    re-grade grades them, with one write per announced change (``replay``). trylast, as the
    per-row hook: the other plugins' folds of the batch are stored first."""
    from crmcore import Effects
    from crmcore_grading.engine import engine_for
    from crmcore_grading.replay import fold

    return Effects.run(
        lambda: fold(engine_for(crm), events, actor=actor, to_doc=interaction_doc),
        "grading: re-grade a batch of history",
    )


@hookimpl
def crm_replay_per_row(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """Customers with a complaint or callback in the batch are re-graded row by row."""
    from crmcore_grading.engine import engine_for
    from crmcore_grading.replay import per_row

    return per_row(engine_for(crm), events, customers)


@hookimpl
def crm_task_completed(crm: CRM, task: Task, actor: str) -> Effects | None:
    # DOMAIN §3: after every follow-up the customer is re-graded.
    from crmcore import Effects
    from crmcore_grading.engine import engine_for

    customer_id = task.customer_id
    if not customer_id:
        return None
    return Effects.run(
        lambda: engine_for(crm).regrade_again(customer_id, actor=actor),
        "grading: re-grade after a completed task",
    )


@hookimpl
def crm_customers_merged(crm: CRM, kept: Customer, merged: Customer, actor: str) -> Effects | None:
    from crmcore import Effects
    from crmcore_grading.engine import NAMESPACE, engine_for

    theirs = merged.ext.get(NAMESPACE) or {}

    def combine(grading: dict[str, Any]) -> None:
        tickets = set(grading.get("open_complaints") or ()) | set(
            theirs.get("open_complaints") or ()
        )
        grading["open_complaints"] = sorted(tickets)
        if not grading.get("inputs") and theirs.get("inputs"):
            grading["inputs"] = theirs["inputs"]

    return Effects.run(
        lambda: engine_for(crm).regrade(kept.id, actor=actor, rebuild=True, edit=combine),
        "grading: re-grade the kept customer of a merge",
    )


def _ticket(crm: CRM, ticket: Ticket, actor: str, *, is_open: bool) -> Effects | None:
    from crmcore import Effects
    from crmcore_grading.engine import engine_for

    customer_id = ticket.customer_id
    ticket_id = ticket.id
    if not customer_id or not ticket_id:
        return None

    def mark(grading: dict[str, Any]) -> None:
        tickets = set(grading.get("open_complaints") or ())
        if is_open:
            tickets.add(ticket_id)
        else:
            tickets.discard(ticket_id)
        grading["open_complaints"] = sorted(tickets)

    return Effects.run(
        lambda: engine_for(crm).regrade(customer_id, actor=actor, edit=mark),
        "grading: a complaint opened or closed",
    )


@hookimpl
def crm_complaint_registered(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    return _ticket(crm, ticket, actor, is_open=True)


@hookimpl
def crm_complaint_reopened(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    return _ticket(crm, ticket, actor, is_open=True)


@hookimpl
def crm_complaint_resolved(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    return _ticket(crm, ticket, actor, is_open=False)


@hookimpl
def crm_complaint_closed(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    return _ticket(crm, ticket, actor, is_open=False)


@hookimpl
def crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    # The population run writes through its own batched API (it may touch every customer);
    # a lease on a singleton record keeps concurrent workers from running it twice. As an
    # Action it runs after the sweep's hooks return, outside any transaction, as before.
    from crmcore import Effects
    from crmcore_grading.engine import engine_for

    return Effects.run(lambda: engine_for(crm).tick(now, worker), "grading: population run")


# -- faces ------------------------------------------------------------------------------------


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm grade``, imported when it runs."""
    return [
        LazyCommand(
            "grade",
            "crmcore_grading.cli:grade_group",
            "Customer grades: the A-E pipeline grade, value tiers and churn risk.",
        )
    ]


@hookimpl
def crm_api_routes(crm: CRM) -> list[ApiRoute]:
    """A customer's grades, history and inputs, and customers by grade, under
    ``/api/v1/grading``."""
    from crmcore_grading.api_routes import routes

    return routes()


@hookimpl
def crm_report_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    from crmcore_grading.charts import with_charts
    from crmcore_grading.report import sections

    return with_charts(sections(crm, now, window))


@hookimpl
def crm_customer_summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    from crmcore_grading.report import summary

    return summary(crm, customer)


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    from crmcore_grading.simulate import simulate_day

    simulate_day(crm, now, rng, actor)


# -- the workspace -------------------------------------------------------------------------------


@hookimpl
def crm_customer_badges(crm: CRM, customer: Customer) -> list:
    """The pipeline grade and the value tier beside the customer's name in queues."""
    from crmcore_grading.web import badges

    return badges(customer)


@hookimpl
def crm_customers_badges(crm: CRM, customers: Sequence[Customer]) -> dict:
    """The same marks for a queue's customers in one call."""
    from crmcore_grading.web import badges

    return {c.id: badges(c) for c in customers}


@hookimpl
def crm_customer_panels(crm: CRM) -> list:
    from crmcore_grading.web import customer_panels

    return customer_panels(crm)


@hookimpl
def crm_web_templates() -> list:
    from crmcore_grading.web import template_folders

    return template_folders()


@hookimpl
def crm_translations() -> list:
    from crmcore_grading.web import catalogs

    return catalogs()
