"""A collection of the embedded store: the contract's operations over a loaded ``Table``.

A collection reaches its store only through ``StoreSide`` (what ``store.TinyStore`` offers its
collections): reads and write groups, loading its table, the journal it follows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar

from crmcore.converter import iso
from crmcore.errors import (
    ConflictError,
    CrmError,
    DuplicateKeyError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from crmcore.jsontext import ascii_document
from crmcore.logs import get_logger
from crmcore.storage.base import (
    BulkError,
    BulkResult,
    Collection,
    Doc,
    Filter,
    IndexSpec,
    SortSpec,
    add_numbers,
    batches,
)
from crmcore.storage.query import (
    check_new_doc,
    compile_normal,
    lease_is_free,
    normalize_filter,
    resolve,
    validate_sort,
)
from crmcore_storage_tinydb import files
from crmcore_storage_tinydb.files import SnapshotMeta, decode_doc, encode_json
from crmcore_storage_tinydb.indexes import plan
from crmcore_storage_tinydb.journal import Journal, WriteGroup
from crmcore_storage_tinydb.logtail import LogTail, follow, read_tail
from crmcore_storage_tinydb.sums import covering, values
from crmcore_storage_tinydb.table import Table, first_found, sort_found
from crmcore_storage_tinydb.topk import top

log = get_logger("storage_tinydb")
BULK_CHUNK = 1000  # documents per journal line in bulk writes outside a transaction
T = TypeVar("T")


class StoreSide(Protocol):
    """What a collection uses of its store (``store.TinyStore``)."""

    @property
    def journal(self) -> Journal:
        """The journal the store follows."""

    @property
    def group(self) -> WriteGroup | None:
        """The write group open now, if any."""

    @property
    def damage(self) -> StorageError | None:
        """Why the store cannot be used until a repair, if it cannot."""

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store for a read, up to date with every committed write."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Hold the store for a write group (joining this thread's open one)."""

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` inside a write group."""

    def holding(self, *, allow_damage: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold the store without catching up with the journal."""

    def load_table(self, name: str) -> Table:
        """Read a collection from the files."""

    def snapshot_meta(self, name: str) -> SnapshotMeta | StorageError | None:
        """The record of a collection's file (or why it cannot be read)."""


def _everything(_doc: Doc) -> bool:
    return True


def _keeps_text(doc: Doc, text: str) -> bool:
    """Whether the store can keep a caller's encoding of a new document as it is: a plain
    document without a version, encoded as an ASCII JSON object (the store's files are ASCII)."""
    return (
        type(doc) is dict
        and type(doc.get("id")) is str
        and "version" not in doc
        and text.isascii()
        and text[-1:] == "}"
    )


def _first_version(text: str) -> str:
    """A new document's encoding (see ``_keeps_text``) as stored: with ``"version":1``."""
    return text[:-1] + ',"version":1}'


def last_entry(table: Table, sequence: str) -> Doc | None:
    """A loaded log's last document (through an index on ``sequence`` if declared)."""
    order = [(sequence, -1)]
    best = top(table, {}, _everything, order, 1)
    found = table.select({}, _everything) if best is None else best[0]
    sort_found(found, order)
    return found[0] if found else None


class TinyCollection(Collection):
    """A collection of the embedded store. Loaded into memory on first use."""

    def __init__(self, store: StoreSide, name: str) -> None:
        self.name = name
        self._store = store
        self._json_name = encode_json(name)
        self._table: Table | None = None
        self._damage: StorageError | None = None
        self._deferred: list[IndexSpec] = []  # indexes declared while the data was unreadable
        self._tail: LogTail | None = None  # a log's end while it is not loaded (see append)
        #: The sequence field ``append``/``last`` were given (or the spec declared): a log.
        self.log_field: str | None = None
        # Keep the table loaded: it was loaded for a read, or the log's tail cannot be followed
        # (else a log loaded for a write is let go at its next append).
        self._keep_table = False

    # -- the store's side ----------------------------------------------------------------------

    def table(self) -> Table:
        """The loaded collection, loading it first if needed (the store held)."""
        if self._damage is not None:
            raise self._damage
        if self._table is None:
            try:
                table = self._store.load_table(self.name)
            except files.DamageError as exc:
                if exc is not self._store.damage:
                    self._damage = exc  # until a repair; other collections go on working
                raise
            self._install(table)
        assert self._table is not None
        return self._table

    def _install(self, table: Table) -> None:
        tail, self._tail = self._tail, None
        if tail is not None and self._store.group is not None:
            # Appends of the open write group are not in the journal yet: they end the list.
            for text in reversed(tail.texts):
                doc = files.decode_doc(text)
                if doc["id"] in table.docs:
                    break
                table.put(doc["id"], doc, text)
        self._table = table
        self._keep_table = self._store.group is None
        for spec in self._deferred:
            if spec.name not in table.indexes:
                table.add_index(spec, self.name)
        self._deferred = []

    @property
    def loaded(self) -> Table | None:
        """The collection if it is loaded, else None."""
        return self._table

    @property
    def following(self) -> bool:
        """Whether journal records on this collection must be replayed here (it is loaded,
        or a log's tail is kept)."""
        return self._table is not None or self._tail is not None

    def replay(self, ops: list[list[Any]]) -> None:
        """Apply a journal record's operations on this collection (another process's write)."""
        if self._table is not None:
            for op in ops:
                if op[1] == self.name:
                    self._table.replay(op)
        elif self._tail is not None and not follow(self._tail, self.name, ops):
            self._tail = None

    def forget(self) -> None:
        """Drop what is in memory: it loads again from the files on its next use."""
        self._table = None
        self._tail = None

    def forget_tail(self) -> None:
        """Drop a log's tail (it is read again when needed)."""
        self._tail = None

    def reset(self) -> None:
        """After a repair: forget everything, damage and deferred indexes included."""
        self.forget()
        self._damage = None
        self._deferred = []

    @property
    def deferred_indexes(self) -> list[IndexSpec]:
        """Indexes declared while the collection could not be read (created once it loads)."""
        return list(self._deferred)

    def _writes(self) -> WriteGroup:
        group = self._store.group
        assert group is not None, "writes happen inside a transaction"
        return group

    # -- plumbing ----------------------------------------------------------------------------

    def _put(
        self,
        table: Table,
        id: str,
        doc: Doc | None,
        text: str | None,
        old: Doc | None,
        old_text: str | None,
        kind: str = "p",
    ) -> None:
        """Change one document inside the current write group, journalled and undoable
        (``kind`` "a": an append to a log, see ``append``)."""
        table.put(id, doc, text, old)
        if text is None:
            op = f'["d",{self._json_name},{encode_json(id)}]'
        else:
            op = f'["{kind}",{self._json_name},{text}]'

        def undo() -> None:
            table.put(
                id,
                None if old_text is None else decode_doc(old_text),
                old_text,
                None if text is None else decode_doc(text),
            )

        self._writes().record(self.name, op, undo)

    def _existing(self, table: Table, id: str) -> str:
        text = table.docs.get(id) if isinstance(id, str) else None
        if text is None:
            raise NotFoundError(f"{self.name}: no record with id {id!r}")
        return text

    # -- the contract --------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        check_new_doc(doc)
        return self._store.run_in_transaction(self._insert_here, doc)

    def _insert_here(self, doc: Doc, text: str | None = None) -> Doc:
        return self._insert(self.table(), doc, text)

    def _insert(self, table: Table, doc: Doc, text: str | None = None, kind: str = "p") -> Doc:
        """Store a new document; returns it as stored: a new dict (nested values shared with
        ``doc``), never read again by the store, which keeps only its text. With ``text``
        (``doc`` encoded, without ``version``: see ``insert_encoded``) ``doc`` itself is
        indexed and returned, without a version, and ``text`` is what is kept."""
        id = doc["id"]
        if id in table.docs:
            raise DuplicateKeyError(f"{self.name}: id {id!r} already exists")
        if text is None:
            new = dict(doc)
            new["version"] = 1
            text = ascii_document(new)
        else:
            new, text = doc, _first_version(text)
        table.check_unique(self.name, new, None)  # indexes read ``new`` and keep nothing of it
        self._put(table, id, new, text, None, None, kind)
        return new

    def insert_encoded(self, doc: Doc, text: str) -> None:
        """``insert`` keeping the caller's ``text`` (see the contract). Text that is not plain
        ASCII goes the usual way: the store's files hold ASCII JSON."""
        if not _keeps_text(doc, text):
            self.insert(doc)
            return
        self._store.run_in_transaction(self._insert_here, doc, text)

    # -- logs --------------------------------------------------------------------------------

    def append(self, doc: Doc, text: str, *, sequence: str) -> None:
        """Append to a log (see the contract). While the log is not loaded, only its tail is
        read (``logtail``): the snapshot's last document and the journal's appends since."""
        number = doc.get(sequence) if type(doc) is dict else None
        if type(number) is not int:
            check_new_doc(doc)
            raise ValidationError(f"{self.name}: {sequence} must be a whole number", field=sequence)
        if not _keeps_text(doc, text):
            check_new_doc(doc)
            text = encode_json({k: v for k, v in doc.items() if k != "version"})
        self._store.run_in_transaction(self._append_here, doc, text, sequence, number)

    def _append_here(self, doc: Doc, text: str, sequence: str, number: int) -> None:
        self.log_field = sequence
        if (
            self._table is not None
            and not self._keep_table
            and self.name not in self._writes().names
        ):
            # Loaded for a write (an index declared, say), not for reading: let it go rather
            # than keep every entry in memory, if the tail can be followed.
            tail = read_tail(
                self._store.journal, self._store.snapshot_meta(self.name), self.name, sequence
            )
            if tail is None:
                self._keep_table = True  # do not read the journal again at every append
            else:
                self._table, self._tail = None, tail
        tail = self.log_tail(sequence) if self._table is None else None
        if tail is None:  # loaded, or not a log the tail can follow: the table decides
            table = self.table()
            end = last_entry(table, sequence)
            self._check_next(number, None if end is None else end.get(sequence), sequence)
            self._insert(table, doc, text, kind=self._store.journal.append_op)
            return
        self._check_next(number, tail.number, sequence)
        id = doc["id"]
        if id in tail.ids:
            raise DuplicateKeyError(f"{self.name}: id {id!r} already exists")
        stored = _first_version(text)
        before = (len(tail.texts), tail.number, tail.last)
        tail.add(id, number, stored)

        def undo() -> None:
            if self._table is not None:  # loaded since, with this append: take it out again
                self._table.put(id, None, None)
            if self._tail is tail:
                tail.undo_to(*before)

        self._writes().record(self.name, f'["a",{self._json_name},{stored}]', undo)

    def _check_next(self, number: int, last: object, sequence: str) -> None:
        expected = last + 1 if type(last) is int else 1
        if number < expected:
            raise DuplicateKeyError(
                f"{self.name}: {sequence} {number} is taken (the log is "
                f"at {expected - 1}): another writer appended first"
            )
        if number > expected:
            raise ValidationError(
                f"{self.name}: {sequence} {number} does not follow {expected - 1}, the last one",
                field=sequence,
            )

    def last(self, sequence: str) -> Doc | None:
        """The log's last document; from its tail while it is not loaded."""
        with self._store.reading():
            self.log_field = sequence
            if self._table is None:
                tail = self.log_tail(sequence)
                if tail is not None:
                    return None if tail.last is None else decode_doc(tail.last)
        return self.find_one({}, sort=[(sequence, -1)])

    def log_tail(self, field: str) -> LogTail | None:
        """This log's tail (read once, then kept up to date), or None."""
        if self._tail is None or self._tail.field != field:
            self._tail = None
            if self._damage is None and self._store.journal.append_op == "a":
                self._tail = read_tail(
                    self._store.journal, self._store.snapshot_meta(self.name), self.name, field
                )
        return self._tail

    def _upsert(self, table: Table, doc: Doc) -> str:
        check_new_doc(doc)
        id = doc["id"]
        old_text = table.docs.get(id)
        old = decode_doc(old_text) if old_text is not None else None
        new = dict(doc)
        new["version"] = 1 if old is None else old["version"] + 1
        text = ascii_document(new)
        table.check_unique(self.name, new, id)
        self._put(table, id, new, text, old, old_text)
        return text

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        """See the contract. The documents of a chunk are checked one by one (unique keys
        against the stored documents and those before them in the chunk), then stored and
        indexed together (``Table.put_new``: one pass per index)."""
        ids: list[str] = []
        errors: list[BulkError] = []
        for chunk in batches(enumerate(docs), BULK_CHUNK):
            with self._store.transaction():
                table = self.table()
                claims = table.unique_claims()
                new: list[tuple[str, Doc, str]] = []
                taken: set[str] = set()
                for i, doc in chunk:
                    try:
                        check_new_doc(doc)
                        id = doc["id"]
                        if id in table.docs or id in taken:
                            raise DuplicateKeyError(f"{self.name}: id {id!r} already exists")
                        stored = dict(doc)
                        stored["version"] = 1
                        if claims is not None:  # against what is stored, then this chunk
                            table.check_unique(self.name, stored, None)
                            claims.claim(self.name, stored)
                    except CrmError as exc:
                        given = doc.get("id") if isinstance(doc, Mapping) else None
                        errors.append(BulkError(i, given, str(exc)))
                        continue
                    new.append((id, stored, ascii_document(stored)))
                    taken.add(id)
                    ids.append(id)
                if new:
                    self._put_new(table, new)
        return BulkResult(tuple(ids), tuple(errors))

    def _put_new(self, table: Table, new: list[tuple[str, Doc, str]]) -> None:
        """Store new documents together inside the current write group (``insert_many``)."""
        table.put_new(new)
        name = self._json_name

        def undo() -> None:
            for id, doc, _text in reversed(new):
                table.put(id, None, None, doc)

        self._writes().record_many(self.name, [f'["p",{name},{t}]' for _i, _d, t in new], undo)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._upsert)

    def _bulk(self, docs: Iterable[Doc], one: Callable[[Table, Doc], object]) -> BulkResult:
        ids: list[str] = []
        errors: list[BulkError] = []
        for chunk in batches(enumerate(docs), BULK_CHUNK):
            with self._store.transaction():
                table = self.table()
                for i, doc in chunk:
                    try:
                        one(table, doc)
                        ids.append(doc["id"])
                    except CrmError as exc:
                        errors.append(
                            BulkError(
                                i, doc.get("id") if isinstance(doc, Mapping) else None, str(exc)
                            )
                        )
        return BulkResult(tuple(ids), tuple(errors))

    def get(self, id: str) -> Doc:
        with self._store.reading():
            return decode_doc(self._existing(self.table(), id))

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        if "id" in changes or "version" in changes:
            raise StorageError("update() may not change 'id' or 'version'")
        check_new_doc({**changes, "id": id if isinstance(id, str) and id else "?"})
        return self._store.run_in_transaction(self._update_here, id, changes, expected_version)

    def _update_here(self, id: str, changes: Mapping[str, Any], expected_version: int) -> Doc:
        return self._update(self.table(), id, changes, expected_version)

    def _update(
        self, table: Table, id: str, changes: Mapping[str, Any], expected_version: int
    ) -> Doc:
        old_text = self._existing(table, id)
        old = decode_doc(old_text)
        if old["version"] != expected_version:
            raise ConflictError(
                f"{self.name} {id}: changed by someone else (version "
                f"{old['version']}, you read {expected_version}); "
                "reload and retry"
            )
        new = {**old, **changes, "version": old["version"] + 1}
        text = encode_json(new)
        table.check_unique(self.name, new, id)
        self._put(table, id, new, text, old, old_text)
        return decode_doc(text)

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        with self._store.transaction():
            table = self.table()
            old_text = self._existing(table, id)
            old = decode_doc(old_text)
            if expected_version is not None and old["version"] != expected_version:
                raise ConflictError(f"{self.name} {id}: changed by someone else; reload first")
            self._put(table, id, None, None, old, old_text)

    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        normal = normalize_filter(filter)
        match = compile_normal(normal)
        order = validate_sort(sort)
        end = None if limit is None else skip + limit
        with self._store.reading():
            table = self.table()
            best = top(table, normal, match, order, end) if order and end else None
            if best is None:
                found = table.select(normal, match, None if order else end)
            else:
                found, in_order = best
                if in_order:
                    return found[skip:end]
        sort_found(found, order)
        return found[skip:end]

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        normal = normalize_filter(filter)
        match = compile_normal(normal)
        size = max(1, int(batch_size))
        candidates: list[str] | None = None
        with self._store.reading():
            table = self.table()
            chosen = plan(normal, table.indexes.values(), table.ids)
            if chosen is not None:
                candidates = sorted(set(chosen.ids()) | chosen.check)
        last: str | None = None
        position = 0
        while True:
            with self._store.reading():
                table = self.table()
                if candidates is None:
                    ids = table.ids.after(last, size)
                else:
                    ids = candidates[position : position + size]
                    position += size
                batch = []
                for id in ids:
                    text = table.docs.get(id)
                    if text is not None:
                        doc = decode_doc(text)
                        if match(doc):
                            batch.append(doc)
            if not ids:
                return
            last = ids[-1]
            yield from batch

    def count(self, filter: Filter | None = None) -> int:
        normal = normalize_filter(filter)
        match = compile_normal(normal)
        with self._store.reading():
            return self.table().count(normal, match)

    def sum(self, field: str, filter: Filter | None = None) -> int | float:
        """``Collection.sum``: from an index's entries, no document decoded, when an index
        holding ``field`` covers the filter exactly; else over the matching documents."""
        normal = normalize_filter(filter)
        with self._store.reading():
            table = self.table()
            found = covering(list(table.indexes.values()), field, normal)
            if found is not None:
                return add_numbers(values(*found, field, table.docs))
            docs = table.select(normal, compile_normal(normal))
        return add_numbers(resolve(doc, field) for doc in docs)

    def ensure_index(self, spec: IndexSpec) -> None:
        store = self._store
        with store.holding(allow_damage=True):
            if self._table is None:
                meta = store.snapshot_meta(self.name)
                if isinstance(meta, SnapshotMeta) and spec.name in {s.name for s in meta.indexes}:
                    return
                if (
                    store.damage is not None
                    or self._damage is not None
                    or isinstance(meta, StorageError)
                ):
                    self._defer(spec)
                    return
                try:
                    with store.transaction():
                        self.table()
                except StorageError as exc:
                    if self._damage is None:
                        raise
                    log.warning(
                        "collection unreadable; index deferred",
                        collection=self.name,
                        error=str(exc),
                    )
                    self._defer(spec)
                    return
            with store.transaction():
                table = self.table()
                if spec.name in table.indexes:
                    return
                table.add_index(spec, self.name)
                op = f'["x",{self._json_name},{encode_json(files.spec_to_json(spec))}]'

                def undo() -> None:
                    table.indexes.pop(spec.name, None)

                self._writes().record(self.name, op, undo)

    def _defer(self, spec: IndexSpec) -> None:
        if spec.name not in {s.name for s in self._deferred}:
            self._deferred.append(spec)

    def indexes(self) -> list[IndexSpec]:
        with self._store.reading():
            return [index.spec for index in self.table().indexes.values()]

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        normal = normalize_filter(filter)
        match = compile_normal(normal)
        order = validate_sort(sort)
        lease = {"lease_owner": owner, "lease_until": iso(until)}
        with self._store.transaction():
            table = self.table()
            # the first free match in order, walking an index (or the ids) where one gives the
            # order: a claim decodes what it passes over, not every candidate
            best = top(
                table,
                normal,
                match,
                order or [("id", 1)],
                1,
                also=lambda doc: lease_is_free(doc, owner, now),
            )
            if best is None:
                found = [d for d in table.select(normal, match) if lease_is_free(d, owner, now)]
            else:
                found = best[0]
            if not found:
                return None
            doc = first_found(found, order)
            return self._update(table, doc["id"], lease, doc["version"])

    def release(self, id: str, *, owner: str) -> None:
        with self._store.transaction():
            table = self.table()
            doc = decode_doc(self._existing(table, id))
            if doc.get("lease_owner") == owner:
                self._update(table, id, {"lease_owner": None, "lease_until": None}, doc["version"])
