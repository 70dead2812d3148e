"""Earning rules, applied to every logged interaction.

- ``purchase`` with an amount: ``floor(amount * points_per_currency * tier multiplier)`` points,
  source ``purchase:<interaction id>``.
- A kind listed in ``[loyalty.earn.kind_points]`` (default: ``event`` 50, ``survey`` 20):
  ``floor(points * tier multiplier)``, source ``<kind>:<interaction id>``.
- ``refund`` with ``ref`` = a purchase of the same customer: the purchase's points are clawed back
  in proportion, so the customer keeps ``floor(earned * (amount - refunded) / amount)``; a
  refund without an amount refunds the whole purchase. Referral rewards that purchase qualified
  are clawed back once it no longer qualifies (see ``referrals``).
- Referral rewards are flat (no tier multiplier): DOMAIN §6 says not to judge a referrer by what
  they spend. Goodwill compensation and adjustments are not multiplied either.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmcore import Customer, Effects, Interaction, NotFoundError, TaskDraft
from crmcore_loyalty.ledger import LedgerState, Lot
from crmcore_loyalty.log import logger
from crmcore_loyalty.records import Account
from crmcore_loyalty.tiers import refund_amount

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty


def points_for(value: float, rate: float, multiplier: float) -> int:
    """Whole points for ``value`` at ``rate`` * ``multiplier`` (rounded down, float noise off)."""
    return max(0, math.floor(round(value * rate * multiplier, 6)))


def on_interaction(
    loyalty: Loyalty,
    interaction: Interaction,
    customer: Customer,
    *,
    actor: str,
    now: datetime | None = None,
) -> Effects:
    """Apply the earning rules to ``interaction``; returns the ask tasks to create."""
    crm = loyalty.crm
    settings = loyalty.settings
    when = now or crm.now()
    kind = interaction.kind
    moved = False
    drafts: list[TaskDraft | None] = []
    paid = settings.earn.purchase_kinds
    counted: list[dict[str, Any]] = []  # the spend totals written with the earn, if they were
    if kind in paid:
        if interaction.amount:
            amount, rate = interaction.amount, settings.earn.points_per_currency

            def earned(state: LedgerState) -> int:  # at the tier the ledger's account holds
                return points_for(amount, rate, loyalty.tiers.multiplier_of(state.account))

            def spend(account: Account) -> dict[str, Any]:
                # the purchase counted in the totals the account keeps: one account write
                counted[:] = [loyalty.totals.account_changes(account, interaction, now=when)]
                return counted[0]

            moved |= (
                loyalty.ledger.earn(
                    customer.id,
                    source=f"purchase:{interaction.id}",
                    points=earned,
                    reason="purchase",
                    actor=actor,
                    ref=interaction.id,
                    now=when,
                    note=f"purchase of {interaction.amount:.2f}",
                    also=spend,
                )
                is not None
            )
        moved |= loyalty.referrals.on_purchase(interaction, actor=actor, now=when) is not None
        drafts.append(
            loyalty.asks.draft(
                customer,
                "purchase",
                ref=interaction.id,
                now=when,
                code=lambda: loyalty.referrals.code_of(customer.id),
                event_at=interaction.occurred_at,
            )
        )
    elif kind in settings.earn.kind_points:
        flat = settings.earn.kind_points[kind]

        def earned_flat(state: LedgerState) -> int:
            return points_for(flat, 1.0, loyalty.tiers.multiplier_of(state.account))

        moved |= (
            loyalty.ledger.earn(
                customer.id,
                source=f"{kind}:{interaction.id}",
                points=earned_flat,
                reason=kind,
                actor=actor,
                ref=interaction.id,
                now=when,
            )
            is not None
        )
    elif kind == "refund" and interaction.ref:
        moved |= on_refund(loyalty, interaction, actor=actor, now=when)
    threshold = settings.asks.satisfaction_threshold
    if (
        interaction.satisfaction is not None
        and interaction.satisfaction >= threshold
        and not any(drafts)
    ):
        drafts.append(
            loyalty.asks.draft(
                customer,
                "praise",
                ref=interaction.id,
                now=when,
                code=lambda: loyalty.referrals.code_of(customer.id),
                event_at=interaction.occurred_at,
            )
        )
    if (kind in paid or kind == "refund") and not any(counted):
        loyalty.totals.record(interaction, now=when)
    if moved or kind in paid or kind == "refund":
        loyalty.tiers.evaluate(customer.id, actor=actor, now=when)
    return Effects(tasks=[d for d in drafts if d is not None])


def on_refund(loyalty: Loyalty, refund: Interaction, *, actor: str, now: datetime) -> bool:
    """Claw back what a refunded purchase earned (and the referral it qualified)."""
    crm = loyalty.crm
    try:
        purchase = crm.interactions.get(refund.ref or "")
    except NotFoundError:
        logger().warning("refund names no known purchase", interaction_id=refund.id, ref=refund.ref)
        return False
    if (
        purchase.kind not in loyalty.settings.earn.purchase_kinds
        or purchase.customer_id != refund.customer_id
    ):
        logger().warning(
            "refund ref is not a purchase of the same customer",
            interaction_id=refund.id,
            ref=refund.ref,
        )
        return False
    amount = purchase.amount or 0.0
    refunded = sum(
        refund_amount(crm, r.amount, purchase.id)
        for r in crm.interactions.for_customer(purchase.customer_id, kinds=["refund"])
        if r.ref == purchase.id
    )
    remaining = max(0.0, amount - refunded)

    def requested(lot: Lot) -> int:
        if amount <= 0 or remaining <= 0:
            return lot.entry.points
        keep = math.floor(round(lot.entry.points * remaining / amount, 6))
        return lot.entry.points - keep - lot.requested

    taken = loyalty.ledger.clawback(
        purchase.customer_id,
        f"purchase:{purchase.id}",
        cause=refund.id,
        actor=actor,
        requested=requested,
        now=now,
        note=f"refund {refund.id} of purchase {purchase.id}",
    )
    reopened = loyalty.referrals.on_refund(refund, purchase, actor=actor, now=now)
    return taken is not None or reopened is not None
