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
from crmcore_web.apikeys import KEY_ROLES, Keyring


@click.group("apikey")
def apikey_group() -> None:
    """API keys for the HTTP API: each acts as one actor with one role."""


@apikey_group.command("create")
@click.argument("owner", metavar="ACTOR")
@click.option("--role", type=click.Choice(KEY_ROLES),
              help="The role requests with this key act under (default: the actor's role "
                   "in [security.actors] or a plugin's roster).")
@click.option("--label", default="", help="What the key is for (shown by 'apikey list').")
@click.pass_context
def create(ctx: click.Context, owner: str, role: str | None, label: str) -> None:
    """Create a key for ACTOR and print it once, as the last word (it is stored hashed and
    cannot be shown again)."""
    crm = open_crm_from(ctx)
    record, key = Keyring(crm).create(owner, actor=actor(ctx), role=role, label=label)
    if as_json(ctx):
        print_json(ctx, {"id": record.id, "actor": record.actor, "role": record.role,
                         "key": key})
        return
    click.echo(f"created API key {record.id} for {record.actor} (role {record.role}); keep "
               f"it secret, it is shown only now: {key}")


@apikey_group.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Revoked keys too.")
@click.pass_context
def list_keys(ctx: click.Context, include_revoked: bool) -> None:
    """Keys with their actor, role and last use (never the keys themselves)."""
    keys = Keyring(open_crm_from(ctx)).list(actor=actor(ctx), include_revoked=include_revoked)
    rows = [{"id": k.id, "actor": k.actor, "role": k.role, "label": k.label,
             "created_at": k.created_at, "created_by": k.created_by,
             "last_used_at": k.last_used_at, "revoked_at": k.revoked_at} for k in keys]
    out_table(ctx, rows, [("id", "id"), ("actor", "actor"), ("role", "role"),
                          ("label", "label"), ("created_at", "created"),
                          ("last_used_at", "last used"), ("revoked_at", "revoked")],
              empty="no API keys")


@apikey_group.command("revoke")
@click.argument("key_id", metavar="ID")
@click.pass_context
def revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key at once (requests with it get 401 from then on)."""
    key = Keyring(open_crm_from(ctx)).revoke(key_id, actor=actor(ctx))
    say(ctx, f"revoked API key {key.id} of {key.actor}", id=key.id)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put TLS in front).")
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes serving requests (they share the store).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (/api/v1, /api/openapi.json, /health) with uvicorn."""
    from crmcore_web.serve import run

    st = state(ctx)
    crm = open_crm_from(ctx)  # a bad configuration is reported here, before listening
    config_path = str(crm.config.path) if crm.config.path else None
    if workers > 1 and not crm.store.capabilities.multi_process:
        raise click.UsageError(f"--workers {workers}: the store ({crm.store.describe()}) "
                               "cannot be shared by several processes; use --workers 1")
    crm.close()
    st.crm = None
    root = ctx.find_root().params
    run(config_path, host=host, port=port, workers=workers,
        log_level=root.get("log_level") or "warning",
        log_format=root.get("log_format") or "console")
