"""crmcore-loyalty: points ledger, tiers and perks, referral rewards, compensation, expiry.

Host applications use ``crmcore_loyalty.api.Loyalty(crm)``; the plugin module registered with
crmcore is ``crmcore_loyalty.plugin``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty

__all__ = ["Loyalty"]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "Loyalty": "crmcore_loyalty.api",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
