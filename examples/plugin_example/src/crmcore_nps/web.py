"""A third party's panel on the workspace's customer page: the customer's survey answers.

Everything a plugin needs is in ``crmcore.registry`` (the shapes) and ``crmcore.i18n`` (lazy
labels): no import of the web plugin, whose pages render the panel when it is installed.
"""

from __future__ import annotations

from pathlib import Path

from crmcore import CRM, Customer
from crmcore.i18n import lazy
from crmcore.registry import (
    CustomerPanel,
    PageRequest,
    Render,
    TemplateFolder,
    TranslationCatalog,
)

from crmcore_nps.score import category
from crmcore_nps.surveys import answers

HERE = Path(__file__).parent
CATEGORIES = {
    "promoter": lazy("promoter"),
    "passive": lazy("passive"),
    "detractor": lazy("detractor"),
}


def panel(request: PageRequest, customer: Customer) -> Render | None:
    """The last five answers, newest first; nothing when the customer never answered."""
    found = answers(request.crm).find(
        {"customer_id": customer.id}, sort=[("answered_at", -1)], limit=5
    )
    if not found:
        return None
    return Render(
        "nps/panel.html",
        {
            "answers": [
                {
                    "score": a.score,
                    "category": str(CATEGORIES[category(a.score)]),
                    "answered_at": a.answered_at,
                    "comment": a.comment or "",
                }
                for a in found
            ]
        },
    )


def customer_panels(crm: CRM) -> list[CustomerPanel]:
    return [CustomerPanel("nps", lazy("Would they recommend us?"), panel, order=60)]


def template_folders() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def catalogs() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", "crmcore_nps")]
