"""The nps plugin: the module registered under the entry point ``nps`` in group ``crmcore``.

Only hook implementations live here; each one hands over to a module that says what it does.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import TYPE_CHECKING

from crmcore import Kinds, LazyCommand, SettingsSpec, hookimpl

if TYPE_CHECKING:
    import click
    from crmcore import CRM, Customer, Effects, Interaction, ReportSection, SummaryLine
    from crmcore.plugins import PluginManager
    from crmcore.registry import CustomerPanel, TemplateFolder, TranslationCatalog
    from crmcore.storage import CollectionSpec


@hookimpl
def crm_addhooks(pluginmanager: PluginManager) -> None:
    """Offer ``crm_nps_answered`` to other plugins."""
    from crmcore_nps.hookspecs import NpsHookSpecs

    pluginmanager.add_hookspecs(NpsHookSpecs)


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[nps]`` in crm.toml (the class is imported when the section is first read)."""
    return SettingsSpec(section="nps", type="crmcore_nps.settings:NpsSettings")


@hookimpl
def crm_kinds() -> Kinds:
    """Survey tasks are a kind of our own (``model.SURVEY_TASK``, spelt out so that
    registering the plugin does not import the model); the answer is logged as the core kind
    ``survey``."""
    return Kinds(tasks=("nps_survey",))


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """``nps.answers`` (``model.ANSWERS``), reached by customer merge, export and erasure via
    ``customer_id``. ``Answer`` is named, its personal field beside it: opening a CRM does not
    define the class (a command that reads answers imports it)."""
    from crmcore.storage import CollectionSpec, IndexSpec

    return [
        CollectionSpec(
            "nps.answers",
            indexes=(
                IndexSpec([("customer_id", 1), ("answered_at", 1)]),
                IndexSpec([("answered_at", 1)]),
                # a survey is answered once, even when two answers race
                IndexSpec([("survey_task_id", 1)], unique=True, sparse=True),
            ),
            customer_key="customer_id",
            record_type="crmcore_nps.model:Answer",
            personal=("comment",),
        )
    ]


@hookimpl
def crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer
) -> Effects | None:
    """A callback was logged: ask for a survey (the core applies and deduplicates it)."""
    from crmcore import Effects

    from crmcore_nps.surveys import survey_draft

    draft = survey_draft(crm, interaction, customer)
    return Effects(tasks=[draft]) if draft else None


@hookimpl
def crm_tick(crm: CRM, now: datetime) -> Effects | None:
    """Cancel surveys nobody carried out in time."""
    from crmcore import Effects

    from crmcore_nps.surveys import expired_surveys

    updates = expired_surveys(crm, now)
    return Effects(task_updates=updates) if updates else None


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm nps answer`` and ``crm nps report``, imported when ``crm nps`` runs."""
    return [
        LazyCommand(
            "nps",
            "crmcore_nps.cli:nps_group",
            "Net Promoter Score surveys: record answers, see the score.",
        )
    ]


@hookimpl
def crm_report_sections(crm: CRM, now: datetime) -> list[ReportSection]:
    """NPS with promoter, passive and detractor counts."""
    from crmcore_nps.surveys import report_section

    return [report_section(crm, now)]


@hookimpl
def crm_customer_summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    """The customer's latest answer and open survey on ``crm customer show``."""
    from crmcore_nps.surveys import summary_lines

    return summary_lines(crm, customer)


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    """``crm demo``: customers answer some of their surveys."""
    from crmcore_nps.simulate import simulate_day

    simulate_day(crm, now, rng, actor)


@hookimpl
def crm_customer_panels(crm: CRM) -> list[CustomerPanel]:
    """The customer's survey answers on the workspace's customer page."""
    from crmcore_nps.web import customer_panels

    return customer_panels(crm)


@hookimpl
def crm_web_templates() -> list[TemplateFolder]:
    from crmcore_nps.web import template_folders

    return template_folders()


@hookimpl
def crm_translations() -> list[TranslationCatalog]:
    from crmcore_nps.web import catalogs

    return catalogs()
