"""``crm db upgrade``: the database's schema changes, as one explicit step an operator runs.

Backend-neutral: the core owns the declared collections (its own, every plugin's, the audit
trail's), so the command opens the CRM with ``schema_upgrade`` and each backend decides what
that means (``StorageOptions.schema_upgrade``). The MongoDB backend builds missing indexes,
applies ``$jsonSchema`` validators and records the result in the database; embedded backends
keep their indexes in step at every open and have nothing to do. On every backend it then
gives customers stored before search keys existed their keys (``docs/search.md``); until
then a search still finds them, reading them one by one.
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
    """Build missing indexes, apply validators and make missing search keys, once, before a
    new version starts.

    Workers only check the recorded schema when they open: run this from one machine with a
    database user allowed to change schemas (MongoDB: dbAdmin and readWrite on the database).
    """
    from crmcore.app import open_crm

    crm = open_crm(state(ctx).config_path, schema_upgrade=True)
    try:
        changes = list(crm.store.schema_changes())
        keyed = crm.customers.refresh_search_keys(actor=crm.config.core.default_actor)
        if keyed:
            changes.append(f"customers: search keys made for {keyed} customer(s)")
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
