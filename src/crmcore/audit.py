"""The audit trail: every write to every collection, with actor, time and a masked diff.

``AuditedStore`` wraps the backend, so writes by the core and by plugins alike are recorded
without plugins doing anything. Entries form a hash chain (each holds the hash of the previous
one), so editing or deleting an entry is detected by ``verify``. Personal fields (declared with
``personal=True`` on a collection's record type) appear in diffs only as ``"***"``. Lease
changes (claim/release) are technical and not audited.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from hashlib import sha256
from types import TracebackType
from typing import Any, TypeVar

import attrs

from crmcore.clock import Clock
from crmcore.converter import iso
from crmcore.errors import DuplicateKeyError
from crmcore.ids import new_id
from crmcore.jsontext import ascii_json, canonical, json_canonical
from crmcore.logs import MASK
from crmcore.storage import BulkResult, Collection, CollectionSpec, IndexSpec, Store
from crmcore.storage.base import Doc, Filter, SortSpec, StoreLayer

AUDIT = "audit"
AUDIT_SPEC = CollectionSpec(AUDIT, (IndexSpec([("seq", 1)], unique=True),
                                    IndexSpec([("customer_id", 1), ("seq", 1)]),
                                    IndexSpec([("record_id", 1)])), sequence="seq")
GENESIS = "0" * 64
_NO_FIELDS: frozenset[str] = frozenset()
T = TypeVar("T")
UNATTRIBUTED = "unattributed"

_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("crm_actor", default=None)


class acting_as:  # lower case: it reads as a function, ``with acting_as("ann"):``
    """Attribute every write inside the block to ``actor`` (a class, not a generator: it is
    on every write's path)."""

    __slots__ = ("_token", "actor")

    def __init__(self, actor: str) -> None:
        self.actor = actor

    def __enter__(self) -> None:
        self._token = _actor.set(self.actor)

    def __exit__(self, *_exc: object) -> None:
        _actor.reset(self._token)


def set_actor(actor: str) -> contextvars.Token[str | None]:
    """Attribute this context's writes to ``actor`` until ``reset_actor(token)``: what
    ``acting_as`` does, for a caller that is itself a context manager."""
    return _actor.set(actor)


def reset_actor(token: contextvars.Token[str | None]) -> None:
    _actor.reset(token)


def current_actor() -> str:
    return _actor.get() or UNATTRIBUTED


def masked(doc: Mapping[str, Any], personal: frozenset[str]) -> dict[str, Any]:
    """``doc`` as an audit entry shows it: ``personal`` fields that hold a value read ``***``,
    and the version is left out."""
    out = dict(doc)
    out.pop("version", None)
    for key in personal & out.keys():
        if out[key] not in (None, "", [], {}):
            out[key] = MASK
    return out


def new_entry(id: str, at: str, actor: str, op: str, collection: str, record_id: str | None,
              customer_id: Any, diff: dict[str, Any], seq: int, prev: str) -> dict[str, Any]:
    """An entry of the chain as written, before its ``hash`` (``entry_hash`` of this)."""
    return {"id": id, "at": at, "actor": actor, "op": op, "collection": collection,
            "record_id": record_id, "customer_id": customer_id, "diff": diff, "seq": seq,
            "prev": prev}


def entry_hash(entry: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry without its own hash."""
    body = {k: v for k, v in entry.items() if k != "hash" and k != "version"}
    return sha256(json_canonical(body).encode()).hexdigest()


@attrs.frozen
class VerifyReport:
    entries: int
    ok: bool
    problem: str | None = None


class AuditedStore(StoreLayer):
    """A backend store whose writes are appended to the ``audit`` collection."""

    def __init__(self, inner: Store, clock: Clock) -> None:
        super().__init__(inner)
        self.clock = clock
        self._specs: dict[str, CollectionSpec] = {}
        self._personal: dict[str, frozenset[str]] = {}
        self._head: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._audit = inner.ensure_collection(AUDIT_SPEC)

    def declare(self, spec: CollectionSpec, personal: Iterable[str]) -> None:
        self._specs[spec.name] = spec
        self._personal[spec.name] = frozenset(personal)

    def masked_fields(self, collection: str) -> frozenset[str]:
        """The fields of ``collection`` whose values its entries show as ``***``."""
        return self._personal.get(collection, _NO_FIELDS)

    def collection(self, name: str) -> Collection:
        inner = self.inner.collection(name)
        return inner if name == AUDIT else AuditedCollection(self, inner)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return _AuditedTransaction(self)

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """The backend's, forgetting the cached chain head when it fails (as ``transaction``)."""
        try:
            return self.inner.run_in_transaction(fn, *args)
        except BaseException:
            self._forget_head()
            raise

    def _forget_head(self) -> None:
        # Entries appended inside a failed transaction were rolled back with it.
        with self._lock:
            self._head = None

    # -- recording -----------------------------------------------------------------------

    def record(self, op: str, collection: str, before: Doc | None, after: Doc | None) -> None:
        """Append the entry for one write: ``insert`` (``after``), ``update`` (both) or
        ``delete`` (``before``), the diff masked."""
        personal = self._personal.get(collection, _NO_FIELDS)
        if op == "insert":
            assert after is not None
            source, diff = after, {"after": masked(after, personal)}
        elif op == "delete":
            assert before is not None
            source, diff = before, {"before": masked(before, personal)}
        else:
            assert before is not None and after is not None
            b, a = masked(before, personal), masked(after, personal)
            diff = {k: [b.get(k), a.get(k)] for k in sorted(b.keys() | a.keys())
                    if before.get(k) != after.get(k)}
            source = after
        spec = self._specs.get(collection)
        key = spec.customer_key if spec is not None else None
        self._append(op, collection, source.get("id"), source.get(key) if key else None, diff)

    def record_denial(self, action: str, resource: Any, message: str) -> None:
        """Audit a refused action (``op`` is ``denied``)."""
        self.run_in_transaction(self._append, "denied", resource.kind, resource.id,
                                resource.customer_id, {"action": action, "reason": message})

    def record_event(self, op: str, collection: str, diff: Mapping[str, Any]) -> None:
        """Append one entry about a whole collection rather than one record's write (for
        example ``rekey``: documents re-sealed under a new encryption key, with ``diff``
        counting them), in the hash chain like every other entry. ``diff`` is stored as given,
        so it must hold no personal values."""
        self.run_in_transaction(self._append, op, collection, None, None, dict(diff))

    def _append(self, op: str, collection: str, record_id: str | None,
                customer_id: str | None, diff: dict[str, Any]) -> None:
        """Append the next entry of the chain, by the current actor, now."""
        now = self.clock.now()
        id, at, actor = new_id("aud_", now), iso(now), current_actor()
        with self._lock:
            for _attempt in range(50):
                seq, prev = self._head if self._head is not None else self._read_head()
                full = new_entry(id, at, actor, op, collection, record_id, customer_id, diff,
                                 seq + 1, prev)
                # ``full`` has no "hash" or "version" yet: this is ``entry_hash(full)``, and
                # the encoding it hashes, in ASCII, is the one the store may keep.
                body = canonical(full)
                full["hash"] = digest = sha256(body).hexdigest()
                text = ascii_json(body.decode())
                try:
                    self._audit.append(full, f'{text[:-1]},"hash":"{digest}"}}', sequence="seq")
                except DuplicateKeyError:
                    self._head = None  # another process appended: read the head again
                    continue
                self._head = (seq + 1, digest)
                return
            raise DuplicateKeyError("audit: could not append after 50 attempts")

    def _read_head(self) -> tuple[int, str]:
        last = self._audit.last("seq")
        return (0, GENESIS) if last is None else (last["seq"], last["hash"])

    def verify(self) -> VerifyReport:
        """Walk the chain in order; report the first entry that does not fit."""
        prev, expected, count = GENESIS, 1, 0
        for entry in sorted(self._audit.iter(), key=lambda e: e["seq"]):
            count += 1
            if entry["seq"] != expected:
                return VerifyReport(count, False, f"entry #{expected} is missing")
            if entry["prev"] != prev:
                return VerifyReport(count, False, f"entry #{entry['seq']} does not follow "
                                    "the one before it")
            if entry_hash(entry) != entry["hash"]:
                return VerifyReport(count, False, f"entry #{entry['seq']} was altered")
            prev, expected = entry["hash"], expected + 1
        return VerifyReport(count, True)


class AuditedCollection(Collection):
    """Delegates to the backend's collection and records each write."""

    def __init__(self, store: AuditedStore, inner: Collection) -> None:
        self.name = inner.name
        self._store = store
        self._inner = inner

    # Each write and its audit entry happen in one backend transaction: atomic together where
    # the backend can, and the backend's lock is always taken before the auditor's. A failed
    # one forgets the chain head it may have moved (``AuditedStore.transaction``).

    def insert(self, doc: Doc) -> Doc:
        return self._store.run_in_transaction(self._insert, doc)

    def _insert(self, doc: Doc) -> Doc:
        stored = self._inner.insert(doc)
        self._store.record("insert", self.name, None, stored)
        return stored

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            result = self._inner.insert_many(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    self._store.record("insert", self.name, None, doc)
        return result

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            befores = {}
            for doc in docs:
                with contextlib.suppress(Exception):
                    befores[doc["id"]] = self._inner.get(doc["id"])
            result = self._inner.upsert_many(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    before = befores.get(doc["id"])
                    self._store.record("update" if before else "insert", self.name, before,
                                       doc)
        return result

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        with self._store.transaction():
            result = self._inner.import_raw(docs)
            ok = set(result.ids)
            for doc in docs:
                if isinstance(doc, Mapping) and doc.get("id") in ok:
                    self._store.record("insert", self.name, None, doc)
        return result

    def get(self, id: str) -> Doc:
        return self._inner.get(id)

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        return self._store.run_in_transaction(self._update, id, changes, expected_version)

    def _update(self, id: str, changes: Mapping[str, Any], expected_version: int) -> Doc:
        before = self._inner.get(id)
        after = self._inner.update(id, changes, expected_version=expected_version)
        self._store.record("update", self.name, before, after)
        return after

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._store.run_in_transaction(self._delete, id, expected_version)

    def _delete(self, id: str, expected_version: int | None) -> None:
        before = self._inner.get(id)
        self._inner.delete(id, expected_version=expected_version)
        self._store.record("delete", self.name, before, None)

    def find(self, filter: Filter | None = None, *, sort: SortSpec | None = None,
             limit: int | None = None, skip: int = 0) -> list[Doc]:
        return self._inner.find(filter, sort=sort, limit=limit, skip=skip)

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        return self._inner.iter(filter, batch_size=batch_size)

    def count(self, filter: Filter | None = None) -> int:
        return self._inner.count(filter)

    def ensure_index(self, spec: IndexSpec) -> None:
        self._inner.ensure_index(spec)

    def indexes(self) -> list[IndexSpec]:
        return self._inner.indexes()

    def claim(self, filter: Filter, *, owner: str, until: datetime, now: datetime,
              sort: SortSpec | None = None) -> Doc | None:
        return self._inner.claim(filter, owner=owner, until=until, now=now, sort=sort)

    def release(self, id: str, *, owner: str) -> None:
        self._inner.release(id, owner=owner)


class _AuditedTransaction:
    """``AuditedStore.transaction()``: the backend's, forgetting the cached chain head when it
    fails (a class, not a generator: every write goes through it)."""

    __slots__ = ("_inner", "_store")

    def __init__(self, store: AuditedStore) -> None:
        self._store = store
        self._inner = store.inner.transaction()

    def __enter__(self) -> None:
        self._inner.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._inner.__exit__(kind, exc, tb)
        except BaseException:
            self._store._forget_head()
            raise
        if kind is not None:
            self._store._forget_head()
