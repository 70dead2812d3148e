"""The web plugin's hook implementations (registered with crmcore as ``web``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import CRM, SettingsSpec, hookimpl
from crmcore.security import Actor, Role
from crmcore_web import apikeys, context
from crmcore_web.settings import WebSettings

if TYPE_CHECKING:
    import click

    from crmcore.storage import CollectionSpec


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """``web.apikeys``: API keys, hashed."""
    return [apikeys.collection()]


@hookimpl
def crm_settings() -> SettingsSpec:
    return SettingsSpec("web", WebSettings)


@hookimpl(tryfirst=True)
def crm_actor(crm: CRM, name: str) -> Actor | None:
    """During an API request, its key's actor has the key's role (team and department as the
    directory or another plugin describes them). Outside API requests: no opinion."""
    current = context.CURRENT.get()
    if current is None or current.actor != name:
        return None
    token = context.CURRENT.set(None)
    try:
        known = crm.actor(name)
    finally:
        context.CURRENT.reset(token)
    return Actor(name, Role(current.role), known.team if known else None,
                 known.department if known else None)


@hookimpl
def crm_cli_commands(cli: click.Group) -> None:
    from crmcore_web.cli import apikey_group, serve

    cli.add_command(apikey_group)
    cli.add_command(serve)


@hookimpl
def crm_api_routes(crm: CRM) -> list:
    """The core's endpoints (customers, interactions, tasks, reports), served and documented
    like every plugin's."""
    from crmcore_web.core_routes import core_routes

    return core_routes()
