"""``crm db upgrade``: the database's schema changes, as one explicit step an operator runs.

Backend-neutral: the core owns the declared collections (its own, every plugin's, the audit
trail's), so the command opens the CRM with ``schema_upgrade`` and each backend decides what
that means (``StorageOptions.schema_upgrade``). The MongoDB backend builds missing indexes,
applies ``$jsonSchema`` validators and records the result in the database; embedded backends
keep their indexes in step at every open and have nothing to do.
"""

from __future__ import annotations

import click

from crmcore.cli.context import as_json, print_json, say, state


@click.group("db")
def db_group() -> None:
    """The database's schema: indexes and validators."""


@db_group.command("upgrade")
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Build missing indexes and apply validators, once, before a new version starts.

    Workers only check the recorded schema when they open: run this from one machine with a
    database user allowed to change schemas (MongoDB: dbAdmin and readWrite on the database).
    """
    from crmcore.app import open_crm

    crm = open_crm(state(ctx).config_path, schema_upgrade=True)
    try:
        changes = crm.store.schema_changes()
        where = crm.store.describe()
    finally:
        crm.close()
    if as_json(ctx):
        print_json(ctx, {"store": where, "changes": changes})
        return
    for line in changes:
        state(ctx).console.print(line)
    say(
        ctx,
        f"schema up to date: {len(changes)} change(s) on {where}"
        if changes
        else f"schema already up to date on {where}",
    )


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
