"""The web plugin's hook implementations (registered with crmcore as ``web``)."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import TYPE_CHECKING

from crmcore import LazyCommand, SettingsSpec, hookimpl

if TYPE_CHECKING:
    import click

    from crmcore import CRM
    from crmcore.registry import NavEntry, TranslationCatalog, WebPage
    from crmcore.security import Actor
    from crmcore.storage import CollectionSpec


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    """``web.apikeys``: API keys, hashed; ``web.users``: workspace users (argon2 hashes);
    ``web.sessions``: signed-in browsers (hashes of their tokens). The record classes are
    named, so that opening a CRM does not define them (a test holds the names equal)."""
    from crmcore.storage import CollectionSpec, IndexSpec

    return [
        CollectionSpec(
            "web.apikeys",
            indexes=(IndexSpec([("actor", 1)]),),
            record_type="crmcore_web.apikeys:ApiKey",
            personal=(),
        ),
        CollectionSpec(
            "web.users",
            indexes=(IndexSpec([("name", 1)], unique=True),),
            record_type="crmcore_web.users:User",
            personal=(),
        ),
        CollectionSpec(
            "web.sessions",
            indexes=(IndexSpec([("user", 1)]),),
            record_type="crmcore_web.sessions:Session",
            personal=(),
        ),
    ]


@hookimpl
def crm_settings() -> SettingsSpec:
    return SettingsSpec("web", "crmcore_web.settings:WebSettings")


@hookimpl(tryfirst=True)
def crm_actor(crm: CRM, name: str) -> Actor | None:
    """During an API request, its key's actor has the key's role (team and department as the
    directory or another plugin describes them). Otherwise a workspace user's record counts
    where nothing else does: an active user ``crm user add --team`` put in a team is in that
    team (for the report's and the dashboard's team filter too), and a user no directory knows
    acts with the role and team of their record."""
    import attrs

    from crmcore import NotFoundError
    from crmcore.security import Actor, Role
    from crmcore_web import context, users

    if _RESOLVING.get():
        return None
    token = _RESOLVING.set(True)
    try:
        known = crm.actor(name)
    finally:
        _RESOLVING.reset(token)
    current = context.CURRENT.get()
    if current is not None and current.actor == name:
        return Actor(
            name,
            Role(current.role),
            known.team if known and known.team else current.team,
            known.department if known and known.department else current.department,
        )
    if known is not None and known.team:
        return known
    try:
        user = users.Users(crm).find(name)
    except NotFoundError:  # asked before the store's collections are declared
        return known
    if user is None or not user.active:
        return known
    if known is not None:
        return attrs.evolve(known, team=user.team, department=known.department or user.department)
    return Actor(name, Role(user.role), user.team, user.department)


@hookimpl
def crm_actor_names(crm: CRM) -> list[str]:
    """The workspace's users (``crm_actor`` describes them)."""
    from crmcore import NotFoundError
    from crmcore_web import users

    try:
        return [user.name for user in crm.records(users.USERS, users.User).find()]
    except NotFoundError:  # asked before the store's collections are declared
        return []


#: Set while ``crm_actor`` asks the other sources, so that it gives no answer of its own then.
_RESOLVING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "crmcore_web_resolving_actor", default=False
)


@hookimpl
def crm_cli_commands(cli: click.Group) -> list[LazyCommand]:
    """``crm serve``, ``crm apikey`` and ``crm user``, imported when they run."""
    return [
        LazyCommand(
            "apikey",
            "crmcore_web.cli:apikey_group",
            "API keys for the HTTP API: each acts as one actor with one role.",
        ),
        LazyCommand(
            "serve",
            "crmcore_web.cli:serve",
            "Serve the workspace (sign in at /login) and the HTTP API (/api/v1, "
            "/api/openapi.json, /health) with uvicorn.",
        ),
        LazyCommand(
            "user",
            "crmcore_web.cli:user_group",
            "Workspace users: people who sign in to the pages `crm serve` serves.",
        ),
    ]


@hookimpl
def crm_api_routes(crm: CRM) -> list:
    """The core's endpoints (customers, interactions, tasks, reports), served and documented
    like every plugin's."""
    from crmcore_web.core_routes import core_routes

    return core_routes()


@hookimpl
def crm_translations() -> list[TranslationCatalog]:
    """The workspace's strings (``crmcore_web/locale/<locale>/LC_MESSAGES/crmcore_web.po``)."""
    from crmcore.registry import TranslationCatalog

    return [TranslationCatalog(Path(__file__).parent / "locale", "crmcore_web")]


@hookimpl
def crm_web_pages(crm: CRM) -> list[WebPage]:
    """My day (``/``), the customer page and search: the workspace's own pages, contributed
    through the same hook as every plugin's."""
    from crmcore_web.ui.pages import pages

    return pages()


@hookimpl
def crm_nav_entries(crm: CRM) -> list[NavEntry]:
    from crmcore_web.ui.pages import nav_entries

    return nav_entries()


@hookimpl
def crm_demo_ready(crm: CRM, config_path: str) -> list[str]:
    """A demo user (a rep with a queue) and how to open the workspace on the demo store."""
    from crmcore_web.users import demo_user

    name, password = demo_user(crm)
    return [
        f"Open the workspace: crm --config {config_path} serve, then "
        f"http://127.0.0.1:8400/ and sign in as {name} with the password {password} "
        f"(a demo user; crm user add makes real ones)."
    ]
