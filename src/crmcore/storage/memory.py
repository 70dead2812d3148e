"""The in-memory reference backend: the contract's meaning, in the fewest lines.

Thread-safe (one re-entrant lock), with atomic transactions through an undo log. Nothing
survives ``close()``; use it for tests, simulations and as the model for new backends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
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
    check_new_doc,
    compile_filter,
    copy_doc,
    index_key,
    lease_is_free,
    sort_docs,
    validate_sort,
)


class MemoryCollection(Collection):
    def __init__(self, store: MemoryStore, name: str) -> None:
        self.name = name
        self._store = store
        self._docs: dict[str, Doc] = {}
        self._indexes: dict[str, IndexSpec] = {}
        self._unique: dict[str, dict[tuple[Any, ...], str]] = {}

    # -- internal: every change goes through _put so unique maps and the undo log stay right --

    def _check_unique(self, doc: Doc, replacing: str | None) -> None:
        for name, spec in self._indexes.items():
            if not spec.unique:
                continue
            key = index_key(doc, spec.fields, sparse=spec.sparse)
            holder = self._unique[name].get(key) if key is not None else None
            if holder is not None and holder != replacing:
                fields = ", ".join(f for f, _ in spec.fields)
                raise DuplicateKeyError(
                    f"{self.name}: another record already has this value of ({fields})"
                )

    def _put(self, id: str, doc: Doc | None) -> None:
        old = self._docs.get(id)
        self._store._journal(self, id, old)
        for name, spec in self._indexes.items():
            if not spec.unique:
                continue
            if old is not None:
                key = index_key(old, spec.fields, sparse=spec.sparse)
                if key is not None:
                    self._unique[name].pop(key, None)
            if doc is not None:
                key = index_key(doc, spec.fields, sparse=spec.sparse)
                if key is not None:
                    self._unique[name][key] = id
        if doc is None:
            self._docs.pop(id, None)
        else:
            self._docs[id] = doc

    def _existing(self, id: str) -> Doc:
        try:
            return self._docs[id]
        except KeyError:
            raise NotFoundError(f"{self.name}: no record with id {id!r}") from None

    # -- the contract --

    def insert(self, doc: Doc) -> Doc:
        check_new_doc(doc)
        with self._store._lock:
            if doc["id"] in self._docs:
                raise DuplicateKeyError(f"{self.name}: id {doc['id']!r} already exists")
            new = copy_doc(dict(doc))
            new["version"] = 1
            self._check_unique(new, None)
            self._put(new["id"], new)
            return copy_doc(new)

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self.insert)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._upsert)

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        return self._bulk(docs, self._import_one)

    def _import_one(self, doc: Doc) -> Doc:
        check_new_doc(doc)
        version = doc.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValidationError(f"version {version!r} is not a whole number from 1")
        with self._store._lock:
            if doc["id"] in self._docs:
                raise DuplicateKeyError(f"{self.name}: id {doc['id']!r} already exists")
            new = copy_doc(dict(doc))
            self._check_unique(new, None)
            self._put(new["id"], new)
            return new

    def _upsert(self, doc: Doc) -> Doc:
        check_new_doc(doc)
        with self._store._lock:
            old = self._docs.get(doc["id"])
            new = copy_doc(dict(doc))
            new["version"] = 1 if old is None else old["version"] + 1
            self._check_unique(new, doc["id"])
            self._put(new["id"], new)
            return new

    @staticmethod
    def _bulk(docs: Iterable[Doc], one: Any) -> BulkResult:
        ids, errors = [], []
        for i, doc in enumerate(docs):
            try:
                ids.append(one(doc)["id"])
            except CrmError as exc:
                errors.append(
                    BulkError(i, doc.get("id") if isinstance(doc, Mapping) else None, str(exc))
                )
        return BulkResult(tuple(ids), tuple(errors))

    def get(self, id: str) -> Doc:
        with self._store._lock:
            return copy_doc(self._existing(id))

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        if "id" in changes or "version" in changes:
            raise StorageError("update() may not change 'id' or 'version'")
        with self._store._lock:
            old = self._existing(id)
            if old["version"] != expected_version:
                raise ConflictError(
                    f"{self.name} {id}: changed by someone else (version "
                    f"{old['version']}, you read {expected_version}); "
                    "reload and retry"
                )
            new = {**old, **copy_doc(dict(changes)), "version": old["version"] + 1}
            check_new_doc(new)
            self._check_unique(new, id)
            self._put(id, new)
            return copy_doc(new)

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        with self._store._lock:
            old = self._existing(id)
            if expected_version is not None and old["version"] != expected_version:
                raise ConflictError(f"{self.name} {id}: changed by someone else; reload first")
            self._put(id, None)

    def _candidates(self, filter: Filter | None) -> Iterable[Doc]:
        """Documents that may match: one lookup when a unique index answers an equality on
        its single field (dedupe keys, contacts), else every document."""
        if filter and len(filter) == 1:
            ((field, value),) = filter.items()
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                for name, spec in self._indexes.items():
                    if spec.unique and len(spec.fields) == 1 and spec.fields[0][0] == field:
                        holder = self._unique[name].get((value,))
                        return [self._docs[holder]] if holder is not None else []
        return self._docs.values()

    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        match = compile_filter(filter)
        validate_sort(sort)
        with self._store._lock:
            found = [d for d in self._candidates(filter) if match(d)]
            sort_docs(found, sort)
            end = None if limit is None else skip + limit
            return [copy_doc(d) for d in found[skip:end]]

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        match = compile_filter(filter)
        with self._store._lock:
            ids = sorted(self._docs)
        for start in range(0, len(ids), batch_size):
            with self._store._lock:
                found = [self._docs.get(i) for i in ids[start : start + batch_size]]
                batch = [copy_doc(d) for d in found if d is not None and match(d)]
            yield from batch

    def count(self, filter: Filter | None = None) -> int:
        match = compile_filter(filter)
        with self._store._lock:
            return sum(1 for d in self._docs.values() if match(d))

    def ensure_index(self, spec: IndexSpec) -> None:
        with self._store._lock:
            if spec.name in self._indexes:
                return
            if spec.unique:
                seen: dict[tuple[Any, ...], str] = {}
                for id, doc in self._docs.items():
                    key = index_key(doc, spec.fields, sparse=spec.sparse)
                    if key is None:
                        continue
                    if key in seen:
                        raise DuplicateKeyError(
                            f"{self.name}: cannot create unique index "
                            f"{spec.name}: {seen[key]} and {id} collide"
                        )
                    seen[key] = id
                self._unique[spec.name] = seen
            self._indexes[spec.name] = spec

    def indexes(self) -> list[IndexSpec]:
        with self._store._lock:
            return list(self._indexes.values())

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        match = compile_filter(filter)
        with self._store._lock:
            found = [d for d in self._docs.values() if match(d) and lease_is_free(d, owner, now)]
            if not found:
                return None
            sort_docs(found, sort)
            doc = found[0]
            return self.update(
                doc["id"],
                {"lease_owner": owner, "lease_until": iso(until)},
                expected_version=doc["version"],
            )

    def release(self, id: str, *, owner: str) -> None:
        with self._store._lock:
            doc = self._existing(id)
            if doc.get("lease_owner") == owner:
                self.update(
                    id, {"lease_owner": None, "lease_until": None}, expected_version=doc["version"]
                )


class MemoryStore(Store):
    """Everything in dictionaries; atomic transactions; gone at close.

    ``MemoryStore.shared(name)`` opens a store that lives as long as the process, so several
    opens with the same name (``location`` in crm.toml) see the same data; tests use this to
    run several CLI commands against one store.
    """

    capabilities = Capabilities(persistent=False, transactions=True, multi_process=False)
    _shared: dict[str, MemoryStore] = {}
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._collections: dict[str, MemoryCollection] = {}
        self._undo: list[tuple[MemoryCollection, str, Doc | None]] | None = None
        self._closed = False
        self._name: str | None = None

    @classmethod
    def shared(cls, name: str) -> MemoryStore:
        """The process-wide store called ``name`` (created empty the first time)."""
        with cls._shared_lock:
            if name not in cls._shared:
                cls._shared[name] = cls()
                cls._shared[name]._name = name
            store = cls._shared[name]
            store._closed = False
            return store

    @classmethod
    def drop_shared(cls, name: str) -> None:
        """Forget a shared store and its data."""
        with cls._shared_lock:
            cls._shared.pop(name, None)

    def _journal(self, coll: MemoryCollection, id: str, old: Doc | None) -> None:
        if self._undo is not None:
            self._undo.append((coll, id, old))

    def collection(self, name: str) -> Collection:
        if self._closed:
            raise StorageError("the store is closed")
        with self._lock:
            if name not in self._collections:
                self._collections[name] = MemoryCollection(self, name)
            return self._collections[name]

    def collection_names(self) -> list[str]:
        with self._lock:
            return sorted(self._collections)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            if self._undo is not None:  # nested: join the outer transaction
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                undo, self._undo = self._undo, None
                for coll, id, old in reversed(undo):
                    coll._put(id, old)
                raise
            finally:
                self._undo = None

    def close(self) -> None:
        self._closed = True

    def describe(self) -> str:
        where = f" {self._name!r}" if self._name else ""
        return f"memory{where} (nothing is kept after the process exits)"
