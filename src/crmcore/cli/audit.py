"""``crm audit``, ``crm audit verify``, ``crm audit anchor`` and ``crm audit archive``."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import click

from crmcore.cli.context import (
    actor,
    as_json,
    fresh_group,
    open_crm_from,
    out_table,
    resolve_when,
    say,
)
from crmcore.cli.params import WHEN
from crmcore.errors import ConfigError, StorageError, ValidationError
from crmcore.security import Resource

if TYPE_CHECKING:
    from crmcore.audit import Anchor


@click.group("audit", invoke_without_command=True)
@click.option("--customer", "customer_id", metavar="ID", help="Only entries about this customer.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.pass_context
def audit_group(ctx: click.Context, customer_id: str | None, limit: int) -> None:
    """The audit trail, newest first: one row per write, refusal or event, with the number
    of the entry (one per transaction) that records it. Personal values appear masked."""
    from crmcore.audit import expand

    if ctx.invoked_subcommand is not None:
        return
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.read", Resource("audit", customer_id=customer_id))
    rows: list[dict[str, Any]] = []
    for entry in crm.audit.newest_first(customer_id):
        ops = [o for o in expand(entry) if not customer_id or o["customer_id"] == customer_id]
        for op in reversed(ops):
            op.pop("hash", None)
            op["details"] = details(op)
            rows.append(op)
        if len(rows) >= limit:
            break
    entries = rows[:limit]
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
    """One line about an operation (``expand``): the fields an update changed (nested ones
    dotted: ``ext.loyalty.tier``), what a refusal refused, an event's figures (``rekey``:
    documents re-sealed); nothing for inserts and deletes, whose diff is the whole (masked)
    record."""
    from crmcore.audit import flat_changes

    diff = entry.get("diff") or {}
    op = entry.get("op")
    if op == "update":
        return "changed: " + ", ".join(flat_changes(diff))
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
@click.option(
    "--archive",
    "archive_files",
    multiple=True,
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="An archive file written by 'crm audit archive': check its entries and that the "
    "seal in the store records it (repeatable).",
)
@click.pass_context
def verify(
    ctx: click.Context, anchor_files: tuple[str, ...], archive_files: tuple[str, ...]
) -> None:
    """Check the hash chain, its MACs (with the audit key), its head recorded outside the
    trail and the seal of archived entries: an edited, removed, reordered or re-hashed
    entry, entries cut from either end, or a live trail that does not continue the archived
    one, are reported. With --archive, archive files are checked too."""
    from crmcore.auditarchive import archive_problem, read_archive

    anchors = [read_anchor(path) for path in anchor_files]
    for path in archive_files:
        read_archive(path)  # a file that is not an archive: refused before opening the store
    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    crm.authorize(actor(ctx), "audit.read", Resource("audit"))
    hashes: dict[int, str] = {}
    for path in archive_files:
        problem, found = archive_problem(crm.audit, path)
        if problem:
            raise StorageError(f"audit archive {path} broken: {problem}")
        hashes.update(found)
    report = crm.audit.verify(anchors, archived=hashes)
    if not report.ok:
        raise StorageError(f"audit trail broken after {report.entries} entries: {report.problem}")
    keyed = ", MACs checked with the audit key" if report.keyed else ""
    against = f", matches {len(anchors)} anchor(s)" if anchors else ""
    sealed = f", following {report.archived} archived entries (sealed)" if report.archived else ""
    files = f", {len(archive_files)} archive file(s) checked" if archive_files else ""
    if not as_json(ctx):
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    say(
        ctx,
        f"audit trail intact: {report.entries} entries{sealed}{keyed}{against}{files}",
        entries=report.entries,
        archived=report.archived,
        keyed=report.keyed,
        anchors=len(anchors),
        archives=len(archive_files),
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
    from crmcore.outputs import check_new, protected_paths, write_new

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


@audit_group.command("archive")
@click.option(
    "--before",
    "before",
    required=True,
    type=WHEN,
    metavar="DATE",
    help="Archive the entries written before this date (2026-01-01, read in the business "
    "time zone), date and time, or relative time (-90d). Not in the future.",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="The archive file to write (new, mode 600); default "
    "audit-<first>-<last>.jsonl.gz in the current directory.",
)
@click.pass_context
def archive(ctx: click.Context, before: Any, output: str | None) -> None:
    """Move the oldest entries of the audit trail into an archive file, sealed.

    The trail is verified first (a broken trail is refused, nothing written). The entries
    written before DATE (all but the newest entry, which stays so the chain goes on from it)
    go to a gzip-compressed JSON-lines file (owner-only), then leave the store; a seal kept
    beside the trail's head records the last archived entry, its hash and how many were
    archived (with a MAC under the audit key), so the live trail still chains to it and
    'crm audit verify' proves continuity. 'crm audit verify --archive FILE' checks the file
    against its seal. Keep archive files as you keep backups.
    """
    from crmcore.audit import acting_as
    from crmcore.auditarchive import default_name, write_archive
    from crmcore.converter import iso
    from crmcore.outputs import check_new, protected_paths

    crm = open_crm_from(ctx)
    if crm.audit is None:
        raise ConfigError("the audit trail is off ([core] audit = false)")
    who = actor(ctx)
    crm.authorize(who, "audit.archive", Resource("audit"))
    cutoff = resolve_when(crm, before)
    if cutoff > crm.now():
        raise ValidationError(
            f"--before {cutoff.isoformat()} is in the future: only entries already written "
            "can be archived"
        )
    protected = protected_paths(crm.config)
    if output is not None:  # refused before anything is archived
        check_new(output, protected=protected, what="--output")
    written: list[str] = []

    def write(item: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        target = output if output is not None else default_name(item)
        write_archive(target, item, entries, protected=protected)
        written.append(target)

    try:
        with acting_as(who):
            item = crm.audit.archive(iso(cutoff), write)
    except BaseException:
        import os

        for path in written:  # the store kept its entries: no half-done archive is left
            with contextlib.suppress(OSError):
                os.unlink(path)
        raise
    if item is None:
        say(ctx, f"no audit entry was written before {iso(cutoff)}: nothing archived", entries=0)
        return
    say(
        ctx,
        f"archived entries #{item['first']}-#{item['last']} ({item['entries']} entries written "
        f"{item['from']} to {item['to']}) to {written[0]}; keep it as you keep backups",
        path=written[0],
        first=item["first"],
        last=item["last"],
        entries=item["entries"],
        hash=item["hash"],
    )


def read_anchor(path: str) -> Anchor:
    """The anchor in ``path``; a file that is missing or not an anchor is one clear error."""
    from crmcore.audit import Anchor

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
