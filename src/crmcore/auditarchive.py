"""Archive files of the audit trail (``crm audit archive``) and their checking.

An archive file is gzip-compressed JSON lines: the first line describes the archive (its
``format``, ``crmcore-audit-archive/1``, then what the seal kept in the store records of it:
``first`` and ``last`` entry numbers, ``prev`` (the hash the first entry follows), ``hash``
(the last entry's), ``entries``, ``from``/``to`` (when the first and last were written),
``before``, ``archived_at`` and, with the audit key, ``mac``); every further line is one
entry exactly as the trail held it (its ``version`` aside). Files are written owner-only
(0600), whole or not at all, and never replace an existing file.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crmcore.audit import (
    AuditedStore,
    _mac_fits,
    chained_hash,
    seal_digest,
)
from crmcore.errors import ValidationError
from crmcore.jsontext import ascii_document
from crmcore.outputs import PathLike, write_new

ARCHIVE_FORMAT = "crmcore-audit-archive/1"
ARCHIVE_SUFFIX = ".jsonl.gz"


def default_name(item: Mapping[str, Any]) -> str:
    """``audit-<first>-<last>.jsonl.gz``: the file name when none is given."""
    return f"audit-{item['first']:09d}-{item['last']:09d}{ARCHIVE_SUFFIX}"


def encode_archive(item: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> bytes:
    """The archive file's bytes: its description, then one entry per line, gzip-compressed
    (with no file name or time in the gzip header, so the same entries give the same bytes)."""
    lines = [ascii_document({"format": ARCHIVE_FORMAT, **item})]
    lines += [ascii_document(dict(e)) for e in entries]
    return gzip.compress(("\n".join(lines) + "\n").encode("ascii"), mtime=0)


def write_archive(
    path: PathLike,
    item: Mapping[str, Any],
    entries: Iterable[Mapping[str, Any]],
    *,
    protected: Iterable[PathLike] = (),
) -> Path:
    """Write a new archive file (0600; an existing file is never replaced)."""
    return write_new(path, encode_archive(item, entries), protected=protected, what="--output")


def read_archive(path: PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The description and the entries of an archive file; ``ValidationError`` for a file
    that is missing, unreadable or not an archive."""
    name = str(path)
    try:
        with gzip.open(path, "rb") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        if isinstance(exc, gzip.BadGzipFile) or not exc.strerror:
            raise ValidationError(
                f"--archive {name}: not an audit archive (a gzip file written by "
                "'crm audit archive')"
            ) from None
        raise ValidationError(f"--archive {name}: cannot read it: {exc.strerror}") from None
    except (EOFError, zlib.error):
        raise ValidationError(f"--archive {name}: the file is truncated or damaged") from None
    try:
        docs = [json.loads(line) for line in lines if line.strip()]
    except ValueError:
        raise ValidationError(
            f"--archive {name}: a line is not JSON: the file is damaged"
        ) from None
    if not docs or not isinstance(docs[0], dict) or docs[0].get("format") != ARCHIVE_FORMAT:
        raise ValidationError(
            f"--archive {name}: not an audit archive (written by 'crm audit archive')"
        )
    if not all(isinstance(d, dict) for d in docs[1:]):
        raise ValidationError(f"--archive {name}: a line is not an entry: the file is damaged")
    item = {k: v for k, v in docs[0].items() if k != "format"}
    return item, docs[1:]


def archive_problem(store: AuditedStore, path: PathLike) -> tuple[str | None, dict[int, str]]:
    """Check an archive file against itself and against the seal in ``store``: its entries
    follow each other from the hash the description names, each hash is right, they end at
    the described entry and hash and number what it says; with the audit key, each entry's
    MAC and the description's are valid; and the seal records this very archive. Returns the
    problem (or None) and the hash of each archived entry by number."""
    item, entries = read_archive(path)
    keys = store.keys
    hashes: dict[int, str] = {}
    first = item.get("first")
    if not all(
        isinstance(item.get(k), int) and not isinstance(item.get(k), bool)
        for k in ("first", "last", "entries")
    ) or not isinstance(item.get("prev"), str):
        return "the archive's description is malformed: the file was altered", hashes
    prev: Any = item["prev"]
    expected: int = first  # type: ignore[assignment]
    for entry in entries:
        seq = entry.get("seq")
        if seq != expected:
            return f"entry #{expected} is missing from the archive", hashes
        if entry.get("prev", prev) != prev:
            return f"archived entry #{seq} does not follow the one before it", hashes
        if chained_hash(entry, prev) != entry.get("hash"):
            return f"archived entry #{seq} was altered", hashes
        if (
            keys
            and entry.get("mac") is not None
            and not _mac_fits(keys, entry["hash"], entry["mac"])
        ):
            return f"archived entry #{seq} does not carry a valid MAC", hashes
        hashes[expected] = entry["hash"]
        prev, expected = entry["hash"], expected + 1
    if (
        len(entries) != item.get("entries")
        or expected - 1 != item.get("last")
        or prev != item.get("hash")
    ):
        return (
            f"the archive holds {len(entries)} entries up to #{expected - 1} but its "
            f"description records {item.get('entries')} up to #{item.get('last')}: entries "
            "were cut or added",
            hashes,
        )
    if keys and not _mac_fits(keys, seal_digest(item), item.get("mac"), "archive"):
        return "the archive's description has no valid MAC for this audit key", hashes
    seal = store.seal_record()
    sealed = [
        a
        for a in (seal or {}).get("archives", [])
        if isinstance(a, Mapping) and a.get("first") == item.get("first")
    ]
    if not sealed:
        return (
            f"this store's seal records no archive of entries #{item.get('first')}-"
            f"#{item.get('last')}: it is not an archive of this trail",
            hashes,
        )
    if {k: v for k, v in sealed[0].items()} != item:
        return (
            "the archive does not match the seal this store recorded for it: one of them "
            "was altered",
            hashes,
        )
    return None, hashes
