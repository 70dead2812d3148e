"""What every loaded plugin brings to the workspace, gathered once when the app is built."""

from __future__ import annotations

from pathlib import Path

import attrs

from crmcore.app import CRM
from crmcore.errors import PluginError
from crmcore.registry import CustomerPanel, DashboardCard, NavEntry, TemplateFolder, WebPage

#: Paths the workspace itself serves; a plugin's page may not take them.
RESERVED = ("/login", "/logout", "/locale", "/static", "/health", "/api")


@attrs.frozen
class Contributions:
    """Pages (with the plugin each came from), panels, cards, navigation, template folders."""

    pages: tuple[tuple[str, WebPage], ...]
    panels: tuple[tuple[str, CustomerPanel], ...]
    cards: tuple[tuple[str, DashboardCard], ...]
    nav: tuple[tuple[str, NavEntry], ...]
    folders: tuple[Path, ...]


def _typed(plugin: str, hook: str, item: object, cls: type) -> None:
    if not isinstance(item, cls):
        raise PluginError(
            plugin,
            f"{hook} returned {type(item).__name__}, expected "
            f"{cls.__name__} (from crmcore.registry)",
        )


def gather(crm: CRM) -> Contributions:
    """Call the workspace hooks; conflicts (two pages on one method and path, two panels of
    one name) are errors naming both plugins."""
    pm = crm.plugins
    pages = pm.crm_web_pages(crm=crm)
    seen: dict[tuple[str, str], str] = {}
    for plugin, page in pages:
        _typed(plugin, "crm_web_pages", page, WebPage)
        if any(page.path == r or page.path.startswith(r + "/") for r in RESERVED):
            raise PluginError(plugin, f"crm_web_pages: {page.path} is the workspace's own")
        for method in page.methods:
            key = (method, page.path)
            if key in seen:
                raise PluginError(
                    plugin,
                    f"crm_web_pages: {method} {page.path} is served by "
                    f"plugin {seen[key]!r} already",
                )
            seen[key] = plugin
    panels = pm.crm_customer_panels(crm=crm)
    cards = pm.crm_dashboard_cards(crm=crm)
    for hook, items, cls in (
        ("crm_customer_panels", panels, CustomerPanel),
        ("crm_dashboard_cards", cards, DashboardCard),
    ):
        names: dict[str, str] = {}
        for plugin, item in items:
            _typed(plugin, hook, item, cls)
            if item.name in names:
                raise PluginError(
                    plugin, f"{hook}: {item.name!r} is plugin {names[item.name]!r}'s already"
                )
            names[item.name] = plugin
    nav = pm.crm_nav_entries(crm=crm)
    for plugin, entry in nav:
        _typed(plugin, "crm_nav_entries", entry, NavEntry)
    folders = []
    for plugin, folder in sorted(pm.crm_web_templates(), key=lambda p: p[0]):
        _typed(plugin, "crm_web_templates", folder, TemplateFolder)
        folders.append(Path(folder.path))
    return Contributions(
        pages=tuple(pages),
        panels=tuple(sorted(panels, key=lambda p: (p[1].order, p[1].name))),
        cards=tuple(sorted(cards, key=lambda p: (p[1].order, p[1].name))),
        nav=tuple(sorted(nav, key=lambda p: (p[1].order, p[1].path))),
        folders=tuple(folders),
    )
