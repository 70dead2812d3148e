"""``MongoStore``: the storage contract on MongoDB.

Layout: one database per store (per tenant), one MongoDB collection per contract collection,
the core's ``id`` stored as ``_id`` and ``version`` as a plain field. Every write that depends on
what was read names the version it read in its filter (``find_one_and_update``), so a stale
write matches nothing and becomes a ``ConflictError``; a lease is taken the same way, so several
workers on several machines never hold one task at once.

Inside ``Store.transaction()`` on a replica set or sharded cluster, every operation runs in one
client session's transaction (the session travels in a context variable, so each thread and
each asyncio task has its own). Without one, ``transaction()`` only groups: each write is
atomic on its own, and ``capabilities.transactions`` says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn

import attrs
import bson
from pymongo import InsertOne, ReplaceOne, ReturnDocument
from pymongo.errors import BulkWriteError, CollectionInvalid, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from crmcore.clock import Clock, SystemClock
from crmcore.converter import iso
from crmcore.errors import (
    ConflictError,
    CrmError,
    DuplicateKeyError,
    NotFoundError,
    StorageError,
    TransientConflict,
    ValidationError,
)
from crmcore.jsontext import json_canonical
from crmcore.logs import get_logger
from crmcore.storage.base import (
    BulkError,
    BulkResult,
    Capabilities,
    Collection,
    CollectionSpec,
    Doc,
    Filter,
    IndexSpec,
    SortSpec,
    StorageOptions,
    Store,
    add_numbers,
    batches,
)
from crmcore.storage.query import MISSING, check_new_doc, compile_filter, resolve, sort_docs
from crmcore_storage_mongo import connection, errors, indexes, mock, monitoring
from crmcore_storage_mongo.connection import ClientFactory, ServerInfo
from crmcore_storage_mongo.options import MongoOptions, check_uri, parse_options, redact
from crmcore_storage_mongo.schema import mongo_validator, scalar_fields
from crmcore_storage_mongo.translate import (
    ID,
    Translation,
    and_of,
    mongo_path,
    plan_sort,
    sorts_differently,
    translate,
    with_index_hints,
)

log = get_logger("storage_mongo")

BULK_CHUNK = 1000  # documents per bulk_write round trip
MAX_BSON_SIZE = 16 * 1024 * 1024
UPSERT_ATTEMPTS = 5
COMMIT_ATTEMPTS = 3
ALWAYS_SCALAR = frozenset({ID, "version"})
NAMESPACE_EXISTS = 48
SCHEMA_COLLECTION = "_crm_schema"  # what ``crm db upgrade`` applied, per collection
_BEHIND = "behind"


@attrs.define
class _Txn:
    """One open transaction: its session, and why it can no longer commit (if it cannot)."""

    session: Any
    doomed: str | None = None
    transient: bool = False  # doomed by a collision with another transaction: retry is safe

    def fail(self) -> ConflictError:
        """The error for using (or committing) a doomed transaction."""
        return TransientConflict(self.doomed) if self.transient else ConflictError(self.doomed)


def to_mongo(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A core document as stored: ``id`` becomes ``_id``."""
    out = {ID: doc["id"]}
    out.update((k, v) for k, v in doc.items() if k != "id")
    return out


def from_mongo(raw: dict[str, Any]) -> Doc:
    """A stored document as the core sees it."""
    doc = {"id": raw.pop(ID)}
    doc.update(raw)
    return doc


def check_storable(doc: Mapping[str, Any]) -> None:
    """Refuse top-level names MongoDB would read as something else."""
    for key in doc:
        if key == ID:
            raise ValidationError(
                "the field name '_id' is reserved by the MongoDB backend "
                "(it stores the record's id)"
            )
        if "." in key or not key:
            raise ValidationError(
                f"top-level field name {key!r}: MongoDB reads it as a path "
                "(with '.' or empty); rename the field"
            )


def _encoded_size(doc: Mapping[str, Any]) -> int:
    return len(bson.encode(doc))


class MongoCollection(Collection):
    """One contract collection in one MongoDB collection."""

    def __init__(self, store: MongoStore, name: str) -> None:
        self.name = name
        self._store = store
        self._raw = store.db[name]
        self._scalars: frozenset[str] = ALWAYS_SCALAR
        self._on_server: list[IndexSpec] | None = None  # our indexes, read once from the server
        self.declared: tuple[IndexSpec, ...] = ()  # what ensure_collection was asked for
        self.shard_key: tuple[str, ...] = store.shard_keys.get(name, ())

    # -- plumbing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _op(self, action: str) -> Iterator[Any]:
        """Run one operation: in the open transaction's session if any; errors mapped."""
        self._store.check_open()
        txn = self._store.current_txn()
        if txn is not None and txn.doomed:
            raise txn.fail()
        try:
            with errors.mapped(self.name, action, self._index_fields()):
                yield None if txn is None else txn.session
        except CrmError as exc:
            if txn is not None and isinstance(exc.__cause__, PyMongoError):
                # The server aborts a transaction on any failed command inside it.
                txn.doomed = (
                    f"the transaction was aborted by an earlier error ({exc}); "
                    "retry the whole operation"
                )
                txn.transient = isinstance(exc, TransientConflict)
            raise

    def _index_fields(self) -> dict[str, tuple[str, ...]]:
        return {s.name: tuple(f for f, _ in s.fields) for s in self._on_server or ()}

    def _server_indexes(self) -> list[IndexSpec]:
        if self._on_server is None:
            self._on_server = self.indexes()
        return self._on_server

    def _partial_indexes(self) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        out = []
        for spec in self._server_indexes():
            index = indexes.to_mongo(spec)
            if index.partial is not None:
                out.append((tuple(p for p, _ in index.keys), index.partial))
        return out

    def _translate(self, filter: Filter | None) -> Translation:
        tr = translate(filter)
        partial = self._partial_indexes()
        if not partial:
            return tr
        return attrs.evolve(tr, query=with_index_hints(tr.query, tr.normal, partial))

    def _by_id(self, id: str, session: Any, **more: Any) -> dict[str, Any] | None:
        """The filter naming one document: ``{_id}`` plus, on a sharded collection, its full
        shard key (read first), so the write goes to one shard on any MongoDB from 5.0. None
        when the document does not exist."""
        query: dict[str, Any] = {ID: id, **more}
        if not self.shard_key:
            return query
        held = self._raw.find_one({ID: id}, dict.fromkeys(self.shard_key, 1), session=session)
        if held is None:
            return None
        for field in self.shard_key:
            value = resolve(from_mongo(dict(held)), field)
            query[mongo_path(field)] = None if value is MISSING else value
        return query

    def _shard_filter(self, query: dict[str, Any], doc: Doc | None) -> dict[str, Any]:
        """``query`` plus the shard key values of ``doc`` as read (sharded collections)."""
        for field in self.shard_key:
            value = MISSING if doc is None else resolve(doc, field)
            query[mongo_path(field)] = None if value is MISSING else value
        return query

    def set_record_type(self, record_type: type | None) -> None:
        """Fields this record type declares as scalars sort natively, without a probe."""
        self._scalars = ALWAYS_SCALAR | (scalar_fields(record_type) if record_type else set())

    def _check_unique_in_txn(self, doc: Doc, session: Any) -> None:
        """Inside a transaction, find unique-key clashes by reading, not by failing a write:
        a failed write would abort the whole transaction, not just this insert."""
        if self._raw.find_one({ID: doc["id"]}, {ID: 1}, session=session) is not None:
            raise DuplicateKeyError(f"{self.name}: id {doc['id']!r} already exists")
        self._check_unique_keys(doc, doc["id"], session)

    def _check_unique_keys(self, doc: Doc, own_id: str, session: Any) -> None:
        for spec in self._server_indexes():
            if not spec.unique:
                continue
            values = [resolve(doc, f) for f, _ in spec.fields]
            if spec.sparse and any(v is MISSING or v is None for v in values):
                continue
            query = {
                "$and": [
                    {mongo_path(f): {"$eq": None if v is MISSING else v}}
                    for (f, _), v in zip(spec.fields, values, strict=True)
                ]
                + [{ID: {"$ne": own_id}}]
            }
            if self._raw.find_one(query, {ID: 1}, session=session) is not None:
                fields = ", ".join(f for f, _ in spec.fields)
                raise DuplicateKeyError(
                    f"{self.name}: another record already has this value of ({fields})"
                )

    # -- writes ------------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        check_new_doc(doc)
        check_storable(doc)
        new = _copy(dict(doc))
        new["version"] = 1
        with self._op("insert") as session:
            if self._store.current_txn() is not None:
                self._check_unique_in_txn(new, session)
            self._raw.insert_one(to_mongo(new), session=session)
        return new

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._insert_ops, self.insert)

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        """Store documents exactly as given, ``version`` included (restores, migrations).

        Each needs an integer ``version`` of at least 1; an id that exists is a failed row.
        """
        return self._bulk(docs, self._import_ops, self._import_one)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        if self._store.current_txn() is not None:
            return _rows(docs, self._upsert_in_txn)
        ids: list[tuple[int, str]] = []
        errs: list[BulkError] = []
        for chunk in batches(enumerate(docs), BULK_CHUNK):
            valid = []
            for i, doc in chunk:
                try:
                    valid.append((i, self._prepare(doc, version=None)))
                except CrmError as exc:
                    errs.append(BulkError(i, _id_of(doc), str(exc)))
            done, failed = self._upsert_rounds(valid)
            ids.extend(done)
            errs.extend(failed)
        return BulkResult(
            tuple(i for _, i in sorted(ids)), tuple(sorted(errs, key=lambda e: e.index))
        )

    def _prepare(self, doc: Any, *, version: int | None) -> Doc:
        """Validate one bulk row and return the document to store (without touching it)."""
        check_new_doc(doc)
        check_storable(doc)
        new = _copy(dict(doc))
        if version is not None:
            new["version"] = version
        with errors.mapped(self.name, "encoding"):
            size = _encoded_size(to_mongo(new))  # every row checked before any is sent
        if size > MAX_BSON_SIZE:
            raise ValidationError(f"{self.name} {new['id']}: larger than MongoDB's 16 MiB limit")
        return new

    def _insert_ops(self, doc: Any) -> tuple[Doc, Any]:
        new = self._prepare(doc, version=1)
        return new, InsertOne(to_mongo(new))

    def _import_ops(self, doc: Any) -> tuple[Doc, Any]:
        _check_import_version(doc)
        new = self._prepare(doc, version=None)
        return new, InsertOne(to_mongo(new))

    def _import_one(self, doc: Doc) -> Doc:
        _check_import_version(doc)
        new = self._prepare(doc, version=None)
        with self._op("import") as session:
            if self._store.current_txn() is not None:
                self._check_unique_in_txn(new, session)
            self._raw.insert_one(to_mongo(new), session=session)
        return new

    def _bulk(
        self, docs: Iterable[Doc], make: Callable[[Any], tuple[Doc, Any]], one: Callable[[Doc], Doc]
    ) -> BulkResult:
        """Unordered ``bulk_write`` in chunks; each failed row is reported, the rest kept."""
        if self._store.current_txn() is not None:
            return _rows(docs, one)  # row by row, so one clash cannot abort the transaction
        ids: list[tuple[int, str]] = []
        errs: list[BulkError] = []
        for chunk in batches(enumerate(docs), BULK_CHUNK):
            rows: list[tuple[int, Doc]] = []
            ops = []
            for i, doc in chunk:
                try:
                    new, op = make(doc)
                except CrmError as exc:
                    errs.append(BulkError(i, _id_of(doc), str(exc)))
                    continue
                rows.append((i, new))
                ops.append(op)
            failed = self._write(ops)
            for n, (i, new) in enumerate(rows):
                if n in failed:
                    errs.append(BulkError(i, new["id"], failed[n]))
                else:
                    ids.append((i, new["id"]))
        return BulkResult(
            tuple(i for _, i in sorted(ids)), tuple(sorted(errs, key=lambda e: e.index))
        )

    def _write(self, ops: list[Any]) -> dict[int, str]:
        """One unordered bulk write; the failed operations by position, with a message."""
        if not ops:
            return {}
        with self._op("bulk write"):
            try:
                self._raw.bulk_write(ops, ordered=False)
            except BulkWriteError as exc:
                details = exc.details or {}
                if details.get("writeConcernErrors"):
                    raise StorageError(
                        f"{self.name}: a bulk write was not confirmed by the write concern in "
                        "time; its rows may or may not be stored (import again: rows already "
                        "there are reported as existing)"
                    ) from exc
                return {
                    int(e["index"]): self._row_message(e) for e in details.get("writeErrors", [])
                }
        return {}

    def _row_message(self, error: Mapping[str, Any]) -> str:
        code = error.get("code")
        if code in errors.DUPLICATE_KEY_CODES:
            return errors.duplicate_message(self.name, error, self._index_fields())
        if code == errors.VALIDATION_FAILED:
            return errors.validation_message(self.name, error)
        return f"{self.name}: {str(error.get('errmsg', 'write failed')).splitlines()[0][:300]}"

    def _upsert_rounds(
        self, rows: list[tuple[int, Doc]]
    ) -> tuple[list[tuple[int, str]], list[BulkError]]:
        """Insert or replace each row, retrying rows that raced with another writer.

        A replacement names the version it read, so a concurrent change makes it match
        nothing; such rows, and inserts that lost to a concurrent insert of the same id, go
        round again. Repeated ids take one round each, so the last one wins, as in order.
        """
        done: list[tuple[int, str]] = []
        failed: list[BulkError] = []
        attempts: dict[int, int] = {}
        pending = list(rows)
        while pending:
            this_round: list[tuple[int, Doc]] = []
            later: list[tuple[int, Doc]] = []
            seen: set[str] = set()
            for i, doc in pending:
                (later if doc["id"] in seen else this_round).append((i, doc))
                seen.add(doc["id"])
            retry: list[tuple[int, Doc]] = []
            ids = [doc["id"] for _, doc in this_round]
            with self._op("upsert"):
                found = list(
                    self._raw.find(
                        {ID: {"$in": ids}},
                        {ID: 1, "version": 1, **dict.fromkeys(map(mongo_path, self.shard_key), 1)},
                    )
                )
            current = {r[ID]: r.get("version") for r in found}
            shards = {r[ID]: from_mongo(dict(r)) for r in found}
            ops = []
            stored: list[dict[str, Any]] = []
            replacing: list[bool] = []
            for _i, doc in this_round:
                held = current.get(doc["id"])
                is_replace = isinstance(held, int) and not isinstance(held, bool)
                new = to_mongo(
                    {**doc, "version": held + 1 if isinstance(held, int) and is_replace else 1}
                )
                ops.append(
                    ReplaceOne(
                        self._shard_filter({ID: doc["id"], "version": held}, shards.get(doc["id"])),
                        new,
                    )
                    if is_replace
                    else InsertOne(new)
                )
                stored.append(new)
                replacing.append(is_replace)
            write_failed = self._write(ops)
            applied = self._applied(
                {n: stored[n] for n, r in enumerate(replacing) if r and n not in write_failed}
            )
            for n, (i, doc) in enumerate(this_round):
                if n in write_failed:
                    if not replacing[n] and self._exists(doc["id"]):
                        retry.append((i, doc))  # someone inserted it meanwhile: replace it
                    else:
                        failed.append(BulkError(i, doc["id"], write_failed[n]))
                elif replacing[n] and n not in applied:
                    retry.append((i, doc))
                else:
                    done.append((i, doc["id"]))
            for i, doc in retry:
                attempts[i] = attempts.get(i, 0) + 1
                if attempts[i] >= UPSERT_ATTEMPTS:
                    failed.append(
                        BulkError(
                            i,
                            doc["id"],
                            f"{self.name} {doc['id']}: changed "
                            "by other writers on every attempt; retry later",
                        )
                    )
            pending = sorted(
                [r for r in retry if attempts[r[0]] < UPSERT_ATTEMPTS] + later, key=lambda r: r[0]
            )
        return done, failed

    def _applied(self, replacements: dict[int, dict[str, Any]]) -> set[int]:
        """Which replacements took effect (one that matched nothing reports no error)."""
        if not replacements:
            return set()
        with self._op("upsert"):
            now = {
                r[ID]: r
                for r in self._raw.find({ID: {"$in": [d[ID] for d in replacements.values()]}})
            }
        return {
            n for n, doc in replacements.items() if doc[ID] in now and _same_doc(now[doc[ID]], doc)
        }

    def _exists(self, id: str) -> bool:
        with self._op("read") as session:
            return self._raw.find_one({ID: id}, {ID: 1}, session=session) is not None

    def _upsert_in_txn(self, doc: Doc) -> Doc:
        new = self._prepare(doc, version=None)
        with self._op("upsert") as session:
            held = self._raw.find_one({ID: new["id"]}, {"version": 1}, session=session)
            if held is None:
                new["version"] = 1
                self._check_unique_in_txn(new, session)
                self._raw.insert_one(to_mongo(new), session=session)
            else:
                new["version"] = int(held.get("version") or 0) + 1
                self._check_unique_keys(new, new["id"], session)
                stored = to_mongo(new)
                self._raw.replace_one(
                    self._by_id(new["id"], session) or {ID: new["id"]}, stored, session=session
                )
        return new

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        if "id" in changes or "version" in changes:
            raise StorageError("update() may not change 'id' or 'version'")
        if not isinstance(id, str):
            raise NotFoundError(f"{self.name}: no record with id {id!r}")
        check_new_doc({"id": id, **changes})
        check_storable(changes)
        update: dict[str, Any] = {"$inc": {"version": 1}}
        if changes:
            update["$set"] = _copy(dict(changes))
        with self._op("update") as session:
            if self._store.current_txn() is not None and changes:
                current = self._raw.find_one({ID: id}, session=session)
                if current is not None and current.get("version") == expected_version:
                    merged = {**from_mongo(current), **changes}
                    self._check_unique_keys(merged, id, session)
            query = self._by_id(id, session, version=expected_version)
            raw = (
                None
                if query is None
                else self._raw.find_one_and_update(
                    query, update, return_document=ReturnDocument.AFTER, session=session
                )
            )
            if raw is None:
                self._stale(id, expected_version, session)
        return from_mongo(raw)

    def _stale(self, id: str, expected_version: int | None, session: Any) -> NoReturn:
        """Raise ``NotFoundError`` or ``ConflictError`` for a write that matched nothing."""
        held = self._raw.find_one({ID: id}, {"version": 1}, session=session)
        if held is None:
            raise NotFoundError(f"{self.name}: no record with id {id!r}")
        raise ConflictError(
            f"{self.name} {id}: changed by someone else (version "
            f"{held.get('version')}, you read {expected_version}); "
            "reload and retry"
        )

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        more = {} if expected_version is None else {"version": expected_version}
        with self._op("delete") as session:
            query = self._by_id(id, session, **more)
            if query is None or self._raw.delete_one(query, session=session).deleted_count == 0:
                self._stale(id, expected_version, session)

    # -- reads -------------------------------------------------------------------------------

    def get(self, id: str) -> Doc:
        with self._op("get") as session:
            raw = self._raw.find_one({ID: id}, session=session)
        if raw is None:
            raise NotFoundError(f"{self.name}: no record with id {id!r}")
        return from_mongo(raw)

    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        tr = self._translate(filter)
        plan = plan_sort(sort, self._scalars)
        _check_page(limit, skip)
        if limit == 0:
            return []
        paged = skip > 0 or limit is not None
        with self._op("find") as session:
            if tr.exact:  # MongoDB filters and pages
                cursor = self._raw.find(
                    tr.query, sort=plan.keys, skip=skip, limit=limit or 0, session=session
                )
                found = [from_mongo(raw) for raw in cursor]
            else:  # MongoDB narrows, the reference evaluator decides, then the page is cut
                match = compile_filter(tr.normal)
                matching = (
                    d
                    for d in map(
                        from_mongo, self._raw.find(tr.query, sort=plan.keys, session=session)
                    )
                    if match(d)
                )
                found = list(
                    itertools.islice(matching, skip, None if limit is None else skip + limit)
                )
        if not paged and plan.unknown and sorts_differently(found, plan.unknown):
            sort_docs(found, plan.core)  # the whole result is here: order it as the reference
        return found

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValidationError(f"batch_size must be a whole number from 1, got {batch_size!r}")
        tr = self._translate(filter)
        match = None if tr.exact else compile_filter(tr.normal)
        last: str | None = None
        while True:  # pages by id: no server cursor is held between batches
            after = [] if last is None else [{ID: {"$gt": last}}]
            query = and_of([q for q in (tr.query, *after) if q])
            with self._op("iter") as session:
                page = list(
                    self._raw.find(query, sort=[(ID, 1)], limit=batch_size, session=session)
                )
            if not page:
                return
            last = page[-1][ID]
            for raw in page:
                doc = from_mongo(raw)
                if match is None or match(doc):
                    yield doc
            if len(page) < batch_size:
                return

    def count(self, filter: Filter | None = None) -> int:
        tr = self._translate(filter)
        with self._op("count") as session:
            if tr.exact:
                return self._raw.count_documents(tr.query, session=session)
            match = compile_filter(tr.normal)
            return sum(
                1 for raw in self._raw.find(tr.query, session=session) if match(from_mongo(raw))
            )

    def sum(self, field: str, filter: Filter | None = None) -> int | float:
        """``Collection.sum``: one ``$group``/``$sum`` on the server (an index covering the
        ``$match`` serves it), where the filter translates exactly; else over the matches."""
        tr = self._translate(filter)
        path = "_id" if field == "id" else field
        with self._op("sum") as session:
            if tr.exact:
                # numbers only ($type "number" leaves booleans out, as $sum does on a server;
                # mongomock's $sum would add them)
                numbers = {path: {"$type": "number"}}
                pipeline = [
                    {"$match": {"$and": [tr.query, numbers]} if tr.query else numbers},
                    {"$group": {"_id": None, "total": {"$sum": f"${path}"}}},
                ]
                rows = list(self._raw.aggregate(pipeline, session=session))
                return add_numbers([rows[0]["total"]]) if rows else 0
            match = compile_filter(tr.normal)
            found = (from_mongo(raw) for raw in self._raw.find(tr.query, session=session))
            return add_numbers(resolve(doc, field) for doc in found if match(doc))

    # -- indexes -----------------------------------------------------------------------------

    def ensure_index(self, spec: IndexSpec) -> None:
        wanted = indexes.to_mongo(spec)
        self._store.check_open()
        with errors.mapped(self.name, "creating an index"):
            existing = {info["name"]: info for info in self._raw.list_indexes()}
            if wanted.name in existing:
                if indexes.same_index(existing[wanted.name], wanted):
                    return
                raise StorageError(
                    f"{self.name}: an index named {wanted.name} exists with "
                    "other options; drop it (db.getCollection("
                    f"'{self.name}').dropIndex('{wanted.name}')) and reopen"
                )
            try:
                self._raw.create_index(wanted.keys, **wanted.options())
            except OperationFailure as exc:
                if exc.code in errors.DUPLICATE_KEY_CODES:
                    fields = ", ".join(f for f, _ in spec.fields)
                    raise DuplicateKeyError(
                        f"{self.name}: cannot create unique index "
                        f"{wanted.name}: existing records share a value "
                        f"of ({fields})"
                    ) from None
                raise
            finally:
                self._on_server = None

    def indexes(self) -> list[IndexSpec]:
        self._store.check_open()
        with errors.mapped(self.name, "listing indexes"):
            infos = list(self._raw.list_indexes())
        return [spec for spec in map(indexes.from_mongo, infos) if spec is not None]

    # -- leases ------------------------------------------------------------------------------

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        """Lease one matching document (see the contract).

        On the server's clock (``lease_clock``), "free" and the new ``lease_until`` are
        computed by MongoDB from ``$$NOW`` in the filter and in an update pipeline: the lease
        lasts ``until - now`` from the server's time, and a worker whose own clock runs ahead
        cannot see a live lease as ended. On the caller's clock, ``now`` and ``until`` are used
        as given.
        """
        tr = self._translate(filter)
        plan = plan_sort(sort, self._scalars)
        update: dict[str, Any] | list[dict[str, Any]]  # an update, or a pipeline
        if self._store.server_leases:
            free, update = server_lease(owner, until - now)
        else:
            free = translate(
                {
                    "$or": [
                        {"lease_owner": None},
                        {"lease_owner": owner},
                        {"lease_until": None},
                        {"lease_until": {"$lte": iso(now)}},
                    ]
                }
            ).query
            update = {
                "$set": {"lease_owner": owner, "lease_until": iso(until)},
                "$inc": {"version": 1},
            }
        query = and_of([q for q in (tr.query, free) if q])
        with self._op("claim") as session:
            if tr.exact and not self.shard_key:
                raw = self._raw.find_one_and_update(
                    query,
                    update,
                    sort=plan.keys,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                return None if raw is None else from_mongo(raw)
            # The filter needs the reference evaluator, or the collection is sharded (a
            # findAndModify without the shard key needs MongoDB 7.1): take the candidates in
            # order and lease the first one still unchanged since it was read.
            match = compile_filter(tr.normal)
            found = [
                d
                for d in map(from_mongo, self._raw.find(query, sort=plan.keys, session=session))
                if match(d)
            ]
            if plan.unknown and sorts_differently(found, plan.unknown):
                sort_docs(found, plan.core)
            for doc in found:
                mine = {ID: doc["id"], "version": doc["version"]}
                for field in self.shard_key:  # sharded: name the candidate's shard key
                    value = resolve(doc, field)
                    mine[mongo_path(field)] = None if value is MISSING else value
                raw = self._raw.find_one_and_update(
                    {"$and": [mine, free]},
                    update,
                    return_document=ReturnDocument.AFTER,
                    session=session,
                )
                if raw is not None:
                    return from_mongo(raw)
            return None

    def release(self, id: str, *, owner: str) -> None:
        with self._op("release") as session:
            query = self._by_id(id, session)
            if query is None:
                raise NotFoundError(f"{self.name}: no record with id {id!r}")
            query["lease_owner"] = {"$eq": owner, "$not": {"$type": "array"}}
            self._raw.update_one(
                query,
                {"$set": {"lease_owner": None, "lease_until": None}, "$inc": {"version": 1}},
                session=session,
            )


class MongoStore(Store):
    """An open MongoDB database (one tenant's) holding the CRM's collections."""

    def __init__(
        self,
        *,
        client: Any,
        uri: str,
        options: MongoOptions,
        server: ServerInfo,
        clock: Clock,
        mock_server: mock.MockServer | None = None,
        schema_upgrade: bool = False,
    ) -> None:
        self.client = client
        self.mock_server = mock_server
        self.uri = uri
        self.options = options
        self.server = server
        self.clock = clock
        self.database_name = options.database_name(uri)
        self.db = client[self.database_name]
        self.capabilities = Capabilities(
            persistent=True,
            transactions=server.transactions and options.transactions == "auto",
            multi_process=True,
            change_streams=False,  # the contract offers no change-stream API yet
            schema_validation=server.schema_validation and options.schema_validation != "off",
        )
        lease_clock = options.lease_clock
        if lease_clock == "auto":
            lease_clock = "server" if isinstance(clock, SystemClock) else "caller"
        # $$NOW in update pipelines: MongoDB 4.2+ (every server the backend accepts); on
        # mongomock the adapter evaluates it on the imitation server's clock.
        emulated = getattr(client, "crm_server", None) is not None  # the plugin's mongomock
        self.server_leases = lease_clock == "server" and (server.answered or emulated)
        self.schema_upgrade = schema_upgrade
        self.shard_keys = {
            **_sharded_collections(client, self.database_name, server),
            **{k: tuple(v) for k, v in options.shard_keys.items()},
        }
        self._records: dict[str, dict[str, Any]] | None = None  # _crm_schema, read once
        self._changes: list[str] = []
        self._collections: dict[str, MongoCollection] = {}
        self._txn: contextvars.ContextVar[_Txn | None] = contextvars.ContextVar(
            f"crm_mongo_txn_{id(self)}", default=None
        )
        self._closed = False

    # -- plumbing ----------------------------------------------------------------------------

    def check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed")

    def current_txn(self) -> _Txn | None:
        return self._txn.get()

    # -- the contract ------------------------------------------------------------------------

    def collection(self, name: str) -> MongoCollection:
        self.check_open()
        if not isinstance(name, str) or not name or name.startswith("system.") or "$" in name:
            raise ValidationError(f"{name!r} is not a valid collection name for MongoDB")
        found = self._collections.get(name)
        if found is None:
            found = self._collections.setdefault(name, MongoCollection(self, name))
        return found

    def ensure_collection(self, spec: CollectionSpec) -> Collection:
        """Open a declared collection; its schema is a recorded, explicit step.

        The wanted schema (index specs, validator) has a SHA-256 digest, recorded in
        ``_crm_schema`` by ``crm db upgrade``. Opening compares digests and does nothing more
        when they match. Otherwise, without ``schema_upgrade``: a collection that does not
        exist yet, or holds no document, is set up now (instant, and within the ``readWrite``
        role); on one that holds data nothing is built or changed: a declared index that is
        not there refuses to open (``StorageError`` naming ``crm db upgrade``), a validator
        that differs is logged. So workers never start an index build that outlives their
        socket timeout, and old and new code never flip a validator back and forth.
        """
        coll = self.collection(spec.name)
        record_type = spec.record_class()
        coll.set_record_type(record_type)
        coll.declared = tuple(spec.indexes)
        validator = (
            mongo_validator(record_type)
            if record_type is not None and self.capabilities.schema_validation
            else None
        )
        digest = schema_digest(spec, validator, self.options.schema_validation)
        record = self._schema_records().get(spec.name)
        if record is not None and record.get("sha256") == digest:
            return coll  # this code's schema is the recorded one
        if self.schema_upgrade:
            self._upgrade(coll, spec, validator, digest, record, modify=True)
            return coll
        exists = spec.name in self._existing_names()
        if not exists or self._is_empty(coll):
            self._upgrade(coll, spec, validator, digest, record, modify=False)
            return coll
        built = {s.name for s in coll._server_indexes()}
        missing = [i.name for i in spec.indexes if i.name not in built]
        if missing:
            raise StorageError(
                f"{spec.name}: declared index {', '.join(missing)} is not built in "
                f"{self.database_name}; run 'crm db upgrade' once (a user with dbAdmin and "
                "readWrite) before starting this version"
            )
        if validator is not None:
            log.warning(
                "schema.behind",
                collection=spec.name,
                recorded=None if record is None else record.get("revision"),
                hint="the validator differs from this version's; run 'crm db upgrade' "
                "when every process runs this version",
            )
        return coll

    def _upgrade(
        self,
        coll: MongoCollection,
        spec: CollectionSpec,
        validator: dict[str, Any] | None,
        digest: str,
        record: Mapping[str, Any] | None,
        *,
        modify: bool,
    ) -> None:
        """Build the missing indexes, apply the validator, record the result."""
        before = {s.name for s in coll.indexes()} if spec.indexes else set()
        behind = False
        if validator is not None:
            changed = self._apply_validator(spec.name, validator, modify=modify)
            behind = changed == _BEHIND
            if changed and not behind:
                self._changes.append(f"{spec.name}: validator {changed}")
        for index in spec.indexes:
            coll.ensure_index(index)
            if index.name not in before:
                self._changes.append(f"{spec.name}: built index {index.name}")
        if behind:
            return  # not recorded: the next 'crm db upgrade' applies the validator
        revision = int((record or {}).get("revision") or 0) + 1
        try:
            with errors.mapped(SCHEMA_COLLECTION, "recording the schema"):
                self.db[SCHEMA_COLLECTION].replace_one(
                    {ID: spec.name},
                    {
                        "sha256": digest,
                        "revision": revision,
                        "indexes": [i.name for i in spec.indexes],
                        "validator": None if validator is None else self.options.schema_validation,
                        "by": self.options.app_name,
                    },
                    upsert=True,
                )
        except DuplicateKeyError:
            pass  # two processes set up a new collection at once: the other one recorded it
        self._schema_records()[spec.name] = {"sha256": digest, "revision": revision}

    def _schema_records(self) -> dict[str, dict[str, Any]]:
        if self._records is None:
            with errors.mapped(SCHEMA_COLLECTION, "reading the schema record"):
                self._records = {r[ID]: r for r in self.db[SCHEMA_COLLECTION].find()}
        return self._records

    def _existing_names(self) -> set[str]:
        with errors.mapped(self.database_name, "listing collections"):
            return set(self.db.list_collection_names())

    @staticmethod
    def _is_empty(coll: MongoCollection) -> bool:
        with errors.mapped(coll.name, "opening"):
            return coll._raw.find_one({}, {ID: 1}) is None

    def schema_changes(self) -> list[str]:
        """What opening changed: index builds and validators, one line each."""
        return list(self._changes)

    def _apply_validator(self, name: str, validator: dict[str, Any], *, modify: bool) -> str | None:
        """Create the collection with its ``$jsonSchema`` validator, or (``modify``) bring
        an existing one's up to date with ``collMod``. What was done, or None."""
        level = self.options.schema_validation
        with errors.mapped(name, "applying the schema validator"):
            try:
                self.db.create_collection(
                    name, validator=validator, validationLevel=level, validationAction="error"
                )
                return "applied (new collection)"
            except CollectionInvalid:
                pass  # it exists: compare and update below
            except OperationFailure as exc:
                if exc.code != NAMESPACE_EXISTS:
                    raise
            current: dict[str, Any] = next(
                iter(self.db.list_collections(filter={"name": name})), {}
            )
            opts = current.get("options", {})
            if opts.get("validator") == validator and opts.get("validationLevel") == level:
                return None
            if not modify:
                log.warning(
                    "schema.behind",
                    collection=name,
                    hint="the validator differs; run 'crm db upgrade'",
                )
                return _BEHIND
            self.db.command(
                "collMod",
                name,
                validator=validator,
                validationLevel=level,
                validationAction="error",
            )
            return "updated (collMod)"

    def collection_names(self) -> list[str]:
        self.check_open()
        with errors.mapped(self.database_name, "listing collections"):
            names = self.db.list_collection_names()
        return sorted(n for n in names if not n.startswith("system.") and n != SCHEMA_COLLECTION)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.check_open()
        if not self.capabilities.transactions or self._txn.get() is not None:
            yield  # no transactions here (each write is atomic alone), or joining the outer one
            return
        wc = self.options.write_concern
        with errors.mapped(self.database_name, "starting a transaction"):
            session = self.client.start_session()
            session.start_transaction(
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern(
                    w=int(wc) if wc.isdigit() else wc, wtimeout=self.options.wtimeout_ms
                ),
            )
        txn = _Txn(session)
        token = self._txn.set(txn)
        try:
            try:
                yield
            except BaseException:
                with contextlib.suppress(PyMongoError):
                    if session.in_transaction:
                        session.abort_transaction()
                raise
            if txn.doomed:
                with contextlib.suppress(PyMongoError):
                    session.abort_transaction()
                raise txn.fail()
            self._commit(session)
        finally:
            self._txn.reset(token)
            session.end_session()

    def _commit(self, session: Any) -> None:
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                session.commit_transaction()
                return
            except PyMongoError as exc:
                if (
                    exc.has_error_label("UnknownTransactionCommitResult")
                    and attempt + 1 < COMMIT_ATTEMPTS
                ):
                    continue  # committing again is safe: it is idempotent
                if exc.has_error_label(errors.TRANSIENT):
                    raise TransientConflict(
                        "the transaction collided with another one and "
                        "was rolled back; retry the operation"
                    ) from exc
                raise errors.as_crm_error(exc, self.database_name, "commit") from exc

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            connection.release(self.client)
            if self.mock_server is not None:
                mock.release_server(self.mock_server)
            elif getattr(self.client, "crm_server", None) is None:  # a real client
                log.info("mongo.metrics", **monitoring.METRICS.snapshot())

    def describe(self) -> str:
        caps = (
            "transactions" if self.capabilities.transactions else "no multi-document transactions"
        )
        if self.mock_server is not None:
            kept = (
                "in this process only"
                if not self.mock_server.persistent
                else f"kept in {self.mock_server.path}"
            )
            return (
                f"mongodb on mongomock (an in-process imitation for trying the backend, not "
                f"a database; {kept}) database {self.database_name} ({caps})"
            )
        return (
            f"mongodb {redact(self.uri)} database {self.database_name} "
            f"({self.server.describe()}; {caps})"
        )

    def check(self, *, repair: bool = False, validate: Any = None) -> dict[str, int]:
        """Reach the server, confirm every declared index exists, count the documents."""
        if repair:
            raise NotImplementedError(
                "MongoDB keeps its own journal and has no files to "
                "salvage: restore a backup, or resync the damaged "
                "replica-set member from the others"
            )
        self.check_open()
        with errors.mapped(self.database_name, "check"):
            self.client.admin.command("ping")
        missing = [
            f"{name}.{spec.name}"
            for name, coll in sorted(self._collections.items())
            for spec in coll.declared
            if spec.name not in {s.name for s in coll.indexes()}
        ]
        if missing:
            raise StorageError(
                f"declared indexes are missing: {', '.join(missing)}; reopening "
                "the CRM creates them again"
            )
        # The collection's metadata count, not a scan: at 10^7 documents an exact count reads
        # the whole _id index. It can be off after an unclean shutdown until the next
        # validate; exact counts are ``collection.count()``.
        with errors.mapped(self.database_name, "check"):
            return {
                name: self.db[name].estimated_document_count() for name in self.collection_names()
            }

    def compact(self) -> None:
        raise NotImplementedError(
            "MongoDB reclaims space itself; run its 'compact' command "
            "on each member if a collection shrank a lot"
        )

    def backup(self, destination: str) -> None:
        raise NotImplementedError(
            "back MongoDB up with its own tools (mongodump, or your hosting provider's snapshots)"
        )


def open_store(
    options: StorageOptions, *, client_factory: ClientFactory | None = None
) -> MongoStore:
    """The backend factory: validate the configuration, connect (bounded by timeouts), probe.

    A ``mongomock://`` location opens the in-process imitation (``crmcore_storage_mongo.mock``).
    """
    uri = check_uri(options.location)
    opts = parse_options(options.options)
    kwargs = opts.client_kwargs(uri)
    mock_server = None
    if mock.is_mock(uri):
        mock_server = mock.acquire_server(uri)
        client_factory = mock.client_factory(mock_server)
    else:
        kwargs["event_listeners"] = monitoring.listeners(opts.slow_operation_ms)
    try:
        client = connection.acquire(uri, kwargs, client_factory)
    except BaseException:
        if mock_server is not None:
            mock.release_server(mock_server)
        raise
    try:
        server = connection.probe(client, uri, opts.server_selection_timeout_ms)
        store = MongoStore(
            client=client,
            uri=uri,
            options=opts,
            server=server,
            clock=options.clock,
            mock_server=mock_server,
            schema_upgrade=options.schema_upgrade,
        )
    except BaseException:
        connection.release(client)
        if mock_server is not None:
            mock.release_server(mock_server)
        raise
    if mock_server is not None:
        log.warning(
            "mongomock: an in-process imitation of MongoDB for trying the backend; "
            "one process at a time, no transactions, and its speed says nothing "
            "about MongoDB's",
            where=store.describe(),
        )
    elif not store.capabilities.transactions:
        log.warning(
            "no multi-document transactions: each write is atomic on its own",
            where=store.describe(),
        )
    else:
        log.info("opened", where=store.describe())
    return store


# -- helpers ---------------------------------------------------------------------------------

#: ``lease_until``'s stored form (``2026-01-05T09:00:00.000000Z``) from a server date: MongoDB
#: formats milliseconds (``%L``), the three zeros after them keep the width (and the order).
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%L"


def _sharded_collections(
    client: Any, database: str, server: ServerInfo
) -> dict[str, tuple[str, ...]]:
    """Shard keys from ``config.collections`` on a sharded cluster (empty elsewhere, or when
    the user may not read it: then ``[storage.options] shard_keys`` declares them)."""
    if not server.sharded:
        return {}
    prefix = f"{database}."
    try:
        found = list(
            client["config"]["collections"].find(
                {ID: {"$regex": f"^{re.escape(prefix)}"}, "dropped": {"$ne": True}},
                {ID: 1, "key": 1},
            )
        )
    except PyMongoError as exc:
        log.warning(
            "shard keys unreadable: declare them in [storage.options] shard_keys",
            error=type(exc).__name__,
        )
        return {}
    return {
        r[ID][len(prefix) :]: tuple("id" if k == ID else k for k in dict(r.get("key") or {}))
        for r in found
    }


def schema_digest(spec: CollectionSpec, validator: Mapping[str, Any] | None, level: str) -> str:
    """SHA-256 of what a collection's schema should be: its index specs and validator."""
    wanted = {
        "indexes": sorted([[list(f) for f in i.fields], i.unique, i.sparse] for i in spec.indexes),
        "validator": validator,
        "level": level if validator is not None else None,
    }
    return hashlib.sha256(json_canonical(wanted).encode()).hexdigest()


def server_iso(offset_ms: int = 0) -> dict[str, Any]:
    """An aggregation expression: the server's time (``$$NOW``) plus ``offset_ms``, stored form."""
    date: Any = "$$NOW" if not offset_ms else {"$add": ["$$NOW", offset_ms]}
    return {"$concat": [{"$dateToString": {"date": date, "format": _ISO_FORMAT}}, "000Z"]}


def server_lease(owner: str, length: timedelta) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The "free for ``owner``" filter and the update pipeline of a lease on the server's clock."""
    ms = max(0, int(length / timedelta(milliseconds=1)))
    free = {
        "$or": [
            translate(
                {"$or": [{"lease_owner": None}, {"lease_owner": owner}, {"lease_until": None}]}
            ).query,
            {
                "$and": [
                    {"lease_until": {"$type": "string"}},
                    {"$expr": {"$lte": ["$lease_until", server_iso()]}},
                ]
            },
        ]
    }
    update = [
        {
            "$set": {
                "lease_owner": {"$literal": owner},
                "lease_until": server_iso(ms),
                "version": {"$add": ["$version", 1]},
            }
        }
    ]
    return free, update


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _same_doc(a: Any, b: Any) -> bool:
    """Equal as stored documents (``bool`` is not ``int`` here)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_doc(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_doc(x, y) for x, y in zip(a, b, strict=True))
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _id_of(doc: Any) -> str | None:
    if isinstance(doc, Mapping) and isinstance(doc.get("id"), str):
        return doc["id"]
    return None


def _check_page(limit: int | None, skip: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValidationError(f"limit must be a whole number from 0, got {limit!r}")
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise ValidationError(f"skip must be a whole number from 0, got {skip!r}")


def _check_import_version(doc: Any) -> None:
    version = doc.get("version") if isinstance(doc, Mapping) else None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(
            f"an imported document needs its integer 'version' (from 1), got {version!r}"
        )


def _rows(docs: Iterable[Doc], one: Callable[[Doc], Doc]) -> BulkResult:
    ids, errs = [], []
    for i, doc in enumerate(docs):
        try:
            ids.append(one(doc)["id"])
        except CrmError as exc:
            errs.append(BulkError(i, _id_of(doc), str(exc)))
    return BulkResult(tuple(ids), tuple(errs))
