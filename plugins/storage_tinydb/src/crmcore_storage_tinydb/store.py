"""The embedded store: stock-TinyDB snapshot files, one checksummed journal, in-memory indexes.

Every write appends one line to ``journal.log`` under the store-wide lock (``os.write``, plus
``fdatasync`` in ``fsync`` mode) before it is acknowledged, so a single-record write is O(1) on
disk. Each process keeps the collections it has touched in memory (documents as compact JSON
text, plus sorted indexes) and, before every operation, looks at the journal: if it grew it
reads only the new lines; if it was replaced (another process compacted) it follows. Compaction
folds the journal into the per-collection files, which stock ``TinyDB(path)`` opens.

See ``docs/storage.md`` for the design, its guarantees and its limits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from crmcore.converter import iso
from crmcore.errors import (
    ConflictError,
    CrmError,
    DuplicateKeyError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from crmcore.logs import get_logger
from crmcore.storage.base import (
    BulkError,
    BulkResult,
    Capabilities,
    Collection,
    Doc,
    Filter,
    IndexSpec,
    SortSpec,
    Store,
)
from crmcore.storage.query import (
    _is_operator_map,
    check_new_doc,
    compile_filter,
    index_key,
    lease_is_free,
    normalize_filter,
    sort_docs,
    validate_sort,
)
from crmcore_storage_tinydb import files
from crmcore_storage_tinydb.files import (
    JOURNAL,
    LOCK,
    RECOVERED,
    SnapshotMeta,
    damaged,
    decode_json,
    encode_json,
)
from crmcore_storage_tinydb.indexes import Index, id_suffix, is_inexact, plan
from crmcore_storage_tinydb.locking import StoreLock
from crmcore_storage_tinydb.options import TinyStoreOptions
from crmcore_storage_tinydb.sortedlist import SortedList

log = get_logger("storage_tinydb")

AUTO_COMPACT_MIN = 32 * 1024 * 1024  # never compact on the fly below this journal size
AUTO_COMPACT_RATIO = 0.5  # ... nor while the journal is under half the snapshots' size
BULK_CHUNK = 1000  # documents per journal line in bulk writes outside a transaction
MB = 1024 * 1024

_open_stores: weakref.WeakSet[TinyStore] = weakref.WeakSet()


def _after_fork() -> None:
    for store in list(_open_stores):
        store._forked = True


os.register_at_fork(after_in_child=_after_fork)


class Table:
    """One loaded collection: documents as compact JSON text by id, ids in order, indexes."""

    __slots__ = ("docs", "ids", "indexes", "size")

    def __init__(self) -> None:
        self.docs: dict[str, str] = {}
        self.ids = SortedList()
        self.indexes: dict[str, Index] = {}
        self.size = 0  # characters of document text: about the snapshot's size

    def put(self, id: str, doc: Doc | None, text: str | None, old: Doc | None = None) -> None:
        """Store ``text`` (the encoding of ``doc``) under ``id``; None removes the document."""
        prev = self.docs.get(id)
        if prev is not None:
            if self.indexes:
                before = decode_json(prev) if old is None else old
                for index in self.indexes.values():
                    index.remove(id, before)
            self.size -= len(prev)
        if doc is None or text is None:
            if prev is not None:
                del self.docs[id]
                self.ids.discard(id)
            return
        if prev is None:
            self.ids.add(id)
        self.docs[id] = text
        self.size += len(text)
        for index in self.indexes.values():
            index.add(id, doc)

    def add_index(self, spec: IndexSpec, collection: str) -> Index:
        index = Index(spec)
        index.build((id, decode_json(text)) for id, text in self.docs.items())
        if spec.unique:
            clash = index.duplicate()
            if clash is not None:
                raise DuplicateKeyError(f"{collection}: cannot create unique index {spec.name}: "
                                        f"{clash[0]} and {clash[1]} collide")
        self.indexes[spec.name] = index
        return index

    def check_unique(self, collection: str, doc: Doc, replacing: str | None) -> None:
        for index in self.indexes.values():
            if not index.spec.unique:
                continue
            key = index.key(doc)
            if key is None:
                continue
            for holder in index.holders(key):
                if holder == replacing:
                    continue
                if any(is_inexact(v) for v in _key_values(doc, index)):
                    other = decode_json(self.docs[holder])
                    if index_key(other, index.fields, sparse=index.spec.sparse) != index_key(
                            doc, index.fields, sparse=index.spec.sparse):
                        continue
                fields = ", ".join(f for f, _ in index.fields)
                raise DuplicateKeyError(f"{collection}: another record already has this "
                                        f"value of ({fields})")

    def select(self, normal: dict[str, Any], match: Callable[[Doc], bool],
               stop: int | None = None) -> list[Doc]:
        """Matching documents (decoded: fresh copies). With ``stop`` and no usable index, the
        first ``stop`` matches in id order."""
        chosen = plan(normal, self.indexes.values())
        docs = self.docs
        out: list[Doc] = []
        if chosen is None:
            needles = _needles(normal)
            if stop is not None:
                for id in self.ids:
                    text = docs[id]
                    if needles and not _has_needles(text, needles):
                        continue
                    doc = decode_json(text)
                    if match(doc):
                        out.append(doc)
                        if len(out) >= stop:
                            break
                return out
            for text in docs.values():
                if needles and not _has_needles(text, needles):
                    continue
                doc = decode_json(text)
                if match(doc):
                    out.append(doc)
            return out
        check = chosen.check
        for id in chosen.ids():
            if id in check:
                continue
            text = docs.get(id)
            if text is None:
                continue
            doc = decode_json(text)
            if chosen.exact or match(doc):
                out.append(doc)
        for id in check:
            text = docs.get(id)
            if text is not None:
                doc = decode_json(text)
                if match(doc):
                    out.append(doc)
        return out

    def ordered(self, normal: dict[str, Any], match: Callable[[Doc], bool],
                order: list[tuple[str, int]], want: int) -> list[Doc] | None:
        """The first ``want`` matches in ``order`` (plus ties) by walking an index in that
        order, when no index narrows the filter and one index gives the order; else None."""
        directions = {d for _f, d in order}
        if want <= 0 or len(directions) != 1 or plan(normal, self.indexes.values()) is not None:
            return None
        fields = [f for f, _d in order]
        for index in self.indexes.values():
            if index.spec.sparse or list(index.paths[:len(fields)]) != fields:
                continue
            out: list[Doc] = []
            boundary: bytes | None = None
            for key, id in index.ordered(fields, directions == {-1}):
                if boundary is not None and key != boundary:
                    break
                doc = decode_json(self.docs[id])
                if match(doc):
                    out.append(doc)
                    if len(out) >= want:
                        boundary = key  # finish this key's ties, then stop
            return out
        return None

    def count(self, normal: dict[str, Any], match: Callable[[Doc], bool]) -> int:
        if not normal:
            return len(self.docs)
        chosen = plan(normal, self.indexes.values())
        if chosen is None or not chosen.exact:
            return len(self.select(normal, match))
        check = chosen.check
        total = sum(1 for id in chosen.ids() if id not in check and id in self.docs)
        return total + sum(1 for id in check
                           if id in self.docs and match(decode_json(self.docs[id])))


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> bool:
    """True when ``value`` is built only of JSON types with string keys not starting with '$'
    (what ``check_new_doc`` accepts), checked without building error paths."""
    kind = type(value)
    if kind in _PLAIN:
        return True
    if kind is dict:
        try:
            keys = "\x00".join(value)  # TypeError unless every key is a str
        except TypeError:
            return False
        if keys[:1] == "$" or "\x00$" in keys:
            return False
        items = value.values()
    elif kind is list:
        items = value
    else:
        return False
    if _PLAIN.issuperset(map(type, items)):
        return True
    return all(type(item) in _PLAIN or _plain(item) for item in items)


def check_doc(doc: Any) -> None:
    """``check_new_doc`` with a fast path: plain documents pass at once; anything else gets
    the shared check, which accepts it or raises its exact error."""
    if type(doc) is dict:
        id = doc.get("id")
        if type(id) is str and id and _plain(doc):
            return
    check_new_doc(doc)


def _key_values(doc: Doc, index: Index) -> list[Any]:
    from crmcore.storage.query import resolve

    return [resolve(doc, p) for p in index.paths]


def _needles(normal: Mapping[str, Any]) -> list[list[str]]:
    """For each top-level equality on strings, the JSON texts one of which a match contains."""
    groups = []
    for key, cond in normal.items():
        if key.startswith("$"):
            continue
        if not _is_operator_map(cond):
            values = [cond]
        elif set(cond) == {"$eq"}:
            values = [cond["$eq"]]
        elif set(cond) == {"$in"}:
            values = list(cond["$in"])
        else:
            continue
        if values and all(isinstance(v, str) for v in values):
            groups.append([encode_json(v) for v in values])
    return groups


def _has_needles(text: str, needles: list[list[str]]) -> bool:
    return all(any(n in text for n in group) for group in needles)


class _Group:
    """The writes of one transaction (or one lone write): journal ops and how to undo them."""

    __slots__ = ("names", "ops", "undo")

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.undo: list[Callable[[], None]] = []
        self.names: set[str] = set()


class TinyCollection(Collection):
    """A collection of the embedded store. Loaded into memory on first use."""

    def __init__(self, store: TinyStore, name: str) -> None:
        self.name = name
        self._store = store
        self._json_name = encode_json(name)
        self._table: Table | None = None
        self._damage: StorageError | None = None
        self._deferred: list[IndexSpec] = []  # indexes declared while the data was unreadable

    # -- plumbing ----------------------------------------------------------------------------

    def _tbl(self) -> Table:
        if self._damage is not None:
            raise self._damage
        if self._table is None:
            self._store._load(self)
        assert self._table is not None
        return self._table

    def _put(self, table: Table, id: str, doc: Doc | None, text: str | None,
             old: Doc | None, old_text: str | None) -> None:
        """Change one document inside the current write group, journalled and undoable."""
        table.put(id, doc, text, old)
        if text is None:
            op = f'["d",{self._json_name},{encode_json(id)}]'
        else:
            op = f'["p",{self._json_name},{text}]'

        def undo() -> None:
            table.put(id, None if old_text is None else decode_json(old_text), old_text,
                      None if text is None else decode_json(text))

        self._store._record(self.name, op, undo)

    def _existing(self, table: Table, id: str) -> str:
        text = table.docs.get(id) if isinstance(id, str) else None
        if text is None:
            raise NotFoundError(f"{self.name}: no record with id {id!r}")
        return text

    # -- the contract --------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        check_doc(doc)
        return self._store._write(self._insert_here, doc)

    def _insert_here(self, doc: Doc) -> Doc:
        return self._insert(self._tbl(), doc)

    def _insert(self, table: Table, doc: Doc) -> Doc:
        id = doc["id"]
        if id in table.docs:
            raise DuplicateKeyError(f"{self.name}: id {id!r} already exists")
        new = dict(doc)
        new["version"] = 1
        text = encode_json(new)  # indexes read ``new`` now and keep nothing of it
        table.check_unique(self.name, new, None)
        self._put(table, id, new, text, None, None)
        return decode_json(text)

    def _upsert(self, table: Table, doc: Doc) -> Doc:
        check_doc(doc)
        id = doc["id"]
        old_text = table.docs.get(id)
        old = decode_json(old_text) if old_text is not None else None
        new = dict(doc)
        new["version"] = 1 if old is None else old["version"] + 1
        text = encode_json(new)
        table.check_unique(self.name, new, id)
        self._put(table, id, new, text, old, old_text)
        return decode_json(text)

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        def one(table: Table, doc: Doc) -> Doc:
            check_doc(doc)
            return self._insert(table, doc)

        return self._bulk(docs, one)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._upsert)

    def _bulk(self, docs: Iterable[Doc], one: Callable[[Table, Doc], Doc]) -> BulkResult:
        ids: list[str] = []
        errors: list[BulkError] = []
        source = iter(enumerate(docs))
        while True:
            chunk = [item for _, item in zip(range(BULK_CHUNK), source, strict=False)]
            if not chunk:
                break
            with self._store._writing():
                table = self._tbl()
                for i, doc in chunk:
                    try:
                        ids.append(one(table, doc)["id"])
                    except CrmError as exc:
                        errors.append(BulkError(i, doc.get("id") if isinstance(doc, Mapping)
                                                else None, str(exc)))
        return BulkResult(tuple(ids), tuple(errors))

    def get(self, id: str) -> Doc:
        with self._store._reading():
            return decode_json(self._existing(self._tbl(), id))

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        if "id" in changes or "version" in changes:
            raise StorageError("update() may not change 'id' or 'version'")
        check_doc({**changes, "id": id if isinstance(id, str) and id else "?"})
        return self._store._write(self._update_here, id, changes, expected_version)

    def _update_here(self, id: str, changes: Mapping[str, Any], expected_version: int) -> Doc:
        return self._update(self._tbl(), id, changes, expected_version)

    def _update(self, table: Table, id: str, changes: Mapping[str, Any],
                expected_version: int) -> Doc:
        old_text = self._existing(table, id)
        old = decode_json(old_text)
        if old["version"] != expected_version:
            raise ConflictError(f"{self.name} {id}: changed by someone else (version "
                                f"{old['version']}, you read {expected_version}); "
                                "reload and retry")
        new = {**old, **changes, "version": old["version"] + 1}
        text = encode_json(new)
        table.check_unique(self.name, new, id)
        self._put(table, id, new, text, old, old_text)
        return decode_json(text)

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        with self._store._writing():
            table = self._tbl()
            old_text = self._existing(table, id)
            old = decode_json(old_text)
            if expected_version is not None and old["version"] != expected_version:
                raise ConflictError(f"{self.name} {id}: changed by someone else; reload first")
            self._put(table, id, None, None, old, old_text)

    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             limit: int | None = None, skip: int = 0) -> list[Doc]:
        normal = normalize_filter(filter)
        match = compile_filter(normal)
        order = validate_sort(sort)
        end = None if limit is None else skip + limit
        with self._store._reading():
            table = self._tbl()
            found = table.ordered(normal, match, order, end) if order and end else None
            if found is None:
                found = table.select(normal, match, None if order else end)
        sort_docs(found, order)
        return found[skip:end]

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        normal = normalize_filter(filter)
        match = compile_filter(normal)
        size = max(1, int(batch_size))
        candidates: list[str] | None = None
        with self._store._reading():
            table = self._tbl()
            chosen = plan(normal, table.indexes.values())
            if chosen is not None:
                candidates = sorted(set(chosen.ids()) | chosen.check)
        last: str | None = None
        position = 0
        while True:
            with self._store._reading():
                table = self._tbl()
                if candidates is None:
                    ids = table.ids.after(last, size)
                else:
                    ids = candidates[position:position + size]
                    position += size
                batch = []
                for id in ids:
                    text = table.docs.get(id)
                    if text is not None:
                        doc = decode_json(text)
                        if match(doc):
                            batch.append(doc)
            if not ids:
                return
            last = ids[-1]
            yield from batch

    def count(self, filter: Filter | None = None) -> int:
        normal = normalize_filter(filter)
        match = compile_filter(normal)
        with self._store._reading():
            return self._tbl().count(normal, match)

    def ensure_index(self, spec: IndexSpec) -> None:
        store = self._store
        with store._mutex:
            store._usable(allow_damage=True)
            if self._table is None:
                meta = store._meta.get(self.name)
                if isinstance(meta, SnapshotMeta) and spec.name in {s.name for s in meta.indexes}:
                    return
                if store._damage is not None or self._damage is not None or isinstance(
                        meta, StorageError):
                    self._defer(spec)
                    return
                try:
                    with store._writing():
                        self._tbl()
                except StorageError as exc:
                    if self._damage is None:
                        raise
                    log.warning("collection unreadable; index deferred", collection=self.name,
                                error=str(exc))
                    self._defer(spec)
                    return
            with store._writing():
                table = self._tbl()
                if spec.name in table.indexes:
                    return
                table.add_index(spec, self.name)
                op = f'["x",{self._json_name},{encode_json(files.spec_to_json(spec))}]'
                store._record(self.name, op, lambda: table.indexes.pop(spec.name, None))

    def _defer(self, spec: IndexSpec) -> None:
        if spec.name not in {s.name for s in self._deferred}:
            self._deferred.append(spec)

    def indexes(self) -> list[IndexSpec]:
        with self._store._reading():
            return [index.spec for index in self._tbl().indexes.values()]

    def claim(self, filter: Filter, *, owner: str, until: datetime, now: datetime,
              sort: SortSpec | None = None) -> Doc | None:
        normal = normalize_filter(filter)
        match = compile_filter(normal)
        order = validate_sort(sort)
        lease = {"lease_owner": owner, "lease_until": iso(until)}
        with self._store._writing():
            table = self._tbl()
            found = [d for d in table.select(normal, match) if lease_is_free(d, owner, now)]
            if not found:
                return None
            sort_docs(found, order)
            doc = found[0]
            return self._update(table, doc["id"], lease, doc["version"])

    def release(self, id: str, *, owner: str) -> None:
        with self._store._writing():
            table = self._tbl()
            doc = decode_json(self._existing(table, id))
            if doc.get("lease_owner") == owner:
                self._update(table, id, {"lease_owner": None, "lease_until": None},
                             doc["version"])

    # -- replaying journal operations ----------------------------------------------------------

    def _replay(self, table: Table, op: list[Any]) -> None:
        kind = op[0]
        if kind == "p":
            doc = op[2]
            table.put(doc["id"], doc, encode_json(doc))
        elif kind == "d":
            table.put(op[2], None, None)
        elif kind == "x":
            spec = files.spec_from_json(op[2])
            if spec.name not in table.indexes:
                index = Index(spec)
                index.build((id, decode_json(t)) for id, t in table.docs.items())
                table.indexes[spec.name] = index


class TinyStore(Store):
    """The embedded default store in a folder (see the module docstring and docs/storage.md)."""

    capabilities = Capabilities(persistent=True, transactions=True, multi_process=True)

    def __init__(self, location: str | os.PathLike[str],
                 options: TinyStoreOptions | None = None) -> None:
        self.path = Path(location).expanduser()
        self.options = options or TinyStoreOptions()
        self._journal_path = self.path / JOURNAL
        self._mutex = threading.RLock()
        self._handles: dict[str, TinyCollection] = {}
        self._names: set[str] = set()  # collections on disk (files and journal)
        self._created: set[str] = set()  # opened here, journalled with the next write
        self._meta: dict[str, SnapshotMeta | StorageError] = {}
        self._last_op: dict[str, int] = {}  # collection -> offset of its last journal record
        self._first_op: dict[str, int] = {}  # ... and of its first
        self._group: _Group | None = None
        self._owner = 0  # thread holding the open write group
        self._damage: StorageError | None = None
        self._closed = False
        self._forked = False
        self._fd = -1
        self._ino = 0
        self._gen = 0
        self._start = 0
        self._off = 0
        self._refuse_network_filesystem()
        created = files.make_private_dir(self.path)
        if not created and (self._journal_path.exists() or not any(self.path.iterdir())):
            os.chmod(self.path, 0o700)
        self._lock = StoreLock(self.path / LOCK, self.options.lock_timeout)
        try:
            self._open_journal()
        except BaseException:
            self._lock.close()
            if self._fd >= 0:
                os.close(self._fd)
            raise
        _open_stores.add(self)

    # -- opening -------------------------------------------------------------------------------

    def _refuse_network_filesystem(self) -> None:
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        kind = files.filesystem_type(probe)
        if kind in files.NETWORK_FILESYSTEMS and not self.options.allow_network_filesystem:
            raise StorageError(
                f"{self.path} is on a network file system ({kind}), where file locks cannot be "
                "trusted: two processes could corrupt the store. Keep the store on a local "
                "disk, or set storage.options.allow_network_filesystem = true if only one "
                "process on one machine will ever use it")

    def _open_journal(self) -> None:
        """Follow the journal (no lock: opening never waits for another process's write)."""
        if not self._journal_path.exists():
            self._lock.acquire(exclusive=True)
            try:
                if not self._journal_path.exists():
                    self._read_metas()
                    if any(isinstance(m, SnapshotMeta) for m in self._meta.values()):
                        self._damage = damaged(self._journal_path, "it is missing while "
                                               "collection files exist", location=self.path)
                        return
                    self._write_journal(1, 0, 0)
            finally:
                self._lock.release()
        self._read_metas()
        try:
            self._adopt_journal()
        except files.DamageError as exc:
            self._damage = exc  # opened anyway, so that 'crm check --repair' can run
            log.error("store damaged", location=str(self.path), error=str(exc))

    def _write_journal(self, generation: int, prev_generation: int, prev_end: int) -> None:
        """Start a new journal file (atomically replacing any current one)."""
        tmp = self.path / f".tmp-{os.getpid()}-{JOURNAL}"
        fd = files.open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            files.write_all(fd, files.header_line(generation, prev_generation, prev_end))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self._journal_path)
        files.fsync_dir(self.path)

    def _adopt_journal(self) -> None:
        """Open the current journal file and read all of it (loaded tables follow it)."""
        fd = files.open_private(self._journal_path, os.O_RDWR | os.O_APPEND)
        try:
            header = files.read_header(fd, self._journal_path)
        except BaseException:
            os.close(fd)
            raise
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._ino = os.fstat(fd).st_ino
        self._gen = header.generation
        self._start = self._off = header.end
        self._last_op = {}
        self._first_op = {}
        self._read_tail()

    def _read_metas(self) -> None:
        metas: dict[str, SnapshotMeta | StorageError] = {}
        for entry in os.scandir(self.path):
            name = files.collection_of(entry.name)
            if name is None or not entry.is_file():
                continue
            try:
                metas[name] = files.read_meta(Path(entry.path))
            except StorageError as exc:
                metas[name] = exc
            self._names.add(name)
        self._meta = metas

    # -- following the journal -----------------------------------------------------------------

    def _catch_up(self, *, locked: bool) -> None:
        """Apply what other processes committed since we last looked."""
        try:
            st = os.stat(self._journal_path)
        except FileNotFoundError:
            self._damage = damaged(self._journal_path, "it has disappeared", location=self.path)
            raise self._damage from None
        if st.st_ino == self._ino:
            if st.st_size == self._off:
                return
            if st.st_size < self._off:
                self._reload(locked=locked)
            else:
                self._read_tail()
            return
        self._read_tail()  # the rest of the old journal, through our open fd
        fd = files.open_private(self._journal_path, os.O_RDWR | os.O_APPEND)
        try:
            header = files.read_header(fd, self._journal_path)
        finally:
            os.close(fd)
        if header.prev_generation == self._gen and header.prev_end == self._off:
            self._adopt_journal()  # a compaction that folded exactly what we hold
            self._read_metas()
        else:
            self._reload(locked=locked)

    def _read_tail(self) -> None:
        """Apply the good lines after our position. An unfinished or bad last line is left
        alone: it is being written, or a crash tore it (then the next writer sets it aside)."""
        size = os.fstat(self._fd).st_size
        if size <= self._off:
            return
        data = os.pread(self._fd, size - self._off, self._off)
        result = files.scan(data, self._off)
        self._apply(result.records)
        self._off = result.end
        if result.bad_in_middle:
            self._damage = damaged(self._journal_path, f"the line at byte {result.bad} fails "
                                   "its checksum and later lines are intact",
                                   location=self.path)
            raise self._damage

    def _apply(self, records: list[files.Record]) -> None:
        handles = self._handles
        for record in records:
            loaded = []
            for name in record.collections:
                self._last_op[name] = record.start
                self._first_op.setdefault(name, record.start)
                self._names.add(name)
                handle = handles.get(name)
                if handle is not None and handle._table is not None:
                    loaded.append(name)
            if loaded:
                for op in record.ops():
                    if op[1] in loaded:
                        handle = handles[op[1]]
                        handle._replay(handle._table, op)  # type: ignore[arg-type]

    def _reload(self, *, locked: bool) -> None:
        """Start over from the files (after a repair or an unexpected change on disk)."""
        log.info("store changed under us; reloading", location=str(self.path))
        for handle in self._handles.values():
            handle._table = None
        if locked:
            self._adopt_journal()
            self._read_metas()
        else:
            self._lock.acquire(exclusive=False)
            try:
                self._adopt_journal()
                self._read_metas()
            finally:
                self._lock.release()

    def _cut_torn_tail(self) -> None:
        """Under the exclusive lock: set aside bytes after the last good line (a write that a
        crash interrupted, never acknowledged) so that new lines follow good ones."""
        size = os.fstat(self._fd).st_size
        if size <= self._off:
            return
        torn = os.pread(self._fd, size - self._off, self._off)
        aside = self.path / RECOVERED
        files.make_private_dir(aside)
        keep = aside / f"journal-{self._gen}-tail-at-{self._off}.bin"
        fd = files.open_private(keep, os.O_WRONLY | os.O_TRUNC)
        try:
            files.write_all(fd, torn)
        finally:
            os.close(fd)
        os.ftruncate(self._fd, self._off)
        log.warning("set aside an interrupted journal write", bytes=len(torn), kept=str(keep))

    # -- loading a collection ------------------------------------------------------------------

    def _load(self, handle: TinyCollection) -> None:
        """Load a collection: its snapshot, then its writes in the journal.

        Without a lock, so that readers never wait for a writer's transaction: a compaction
        that replaces the journal meanwhile is noticed (its inode changes) and the load is
        done again. A snapshot newer than what we read of the journal is harmless: replaying
        journal writes it already holds changes nothing (writes carry whole documents).
        """
        if self._group is not None or self._lock.mode:
            self._load_locked(handle)
            return
        for _attempt in range(3):
            self._catch_up(locked=False)
            ino = self._ino
            try:
                self._load_locked(handle)
            except files.DamageError:
                if self._journal_moved(ino):
                    handle._damage = None
                    continue
                raise
            if not self._journal_moved(ino):
                return
            handle._table = None
        self._lock.acquire(exclusive=False)  # compacted under our feet again and again
        try:
            self._catch_up(locked=True)
            if handle._table is None:
                self._load_locked(handle)
        finally:
            self._lock.release()

    def _journal_moved(self, ino: int) -> bool:
        try:
            return os.stat(self._journal_path).st_ino != ino
        except FileNotFoundError:
            return True

    def _load_locked(self, handle: TinyCollection) -> None:
        """Load ``handle``'s collection at our journal position (see ``_load``)."""
        name = handle.name
        path = self.path / files.snapshot_file(name)
        table = Table()
        start = self._start
        try:
            if path.exists():
                meta = files.read_meta(path)
                self._meta[name] = meta
                if meta.collection != name:
                    raise damaged(path, f"it holds collection {meta.collection!r}, not "
                                  f"{name!r}", location=self.path)
                if meta.generation > self._gen:
                    raise damaged(path, f"it is newer (generation {meta.generation}) than the "
                                  f"journal (generation {self._gen})", location=self.path)
                if meta.generation == self._gen:
                    start = max(start, meta.journal_offset)
                self._fill(table, path, meta)
        except StorageError as exc:
            handle._damage = exc
            raise
        first = self._first_op.get(name)
        start = self._off if first is None else max(start, first)
        if start < self._off:
            data = os.pread(self._fd, self._off - start, start)
            for record in files.scan(data, start).records:
                if name in record.collections:
                    for op in record.ops():
                        if op[1] == name:
                            handle._replay(table, op)
        handle._table = table
        for spec in handle._deferred:
            if spec.name not in table.indexes:
                table.add_index(spec, name)
        handle._deferred = []

    @staticmethod
    def _fill(table: Table, path: Path, meta: SnapshotMeta) -> None:
        indexes = [Index(spec) for spec in meta.indexes]
        entries: list[list[bytes]] = [[] for _ in indexes]
        docs = table.docs
        ids: list[str] = []
        size = 0
        for text in files.read_documents(path, meta):
            try:
                doc = decode_json(text)
                id = doc["id"]
            except (ValueError, KeyError, TypeError):
                raise damaged(path, f"document {len(ids) + 1} does not read",
                              location=path.parent) from None
            if not isinstance(id, str) or id in docs:
                raise damaged(path, f"document {len(ids) + 1} has a bad or repeated id",
                              location=path.parent)
            docs[id] = text
            ids.append(id)
            size += len(text)
            for index, bucket in zip(indexes, entries, strict=True):
                key, listy = index.entry(doc)
                if key is not None:
                    bucket.append(key + id_suffix(id))
                if listy:
                    index.multi.add(id)
        in_order = all(ids[i] < ids[i + 1] for i in range(len(ids) - 1))
        table.ids = SortedList(ids, presorted=in_order)
        table.size = size
        for index, bucket in zip(indexes, entries, strict=True):
            index.entries = SortedList(bucket)
            table.indexes[index.spec.name] = index

    # -- reading and writing -------------------------------------------------------------------

    def _usable(self, *, allow_damage: bool = False) -> None:
        if self._closed:
            raise StorageError(f"the store at {self.path} is closed")
        if self._forked:
            raise StorageError("this store was opened before the process forked; open it again "
                               "in the child process")
        if self._damage is not None and not allow_damage:
            raise self._damage

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._mutex:
            self._usable()
            if self._group is None:
                self._catch_up(locked=False)
            yield

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the store for a write group: join the current one, or open, commit and close
        one under the exclusive lock."""
        with self._mutex:
            self._usable()
            if self._group is not None:
                yield
                return
            self._lock.acquire(exclusive=True)
            try:
                self._catch_up(locked=True)
                self._cut_torn_tail()
                group = self._group = _Group()
                self._owner = threading.get_ident()
                try:
                    yield
                except BaseException:
                    self._rollback(group)
                    raise
                finally:
                    self._group = None
                self._commit(group)
                if self._off > max(AUTO_COMPACT_MIN, AUTO_COMPACT_RATIO * self._snapshot_bytes()):
                    self._compact_locked(limit=None)
            finally:
                self._lock.release()

    def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` inside a write group: the current one if this thread holds it."""
        if self._group is not None and self._owner == threading.get_ident():
            return fn(*args)
        with self._writing():
            return fn(*args)

    def _record(self, name: str, op: str, undo: Callable[[], None]) -> None:
        group = self._group
        assert group is not None, "writes happen inside _writing()"
        group.ops.append(op)
        group.undo.append(undo)
        group.names.add(name)

    @staticmethod
    def _rollback(group: _Group) -> None:
        for undo in reversed(group.undo):
            undo()

    def _commit(self, group: _Group) -> None:
        """Append the group as one journal line: the moment it is committed."""
        created = sorted(self._created - self._names)
        if not group.ops and not created:
            return
        for name in created:
            group.ops.append(f'["c",{encode_json(name)}]')
            group.names.add(name)
        payload = encode_json(sorted(group.names)) + "\t[" + ",".join(group.ops) + "]"
        line = files.journal_line(payload)
        start = self._off
        try:
            files.write_all(self._fd, line)
            if self.options.durability == "fsync":
                os.fdatasync(self._fd)
        except OSError as exc:
            self._rollback(group)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise StorageError(f"could not write {self._journal_path}: {exc.strerror}; "
                               "nothing of this write was kept") from None
        self._off = start + len(line)
        self._created.clear()
        for name in group.names:
            self._last_op[name] = start
            self._first_op.setdefault(name, start)
            self._names.add(name)

    def _snapshot_bytes(self) -> int:
        return sum(m.size for m in self._meta.values() if isinstance(m, SnapshotMeta))

    # -- compaction ----------------------------------------------------------------------------

    def _pending(self) -> list[str]:
        """Collections with journal writes their snapshot does not hold yet."""
        out = []
        for name, start in self._last_op.items():
            meta = self._meta.get(name)
            if not isinstance(meta, SnapshotMeta) or meta.generation != self._gen or \
                    start >= meta.journal_offset:
                out.append(name)
        return sorted(out)

    def _estimate(self, name: str) -> int:
        handle = self._handles.get(name)
        if handle is not None and handle._table is not None:
            return handle._table.size
        meta = self._meta.get(name)
        return meta.size if isinstance(meta, SnapshotMeta) else 0

    def _compact_locked(self, *, limit: int | None) -> bool:
        """Fold journal writes into snapshots (all, or those fitting in ``limit`` bytes) and,
        once every collection is folded, start a new journal. True if it did."""
        self._read_metas()
        pending = self._pending()
        chosen = pending
        if limit is not None:
            chosen, budget = [], limit
            for name in sorted(pending, key=self._estimate):
                if self._estimate(name) > budget:
                    break
                budget -= self._estimate(name)
                chosen.append(name)
        for stale in self.path.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                stale.unlink()
        for name in chosen:
            handle = self._handles.get(name) or self._handle(name)
            table = handle._tbl()
            meta = {"collection": name, "generation": self._gen, "journal_offset": self._off,
                    "indexes": [files.spec_to_json(i.spec) for i in table.indexes.values()]}
            docs = table.docs
            self._meta[name] = files.write_snapshot(self.path / files.snapshot_file(name), meta,
                                                    (docs[i] for i in table.ids))
        if len(chosen) < len(pending) or any(isinstance(m, StorageError)
                                             for m in self._meta.values()):
            return False
        if self._off == self._start:
            return True
        self._write_journal(self._gen + 1, self._gen, self._off)
        self._adopt_journal()
        log.info("compacted", location=str(self.path), generation=self._gen,
                 collections=len(chosen))
        return True

    def compact(self) -> None:
        """Fold the journal into the collection files and start a new one (``crm compact``).

        Afterwards each collection's file holds all its documents and opens with stock TinyDB.
        """
        with self._mutex:
            self._usable()
            if self._group is not None:
                raise StorageError("cannot compact inside a transaction")
            self._lock.acquire(exclusive=True)
            try:
                self._catch_up(locked=True)
                self._cut_torn_tail()
                if not self._compact_locked(limit=None):
                    bad = [m for m in self._meta.values() if isinstance(m, StorageError)]
                    raise bad[0] if bad else StorageError("compaction did not finish")
            finally:
                self._lock.release()

    # -- the contract --------------------------------------------------------------------------

    def _handle(self, name: str) -> TinyCollection:
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = TinyCollection(self, name)
        return handle

    def collection(self, name: str) -> Collection:
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            raise ValidationError(f"a collection name must be 1 to 200 characters, got {name!r}")
        with self._mutex:
            self._usable(allow_damage=True)
            if name not in self._names:
                self._created.add(name)  # journalled with the next write, or at close
            return self._handle(name)

    def collection_names(self) -> list[str]:
        with self._reading():
            return sorted(self._names | self._created)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Atomic across collections and processes: the writes are one journal line."""
        return self._writing()

    def close(self) -> None:
        """Fold the journal into the collection files where cheap, then release everything."""
        with self._mutex:
            if self._closed:
                return
            try:
                if self._damage is None and not self._forked and self._group is None:
                    self._compact_on_close()
            finally:
                self._closed = True
                _open_stores.discard(self)
                for handle in self._handles.values():
                    handle._table = None
                if not self._forked:
                    self._lock.close()
                    if self._fd >= 0:
                        os.close(self._fd)
                self._fd = -1

    def _compact_on_close(self) -> None:
        try:
            if not self._lock.acquire(exclusive=True, timeout=0):
                log.info("store busy at close; leaving the journal as it is",
                         location=str(self.path))
                return
        except OSError:
            return
        try:
            self._catch_up(locked=True)
            self._cut_torn_tail()
            self._commit(_Group())  # collections opened here but never written
            if self._off > self._start:
                self._compact_locked(limit=self.options.compact_on_close_mb * MB)
        except (StorageError, OSError) as exc:
            log.warning("could not compact at close; the journal keeps every write",
                        location=str(self.path), error=str(exc))
        finally:
            self._lock.release()

    def describe(self) -> str:
        return f"tinydb (embedded) at {self.path}, durability={self.options.durability}"

    # -- check, repair, backup -----------------------------------------------------------------

    def check(self, *, repair: bool = False) -> dict[str, int]:
        """Verify every file (checksums, layout, counts, unique indexes); return counts.

        Raises ``StorageError`` naming the damaged file and ``crm check --repair``. With
        ``repair=True``, salvage what can be read instead (see ``docs/storage.md``).
        """
        if repair:
            from crmcore_storage_tinydb.recovery import repair as run_repair

            return run_repair(self)
        with self._mutex:
            self._usable()
            held = self._group is not None
            if not held:
                self._lock.acquire(exclusive=False)
            try:
                self._catch_up(locked=True)
                size = os.fstat(self._fd).st_size
                result = files.scan(os.pread(self._fd, size - self._start, self._start),
                                    self._start)
                if result.bad_in_middle:
                    raise damaged(self._journal_path, f"the line at byte {result.bad} fails its "
                                  "checksum", location=self.path)
                self._read_metas()
                for name, meta in sorted(self._meta.items()):
                    if isinstance(meta, StorageError):
                        raise meta
                    path = self.path / files.snapshot_file(name)
                    for number, text in enumerate(files.read_documents(path, meta), start=1):
                        try:
                            decode_json(text)["id"]
                        except (ValueError, KeyError, TypeError):
                            raise damaged(path, f"document {number} does not read",
                                          location=self.path) from None
                counts = {}
                for name in sorted(self._names):
                    table = self._handle(name)._tbl()
                    for index in table.indexes.values():
                        clash = index.duplicate() if index.spec.unique else None
                        if clash is not None:
                            raise damaged(self.path / files.snapshot_file(name),
                                          f"unique index {index.spec.name} holds {clash[0]} and "
                                          f"{clash[1]} with one key", location=self.path)
                    counts[name] = len(table.docs)
                return counts
            finally:
                if not held:
                    self._lock.release()

    def backup(self, destination: str) -> None:
        """Copy the store to ``destination`` (a new folder) while it stays in use.

        The copy is taken under the shared lock, so it holds exactly the writes committed at
        one moment; then its journal is folded in as a clean close would.
        """
        dest = Path(destination).expanduser().absolute()
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ValidationError(f"{dest} already exists and is not empty; back up into a new "
                                  "folder")
        if dest == self.path.absolute() or self.path.absolute() in dest.parents:
            raise ValidationError("back up to a folder outside the store")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        files.make_private_dir(tmp)
        try:
            self._copy_into(tmp)
            copy = TinyStore(tmp, TinyStoreOptions(
                durability="fsync", compact_on_close_mb=self.options.compact_on_close_mb,
                allow_network_filesystem=True))
            copy.close()
            with contextlib.suppress(FileNotFoundError):
                dest.rmdir()
            os.replace(tmp, dest)
            files.fsync_dir(dest.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _copy_into(self, target: Path) -> None:
        with self._mutex:
            self._usable()
            held = self._group is not None
            if not held:
                self._lock.acquire(exclusive=False)
            try:
                self._catch_up(locked=True)
                for entry in os.scandir(self.path):
                    if files.collection_of(entry.name) is not None and entry.is_file():
                        _copy_file(Path(entry.path), target / entry.name)
                journal = os.pread(self._fd, self._off, 0)
                fd = files.open_private(target / JOURNAL, os.O_WRONLY | os.O_TRUNC)
                try:
                    files.write_all(fd, journal)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            finally:
                if not held:
                    self._lock.release()
        files.fsync_dir(target)


def _copy_file(source: Path, target: Path) -> None:
    fd = files.open_private(target, os.O_WRONLY | os.O_TRUNC)
    try:
        with open(source, "rb") as handle:
            while chunk := handle.read(1 << 20):
                files.write_all(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)


def open_tinydb_store(location: str | os.PathLike[str],
                      options: Mapping[str, Any] | TinyStoreOptions | None = None) -> TinyStore:
    """Open (creating if needed) the embedded store in the folder ``location``."""
    if options is None or isinstance(options, TinyStoreOptions):
        return TinyStore(location, options)
    from crmcore.config import structure_section

    return TinyStore(location, structure_section(options, TinyStoreOptions, "storage.options"))


def now_stamp() -> str:
    """A file-name-safe local time stamp for folders of set-aside files."""
    return time.strftime("%Y%m%dT%H%M%S")
