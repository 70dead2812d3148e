"""Tiers: qualification over a rolling window, upgrade at once, downgrade only at the review date.

- The qualifying value is the customer's spend (purchases less refunds) or qualifying points
  (points earned from purchases, other interactions and referrals, less what was clawed back
  from them; goodwill compensation and manual adjustments do not qualify) over the last
  ``[loyalty.tiers] window_days``.
- The target tier is the highest level whose threshold the value reaches.
- Higher than the current tier: upgrade now; the tier is then held at least until its review
  date, ``review_days`` later.
- Lower: nothing changes before the review date; at (or after) it the customer moves to the
  target tier (possibly none) and a new review date is set.
- Same tier at the review date: requalified, the review date moves ``review_days`` on.

The tier state lives on the customer's ``Account`` (written with optimistic locking, so one
change is announced once even when workers race) and is mirrored to
``customer.ext["loyalty"]`` as ``tier``, ``tier_since`` and ``tier_review_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import ConflictError, NotFoundError
from crmcore.converter import iso
from crmcore_loyalty.ledger import MAX_ATTEMPTS, Ledger
from crmcore_loyalty.log import logger
from crmcore_loyalty.records import CLAWBACK, EARN, Account, LedgerEntry
from crmcore_loyalty.settings import LoyaltySettings, TierLevel
from crmcore_loyalty.totals import Totals

if TYPE_CHECKING:
    from crmcore import CRM, Customer

NAMESPACE = "loyalty"
NON_QUALIFYING = frozenset({"compensation", "adjust"})


@attrs.frozen
class TierChange:
    """A tier change that was made (and announced)."""

    customer_id: str
    old: str | None
    new: str | None
    at: datetime
    value: float


def qualifying_points(entries: Iterable[LedgerEntry], since: datetime, now: datetime) -> float:
    """Points earned in ``(since, now]`` less those clawed back in it, compensation and
    adjustments left out (the ``points`` tier basis)."""
    earned = taken = 0
    for e in entries:
        if e.reason in NON_QUALIFYING or not since < e.at <= now:
            continue
        if e.kind == EARN:
            earned += e.points
        elif e.kind == CLAWBACK:
            taken += -e.points + e.shortfall
    return float(max(0, earned - taken))


def ext_values(account: Account) -> dict[str, Any]:
    """What ``customer.ext["loyalty"]`` holds about the tier."""
    return {
        "tier": account.tier,
        "tier_since": iso(account.tier_since) if account.tier_since else None,
        "tier_review_at": iso(account.tier_review_at) if account.tier_review_at else None,
    }


class Tiers:
    """Evaluate and publish customers' tiers."""

    def __init__(self, crm: CRM, ledger: Ledger, totals: Totals) -> None:
        self._crm = crm
        self._ledger = ledger
        self._totals = totals

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    def qualifying(self, customer_id: str, now: datetime) -> float:
        """The customer's qualifying value over the rolling window ending at ``now``."""
        since = now - timedelta(days=self.settings.tiers.window_days)
        if self.settings.tiers.basis == "spend":
            return self._spend(customer_id, since, now)
        return qualifying_points(self._ledger.state(customer_id).entries, since, now)

    def _spend(self, customer_id: str, since: datetime, now: datetime) -> float:
        # the running lines (``totals``), not the customer's history read again
        return self._totals.spend(customer_id, since, now)

    def target(self, value: float) -> TierLevel | None:
        """The highest level whose threshold ``value`` reaches."""
        reached = None
        for level in self.settings.tiers.levels:
            if value >= level.threshold:
                reached = level
        return reached

    def mapped(self, customer_id: str, grades: dict[str, Any] | None = None) -> TierLevel | None:
        """The highest level the customer's grading tiers grant (``[loyalty.tiers]
        from_grades``); ``grades`` overrides what ``ext.grading.grades`` holds."""
        table = self.settings.tiers.from_grades
        if not table:
            return None
        try:
            stored = self._crm.customers.get_any(customer_id).ext.get("grading", {})
        except NotFoundError:
            return None
        current = {**stored.get("grades", {}), **(grades or {})}
        granted = [
            self.settings.level(levels[current[scheme]])
            for scheme, levels in table.items()
            if current.get(scheme) in levels
        ]
        return max(
            (g for g in granted if g), key=lambda g: self.settings.rank(g.name), default=None
        )

    def evaluate(
        self,
        customer_id: str,
        *,
        actor: str,
        now: datetime | None = None,
        grades: dict[str, Any] | None = None,
    ) -> TierChange | None:
        """Re-tier one customer by the rules above; announce a change with ``crm_tier_changed``.
        The target is the higher of the qualifying value's level and the level mapped from
        the customer's grading tiers (``grades`` overriding the stored ones)."""
        when = now or self._crm.now()
        review = timedelta(days=self.settings.tiers.review_days)
        for _attempt in range(MAX_ATTEMPTS):
            account = self._ledger.account(customer_id)
            stored = account is not None
            if account is None:
                account = Account(id=f"lac_{customer_id}", customer_id=customer_id)
            value = self.qualifying(customer_id, when)
            level = self.target(value)
            granted = self.mapped(customer_id, grades)
            if granted is not None and self.settings.rank(granted.name) > self.settings.rank(
                level.name if level else None
            ):
                level = granted
            new = level.name if level else None
            current_rank = self.settings.rank(account.tier)
            known = account.tier is None or current_rank > 0
            target_rank = self.settings.rank(new)
            review_due = account.tier_review_at is None or when >= account.tier_review_at
            changes: dict[str, Any] = {}
            upgrade = target_rank > current_rank or not known
            if upgrade or (target_rank < current_rank and review_due):
                changes = {
                    "tier": new,
                    "tier_since": when if new else None,
                    "tier_review_at": when + review if new else None,
                }
            elif account.tier is not None and review_due:
                changes = {"tier_review_at": when + review}  # requalified at the review
            if not changes:
                self._publish(customer_id, account, actor)
                return None
            try:
                with self._crm.transaction(actor):
                    updated = self._ledger.update_account(account, stored, **changes)
                    self._publish(customer_id, updated, actor)
            except ConflictError:
                continue
            if updated.tier == account.tier:
                return None
            customer = self._crm.customers.get(customer_id)
            self._crm.events.tier_changed(
                actor=actor,
                customer=customer,
                old=account.tier,
                new=updated.tier,
            )
            logger().info(
                "tier changed", customer_id=customer_id, old=account.tier, new=updated.tier
            )
            return TierChange(customer_id, account.tier, updated.tier, when, value)
        raise ConflictError(f"customer {customer_id}: tier kept changing underneath; try again")

    def _publish(self, customer_id: str, account: Account, actor: str) -> None:
        """Mirror the account's tier into ``customer.ext["loyalty"]`` (no write if equal)."""
        values = ext_values(account)
        customer = self._crm.customers.get_any(customer_id)
        current = customer.ext.get(NAMESPACE, {})
        if all(current.get(k) == v for k, v in values.items()):
            return
        if account.tier is None and "tier" not in current:
            return  # never tiered: keep ext clean
        self._crm.customers.patch_ext(customer_id, NAMESPACE, values, actor=actor)

    def perks(self, customer: Customer) -> list[str]:
        """The perks of the customer's tier."""
        level = self.settings.level(customer.ext.get(NAMESPACE, {}).get("tier"))
        return list(level.perks) if level else []

    def multiplier(self, customer_id: str) -> float:
        """The earning multiplier of the customer's current tier (1 without one)."""
        return self.multiplier_of(self._ledger.account(customer_id))

    def multiplier_of(self, account: Account | None) -> float:
        """The earning multiplier of the tier ``account`` holds (1 without one)."""
        level = self.settings.level(account.tier if account else None)
        return level.multiplier if level else 1.0


def refund_amount(crm: CRM, amount: float | None, purchase_id: str | None) -> float:
    """What a refund gives back: its amount, else the whole referenced purchase."""
    if amount is not None:
        return amount
    if purchase_id is None:
        return 0.0
    try:
        purchase = crm.interactions.get(purchase_id)
    except NotFoundError:  # a missing purchase refunds nothing measurable
        return 0.0
    if purchase.kind not in crm.settings("loyalty").earn.purchase_kinds:
        return 0.0
    return purchase.amount or 0.0
