"""The storage contract: what a backend must do, and the small types it exchanges.

Documents are JSON-compatible dicts with a string ``id`` and an integer ``version``. The core
mints ids; a backend never invents them. Filters use a small MongoDB-like language (see
``crmcore.storage.query``) that every backend must evaluate identically; the contract test suite
in ``crmcore.testing.contract`` checks that.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs

from crmcore.clock import Clock
from crmcore.schema import personal_fields

Doc = dict[str, Any]
Filter = Mapping[str, Any]
SortSpec = list[tuple[str, int]]

LEASE_OWNER = "lease_owner"
LEASE_UNTIL = "lease_until"


@attrs.frozen
class IndexSpec:
    """An index over one or more fields (dotted paths), each ascending (1) or descending (-1).

    ``unique`` indexes refuse a second document with the same key. ``sparse`` indexes skip
    documents where any indexed field is missing or ``None`` (so missing values never collide).
    """

    fields: tuple[tuple[str, int], ...] = attrs.field(
        converter=lambda fs: tuple((f, 1) if isinstance(f, str) else (f[0], int(f[1])) for f in fs)
    )
    unique: bool = False
    sparse: bool = False

    @property
    def name(self) -> str:
        parts = "_".join(
            f"{f.replace('.', '-')}{'' if d == 1 else '-desc'}" for f, d in self.fields
        )
        return ("u_" if self.unique else "i_") + parts


def _paths(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _optional_paths(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _index_specs(value: Iterable[IndexSpec]) -> tuple[IndexSpec, ...]:
    return tuple(value)  # typed: ``converter=tuple`` leaves mypy without the element type


@attrs.frozen
class CollectionSpec:
    """A collection a plugin (or the core) declares, with its indexes.

    ``customer_key`` names the field holding a customer id, so that merging, exporting and
    forgetting a customer reach this collection's records too. ``record_type`` is the attrs
    class stored there (its ``personal=True`` fields are masked, exported and erased), or
    ``"module:Class"`` naming it: then its module is imported only when the class is asked for
    (``record_class()``), so that opening a CRM does not define every plugin's record classes;
    give its personal fields as ``personal`` too (checked against the class when it is
    resolved), or they are read from the class at open.
    ``sequence`` makes the collection a log numbered 1, 2, 3… in that field, written with
    ``Collection.append`` (declare a unique index on it too): a backend may then keep it out
    of memory while it is only appended to. ``blind`` names top-level fields holding lists of
    keys derived from personal data (the customers' search keys): personal like the
    record type's personal fields (masked, erased), and under encryption at rest each element
    is stored as a keyed hash, so that equality on an element still finds the record.
    ``derived`` names fields (dotted paths, ``ext.grading.signals``) holding data computed
    from other records, which a rebuild gives back: the audit trail records a change of one
    by a digest of its new value rather than its values before and after.
    """

    name: str
    indexes: tuple[IndexSpec, ...] = attrs.field(default=(), converter=_index_specs)
    customer_key: str | None = None
    record_type: type | str | None = attrs.field(default=None)
    sequence: str | None = None
    blind: tuple[str, ...] = ()
    derived: tuple[str, ...] = attrs.field(default=(), converter=_paths)
    personal: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_paths)

    @record_type.validator
    def _check_record_type(self, _attribute: object, value: type | str | None) -> None:
        if isinstance(value, str):
            module, colon, name = value.partition(":")
            if not (module and colon and name):
                raise ValueError(
                    f"collection {self.name!r}: record_type {value!r} is not 'module:Class'"
                )

    def record_class(self) -> type | None:
        """The record type (its module imported when ``record_type`` names it). A class whose
        personal fields are not the ``personal`` given beside its name is refused."""
        if not isinstance(self.record_type, str):
            return self.record_type
        module, _, name = self.record_type.partition(":")
        found = getattr(importlib.import_module(module), name)
        if not isinstance(found, type):
            raise TypeError(f"{self.record_type} is {found!r}, not a class")
        if self.personal is not None:
            declared = personal_fields(found)
            if set(declared) != set(self.personal):
                raise ValueError(
                    f"collection {self.name!r}: personal={self.personal!r}, but "
                    f"{self.record_type} declares {declared!r} personal"
                )
        return found

    @personal.validator
    def _check_personal(self, _attribute: object, value: tuple[str, ...] | None) -> None:
        if value is not None and not isinstance(self.record_type, str):
            raise ValueError(
                f"collection {self.name!r}: personal is given with a record type named as "
                "'module:Class' (a class says which of its fields are personal itself)"
            )

    def personal_fields(self) -> tuple[str, ...]:
        """The record type's personal fields: ``personal`` when given with a named type (its
        module is not imported for them), else read from the class; () without one."""
        if self.record_type is None:
            return ()
        if isinstance(self.record_type, str) and self.personal is not None:
            return self.personal
        cls = self.record_class()
        return personal_fields(cls) if cls is not None else ()


@attrs.frozen
class Capabilities:
    """What a backend can promise. The core falls back, or refuses clearly, where one is False."""

    persistent: bool
    transactions: bool  # ``Store.transaction()`` is atomic across documents and collections
    multi_process: bool  # several processes may open the same store at once
    change_streams: bool = False
    schema_validation: bool = False


@attrs.frozen
class BulkError:
    index: int
    id: str | None
    message: str


T = TypeVar("T")
Validator = Callable[[str, dict[str, Any]], "str | None"]


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read lazily: for bulk writes and
    for reading a collection a batch at a time."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def add_numbers(values: Iterable[Any]) -> int | float:
    """The sum of the numbers among ``values`` as ``Collection.sum`` defines it: booleans and
    anything not a number skipped; whole numbers added exactly, floats with ``math.fsum``; an
    ``int`` when every number is whole (a float such as ``2.0`` counts as whole)."""
    whole = 0
    fractions: list[float] = []
    for value in values:
        kind = type(value)
        if kind is int:
            whole += value
        elif kind is float:
            if value.is_integer():
                whole += int(value)
            else:
                fractions.append(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fractions.append(float(value))
    if not fractions:
        return whole
    return math.fsum([*fractions, whole]) if whole else math.fsum(fractions)


@attrs.frozen
class BulkResult:
    ids: tuple[str, ...]
    errors: tuple[BulkError, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@attrs.frozen
class StorageOptions:
    """What a backend factory receives: the location (path or URI), its options table, a clock."""

    location: str | None
    options: Mapping[str, Any]
    clock: Clock
    # True when opened by ``crm db upgrade``: a backend whose schema changes (index builds on
    # a server, validators) are an explicit, recorded step applies them in
    # ``ensure_collection``; otherwise such a backend only checks them at open.
    schema_upgrade: bool = False


@attrs.frozen
class StorageBackend:
    """Returned by ``crm_storage_backends``: a backend's name and the factory that opens it."""

    name: str
    factory: Callable[[StorageOptions], Store]
    description: str = ""


class Collection(abc.ABC):
    """One named set of documents."""

    name: str

    @abc.abstractmethod
    def insert(self, doc: Doc) -> Doc:
        """Store a new document (its ``version`` becomes 1); ``DuplicateKeyError`` if the id or a
        unique key exists. Returns the stored document."""

    def insert_encoded(self, doc: Doc, text: str) -> None:
        """Insert ``doc`` like ``insert``, given ``text``: ``doc`` (a plain dict without
        ``version``) already encoded as a JSON object, keys in any order, by a caller that
        built it from stored values and has encoded it anyway (the audit trail hashes each
        entry's encoding). A backend that stores JSON text may keep ``text`` instead of
        checking and encoding ``doc`` again; this default is ``insert(doc)``."""
        self.insert(doc)

    def append(self, doc: Doc, text: str, *, sequence: str) -> None:
        """Append ``doc`` to a log: a collection whose documents are numbered 1, 2, 3… in the
        integer field ``sequence``, only ever added to, and rarely read (the audit trail).

        ``doc[sequence]`` must be one more than ``last(sequence)``'s (1 in an empty log); a
        number already taken raises ``DuplicateKeyError`` and writes nothing (another writer
        appended first: read ``last`` again). ``text`` is ``doc`` encoded, as for
        ``insert_encoded``. ``doc["id"]`` must be new, a fresh id: a backend may leave it
        unchecked. The log must declare a unique index on ``sequence``. A backend may append
        without holding the log's documents in memory; this default is
        ``insert_encoded``, which the unique index makes safe across writers."""
        self.insert_encoded(doc, text)

    def last(self, sequence: str) -> Doc | None:
        """The document of a log with the highest ``sequence`` number (see ``append``), or
        None if the log is empty. A backend may answer without loading the log."""
        return self.find_one({}, sort=[(sequence, -1)])

    @abc.abstractmethod
    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        """Insert each document independently; failures are reported per index, not raised."""

    @abc.abstractmethod
    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        """Insert new documents and replace existing ones by id (version increments)."""

    @abc.abstractmethod
    def get(self, id: str) -> Doc:
        """The document with this id, or ``NotFoundError``."""

    @abc.abstractmethod
    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        """Set top-level fields if the stored version equals ``expected_version``.

        Raises ``NotFoundError`` if absent, ``ConflictError`` if the version is stale,
        ``DuplicateKeyError`` if a unique index would break. Returns the new document.
        """

    @abc.abstractmethod
    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        """Remove a document for good (``NotFoundError`` / ``ConflictError`` as for update)."""

    @abc.abstractmethod
    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        """Documents matching ``filter``, ordered by ``sort`` (ties by id), paged.

        With ``limit``, the answer is exactly the full sort's ``[skip:skip + limit]``; a backend
        should reach it without reading every match where an index (or the id order) gives
        the sort: the contract suite checks the answers, ``bench`` W10 the cost."""

    @abc.abstractmethod
    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        """Stream matching documents in id order without loading the whole collection."""

    @abc.abstractmethod
    def count(self, filter: Filter | None = None) -> int:
        """How many documents match."""

    def sum(self, field: str, filter: Filter | None = None) -> int | float:
        """The sum of ``field`` (a dotted path) over the documents matching ``filter``.

        Only numbers count: a document where the field is missing, null, a boolean, a string
        or a list adds nothing (as MongoDB's ``$sum``); 0 when nothing matches. Whole numbers
        add exactly and floats without rounding error (``math.fsum``); a whole result may
        come as an ``int`` or a ``float`` (``2`` or ``2.0``), a result with a fraction as a
        ``float``. A backend should answer from an
        index holding ``field`` without reading documents when the index covers the filter
        (as ``count`` does); this default reads every match."""
        from crmcore.storage.query import resolve

        return add_numbers(resolve(doc, field) for doc in self.iter(filter))

    @abc.abstractmethod
    def ensure_index(self, spec: IndexSpec) -> None:
        """Create the index unless it exists (idempotent)."""

    @abc.abstractmethod
    def indexes(self) -> list[IndexSpec]:
        """The declared indexes."""

    @abc.abstractmethod
    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        """Atomically lease one matching document to ``owner`` until ``until``.

        A document is free when it has no lease, its lease ended at or before ``now``, or
        ``owner`` already holds it. Two callers never get the same document while a lease
        runs, in this process or any other. Returns the leased document, or None.

        The document taken is the first free match in ``sort`` order (ties by id; no sort: the
        lowest id). Workers claim in loops, so a backend should find it without reading every
        candidate (an index giving the order, walked past the leased ones).
        """

    @abc.abstractmethod
    def release(self, id: str, *, owner: str) -> None:
        """End ``owner``'s lease on a document (no-op if someone else holds it now)."""

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        """Store documents verbatim, ``version`` included (for migrations and restores).

        A document whose id exists, or without a whole-number version from 1, is reported,
        not raised. This default uses only the contract (insert, then one empty
        version-checked update per version step); backends override it with a direct write.
        """
        from crmcore.errors import CrmError, ValidationError

        ids: list[str] = []
        errors: list[BulkError] = []
        for i, doc in enumerate(docs):
            version = doc.get("version") if isinstance(doc, Mapping) else None
            try:
                if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                    raise ValidationError(f"version {version!r} is not a whole number from 1")
                self.insert({k: v for k, v in doc.items() if k != "version"})
                for step in range(1, version):
                    self.update(doc["id"], {}, expected_version=step)
            except CrmError as exc:
                errors.append(
                    BulkError(i, doc.get("id") if isinstance(doc, Mapping) else None, str(exc))
                )
                continue
            ids.append(doc["id"])
        return BulkResult(tuple(ids), tuple(errors))

    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None) -> Doc | None:
        """The first matching document, or None."""
        found = self.find(filter, sort=sort, limit=1)
        return found[0] if found else None


class Store(abc.ABC):
    """An open storage backend: a set of collections."""

    capabilities: Capabilities

    @abc.abstractmethod
    def collection(self, name: str) -> Collection:
        """The collection called ``name`` (created empty if new)."""

    def ensure_collection(self, spec: CollectionSpec) -> Collection:
        """Open the collection and create its declared indexes (idempotent)."""
        coll = self.collection(spec.name)
        for index in spec.indexes:
            coll.ensure_index(index)
        return coll

    @abc.abstractmethod
    def collection_names(self) -> list[str]:
        """Names of the collections that exist."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group writes. Atomic where ``capabilities.transactions``; otherwise each write is
        atomic on its own and the group is not (the default here)."""
        return contextlib.nullcontext()

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a transaction, as ``with self.transaction(): return fn(*args)``
        (this default). A backend whose nested transactions join the one this thread has
        open may call ``fn`` directly then: layers that pair each write with another (the
        audit trail) go through here, once per write."""
        with self.transaction():
            return fn(*args)

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release everything; the store cannot be used afterwards."""

    def describe(self) -> str:
        """One line for humans: backend and location (never credentials)."""
        return type(self).__name__

    def check(self, *, repair: bool = False, validate: Validator | None = None) -> dict[str, int]:
        """Verify integrity as far as the backend can; returns document counts per collection.
        Raises ``StorageError`` naming what is damaged and how to recover; with ``repair``,
        salvages what can be read (backends that cannot repair raise NotImplementedError).
        ``validate(collection, doc)`` says why a document would not load (None: it does); a
        backend that reads documents itself calls it on each, and a repair sets aside the
        documents it refuses."""
        if repair:
            raise NotImplementedError(f"{self.describe()} has no repair; restore a backup")
        return {name: self.collection(name).count() for name in self.collection_names()}

    def schema_changes(self) -> list[str]:
        """What opening this store changed in the database's schema (``crm db upgrade``
        reports it), one line each. This default: nothing, for backends that keep their
        indexes in step every time they open (embedded stores)."""
        return []

    def compact(self) -> None:
        """Rewrite storage to reclaim space (``crm compact``). Optional."""
        raise NotImplementedError(f"{self.describe()} has nothing to compact")

    def backup(self, destination: str) -> None:
        """Write a consistent copy while the store stays open (``crm backup DEST``). Optional."""
        raise NotImplementedError(
            f"{self.describe()} cannot back itself up; use the database's own tools"
        )


class StoreLayer(Store):
    """A store wrapping another (the audit trail, encryption): it changes what collections do
    and passes everything else to ``inner``. Layers stack; the innermost is the backend."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities

    def declare(self, spec: CollectionSpec, personal: Iterable[str]) -> None:
        """Learn a declared collection and its personal fields (called by the CRM at open)."""

    def ensure_collection(self, spec: CollectionSpec) -> Collection:
        self.inner.ensure_collection(spec)
        return self.collection(spec.name)

    def collection_names(self) -> list[str]:
        return self.inner.collection_names()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.inner.transaction()

    def run_in_transaction(self, fn: Callable[..., T], *args: Any) -> T:
        return self.inner.run_in_transaction(fn, *args)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return self.inner.describe()

    def check(self, *, repair: bool = False, validate: Validator | None = None) -> dict[str, int]:
        if validate is None:
            return self.inner.check(repair=repair)
        check = validate  # the inner store passes documents as it stores them

        def stored(name: str, doc: dict[str, Any]) -> str | None:
            try:
                doc = self.as_read(name, doc)
            except Exception as exc:  # a damaged seal, say: the document does not load
                return f"it does not read ({type(exc).__name__}: {exc})"
            return check(name, doc)

        return self.inner.check(repair=repair, validate=stored)

    def as_read(self, name: str, doc: dict[str, Any]) -> dict[str, Any]:
        """A document of collection ``name`` as the inner store holds it, as this layer's
        readers get it (for ``check``'s ``validate``). Raises ``StorageError`` if it cannot."""
        return doc

    def schema_changes(self) -> list[str]:
        return self.inner.schema_changes()

    def compact(self) -> None:
        self.inner.compact()

    def backup(self, destination: str) -> None:
        self.inner.backup(destination)


class CollectionLayer(Collection):
    """A collection wrapping another: a store layer's (the transaction cache, the audit trail)
    or the kernel's gate. Every method goes to ``inner`` unless the layer overrides it.

    The reads a layer leaves alone are named in ``PASSED_READS``: each is set on the instance
    as ``inner``'s own bound method (itself the backend's when ``inner`` passes it too), so a
    query through a stack of such layers is one call to the backend, with nothing in between
    per layer. A layer that changes a read (decrypts, overlays, caches) overrides it and leaves
    it out of ``PASSED_READS``; one that derives a read from another (``find_one`` from
    ``find``) must leave both out. ``insert_encoded``, ``append`` and ``import_raw`` keep
    ``Collection``'s defaults, which go through the layer's own ``insert``/``update``: a layer
    overrides them to reach ``inner``'s."""

    PASSED_READS: tuple[str, ...] = ()
    READS = frozenset({"get", "find", "find_one", "iter", "count", "sum", "last", "indexes"})

    def __init__(self, inner: Collection) -> None:
        self.name = inner.name
        self.inner = inner
        for read in self.PASSED_READS:
            if read not in self.READS:
                raise TypeError(f"{type(self).__name__}.PASSED_READS: {read!r} is not a read")
            setattr(self, read, getattr(inner, read))

    def __getattr__(self, name: str) -> Any:  # what a backend adds beyond the contract
        if name == "inner":  # not set yet (during construction): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- reads: replaced on the instance by ``inner``'s when in ``PASSED_READS`` -------------

    def get(self, id: str) -> Doc:
        return self.inner.get(id)

    def find(
        self,
        filter: Filter | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Doc]:
        return self.inner.find(filter, sort=sort, limit=limit, skip=skip)

    def find_one(self, filter: Filter | None = None, *, sort: SortSpec | None = None) -> Doc | None:
        return self.inner.find_one(filter, sort=sort)

    def iter(self, filter: Filter | None = None, *, batch_size: int = 1000) -> Iterator[Doc]:
        return self.inner.iter(filter, batch_size=batch_size)

    def count(self, filter: Filter | None = None) -> int:
        return self.inner.count(filter)

    def sum(self, field: str, filter: Filter | None = None) -> int | float:
        return self.inner.sum(field, filter)

    def last(self, sequence: str) -> Doc | None:
        return self.inner.last(sequence)

    def indexes(self) -> list[IndexSpec]:
        return self.inner.indexes()

    # -- writes ------------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        return self.inner.insert(doc)

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self.inner.insert_many(docs)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        return self.inner.upsert_many(docs)

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        return self.inner.update(id, changes, expected_version=expected_version)

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self.inner.delete(id, expected_version=expected_version)

    def ensure_index(self, spec: IndexSpec) -> None:
        self.inner.ensure_index(spec)

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        return self.inner.claim(filter, owner=owner, until=until, now=now, sort=sort)

    def release(self, id: str, *, owner: str) -> None:
        self.inner.release(id, owner=owner)
