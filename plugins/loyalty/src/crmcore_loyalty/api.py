"""The Python API for host applications: ``Loyalty(crm)``.

Every write names an ``actor``; a refused request (a redemption above the balance, a
self-referral …) raises a ``crmcore`` error and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import Customer, ValidationError
from crmcore.customers import require_actor
from crmcore.i18n import msg
from crmcore.security import Resource
from crmcore.stash import StashKey
from crmcore_loyalty.asks import Asks
from crmcore_loyalty.compensation import Compensation
from crmcore_loyalty.ledger import Ledger, LedgerEntry
from crmcore_loyalty.records import Referral
from crmcore_loyalty.referrals import Referrals, ReferralStats
from crmcore_loyalty.settings import NAME, LoyaltySettings
from crmcore_loyalty.tiers import TierChange, Tiers
from crmcore_loyalty.totals import Totals

if TYPE_CHECKING:
    import random

    from crmcore import CRM


@attrs.frozen
class AccountView:
    """A customer's loyalty standing, as ``crm loyalty balance`` shows it."""

    customer_id: str
    balance: int
    available: int
    tier: str | None
    tier_since: datetime | None
    tier_review_at: datetime | None
    qualifying: float
    next_tier: str | None
    to_next_tier: float | None
    referral_code: str | None
    perks: tuple[str, ...]
    expiring_points: int
    expiring_by: datetime | None


@attrs.frozen
class RebuildReport:
    """What ``Loyalty.rebuild`` (``crm loyalty rebuild``) recomputed."""

    accounts: int  # customers with an account or ledger entries
    balances_fixed: int  # running balances that differed from the ledger's sum
    totals: int  # customers whose spend totals were rebuilt


_API: StashKey[Loyalty] = StashKey()  # one per CRM: see Loyalty.of


class Loyalty:
    """Points, tiers, referrals and compensation for one open CRM."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.ledger = Ledger(crm)
        self.totals = Totals(crm)
        self.tiers = Tiers(crm, self.ledger, self.totals)
        self.referrals = Referrals(crm, self.ledger)
        self.asks = Asks(crm)
        self.compensation = Compensation(crm, self.ledger)

    @classmethod
    def of(cls, crm: CRM) -> Loyalty:
        """The API of ``crm``, built once per CRM (kept in ``crm.stash``): hooks use this."""
        return crm.stash.get_or_build(_API, lambda: cls(crm))

    @property
    def settings(self) -> LoyaltySettings:
        return self.crm.settings("loyalty")

    def _customer(self, customer_id: str) -> Customer:
        return self.crm.customers.get(customer_id)

    def _allowed(self, actor: str, verb: str, customer: Customer) -> None:
        """Check ``loyalty.<verb>`` on the customer's account (``[security] enforce``)."""
        self.crm.authorize(
            actor,
            f"loyalty.{verb}",
            Resource("loyalty_account", customer.id, owner=customer.owner, customer_id=customer.id),
        )

    # -- points ----------------------------------------------------------------------------

    def _readable(self, customer_id: str, actor: str | None) -> Customer:
        customer = self._customer(customer_id)
        if actor is not None:
            self._allowed(actor, "read", customer)
        return customer

    def balance(self, customer_id: str, *, actor: str | None = None) -> int:
        """The customer's points (the sum of their ledger); checked for ``actor`` if given."""
        self._readable(customer_id, actor)
        return self.ledger.balance(customer_id)

    def account(
        self, customer_id: str, *, now: datetime | None = None, actor: str | None = None
    ) -> AccountView:
        """Balance, spendable points, tier, progress to the next tier, code and expiring points."""
        customer = self._readable(customer_id, actor)
        when = now or self.crm.now()
        state = self.ledger.state(customer_id)
        account = state.account
        qualifying = self.tiers.qualifying(customer_id, when)
        rank = self.settings.rank(account.tier)
        higher = [lv for lv in self.settings.tiers.levels[rank:] if lv.threshold > qualifying]
        horizon = when + timedelta(days=self.settings.expiry.reminder_days or 30)
        soon = [
            lot
            for lot in state.lots.values()
            if lot.remaining and lot.expires_at and lot.expires_at <= horizon
        ]
        return AccountView(
            customer_id=customer_id,
            balance=state.balance,
            available=state.available(when),
            tier=account.tier,
            tier_since=account.tier_since,
            tier_review_at=account.tier_review_at,
            qualifying=qualifying,
            next_tier=higher[0].name if higher else None,
            to_next_tier=round(higher[0].threshold - qualifying, 2) if higher else None,
            referral_code=self.referrals.code_of(customer_id),
            perks=tuple(self.tiers.perks(customer)),
            expiring_points=sum(lot.remaining for lot in soon),
            expiring_by=max((lot.expires_at for lot in soon if lot.expires_at), default=None),
        )

    def history(
        self, customer_id: str, *, limit: int | None = None, actor: str | None = None
    ) -> list[LedgerEntry]:
        """The customer's ledger, newest first."""
        self._readable(customer_id, actor)
        return self.ledger.history(customer_id, limit=limit)

    def award(
        self, customer_id: str, points: int, *, source: str, reason: str, actor: str, note: str = ""
    ) -> LedgerEntry | None:
        """Credit points for a host-defined event ``source`` (once per source; None if done).

        ``reason`` is a name such as ``birthday`` or ``app_install``; it counts towards tiers
        on the points basis.
        """
        actor = require_actor(actor)
        self._allowed(actor, "award", self._customer(customer_id))
        if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
            raise ValidationError(
                msg("points must be a whole number > 0, got %(points)s", points=repr(points)),
                field="points",
            )
        if (
            not isinstance(reason, str)
            or not NAME.match(reason)
            or reason in ("redeem", "adjust", "compensation")
        ):
            raise ValidationError(
                msg("%(reason)s is not a usable reason name", reason=repr(reason)), field="reason"
            )
        if not isinstance(source, str) or not source.strip():
            raise ValidationError(msg("name the event that earns the points"), field="source")
        entry = self.ledger.earn(
            customer_id,
            source=f"host:{source.strip()}",
            points=points,
            reason=reason,
            actor=actor,
            note=note,
        )
        if entry is not None:
            self.tiers.evaluate(customer_id, actor=actor)
        return entry

    def redeem(
        self,
        customer_id: str,
        points: int,
        *,
        actor: str,
        reference: str | None = None,
        note: str = "",
    ) -> LedgerEntry:
        """Spend points; refused when more than the spendable balance."""
        actor = require_actor(actor)
        self._allowed(actor, "redeem", self._customer(customer_id))
        return self.ledger.redeem(customer_id, points, actor=actor, reference=reference, note=note)

    def adjust(
        self,
        customer_id: str,
        points: int,
        *,
        actor: str,
        reason: str,
        reference: str | None = None,
    ) -> LedgerEntry:
        """Correct a balance by ± points, saying why; never below zero."""
        actor = require_actor(actor)
        self._allowed(actor, "adjust", self._customer(customer_id))
        return self.ledger.adjust(
            customer_id, points, actor=actor, note=reason, reference=reference
        )

    def rebuild(self, *, actor: str = "loyalty-rebuild") -> RebuildReport:
        """Recompute what loyalty keeps running from its sources: every account's balance
        from the ledger, every customer's spend totals from the history (a store from an
        older version, or records restored or edited by hand)."""
        actor = require_actor(actor)
        self.crm.authorize(actor, "loyalty.rebuild", Resource("loyalty"))
        accounts, fixed = self.ledger.rebuild_balances(actor=actor)
        return RebuildReport(accounts, fixed, self.totals.rebuild_all())

    # -- tiers -----------------------------------------------------------------------------

    def evaluate_tier(self, customer_id: str, *, actor: str) -> TierChange | None:
        """Re-tier the customer now (upgrades apply at once, downgrades at the review date)."""
        actor = require_actor(actor)
        self._allowed(actor, "evaluate", self._customer(customer_id))
        return self.tiers.evaluate(customer_id, actor=actor)

    def perks(self, customer_id: str) -> list[str]:
        """Perks of the customer's tier."""
        return self.tiers.perks(self._customer(customer_id))

    # -- referrals -------------------------------------------------------------------------

    def referral_code(
        self, customer_id: str, *, actor: str, rng: random.Random | None = None
    ) -> str:
        """The customer's referral code, made if they have none yet."""
        actor = require_actor(actor)
        self._allowed(actor, "code", self._customer(customer_id))
        return self.referrals.ensure_code(customer_id, actor=actor, rng=rng)

    def link(self, referred_id: str, code: str, *, actor: str) -> Referral:
        """Link a new customer to the owner of ``code``."""
        actor = require_actor(actor)
        self._allowed(actor, "link", self._customer(referred_id))
        return self.referrals.link(referred_id, code, actor=actor)

    def add_referred_customer(
        self, code: str, *, actor: str, name: str, **fields: Any
    ) -> tuple[Customer, Referral]:
        """Add a customer who came with ``code`` and link them (all or nothing)."""
        return self.referrals.add_customer(code, actor=require_actor(actor), name=name, **fields)

    def referral_stats(self, customer_id: str, *, actor: str | None = None) -> ReferralStats:
        """What one customer's referrals brought."""
        self._readable(customer_id, actor)
        return self.referrals.stats(customer_id)
