"""The written contracts between plugins: the hooks one plugin offers and others implement,
and Protocols for what those hooks pass.

The specs here are declared on every plugin manager (``PluginManager.__init__``), whichever
plugins are installed, so an implementation whose name or arguments drift from its contract is
refused at load by ``check_pending`` instead of silently never being called. Implementers import
the Protocols from here (never the offering plugin's package) and use plain ``@hookimpl``.
docs/contracts.md documents each contract: who calls it, who implements it, an example.
"""

from __future__ import annotations

from crmcore.contracts.complaints import (
    BusinessClock,
    ComplaintsContract,
    Notification,
    Ticket,
    callback_key,
)
from crmcore.contracts.followup import FollowupContract
from crmcore.contracts.grading import GradingContract, SchemeRegistration
from crmcore.contracts.loyalty import LoyaltyContract
from crmcore.contracts.service import ServiceContract, ServiceOrder

CONTRACT_SPECS: tuple[type, ...] = (
    GradingContract,
    ComplaintsContract,
    FollowupContract,
    LoyaltyContract,
    ServiceContract,
)
"""Every contract's hookspec class, in the order they are declared."""

__all__ = [
    "CONTRACT_SPECS",
    "BusinessClock",
    "ComplaintsContract",
    "FollowupContract",
    "GradingContract",
    "LoyaltyContract",
    "Notification",
    "SchemeRegistration",
    "ServiceContract",
    "ServiceOrder",
    "Ticket",
    "callback_key",
]
