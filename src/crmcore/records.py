"""Typed access to a plugin's own collection of attrs records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import attrs

from crmcore.compactdocs import without_defaults
from crmcore.converter import from_doc, to_doc
from crmcore.storage import Collection, SortSpec
from crmcore.text import check_encodable


class Record(Protocol):
    """What ``Records`` needs of a record: its id and the version it was read at."""

    @property
    def id(self) -> str: ...

    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=Record)


class Records(Generic[T]):
    """A collection whose documents are instances of attrs class ``T``.

    ``T`` must have ``id: str`` and ``version: int`` fields. Writes check versions: ``update``
    raises ``ConflictError`` if someone else changed the record since it was read.
    ``compact``: a new record is stored without the fields that hold their blank default
    (null, empty: ``crmcore.compactdocs``), which reading gives back; for a collection whose
    raw readers (queries, claims, ``get``) read a missing field as null, as every backend's
    queries do.
    """

    def __init__(self, collection: Collection, cls: type[T], *, compact: bool = False) -> None:
        self.collection = collection
        self.cls = cls
        self.compact = compact

    def insert(self, record: T) -> T:
        """Store a new record; text that UTF-8 cannot encode is refused, naming the field."""
        doc = to_doc(record)
        if self.compact:
            doc = without_defaults(self.cls, doc)
        check_encodable(doc, self.cls.__name__)
        return from_doc(self.cls, self.collection.insert(doc))

    def get(self, id: str) -> T:
        return from_doc(self.cls, self.collection.get(id))

    def update(self, record: T, **changes: Any) -> T:
        """Apply ``changes`` to ``record`` (validated by its attrs class) and store them."""
        new = attrs.evolve(record, **changes)  # type: ignore[misc]
        doc = to_doc(new)
        fields = {k: doc[k] for k in changes}
        check_encodable(fields, self.cls.__name__)
        stored = self.collection.update(record.id, fields, expected_version=record.version)
        return from_doc(self.cls, stored)

    def replace(self, record: T, new: T, *, fields: Iterable[str] | None = None) -> T:
        """Store ``new``, a changed copy of ``record`` already checked by its attrs class
        (``attrs.evolve``), writing only the fields that differ (of ``fields`` when given)
        with the version ``record`` was read at; ``record`` itself when none differs. Saves
        ``update``'s second build and check of a record the caller has built already."""
        if new.id != record.id:
            raise ValueError(f"replace: {new.id!r} is not a copy of {record.id!r}")
        names = fields if fields is not None else (f.name for f in attrs.fields(self.cls))  # type: ignore[arg-type]
        changed = [
            k for k in names if k not in ("id", "version") and getattr(new, k) != getattr(record, k)
        ]
        if not changed:
            return record
        doc = to_doc(new)
        values = {k: doc[k] for k in changed}
        check_encodable(values, self.cls.__name__)
        stored = self.collection.update(record.id, values, expected_version=record.version)
        return from_doc(self.cls, stored)

    def delete(self, record: T) -> None:
        self.collection.delete(record.id, expected_version=record.version)

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[T]:
        return [
            from_doc(self.cls, d)
            for d in self.collection.find(filter, sort=sort, limit=limit, skip=skip)
        ]

    def find_one(
        self, filter: Mapping[str, Any] | None = None, *, sort: SortSpec | None = None
    ) -> T | None:
        doc = self.collection.find_one(filter, sort=sort)
        return None if doc is None else from_doc(self.cls, doc)

    def iter(self, filter: Mapping[str, Any] | None = None) -> Iterator[T]:
        for doc in self.collection.iter(filter):
            yield from_doc(self.cls, doc)

    def count(self, filter: Mapping[str, Any] | None = None) -> int:
        return self.collection.count(filter)

    def sum(self, field: str, filter: Mapping[str, Any] | None = None) -> int | float:
        """The sum of a numeric field over the matching records (``Collection.sum``)."""
        return self.collection.sum(field, filter)
