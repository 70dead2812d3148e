"""The end of a log that is not loaded: what ``append`` and ``last`` need, without the documents.

A log (see ``TinyCollection.append``) is numbered 1, 2, 3… in its sequence field and only ever
appended to. Its snapshot record holds the sequence field and the last document; the journal
after the snapshot holds its appends (``"a"`` operations). From those two the store knows the
last number without reading the log's documents: the audit trail, which grows by one entry per
write, is never loaded into memory by a process that only writes.

A snapshot written before the log was known as one has no such record; then the first append in
the journal since the snapshot starts the tail (``append`` wrote it as the next entry, under the
store's lock). Anything but appends and new indexes in the journal (a plain insert, an update, a
delete), or neither record nor append, and there is no tail: the collection is loaded as any
other.
"""

from __future__ import annotations

from typing import Any

from crmcore.errors import StorageError
from crmcore.storage.base import IndexSpec
from crmcore_storage_tinydb import files
from crmcore_storage_tinydb.files import SnapshotMeta, encode_json
from crmcore_storage_tinydb.journal import Journal


class LogTail:
    """A log's last number and document, and its documents appended since its snapshot."""

    __slots__ = ("field", "ids", "indexes", "last", "number", "texts")

    def __init__(self, field: str, last: str | None, number: int | None) -> None:
        self.field = field
        self.last = last  # compact JSON of the last document, version included; None: empty
        self.number = number  # None: not known yet (the next append in the journal tells)
        self.texts: list[str] = []  # appended since the snapshot, in order (for compaction)
        self.ids: set[str] = set()  # ... and their ids
        self.indexes: list[IndexSpec] = []  # declared since the snapshot

    def follows(self, doc: dict, text: str) -> bool:
        """Take ``doc`` (encoded as ``text``) as the next entry if it is one."""
        number = doc.get(self.field)
        if (
            type(number) is not int
            or doc["id"] in self.ids
            or (self.number is not None and number != self.number + 1)
        ):
            return False
        self.add(doc["id"], number, text)
        return True

    def add(self, id: str, number: int, text: str) -> None:
        self.number, self.last = number, text
        self.texts.append(text)
        self.ids.add(id)

    def undo_to(self, count: int, number: int | None, last: str | None) -> None:
        """Forget the appends after the first ``count`` (a rolled-back write)."""
        for text in self.texts[count:]:
            self.ids.discard(files.decode_doc(text)["id"])
        del self.texts[count:]
        self.number, self.last = number, last


def read_tail(
    journal: Journal, meta: SnapshotMeta | StorageError | None, name: str, field: str
) -> LogTail | None:
    """The tail of log ``name`` numbered by ``field``, from its snapshot record ``meta`` and
    the journal (the store caught up, its mutex held), or None if it is not a log this can
    follow."""
    start = journal.start
    if meta is None:
        tail = LogTail(field, None, 0)  # no snapshot yet: the whole log is in the journal
    elif (
        not isinstance(meta, SnapshotMeta)
        or meta.sequence not in (field, None)
        or meta.generation > journal.generation
    ):
        return None
    else:
        number = None
        if meta.sequence is not None:
            number = 0 if meta.last is None else files.decode_doc(meta.last).get(field)
            if type(number) is not int:
                return None
        tail = LogTail(field, meta.last, number)
        if meta.generation == journal.generation:
            start = max(start, meta.journal_offset)
    first = journal.first_op.get(name)
    start = journal.end if first is None else max(start, first)
    if start < journal.end:
        for record in journal.records(start, journal.end):
            if name in record.collections and not follow(tail, name, record.ops()):
                return None
    return tail if tail.number is not None else None


def follow(tail: LogTail, name: str, ops: list[list[Any]]) -> bool:
    """Apply a journal record's operations on ``name`` to ``tail``; False if one is not the
    next append."""
    for op in ops:
        if op[1] != name or op[0] == "c":
            continue
        if op[0] == "x":
            tail.indexes.append(files.spec_from_json(op[2]))
            continue
        if (
            op[0] != "a"
            or not isinstance(op[2], dict)
            or not tail.follows(op[2], encode_json(op[2]))
        ):
            return False
    return True
