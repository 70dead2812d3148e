"""crmcore-loyalty: points ledger, tiers and perks, referral rewards, compensation, expiry.

Host applications use ``crmcore_loyalty.api.Loyalty(crm)``; the plugin module registered with
crmcore is ``crmcore_loyalty.plugin``.
"""

from crmcore_loyalty.api import Loyalty

__all__ = ["Loyalty"]
