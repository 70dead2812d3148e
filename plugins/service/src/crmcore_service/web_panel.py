"""The service plugin's panel on the workspace's customer page: the customer's open orders
(type, step, who acts, the step's due time), through ``crm_customer_panels``. Uses only the
core's contribution types, never the web plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore.i18n import lazy
from crmcore.registry import CustomerPanel, PageRequest, Render, TemplateFolder, TranslationCatalog
from crmcore_service.api import Service

HERE = Path(__file__).parent
DOMAIN = "crmcore_service"


def panels() -> list[CustomerPanel]:
    return [CustomerPanel("service", lazy("Service orders"), customer_panel, order=50)]


def templates() -> list[TemplateFolder]:
    return [TemplateFolder(HERE / "templates")]


def translations() -> list[TranslationCatalog]:
    return [TranslationCatalog(HERE / "locale", DOMAIN)]


def customer_panel(request: PageRequest, customer: Any) -> Render | None:
    """The customer's open orders, oldest first (None when there are none)."""
    api = Service(request.crm)
    orders = api.find(customer_id=customer.id, open_only=True, limit=20, actor=request.actor)
    if not orders:
        return None
    titles = {name: t.title for name, t in api.types.items()}
    return Render("service/panel.html", {"orders": orders, "titles": titles})
