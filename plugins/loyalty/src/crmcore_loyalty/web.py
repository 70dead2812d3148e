"""What loyalty shows in the workspace: a customer-page panel with the points, the tier and
what it takes to reach the next, perks, and referrals both ways, by name."""

from __future__ import annotations

from pathlib import Path

from crmcore.app import CRM
from crmcore.entities import Customer
from crmcore.i18n import lazy, term
from crmcore.registry import (
    Badge,
    CustomerPanel,
    PageRequest,
    Render,
    TemplateFolder,
    TranslationCatalog,
)
from crmcore_loyalty.api import Loyalty
from crmcore_loyalty.records import REFERRALS, Referral
from crmcore_loyalty.tiers import NAMESPACE

HERE = Path(__file__).parent
STATUS = {"linked": lazy("waiting for a first purchase"), "rewarded": lazy("rewarded")}
CAPPED = lazy("rewarded (referrer's yearly cap reached)")


def _names(crm: CRM, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    found = crm.customers.find({"id": {"$in": sorted(ids)}}, include_inactive=True)
    return {c.id: c.name if c.status.value == "active" else "—" for c in found}


def panel(request: PageRequest, customer: Customer) -> Render:
    crm = request.crm
    loyalty = Loyalty.of(crm)
    view = loyalty.account(customer.id)
    records = crm.records(REFERRALS, Referral)
    made = records.find({"referrer_id": customer.id}, sort=[("linked_at", -1)], limit=50)
    brought_by = records.find_one({"referred_id": customer.id})
    names = _names(
        crm, {r.referred_id for r in made} | ({brought_by.referrer_id} if brought_by else set())
    )
    return Render(
        "loyalty/panel.html",
        {
            "view": view,
            "referrals": [
                {
                    "id": r.referred_id,
                    "name": names.get(r.referred_id, "—"),
                    "linked_at": r.linked_at,
                    "status": str(CAPPED if r.referrer_capped else STATUS.get(r.status, r.status)),
                    "points": r.referrer_points,
                }
                for r in made
            ],
            "referred_by": (
                {"id": brought_by.referrer_id, "name": names.get(brought_by.referrer_id, "—")}
                if brought_by
                else None
            ),
        },
    )


def badges(crm: CRM, customer: Customer) -> list[Badge]:
    """The loyalty tier, when the customer has one: read from the mirror the tier change
    writes on the customer (``customer.ext["loyalty"]``, in the same transaction as the
    account), so a list of customers costs no reads per row."""
    mirror = customer.ext.get(NAMESPACE)
    tier = mirror.get("tier") if isinstance(mirror, dict) else None
    # the default tier names are in the catalog (``reporting.DEFAULT_TIER_NAMES``); a name a
    # client configures is shown as written
    return [Badge(lazy("Loyalty tier"), term(tier), rank=200)] if tier else []


def customer_panels(crm: CRM) -> list[CustomerPanel]:
    return [CustomerPanel("loyalty", lazy("Loyalty and referrals"), panel, order=30)]


def template_folders() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def catalogs() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", "crmcore_loyalty")]
