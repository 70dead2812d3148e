"""``crm encryption status|rotate|seal|new-key``: the key that seals personal fields at rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import click

from crmcore.cli.context import (
    actor,
    as_json,
    fresh_group,
    open_crm_from,
    out_table,
    print_json,
    progress_bar,
    say,
    state,
)
from crmcore.cli.policy import require
from crmcore.errors import ConflictError, StorageError

if TYPE_CHECKING:
    from crmcore.keyrotation import KeyUsage

# ``crmcore.keyrotation.BATCH``, spelt out for the options' default: the encryption layer and
# key rotation are imported by the commands that use them, not by every ``crm`` start
# (tests/test_cli_lazy.py checks that the two agree).
BATCH = 500

CHECK_STATUS = (
    "check 'crm encryption status' before removing a previous key: it must show 0 "
    "values under that key and 0 that no key opens"
)


@click.group("encryption")
def encryption_group() -> None:
    """Encryption at rest: which key seals what, key rotation, new keys."""


@encryption_group.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """How many sealed values open with the current key, each previous key, or none."""
    from crmcore.encryption import encrypted_layer
    from crmcore.keyrotation import key_status, sealed_documents

    crm = require(ctx, "encryption.read", "encryption key")
    previous = encrypted_layer(crm.store).cipher.previous_keys
    total = sum(sealed_documents(crm).values())
    with progress_bar(ctx, total=total, description="checking") as advance:
        usage = key_status(crm, progress=lambda _name, n: advance(n))
    totals = {
        "current": sum(u.current for u in usage),
        "previous": [sum(u.previous[i] for u in usage) for i in range(previous)],
        "unreadable": sum(u.unreadable for u in usage),
        "plaintext": sum(u.plaintext for u in usage),
    }
    notes = _status_notes(totals, previous)
    if as_json(ctx):
        print_json(
            ctx,
            {
                "previous_keys": previous,
                "collections": [attrs.asdict(u) for u in usage],
                "totals": totals,
                "notes": notes,
            },
        )
        return
    columns = [("collection", "collection"), ("documents", "documents"), ("current", "current key")]
    columns += [(f"previous_{i + 1}", f"previous key {i + 1}") for i in range(previous)]
    columns += [("unreadable", "no key opens"), ("plaintext", "in the clear")]
    out_table(
        ctx,
        [_row(u) for u in usage],
        columns,
        title="sealed personal values by key",
        empty="no collection has personal fields",
    )
    for note in notes:
        state(ctx).console.print(note)


def _row(usage: KeyUsage) -> dict[str, object]:
    row: dict[str, object] = attrs.asdict(usage)
    for i, n in enumerate(usage.previous):
        row[f"previous_{i + 1}"] = n
    return row


def _status_notes(totals: dict[str, Any], previous: int) -> list[str]:
    notes = []
    under_previous = sum(totals["previous"])
    if totals["unreadable"]:
        notes.append(
            f"warning: {totals['unreadable']} sealed values open with no configured "
            "key: the data is damaged, or the key they were sealed with is missing "
            "from the configuration; remove no key, and restore the missing one"
        )
    if under_previous:
        notes.append(
            f"{under_previous} values are still sealed under a previous key: run "
            "'crm encryption rotate', and keep every previous key until this shows 0"
        )
    elif previous and not totals["unreadable"]:
        notes.append(
            "every sealed value opens with the current key: the previous keys may "
            "be removed from the configuration"
        )
    if totals["plaintext"]:
        notes.append(
            f"{totals['plaintext']} personal values are stored in the clear (written "
            "before encryption was turned on)"
        )
    return notes


@encryption_group.command("rotate")
@click.option(
    "--batch-size",
    default=BATCH,
    show_default=True,
    type=click.IntRange(min=1),
    help="Documents read at a time.",
)
@click.pass_context
def rotate(ctx: click.Context, batch_size: int) -> None:
    """Re-seal with the current key every value still sealed under a previous key.

    Safe to interrupt and to run again; the store stays in use meanwhile.
    """
    from crmcore.keyrotation import rotate_keys, sealed_documents

    crm = open_crm_from(ctx)
    who = actor(ctx)
    total = sum(sealed_documents(crm).values())
    with progress_bar(ctx, total=total, description="re-sealing") as advance:
        report = rotate_keys(
            crm, actor=who, batch_size=batch_size, progress=lambda _name, n: advance(n)
        )
    summary = f"re-sealed {report.resealed} documents under the current key"
    rows = [attrs.asdict(c) for c in report.collections]
    if as_json(ctx):
        print_json(
            ctx,
            {
                "message": f"{summary}; {CHECK_STATUS}",
                "resealed": report.resealed,
                "collections": rows,
                "unreadable": report.unreadable,
                "problems": report.problems,
                "compact_error": report.compact_error,
            },
        )
    else:
        out_table(
            ctx,
            rows,
            [
                ("collection", "collection"),
                ("documents", "documents"),
                ("resealed", "re-sealed"),
                ("unreadable", "no key opens"),
            ],
            title=summary,
            empty="no collection has personal fields",
        )
        if report.unreadable:
            state(ctx).console.print(
                f"warning: {report.unreadable} sealed values open with no "
                "configured key and were left as they are"
            )
        say(ctx, CHECK_STATUS)
    if report.problems:
        raise ConflictError(
            f"{len(report.problems)} document(s) left under a previous key: "
            + "; ".join(report.problems[:3])
        )
    if report.compact_error:
        raise StorageError(
            f"re-sealed, but the store could not be compacted, so old seals "
            f"remain in its files: {report.compact_error}; run 'crm compact'"
        )


@encryption_group.command("seal")
@click.option(
    "--batch-size",
    default=BATCH,
    show_default=True,
    type=click.IntRange(min=1),
    help="Documents read at a time.",
)
@click.pass_context
def seal(ctx: click.Context, batch_size: int) -> None:
    """Seal under the current key every personal value stored in the clear.

    Values written before encryption was turned on, or before their field was declared
    personal. Safe to interrupt and to run again; the store stays in use meanwhile.
    """
    from crmcore.keyrotation import seal_plaintext, sealed_documents

    crm = require(ctx, "encryption.seal", "encryption key")
    total = sum(sealed_documents(crm).values())
    with progress_bar(ctx, total=total, description="sealing") as advance:
        report = seal_plaintext(
            crm, actor=actor(ctx), batch_size=batch_size, progress=lambda _name, n: advance(n)
        )
    summary = f"sealed the values in the clear of {report.resealed} documents"
    rows = [
        {"collection": c.collection, "documents": c.documents, "sealed": c.resealed}
        for c in report.collections
    ]
    if as_json(ctx):
        print_json(
            ctx,
            {
                "message": summary,
                "sealed": report.resealed,
                "collections": rows,
                "problems": report.problems,
                "compact_error": report.compact_error,
            },
        )
    else:
        out_table(
            ctx,
            rows,
            [("collection", "collection"), ("documents", "documents"), ("sealed", "sealed")],
            title=summary,
            empty="no collection has personal fields",
        )
    if report.problems:
        raise ConflictError(
            f"{len(report.problems)} document(s) left in the clear: "
            + "; ".join(report.problems[:3])
        )
    if report.compact_error:
        raise StorageError(
            f"sealed, but the store could not be compacted, so the clear "
            f"values remain in its files: {report.compact_error}; run "
            "'crm compact'"
        )


@encryption_group.command("new-key")
@click.argument("file")
@click.pass_context
def new_key(ctx: click.Context, file: str) -> None:
    """Write a fresh random 32-byte key (base64) to FILE, readable by its owner only.

    FILE must not exist, and must not be the configuration or inside the store's folder (a
    key kept with the data it seals protects nothing: every backup would carry it). Keep a
    copy somewhere safe: losing the key loses the data it seals.
    """
    from crmcore.encryption import write_key_file
    from crmcore.outputs import check_target, configured_paths

    check_target(file, protected=configured_paths(state(ctx).config_path), what="FILE")
    path = write_key_file(file)
    say(
        ctx,
        f"wrote a new encryption key to {path} (mode 600); keep a copy somewhere safe: "
        "losing it loses the data it seals",
        path=str(path),
    )


def register(cli: click.Group) -> None:
    cli.add_command(fresh_group(encryption_group))
