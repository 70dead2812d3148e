"""Loyalty's contract: tier changes, perks and awarding points."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.effects import Effects
    from crmcore.entities import Customer


class LoyaltyContract:
    """``crm_tier_changed``, ``crm_customer_perks`` and ``crm_award_points``."""

    @hookspec
    def crm_tier_changed(
        self, crm: CRM, customer: Customer, old: str | None, new: str | None, actor: str
    ) -> Effects | None:
        """A customer's loyalty tier changed from ``old`` to ``new`` (None: no tier).

        Fired through ``crm.events`` (so the ``Effects`` every implementer returns are applied)
        right after ``customer.ext["loyalty"]["tier"]`` was updated: at once on an upgrade, and
        only at the review date on a downgrade. Every plugin is called; fired once per change
        even when several workers evaluate the same customer.
        """

    @hookspec
    def crm_customer_perks(self, crm: CRM, customer: Customer) -> list[str]:  # type: ignore[empty-body]
        """The perks ``customer`` is entitled to (``dedicated_rep``, ``priority_handling``,
        ``exclusive_offers`` …). Every plugin is called and the lists are joined; the loyalty
        plugin answers with the perks of the customer's tier (``[loyalty.tiers]``)."""

    @hookspec(firstresult=True)
    def crm_award_points(
        self, crm: CRM, customer_id: str, points: int, source: str, reason: str, actor: str
    ) -> str | None:
        """Credit ``points`` (> 0) to a customer for an event another plugin names: ``source``
        is unique per event (a second call with it credits nothing), ``reason`` a name such as
        ``care_offer``. Returns the ledger entry id, or "" when that source was already
        credited; None means no plugin awards points (the loyalty plugin answers). Checks
        ``loyalty.award`` for ``actor``. Stops at the first non-None result."""
