"""``crm serve`` and ``crm apikey create|list|revoke``."""

from __future__ import annotations

import click

from crmcore.cli.context import (
    actor,
    as_json,
    open_crm_from,
    out_table,
    print_json,
    say,
    state,
)
from crmcore.errors import ValidationError
from crmcore_web.apikeys import KEY_ROLES, Keyring
from crmcore_web.users import USER_ROLES, Users


@click.group("apikey")
def apikey_group() -> None:
    """API keys for the HTTP API: each acts as one actor with one role."""


@apikey_group.command("create")
@click.argument("owner", metavar="ACTOR")
@click.option(
    "--role",
    type=click.Choice(KEY_ROLES),
    help="The role requests with this key act under (default: the actor's role "
    "in [security.actors] or a plugin's roster).",
)
@click.option("--label", default="", help="What the key is for (shown by 'apikey list').")
@click.pass_context
def create(ctx: click.Context, owner: str, role: str | None, label: str) -> None:
    """Create a key for ACTOR and print it once, as the last word (it is stored hashed and
    cannot be shown again)."""
    crm = open_crm_from(ctx)
    record, key = Keyring(crm).create(owner, actor=actor(ctx), role=role, label=label)
    if as_json(ctx):
        print_json(ctx, {"id": record.id, "actor": record.actor, "role": record.role, "key": key})
        return
    click.echo(
        f"created API key {record.id} for {record.actor} (role {record.role}); keep "
        f"it secret, it is shown only now: {key}"
    )


@apikey_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked keys too.")
@click.pass_context
def list_keys(ctx: click.Context, include_revoked: bool) -> None:
    """Keys with their actor, role and last use (never the keys themselves)."""
    keys = Keyring(open_crm_from(ctx)).list(actor=actor(ctx), include_revoked=include_revoked)
    rows = [
        {
            "id": k.id,
            "actor": k.actor,
            "role": k.role,
            "label": k.label,
            "created_at": k.created_at,
            "created_by": k.created_by,
            "last_used_at": k.last_used_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    out_table(
        ctx,
        rows,
        [
            ("id", "id"),
            ("actor", "actor"),
            ("role", "role"),
            ("label", "label"),
            ("created_at", "created"),
            ("last_used_at", "last used"),
            ("revoked_at", "revoked"),
        ],
        empty="no API keys",
    )


@apikey_group.command("revoke")
@click.argument("key_id", metavar="ID")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key at once (requests with it get 401 from then on)."""
    key = Keyring(open_crm_from(ctx)).revoke(key_id, actor=actor(ctx))
    say(ctx, f"revoked API key {key.id} of {key.actor}", id=key.id)


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface; put TLS in front).",
)
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving requests (they share the store).",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the workspace (sign in at /login) and the HTTP API (/api/v1,
    /api/openapi.json, /health) with uvicorn."""
    from crmcore_web.serve import run

    st = state(ctx)
    crm = open_crm_from(ctx)  # a bad configuration is reported here, before listening
    config_path = str(crm.config.path) if crm.config.path else None
    if workers > 1 and not crm.store.capabilities.multi_process:
        raise click.UsageError(
            f"--workers {workers}: the store ({crm.store.describe()}) "
            "cannot be shared by several processes; use --workers 1"
        )
    crm.close()
    st.crm = None
    root = ctx.find_root().params
    run(
        config_path,
        host=host,
        port=port,
        workers=workers,
        log_level=root.get("log_level") or "warning",
        log_format=root.get("log_format") or "console",
    )


@click.group("user")
def user_group() -> None:
    """Workspace users: people who sign in to the pages `crm serve` serves."""


def _password_from_stdin() -> str:
    import sys

    text = sys.stdin.readline()
    if not text:
        raise ValidationError(
            "--password-stdin: nothing on standard input; pipe the password "
            "in (printf '%s' \"$PASSWORD\" | crm user add …)",
            field="password",
        )
    return text.rstrip("\r\n")


@user_group.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(USER_ROLES),
    help="The role the user acts under (default: NAME's role in [security.actors] "
    "or a plugin's roster).",
)
@click.option("--team", default=None, help="Their team (default: the directory's).")
@click.option("--department", default=None, help="Their department (default: the directory's).")
@click.option(
    "--password-stdin",
    "password_stdin",
    is_flag=True,
    required=True,
    help="Read the password from the first line of standard input (never an "
    "argument: arguments are visible to other users of the machine).",
)
@click.pass_context
def user_add(
    ctx: click.Context,
    name: str,
    role: str | None,
    team: str | None,
    department: str | None,
    password_stdin: bool,
) -> None:
    """Add a user NAME who signs in with a password and acts as the actor NAME."""
    password = _password_from_stdin()
    user = Users(open_crm_from(ctx)).add(
        name, password, actor=actor(ctx), role=role, team=team, department=department
    )
    say(
        ctx,
        f"added user {user.name} (role {user.role}{', team ' + user.team if user.team else ''})",
        name=user.name,
        role=user.role,
        team=user.team,
    )


@user_group.command("list")
@click.option("--all", "include_disabled", is_flag=True, help="Disabled users too.")
@click.pass_context
def user_list(ctx: click.Context, include_disabled: bool) -> None:
    """Users with their role, team and whether they may sign in (never their password)."""
    found = Users(open_crm_from(ctx)).list(actor=actor(ctx), include_disabled=include_disabled)
    rows = [
        {
            "name": u.name,
            "role": u.role,
            "team": u.team,
            "department": u.department,
            "created_at": u.created_at,
            "created_by": u.created_by,
            "status": "active" if u.active else "disabled",
        }
        for u in found
    ]
    out_table(
        ctx,
        rows,
        [
            ("name", "name"),
            ("role", "role"),
            ("team", "team"),
            ("department", "department"),
            ("status", "status"),
            ("created_at", "created"),
            ("created_by", "by"),
        ],
        empty="no users",
    )


@user_group.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Stop NAME signing in; their open sessions end at once."""
    user = Users(open_crm_from(ctx)).disable(name, actor=actor(ctx))
    say(ctx, f"disabled user {user.name}", name=user.name)


@user_group.command("password")
@click.argument("name")
@click.option(
    "--password-stdin",
    "password_stdin",
    is_flag=True,
    required=True,
    help="Read the new password from the first line of standard input.",
)
@click.pass_context
def user_password(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set NAME's password; their open sessions end."""
    password = _password_from_stdin()
    user = Users(open_crm_from(ctx)).set_password(name, password, actor=actor(ctx))
    say(ctx, f"changed the password of {user.name}", name=user.name)
