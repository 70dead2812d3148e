"""``crm audit``, ``crm audit verify`` and ``crm audit anchor``."""

from __future__ import annotations

import json
from typing import Any

import click

from crmcore.audit import Anchor
from crmcore.cli.context import actor, as_json, fresh_group, open_crm_from, out_table, say
from crmcore.errors import ConfigError, StorageError, ValidationError
from crmcore.outputs import check_new, protected_paths, write_new
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
    out_table(
        ctx,
        entries,
        [
            ("seq", "#"),
            ("at", "when"),
            ("actor", "actor"),
            ("op", "op"),
            ("collection", "collection"),
            ("record_id", "record"),
            ("details", "details"),
        ],
        empty="no audit entries",
    )


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
@click.option(
    "--anchor",
    "anchor_files",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="An anchor written by 'crm audit anchor': the trail must still hold the "
    "entry it records (repeatable).",
)
@click.pass_context
def verify(ctx: click.Context, anchor_files: tuple[str, ...]) -> None:
    """Check the hash chain, its MACs (with the audit key) and its head recorded outside the
    trail: an edited, removed, reordered or re-hashed entry, or entries cut from the end, are
    reported."""
    anchors = [read_anchor(path) for path in anchor_files]
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.read", Resource("audit"))
    report = crm.audit.verify(anchors)
    if not report.ok:
        raise StorageError(f"audit trail broken after {report.entries} entries: {report.problem}")
    keyed = ", MACs checked with the audit key" if report.keyed else ""
    against = f", matches {len(anchors)} anchor(s)" if anchors else ""
    if not as_json(ctx):
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    say(
        ctx,
        f"audit trail intact: {report.entries} entries{keyed}{against}",
        entries=report.entries,
        keyed=report.keyed,
        anchors=len(anchors),
        notes=list(report.notes),
    )


@audit_group.command("anchor")
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write the anchor to FILE (a new file, mode 600) instead of stdout.",
)
@click.pass_context
def anchor(ctx: click.Context, output: str | None) -> None:
    """Verify the trail, record its head and print it as an anchor to keep elsewhere.

    Later, 'crm audit verify --anchor FILE' proves the trail still holds that entry: entries
    removed from the end, or edited and re-hashed, up to it are caught even by someone who
    could rewrite the whole store.
    """
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.anchor", Resource("audit"))
    if output is not None:  # refused before anchoring, which records the head
        check_new(output, protected=protected_paths(crm.config), what="-o")
    found = crm.audit.anchor()
    text = json.dumps(found.to_json(), indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    write_new(output, text, protected=protected_paths(crm.config), what="-o")
    say(
        ctx,
        f"anchored entry #{found.seq}: wrote {output} (keep it outside this machine)",
        path=output,
        seq=found.seq,
        hash=found.hash,
    )


def read_anchor(path: str) -> Anchor:
    """The anchor in ``path``; a file that is missing or not an anchor is one clear error."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(1_000_000))
    except OSError as exc:
        raise ValidationError(f"--anchor {path}: cannot read it: {exc.strerror}") from None
    except ValueError:
        raise ValidationError(
            f"--anchor {path}: not an audit anchor (not JSON written by 'crm audit anchor')"
        ) from None
    return Anchor.from_json(data, f"--anchor {path}")


def register(cli: click.Group) -> None:
    cli.add_command(fresh_group(audit_group))
