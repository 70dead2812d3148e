"""A transaction-scoped identity cache: inside a transaction, each record is read once.

One user action (log a purchase) runs the core and every plugin's reaction in one transaction,
and each of them reads the same few records by id: the customer, the loyalty account. This
layer keeps, per thread and only while that thread's outermost transaction is open, the
documents read with ``get`` and written with ``insert`` / ``update``, keyed by collection and id:

- a ``get`` of a record already read or written in the transaction is answered from the
  cache (a copy, so a caller changing what it got changes nothing else);
- a write updates the cache with the stored document (so later reads see the transaction's
  own writes); a delete, or a write that fails (a version conflict, a duplicate key), drops
  the record, and the next read asks the store again (retry loops see the current version);
- the cache is dropped when the outermost transaction ends, committed or rolled back, and
  whenever a nested transaction fails (a backend may have undone part of it): nothing read
  inside one transaction is served in another, and nothing after a rollback.

``remembered`` keeps a query's answer the same way (the rep roster every reaction of one
action asks for): computed once per transaction, forgotten as soon as anything in the
collection it reads is written, and with everything else at the end.

It serves only backends whose transactions are atomic (``capabilities.transactions``): where
a transaction does not isolate, another writer may change a record between two reads, and the
layer passes everything through. Queries (``find``, ``count``) always go to the store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import orjson

from crmcore.storage.base import (
    BulkResult,
    Collection,
    CollectionLayer,
    Doc,
    Filter,
    IndexSpec,
    SortSpec,
    Store,
    StoreLayer,
)

T = TypeVar("T")


def copy_doc(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (dicts, lists, scalars): cheaper than ``copy``'s."""
    if isinstance(value, dict):
        return {k: copy_doc(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if isinstance(value, list):
        return [copy_doc(v) if isinstance(v, (dict, list)) else v for v in value]
    return value


def _frozen(doc: Doc) -> bytes | Doc:
    """What the cache keeps of ``doc``: its JSON (each reader decodes its own copy, several
    times faster than copying the dicts in Python), or a copy if JSON cannot hold it."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return copy_doc(doc)


def _thawed(kept: bytes | Doc) -> Doc:
    return orjson.loads(kept) if isinstance(kept, bytes) else copy_doc(kept)


class _State(threading.local):
    depth = 0
    docs: dict[tuple[str, str], bytes | Doc] | None = None
    #: Per collection, answers kept by ``remembered`` (None outside a transaction).
    memos: dict[str, dict[Hashable, Any]] | None = None


class CachedStore(StoreLayer):
    """The store ``inner`` with a per-thread identity cache for its transactions."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.enabled = bool(inner.capabilities.transactions)
        self._state = _State()
        self._collections: dict[str, CachedCollection] = {}
        #: Reads answered from the cache and reads passed to the store (for tests and bench).
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:  # what the backend adds beyond the contract
        if name.startswith("__") or name in ("inner", "_state", "_collections"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def collection(self, name: str) -> Collection:
        inner = self.inner.collection(name)
        if not self.enabled:
            return inner
        handle = self._collections.get(name)
        if handle is None or handle.inner is not inner:
            handle = self._collections[name] = CachedCollection(self, inner)
        return handle

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        if not self.enabled:
            return self.inner.transaction()
        return _CachedTransaction(self)

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        if not self.enabled or self._state.depth == 0:
            return self.inner.run_in_transaction(fn, *args)
        try:
            return self.inner.run_in_transaction(fn, *args)
        except BaseException:
            self.drop_all()  # the backend may have undone part of what the cache holds
            raise

    # -- the cache of this thread ------------------------------------------------------------

    def cached(self, name: str, id: str) -> Doc | None:
        docs = self._state.docs
        if docs is None:
            return None
        kept = docs.get((name, id))
        if kept is None:
            self.misses += 1
            return None
        self.hits += 1
        return _thawed(kept)

    def keep(self, name: str, doc: Doc) -> None:
        state = self._state
        docs = state.docs
        if docs is not None and isinstance(doc, dict) and isinstance(doc.get("id"), str):
            docs[(name, doc["id"])] = _frozen(doc)
        if state.memos:
            state.memos.pop(name, None)

    def drop(self, name: str, id: object) -> None:
        state = self._state
        docs = state.docs
        if docs is not None and isinstance(id, str):
            docs.pop((name, id), None)
        if state.memos:
            state.memos.pop(name, None)

    def drop_all(self) -> None:
        state = self._state
        if state.docs is not None:
            state.docs.clear()
        if state.memos is not None:
            state.memos.clear()

    def remembered(self, name: str, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, a query of collection ``name``, answered once per transaction of
        this thread: kept until anything in ``name`` is written, a nested transaction fails,
        or the outermost one ends. Outside a transaction (or without atomic transactions)
        computed every time. The answer is shared: callers must not change it."""
        memos = self._state.memos
        if memos is None:
            return compute()
        kept = memos.get(name)
        if kept is not None and key in kept:
            value: T = kept[key]
            return value
        value = compute()
        if self._state.memos is memos:  # not dropped by a write or a failure meanwhile
            memos.setdefault(name, {})[key] = value
        return value

    def _enter(self) -> None:
        state = self._state
        if state.depth == 0:
            state.docs = {}
            state.memos = {}
        state.depth += 1

    def _leave(self, failed: bool) -> None:
        state = self._state
        state.depth -= 1
        if state.depth == 0:
            state.docs = None
            state.memos = None
        elif failed:
            self.drop_all()


class _CachedTransaction:
    """``CachedStore.transaction()``: the backend's, with the cache opened and dropped."""

    __slots__ = ("_inner", "_store")

    def __init__(self, store: CachedStore) -> None:
        self._store = store
        self._inner = store.inner.transaction()

    def __enter__(self) -> None:
        self._inner.__enter__()
        self._store._enter()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._store._leave(failed=kind is not None)
        finally:
            self._inner.__exit__(kind, exc, tb)


class CachedCollection(CollectionLayer):
    """A collection whose ``get`` is answered from the transaction's cache when it can; its
    queries are the store's (``PASSED_READS``: the backend's own methods, no call between)."""

    PASSED_READS = ("find", "find_one", "iter", "count", "sum", "last", "indexes")

    def __init__(self, store: CachedStore, inner: Collection) -> None:
        super().__init__(inner)
        self._store = store

    # -- reads by id -------------------------------------------------------------------------

    def get(self, id: str) -> Doc:
        found = self._store.cached(self.name, id)
        if found is not None:
            return found
        doc = self.inner.get(id)
        self._store.keep(self.name, doc)
        return doc

    # -- writes ------------------------------------------------------------------------------

    def _written(self, ids: Iterable[object]) -> None:
        self._store.drop(self.name, None)  # the collection's remembered answers
        for id in ids:
            self._store.drop(self.name, id)

    def insert(self, doc: Doc) -> Doc:
        try:
            stored = self.inner.insert(doc)
        except BaseException:
            self._store.drop(self.name, doc.get("id") if isinstance(doc, Mapping) else None)
            raise
        self._store.keep(self.name, stored)
        return stored

    def insert_encoded(self, doc: Doc, text: str) -> None:
        self._store.drop(self.name, doc.get("id"))
        self.inner.insert_encoded(doc, text)

    def append(self, doc: Doc, text: str, *, sequence: str) -> None:
        self._store.drop(self.name, doc.get("id"))
        self.inner.append(doc, text, sequence=sequence)

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        try:
            stored = self.inner.update(id, changes, expected_version=expected_version)
        except BaseException:
            self._store.drop(self.name, id)
            raise
        self._store.keep(self.name, stored)
        return stored

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._store.drop(self.name, id)
        self.inner.delete(id, expected_version=expected_version)

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        self._written(d.get("id") for d in docs if isinstance(d, Mapping))
        return self.inner.insert_many(docs)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        self._written(d.get("id") for d in docs if isinstance(d, Mapping))
        return self.inner.upsert_many(docs)

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        docs = list(docs)
        self._written(d.get("id") for d in docs if isinstance(d, Mapping))
        return self.inner.import_raw(docs)

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        doc = self.inner.claim(filter, owner=owner, until=until, now=now, sort=sort)
        if doc is not None:
            self._store.keep(self.name, doc)
        return doc

    def release(self, id: str, *, owner: str) -> None:
        self._store.drop(self.name, id)
        self.inner.release(id, owner=owner)

    def ensure_index(self, spec: IndexSpec) -> None:
        self._store.drop(self.name, None)
        self.inner.ensure_index(spec)
