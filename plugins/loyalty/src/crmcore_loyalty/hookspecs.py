"""Hooks the loyalty plugin offers to other plugins.

Implement them with ``@crmcore.hookimpl(optionalhook=True)`` so that a stack without loyalty
still loads. Call the perks hook defensively::

    perks_hook = getattr(crm.plugins.hook, "crm_customer_perks", None)
    perks = [p for part in perks_hook(crm=crm, customer=customer) for p in part] if perks_hook \
        else []
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, Customer, Effects
    from crmcore.plugins import PluginManager


class LoyaltyHookSpecs:
    """The loyalty plugin's hooks."""

    @hookspec
    def crm_tier_changed(self, crm: CRM, customer: Customer, old: str | None, new: str | None,
                         actor: str) -> Effects | None:
        """A customer's loyalty tier changed from ``old`` to ``new`` (None: no tier).

        Fired through ``crm.emit`` (so the ``Effects`` every implementer returns are applied)
        right after ``customer.ext["loyalty"]["tier"]`` was updated: at once on an upgrade, and
        only at the review date on a downgrade. Every plugin is called; fired once per change
        even when several workers evaluate the same customer.
        """

    @hookspec
    def crm_customer_perks(self, crm: CRM, customer: Customer) -> list[str]:
        """The perks ``customer`` is entitled to (``dedicated_rep``, ``priority_handling``,
        ``exclusive_offers`` …). Every plugin is called and the lists are joined; the loyalty
        plugin answers with the perks of the customer's tier (``[loyalty.tiers]``)."""

    @hookspec(firstresult=True)
    def crm_award_points(self, crm: CRM, customer_id: str, points: int, source: str,
                         reason: str, actor: str) -> str | None:
        """Credit ``points`` (> 0) to a customer for an event another plugin names: ``source``
        is unique per event (a second call with it credits nothing), ``reason`` a name such as
        ``care_offer``. Returns the ledger entry id, or "" when that source was already
        credited; None means no plugin awards points (the loyalty plugin answers). Checks
        ``loyalty.award`` for ``actor``. Stops at the first non-None result."""


def add_hookspecs(pluginmanager: PluginManager) -> None:
    """Declare the specs unless they are declared already (idempotent)."""
    hook = getattr(pluginmanager.hook, "crm_tier_changed", None)
    if hook is None or hook.spec is None:
        pluginmanager.add_hookspecs(LoyaltyHookSpecs)
