"""``crm customer …`` and ``crm log``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from crmcore.cli.context import (
    WHEN_HELP,
    actor,
    as_json,
    data_text,
    fresh_group,
    open_crm_from,
    out_record,
    out_table,
    print_json,
    progress_bar,
    resolve_when,
    say,
    state,
    to_doc,
)
from crmcore.cli.params import WHEN
from crmcore.entities import Channel, Gender
from crmcore.errors import ValidationError
from crmcore.security import Resource
from crmcore.tabular import FORMATS
from crmcore.text import for_terminal, json_text

# The core's services, its converter, file formats and import/export are imported by the
# commands that use them, so that ``crm --help`` (and every other command) does not load
# them. These two are ``crmcore.transfer``'s, spelt out for the options' choices
# (tests/test_cli_lazy.py checks that they agree).
CUSTOMER_KEYS = ("external_id", "phone")
INTERACTION_CUSTOMER_KEYS = ("id", "external_id", "phone")


def parse_external_id(text: str) -> tuple[str, str]:
    """``crmcore.customers.parse_external_id``, imported when first used."""
    from crmcore.customers import parse_external_id as parse

    return parse(text)


LIST_COLUMNS = [
    ("id", "id"),
    ("name", "name"),
    ("phone", "phone"),
    ("email", "e-mail"),
    ("region", "region"),
    ("owner", "owner"),
    ("tags", "tags"),
]


def _customer_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--phone"),
        click.option("--email"),
        click.option("--gender", type=click.Choice([g.value for g in Gender])),
        click.option("--birth-date", metavar="YYYY-MM-DD"),
        click.option("--region"),
        click.option("--occupation"),
        click.option("--organisation"),
        click.option("--address"),
        click.option("--timezone", metavar="ZONE", help="IANA zone, e.g. Asia/Shanghai."),
        click.option("--owner", metavar="REP", help="The rep who looks after this customer."),
        click.option("--tag", "tags", multiple=True, help="Repeat for several tags."),
        click.option("--source", help="Where the record came from (form, survey, import …)."),
        click.option("--do-not-contact/--may-contact", default=None),
        click.option(
            "--external-id",
            "external_ids",
            multiple=True,
            metavar="SOURCE:ID",
            help="This customer's id in another system, e.g. shop:C-1042 "
            "(repeatable; one customer per source and id).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _given(**fields: Any) -> dict[str, Any]:
    out = {k: v for k, v in fields.items() if v is not None and v != ()}
    if "tags" in out:
        out["tags"] = list(out["tags"])
    if "external_ids" in out:
        out["external_ids"] = dict(parse_external_id(text) for text in out["external_ids"])
    return out


@click.group("customer")
def customer_group() -> None:
    """Add, show, find, change, import and export customers."""


@customer_group.command("add")
@click.option("--name", required=True)
@_customer_options
@click.pass_context
def add(ctx: click.Context, name: str, **fields: Any) -> None:
    """Add a customer."""
    crm = open_crm_from(ctx)
    customer = crm.customers.add(actor=actor(ctx), name=name, **_given(**fields))
    same = crm.customers.sharing_phone(customer)
    if same:
        others = ", ".join(c.id for c in same)
        click.echo(
            f"note: the same phone belongs to customer(s) {others} (see 'crm customer duplicates')",
            err=True,
        )
    say(
        ctx,
        f"added customer {customer.id}",
        id=customer.id,
        **({"same_phone": [c.id for c in same]} if same else {}),
    )


@customer_group.command("update")
@click.argument("customer_id")
@click.option("--name")
@_customer_options
@click.option(
    "--expected-version",
    type=int,
    help="Refuse the change if the customer's version is no longer this one.",
)
@click.pass_context
def update(
    ctx: click.Context, customer_id: str, expected_version: int | None, **fields: Any
) -> None:
    """Change a customer's fields."""
    crm = open_crm_from(ctx)
    changes = _given(**fields)
    if not changes:
        raise ValidationError("nothing to change: give at least one field option")
    customer = crm.customers.update(
        customer_id, actor=actor(ctx), expected_version=expected_version, **changes
    )
    say(
        ctx,
        f"updated customer {customer.id} (version {customer.version})",
        id=customer.id,
        version=customer.version,
    )


@customer_group.command("show")
@click.argument("customer_id")
@click.option("--history", default=10, show_default=True, help="Recent interactions shown.")
@click.pass_context
def show(ctx: click.Context, customer_id: str, history: int) -> None:
    """A customer's file: fields, plugin summaries, recent interactions, open tasks."""
    crm = open_crm_from(ctx)
    customer = crm.customers.get(customer_id, actor=actor(ctx))
    summary = crm.plugins.crm_customer_summary(crm=crm, customer=customer)
    recent = crm.interactions.for_customer(customer_id, limit=history)
    open_tasks = crm.tasks.open_for(customer_id)
    if as_json(ctx):
        print_json(
            ctx,
            {
                "customer": customer,
                "summary": [{"label": s.label, "text": s.text} for s in summary],
                "interactions": recent,
                "open_tasks": open_tasks,
            },
        )
        return
    shown = data_text(ctx)
    out_record(
        ctx, to_doc(customer), title=f"{customer.name} ({customer.id})", skip=("ext", "id", "name")
    )
    if summary:
        out_table(
            ctx,
            [{"label": s.label, "text": s.text} for s in summary],
            [("label", ""), ("text", "")],
            title="Summary",
        )
    out_table(
        ctx,
        [to_doc(i) for i in recent],
        [
            ("occurred_at", "when"),
            ("kind", "kind"),
            ("channel", "channel"),
            ("summary", "summary"),
            ("amount", "amount"),
        ],
        title="Recent interactions",
        empty="none",
    )
    out_table(
        ctx,
        [{**to_doc(t), "title": shown(t.title_message)} for t in open_tasks],
        [("due_at", "due"), ("kind", "kind"), ("title", "title"), ("assignee", "assignee")],
        title="Open tasks",
        empty="none",
    )


@customer_group.command("list")
@click.option("--owner", metavar="REP")
@click.option("--tag")
@click.option("--region")
@click.option("--phone", help="Match a phone number (normalised first).")
@click.option("--email", help="Match an e-mail address (normalised first).")
@click.option("--external-id", metavar="SOURCE:ID", help="The customer with this external id.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--skip", default=0, type=click.IntRange(min=0))
@click.pass_context
def list_(
    ctx: click.Context,
    owner: str | None,
    tag: str | None,
    region: str | None,
    phone: str | None,
    email: str | None,
    external_id: str | None,
    limit: int,
    skip: int,
) -> None:
    """Find customers."""
    crm = open_crm_from(ctx)
    if external_id:
        found_one = crm.customers.by_external_id(*parse_external_id(external_id))
        found = [found_one] if found_one is not None else []
        if found_one is not None:
            crm.customers.get(found_one.id, actor=actor(ctx))
    elif phone or email:
        found = crm.customers.find_by_contact(phone=phone, email=email, actor=actor(ctx))
    else:
        query = _given(owner=owner, tags=tag, region=region)
        found = crm.customers.find(
            query, sort=[("id", 1)], limit=limit, skip=skip, actor=actor(ctx)
        )
    out_table(ctx, [to_doc(c) for c in found], LIST_COLUMNS, empty="no customers match")


@customer_group.command("duplicates")
@click.pass_context
def duplicates(ctx: click.Context) -> None:
    """Groups of customers sharing a phone or e-mail (merge them with 'crm customer merge')."""
    crm = open_crm_from(ctx)
    rows = [
        {"group": n, **to_doc(c)}
        for n, group in enumerate(crm.customers.find_duplicates(), 1)
        for c in group
    ]
    out_table(ctx, rows, [("group", "group"), *LIST_COLUMNS], empty="no duplicates")


@customer_group.command("merge")
@click.argument("keep_id")
@click.argument("duplicate_id")
@click.pass_context
def merge(ctx: click.Context, keep_id: str, duplicate_id: str) -> None:
    """Fold DUPLICATE_ID into KEEP_ID (history, tasks and plugin records move over)."""
    crm = open_crm_from(ctx)
    kept = crm.customers.merge(keep_id, duplicate_id, actor=actor(ctx))
    say(ctx, f"merged {duplicate_id} into {kept.id}", id=kept.id)


def _import_command(kind: str) -> click.Command:
    @click.command("import")
    @click.argument("path", type=click.Path(dir_okay=False))
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(list(FORMATS)),
        help="Default: from the file name (.csv, .jsonl, .xlsx).",
    )
    @click.option(
        "--encoding",
        help="The file's text encoding (default: detected; e.g. utf-8, gb18030, utf-16).",
    )
    @click.option("--delimiter", help="CSV delimiter (default: detected from , ; tab |).")
    @click.option(
        "--map",
        "mapping",
        multiple=True,
        metavar="COLUMN=FIELD",
        help="Rename a column of the file to a crmcore field (repeatable).",
    )
    @click.option(
        "--skip-unknown",
        is_flag=True,
        help="Leave out columns no field takes (default: refuse the file, naming them).",
    )
    @click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
    @click.option("--atomic", is_flag=True, help="Write nothing if any row is bad.")
    @click.pass_context
    def command(
        ctx: click.Context,
        path: str,
        fmt: str | None,
        encoding: str | None,
        delimiter: str | None,
        mapping: tuple[str, ...],
        skip_unknown: bool,
        dry_run: bool,
        atomic: bool,
        **options: Any,
    ) -> None:
        from crmcore.tabular import detect_format, open_table
        from crmcore.transfer import import_customers, parse_mapping

        crm = open_crm_from(ctx)
        table = open_table(path, detect_format(path, fmt), encoding=encoding, delimiter=delimiter)
        common: dict[str, Any] = {
            "actor": actor(ctx),
            "mapping": parse_mapping(mapping),
            "dry_run": dry_run,
            "atomic": atomic,
            "skip_unknown": skip_unknown,
        }
        with progress_bar(ctx, total=None, description=f"checking {kind}") as advance:
            if kind == "customers":
                report = import_customers(crm, table, on_row=advance, **common, **options)
            else:
                report = _import_history(ctx, crm, table, advance, common, options)
        if as_json(ctx):
            print_json(
                ctx,
                {
                    "rows": report.rows,
                    "written": report.written,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "skipped": report.skipped,
                    "dry_run": report.dry_run,
                    "notes": list(report.notes),
                    "errors": [{"line": e.line, "message": e.message} for e in report.errors],
                },
            )
        else:
            for error in report.errors:
                click.echo(
                    for_terminal(f"{path}:{error.line}: {error.message}", one_line=True), err=True
                )
            verb = "would import" if dry_run else "imported"
            count = report.rows - len(report.errors) if dry_run else report.written
            extra = "".join(
                f", {n} {what}"
                for n, what in (
                    (report.updated, "updated"),
                    (report.unchanged, "unchanged"),
                    (report.skipped, "already imported"),
                )
                if n
            )
            notes = f" ({'; '.join(report.notes)})" if report.notes else ""
            state(ctx).console.print(
                f"{verb} {count} of {report.rows} {kind}{extra}; "
                f"{len(report.errors)} bad row(s){notes}",
                markup=False,
                highlight=False,
            )
        if report.errors:
            ctx.exit(2)

    if kind == "customers":
        command = click.option(
            "--id-source",
            metavar="SOURCE",
            help="The system an external_id column's bare ids come from "
            "(ids written SOURCE:ID need none).",
        )(command)
        command = click.option(
            "--match",
            type=click.Choice(list(CUSTOMER_KEYS)),
            default="external_id",
            show_default=True,
            help="What --upsert matches an existing customer by.",
        )(command)
        command = click.option(
            "--upsert",
            is_flag=True,
            help="Update the customer a row matches (same id, external "
            "id, or phone with --match phone) instead of adding "
            "another.",
        )(command)
        command.help = (
            "Import customers from CSV, JSONL or .xlsx. Encoding, delimiter and "
            "column names (English or Chinese) are recognised; bad rows are "
            "reported with their line numbers; good rows are imported unless "
            "--atomic."
        )
    else:
        command = click.option(
            "--batch-size",
            type=click.IntRange(1, 100_000),
            default=500,
            show_default=True,
            help="Rows per transaction.",
        )(command)
        command = click.option(
            "--allow-future", is_flag=True, help="Accept interactions dated after now."
        )(command)
        command = click.option(
            "--customer-key",
            type=click.Choice(list(INTERACTION_CUSTOMER_KEYS)),
            help="How rows name their customer: "
            "customer_id (id), external_id (SOURCE:ID) or phone (default: the first of those "
            "columns the file has).",
        )(command)
        command.help = (
            "Import interactions (history) from CSV, JSONL or .xlsx. Rows are "
            "replayed in time order through every plugin as if logged live, "
            "batched; a re-run or a resumed run adds nothing twice."
        )
    return command


def _import_history(
    ctx: click.Context,
    crm: Any,
    table: Any,
    advance: Callable[..., None],
    common: dict[str, Any],
    options: dict[str, Any],
) -> Any:
    from crmcore.transfer import import_interactions

    with progress_bar(ctx, total=None, description="replaying history") as written:
        return import_interactions(
            crm, table, on_row=advance, on_written=written, **common, **options
        )


customer_group.add_command(_import_command("customers"))


@customer_group.command("forget")
@click.argument("customer_id")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
@click.pass_context
def forget(ctx: click.Context, customer_id: str, yes: bool) -> None:
    """Erase a customer's personal data everywhere (statistics remain)."""
    if not yes:
        raise ValidationError("forgetting cannot be undone; repeat with --yes to confirm")
    crm = open_crm_from(ctx)
    crm.customers.forget(customer_id, actor=actor(ctx))
    say(
        ctx,
        f"forgot customer {customer_id}; erasure does not reach copies made before "
        "(backups, exports, the store's recovered/ folder): delete those that hold them "
        "(docs/security.md)",
        id=customer_id,
    )


@customer_group.command("export")
@click.argument("customer_id", required=False)
@click.option(
    "-o", "--output", metavar="FILE", help="Write to FILE (mode 0600) instead of standard output."
)
@click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS)), default="jsonl", show_default=True
)
@click.pass_context
def export(ctx: click.Context, customer_id: str | None, output: str | None, fmt: str) -> None:
    """Export all customers (CSV/JSONL/xlsx), or everything held about CUSTOMER_ID (JSON)."""
    from crmcore.outputs import output_to
    from crmcore.transfer import export_customer_file, export_customers

    _need_file(fmt, output)
    crm = open_crm_from(ctx)
    with output_to(crm, output, binary=fmt == "xlsx") as handle:
        if customer_id:
            handle.write(
                json_text(export_customer_file(crm, customer_id, actor=actor(ctx)), indent=2) + "\n"
            )
            count = 1
        else:
            count = export_customers(crm, handle, fmt, actor=actor(ctx))
    if output:
        click.echo(f"exported {count} customer(s) to {output}", err=True)


def _need_file(fmt: str, output: str | None) -> None:
    if fmt == "xlsx" and not output:
        raise ValidationError(
            "--format xlsx needs -o FILE (a workbook is not text for the terminal)"
        )


@click.group("interaction")
def interaction_group() -> None:
    """List, import and export interactions."""


interaction_group.add_command(_import_command("interactions"))


@interaction_group.command("export")
@click.option("--customer", "customer_id", metavar="ID", help="Only this customer's.")
@click.option(
    "-o", "--output", metavar="FILE", help="Write to FILE (mode 0600) instead of standard output."
)
@click.option(
    "--format", "fmt", type=click.Choice(list(FORMATS)), default="jsonl", show_default=True
)
@click.pass_context
def interaction_export(
    ctx: click.Context, customer_id: str | None, output: str | None, fmt: str
) -> None:
    """Export interactions as CSV, JSONL or xlsx (re-importable with 'crm interaction
    import')."""
    from crmcore.outputs import output_to
    from crmcore.transfer import export_interactions

    _need_file(fmt, output)
    crm = open_crm_from(ctx)
    crm.authorize(
        actor(ctx), "interaction.export", Resource("interaction", customer_id=customer_id)
    )
    with output_to(crm, output, binary=fmt == "xlsx") as handle:
        count = export_interactions(crm, handle, fmt, customer_id=customer_id)
    if output:
        click.echo(f"exported {count} interaction(s) to {output}", err=True)


@interaction_group.command("list")
@click.argument("customer_id")
@click.option("--kind", "kinds", multiple=True)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def interaction_list(
    ctx: click.Context, customer_id: str, kinds: tuple[str, ...], limit: int
) -> None:
    """A customer's interactions, newest first."""
    crm = open_crm_from(ctx)
    crm.customers.get_any(customer_id)
    found = crm.interactions.for_customer(
        customer_id, kinds=list(kinds) or None, limit=limit, actor=actor(ctx)
    )
    out_table(
        ctx,
        [to_doc(i) for i in found],
        [
            ("id", "id"),
            ("occurred_at", "when"),
            ("kind", "kind"),
            ("channel", "channel"),
            ("summary", "summary"),
            ("amount", "amount"),
            ("satisfaction", "satisfaction"),
        ],
        empty="no interactions",
    )


@click.command("log")
@click.argument("customer_id")
@click.option("--kind", required=True, help="purchase, consultation, complaint, callback …")
@click.option(
    "--channel", type=click.Choice([c.value for c in Channel]), default="other", show_default=True
)
@click.option("--summary", default="", help="What was said or done.")
@click.option("--amount", type=float)
@click.option("--satisfaction", type=click.IntRange(1, 5))
@click.option("--at", "at", type=WHEN, help=WHEN_HELP)
@click.option("--place")
@click.option("--rep")
@click.option("--ref", help="A related record (order, ticket, task id).")
@click.pass_context
def log(ctx: click.Context, customer_id: str, kind: str, at: Any, **fields: Any) -> None:
    """Record an interaction with a customer."""
    crm = open_crm_from(ctx)
    interaction = crm.interactions.log(
        actor=actor(ctx),
        customer_id=customer_id,
        kind=kind,
        occurred_at=resolve_when(crm, at),
        **_given(**fields),
    )
    say(ctx, f"logged {interaction.kind} {interaction.id}", id=interaction.id)


def register(cli: click.Group) -> None:
    cli.add_command(fresh_group(customer_group))
    cli.add_command(fresh_group(interaction_group))
    cli.add_command(log)
