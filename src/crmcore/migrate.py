"""Move everything from one store to another, and prove nothing changed (``crm migrate``).

``migrate(source, target)`` copies every collection of ``source`` into an empty ``target``:
the declared indexes first, then the documents exactly as stored (ids, versions and every
field) through the contract's ``import_raw``, in id order and in batches. Afterwards it
re-reads both sides and compares, collection by collection, the number of documents and a
SHA-256 checksum over the canonical JSON of every document in id order. The
``MigrationReport`` says what matched; ``report.ok`` is the verdict.

Pass backends, not a CRM's layered store: the audit and encryption layers are looked through
(``.inner``), so the audit trail is copied rather than extended, and sealed personal fields
travel sealed. Stop workers first: ``migrate`` reads a moving source as it is, and the
verification then reports the difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import attrs

from crmcore.errors import StorageError, ValidationError
from crmcore.jsontext import json_canonical
from crmcore.storage import BulkError, BulkResult, Collection, IndexSpec, Store, batches
from crmcore.storage.base import Doc, StoreLayer

Progress = Callable[[str, int], None]
BATCH = 1000


@attrs.frozen
class CollectionReport:
    """How one collection moved."""

    name: str
    source_count: int
    target_count: int
    source_checksum: str
    target_checksum: str
    indexes: tuple[IndexSpec, ...]
    exact_versions: bool  # True: the target stored versions verbatim (``import_raw``)
    errors: tuple[BulkError, ...] = ()

    @property
    def ok(self) -> bool:
        return (not self.errors and self.source_count == self.target_count
                and self.source_checksum == self.target_checksum)

    def problems(self) -> list[str]:
        out = [f"{self.name}: document {e.index} ({e.id}) was not copied: {e.message}"
               for e in self.errors]
        if self.source_count != self.target_count:
            out.append(f"{self.name}: {self.source_count} documents in the source, "
                       f"{self.target_count} in the target")
        elif self.source_checksum != self.target_checksum:
            out.append(f"{self.name}: the same number of documents, different contents")
        return out


@attrs.frozen
class MigrationReport:
    """What ``migrate`` copied and whether the copy verified."""

    source: str
    target: str
    collections: tuple[CollectionReport, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.collections)

    @property
    def documents(self) -> int:
        return sum(c.target_count for c in self.collections)

    def problems(self) -> list[str]:
        return [p for c in self.collections for p in c.problems()]

    def summary(self) -> str:
        verdict = "verified" if self.ok else "NOT verified"
        return (f"{self.documents} documents in {len(self.collections)} collections from "
                f"{self.source} to {self.target}: {verdict} (counts and SHA-256 checksums)")


def canonical(doc: Doc) -> bytes:
    """One document as canonical JSON: sorted keys, no spaces, UTF-8."""
    return json_canonical(doc).encode()


def checksum(docs: Iterable[Doc]) -> tuple[int, str]:
    """How many documents, and the SHA-256 over their canonical JSON, one per line, in order."""
    digest = hashlib.sha256()
    count = 0
    for doc in docs:
        digest.update(canonical(doc))
        digest.update(b"\n")
        count += 1
    return count, digest.hexdigest()


def plan(source: Store) -> dict[str, int]:
    """Documents per collection to copy (for sizing progress bars)."""
    backend = _backend(source)
    return {name: backend.collection(name).count() for name in backend.collection_names()}


def migrate(source: Store, target: Store, *, progress: Progress | None = None,
            batch_size: int = BATCH) -> MigrationReport:
    """Copy every collection of ``source`` into the empty ``target`` and verify the copy.

    ``progress(collection, n)`` is called with 0 when a collection starts and then with the
    number of documents each batch copied. Raises ``StorageError`` (writing nothing) when the
    target already holds documents.
    """
    src, dst = _backend(source), _backend(target)
    if src is dst:
        raise ValidationError("the source and the target are the same store")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a whole number from 1, got {batch_size!r}")
    occupied = {name: n for name in dst.collection_names()
                if (n := dst.collection(name).count())}
    if occupied:
        held = ", ".join(f"{name} ({n})" for name, n in sorted(occupied.items()))
        raise StorageError(f"the target {dst.describe()} is not empty: {held}; migrate into an "
                           "empty store")
    reports = []
    for name in sorted(src.collection_names()):
        reports.append(_copy_collection(src.collection(name), dst.collection(name), name,
                                        progress, batch_size))
    return MigrationReport(src.describe(), dst.describe(), tuple(reports))


def _copy_collection(src: Collection, dst: Collection, name: str, progress: Progress | None,
                     batch_size: int) -> CollectionReport:
    specs = tuple(src.indexes())
    for spec in specs:
        dst.ensure_index(spec)
    write: Callable[[list[Doc]], BulkResult] = dst.import_raw
    if progress is not None:
        progress(name, 0)
    errors: list[BulkError] = []
    done = 0
    for batch in batches(src.iter(batch_size=batch_size), batch_size):
        result = write(batch)
        errors.extend(attrs.evolve(e, index=e.index + done) for e in result.errors)
        done += len(batch)
        if progress is not None:
            progress(name, len(batch))
    source_count, source_sum = checksum(src.iter(batch_size=batch_size))
    target_count, target_sum = checksum(dst.iter(batch_size=batch_size))
    exact = type(dst).import_raw is not Collection.import_raw  # a direct write, not the default
    return CollectionReport(name, source_count, target_count, source_sum, target_sum, specs,
                            exact, tuple(errors))


def _backend(store: Store) -> Store:
    while isinstance(store, StoreLayer):
        store = store.inner
    return store
