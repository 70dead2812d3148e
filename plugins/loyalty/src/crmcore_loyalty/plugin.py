"""The loyalty plugin's hook implementations (registered with crmcore as ``loyalty``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
    )
    from crmcore.contracts import Ticket
    from crmcore.storage import CollectionSpec


@hookimpl
def crm_settings() -> SettingsSpec:
    """``[loyalty]``; its class is imported when the section is first structured."""
    return SettingsSpec(section="loyalty", type="crmcore_loyalty.settings:LoyaltySettings")


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    from crmcore_loyalty.storage import collections

    return collections()


@hookimpl
def crm_kinds() -> Kinds:
    """``asks.ASK_KIND`` and ``sweeps.REMINDER_KIND``, spelt out so that opening a CRM does
    not import those modules (a test holds them equal)."""
    return Kinds(
        tasks=("referral_ask", "points_expiry"),
        task_labels={
            "referral_ask": N_("Referral ask"),
            "points_expiry": N_("Points expiry reminder"),
        },
    )


@hookimpl
def crm_customer_adding(crm: CRM, customer: Customer, actor: str) -> dict[str, Any] | None:
    """Give every new customer a referral code (``[loyalty.referral] code_on_create``),
    stored with the customer's insert."""
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.referrals import NAMESPACE

    if not crm.settings("loyalty").referral.code_on_create:
        return None
    return {NAMESPACE: {"referral_code": Loyalty.of(crm).referrals.free_code()}}


@hookimpl
def crm_customer_created(crm: CRM, customer: Customer, actor: str) -> Effects | None:
    """Record the referral code ``crm_customer_adding`` gave the new customer."""
    from crmcore_loyalty.api import Loyalty

    if not crm.settings("loyalty").referral.code_on_create:
        return None
    return Loyalty.of(crm).referrals.code_effects(customer)


@hookimpl
def crm_interaction_logged(
    crm: CRM, interaction: Interaction, customer: Customer, actor: str
) -> Effects | None:
    """Earn, claw back on refunds, reward referrals, re-tier, and ask for referrals.

    Ledger postings need insert-if-absent under a per-customer lock, which ``RecordWrite``
    cannot express: they are an ``Action`` through the ledger's API, run by the core inside
    the transaction of this event (so they commit or roll back with it); the ask tasks it
    returns are applied after it.
    """
    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.earning import on_interaction

    return Effects.run(
        lambda: on_interaction(Loyalty.of(crm), interaction, customer, actor=actor),
        "loyalty: earn, claw back, reward, re-tier, ask",
    )


@hookimpl
def crm_interactions_replayed(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer], actor: str
) -> Effects | None:
    """History imported in a batch: the same earning, tiers and asks as per row, folded per
    customer where nothing else depends on the order (``replay``)."""
    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.replay import fold

    return Effects.run(
        lambda: fold(Loyalty.of(crm), events, customers, actor=actor),
        "loyalty: replay a batch of history",
    )


@hookimpl
def crm_replay_per_row(
    crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """Refunds, referrals, recent events (asks) and tiers mapped from grades go row by row."""
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.replay import per_row

    return per_row(Loyalty.of(crm), events, customers)


@hookimpl
def crm_customers_merged(crm: CRM, kept: Customer, merged: Customer, actor: str) -> Effects | None:
    """Referrals made by the merged customer now count for the kept one; the merged
    customer's account (moved to the kept one by the core) stops holding a tier of its own;
    the kept customer's running balance is recomputed from the joined ledger and the kept
    customer re-tiered on the joined history."""
    from crmcore import Action, Effects, RecordWrite
    from crmcore.converter import to_doc
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.records import ACCOUNTS, REFERRALS, Referral

    loyalty = Loyalty.of(crm)
    writes = [
        RecordWrite(REFERRALS, {**to_doc(r), "referrer_id": kept.id}, expected_version=r.version)
        for r in crm.records(REFERRALS, Referral).find({"referrer_id": merged.id})
    ]
    old = loyalty.ledger.account(merged.id)
    if old is not None and old.tier_review_at is not None:
        writes.append(
            RecordWrite(
                ACCOUNTS,
                {**to_doc(old), "tier": None, "tier_since": None, "tier_review_at": None},
                expected_version=old.version,
            )
        )

    def retier() -> None:
        # the merged customer's entries are the kept one's now: their balance joins
        loyalty.ledger.rebuild_balance(kept.id, actor=actor)
        loyalty.totals.rebuild(kept.id)  # the merged customer's purchases count now
        loyalty.tiers.evaluate(kept.id, actor=actor)

    retier_action = Action(retier, "loyalty: re-tier the kept customer of a merge")
    return Effects(records=writes, actions=[retier_action])


@hookimpl
def crm_tick(crm: CRM, now: datetime, worker: str) -> Effects | None:
    """Expire due points, remind before expiry, ask where purchases proved themselves, and
    review tiers whose review date has come."""

    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty
    from crmcore_loyalty.sweeps import Sweeps

    def sweep() -> Effects | None:
        drafts = Sweeps(Loyalty.of(crm)).run(now, actor=f"worker:{worker}")
        return Effects(tasks=drafts) if drafts else None

    return Effects.run(sweep, "loyalty: expiry, reminders, asks, tier reviews")


# grading's contract (crmcore.contracts; without grading, never called)
@hookimpl
def crm_grade_changed(
    crm: CRM, customer: Customer, scheme: str, old: str | None, new: str, reason: str, actor: str
) -> Effects | None:
    """grading changed a tier that ``[loyalty.tiers] from_grades`` maps: re-tier now."""
    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty

    if scheme not in crm.settings("loyalty").tiers.from_grades:
        return None
    return Effects.run(
        lambda: Loyalty.of(crm).tiers.evaluate(customer.id, actor=actor, grades={scheme: new}),
        "loyalty: re-tier on a grade change",
    )


@hookimpl
def crm_customer_perks(crm: CRM, customer: Customer) -> list[str]:
    """The perks of the customer's tier (``[loyalty.tiers.levels] perks``)."""
    from crmcore_loyalty.api import Loyalty

    return Loyalty.of(crm).tiers.perks(customer)


@hookimpl
def crm_complaint_resolved(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    """Goodwill points for a complaint resolved with compensation (capped per customer)."""
    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty

    return Effects.run(
        lambda: Loyalty.of(crm).compensation.on_resolved(ticket, actor=actor),
        "loyalty: goodwill points",
    )


@hookimpl
def crm_complaint_reopened(crm: CRM, ticket: Ticket, actor: str) -> Effects | None:
    """Claw back the goodwill points of a complaint that was reopened."""
    from crmcore import Effects
    from crmcore_loyalty.api import Loyalty

    return Effects.run(
        lambda: Loyalty.of(crm).compensation.on_reopened(ticket, actor=actor),
        "loyalty: claw back goodwill points",
    )


@hookimpl
def crm_award_points(
    crm: CRM, customer_id: str, points: int, source: str, reason: str, actor: str
) -> str | None:
    """The points contract: other plugins (service's care offers) credit points here."""
    from crmcore_loyalty.api import Loyalty

    entry = Loyalty.of(crm).award(customer_id, points, source=source, reason=reason, actor=actor)
    return "" if entry is None else entry.id


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm loyalty`` and ``crm referral``, imported when they run."""
    return [
        LazyCommand(
            "loyalty",
            "crmcore_loyalty.cli:loyalty_group",
            "Loyalty points: balance, history, redeem, adjust.",
        ),
        LazyCommand(
            "referral",
            "crmcore_loyalty.cli:referral_group",
            'Referral ("old brings new"): codes, links, statistics.',
        ),
    ]


@hookimpl
def crm_api_routes(crm: CRM) -> list[ApiRoute]:
    """Balance, ledger, redeem and referrals under ``/api/v1/loyalty``."""
    from crmcore_loyalty.api_routes import routes

    return routes()


@hookimpl
def crm_report_sections(
    crm: CRM, now: datetime, window: ReportWindow | None = None
) -> list[ReportSection]:
    """Points, tiers and referrals over the report's window."""
    from crmcore_loyalty import reporting
    from crmcore_loyalty.api import Loyalty

    return reporting.sections(Loyalty.of(crm), now, window)


@hookimpl
def crm_customer_summary(crm: CRM, customer: Customer) -> list[SummaryLine]:
    from crmcore_loyalty import reporting
    from crmcore_loyalty.api import Loyalty

    return reporting.summary(Loyalty.of(crm), customer)


@hookimpl
def crm_customer_records(crm: CRM, customer: Customer) -> dict[str, Any]:
    """For export: the referrals this customer made (the ledger, account, codes and the
    referral that brought them are exported by the core through their ``customer_key``)."""
    from crmcore.converter import to_doc
    from crmcore_loyalty.records import REFERRALS, Referral

    made = crm.records(REFERRALS, Referral).find({"referrer_id": customer.id})
    return {"loyalty": {"referrals_made": [to_doc(r) for r in made]}} if made else {}


@hookimpl
def crm_simulate(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    from crmcore_loyalty import simulate
    from crmcore_loyalty.api import Loyalty

    simulate.simulate_day(Loyalty.of(crm), now, rng, actor)


# -- the workspace -------------------------------------------------------------------------------


@hookimpl
def crm_customer_badges(crm: CRM, customer: Customer) -> list:
    """The loyalty tier beside the customer's name in queues."""
    from crmcore_loyalty.web import badges

    return badges(crm, customer)


@hookimpl
def crm_customers_badges(crm: CRM, customers: Sequence[Customer]) -> dict:
    """The same marks for a queue's customers in one call."""
    from crmcore_loyalty.web import badges

    return {c.id: badges(crm, c) for c in customers}


@hookimpl
def crm_customer_panels(crm: CRM) -> list:
    from crmcore_loyalty.web import customer_panels

    return customer_panels(crm)


@hookimpl
def crm_web_templates() -> list:
    from crmcore_loyalty.web import template_folders

    return template_folders()


@hookimpl
def crm_translations() -> list:
    from crmcore_loyalty.web import catalogs

    return catalogs()
