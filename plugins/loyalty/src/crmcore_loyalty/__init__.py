"""crmcore-loyalty: points ledger, tiers and perks, referral rewards, compensation, expiry.

Host applications use ``crmcore_loyalty.api.Loyalty(crm)``; the plugin module registered with
crmcore is ``crmcore_loyalty.plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty

__all__ = ["Loyalty"]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "Loyalty": "crmcore_loyalty.api",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
