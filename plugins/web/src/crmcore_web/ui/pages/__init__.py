"""The web plugin's own workspace pages: My day, the customer page, search, task outcomes."""

from __future__ import annotations

from crmcore.i18n import lazy
from crmcore.registry import NavEntry, WebPage


def pages() -> list[WebPage]:
    from crmcore_web.ui.pages import customer, dashboard, my_day, search

    return [*my_day.pages(), *customer.pages(), *search.pages(), *dashboard.pages()]


def nav_entries() -> list[NavEntry]:
    from crmcore_web.ui.pages import dashboard

    return [NavEntry("/", lazy("My day"), order=0), *dashboard.nav_entries()]
