"""``crm audit`` and ``crm audit verify``."""

from __future__ import annotations

from typing import Any

import click

from crmcore.cli.context import actor, fresh_group, open_crm_from, out_table, say
from crmcore.errors import ConfigError, StorageError
from crmcore.security import Resource


@click.group("audit", invoke_without_command=True)
@click.option("--customer", "customer_id", metavar="ID", help="Only entries about this customer.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def audit_group(ctx: click.Context, customer_id: str | None, limit: int) -> None:
    """The audit trail, newest first (personal values appear masked)."""
    if ctx.invoked_subcommand is not None:
        return
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.read", Resource("audit", customer_id=customer_id))
    query = {"customer_id": customer_id} if customer_id else {}
    entries = crm.audit.inner.collection("audit").find(query, sort=[("seq", -1)], limit=limit)
    for entry in entries:
        entry["details"] = details(entry)
    out_table(ctx, entries, [("seq", "#"), ("at", "when"), ("actor", "actor"), ("op", "op"),
                             ("collection", "collection"), ("record_id", "record"),
                             ("details", "details")], empty="no audit entries")


def details(entry: dict[str, Any]) -> str:
    """One line about an entry: the fields an update changed, what a refusal refused, an
    event's figures (``rekey``: documents re-sealed); nothing for inserts and deletes, whose
    diff is the whole (masked) record."""
    diff = entry.get("diff") or {}
    op = entry.get("op")
    if op == "update":
        return "changed: " + ", ".join(sorted(diff))
    if op == "denied":
        return f"{diff.get('action', '')}: {diff.get('reason', '')}"
    if op in ("insert", "delete"):
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(diff.items()))


@audit_group.command("verify")
@click.pass_context
def verify(ctx: click.Context) -> None:
    """Check the hash chain: any edited, removed or reordered entry is reported."""
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.read", Resource("audit"))
    report = crm.audit.verify()
    if not report.ok:
        raise StorageError(f"audit trail broken after {report.entries} entries: "
                           f"{report.problem}")
    say(ctx, f"audit trail intact: {report.entries} entries", entries=report.entries)


def register(cli: click.Group) -> None:
    cli.add_command(fresh_group(audit_group))
