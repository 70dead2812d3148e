"""Move everything from one store to another, and prove nothing changed (``crm migrate``).

``migrate(source, target)`` first takes the source's *manifest*: collection by collection, the
number of documents and a SHA-256 checksum over the canonical JSON of every document in id
order. It writes the manifest into the empty ``target`` (collection ``_migration``, state
``copying``), then copies every collection: the declared indexes first, then the documents
exactly as stored (ids, versions and every field) through the contract's ``import_raw``, in
id order and in batches. At the end it checks the target against the manifest, and against
what the copy read from the source; only a verified copy's manifest becomes ``verified``. The
``MigrationReport`` says what matched; ``report.ok`` is the verdict.

A run that stopped halfway leaves a target whose manifest still says ``copying``: it is
refused as a target unless ``resume=True`` (which copies only what is missing, once the
source is confirmed unchanged against the manifest), and refused as a *source*, so a partial
copy can never be migrated on and reported as complete.

Pass backends, not a CRM's layered store: the audit and encryption layers are looked through
(``.inner``), so the audit trail is copied rather than extended, and sealed personal fields
travel sealed. Stop workers first: ``migrate`` reads a moving source as it is, and the
verification then reports the difference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from crmcore.errors import StorageError, ValidationError
from crmcore.jsontext import json_canonical
from crmcore.storage import BulkError, Collection, IndexSpec, Store
from crmcore.storage.base import Doc, StoreLayer

Progress = Callable[[str, int], None]
BATCH = 1000
MANIFEST = "_migration"  # in the target: the source's manifest and the migration's state
MANIFEST_ID = "manifest"
COPYING = "copying"
VERIFIED = "verified"


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
    copied: int = 0  # documents written by this run (a resumed run skips those already there)
    source_changed: bool = False  # the source read while copying differed from its manifest

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and not self.source_changed
            and self.source_count == self.target_count
            and self.source_checksum == self.target_checksum
        )

    def problems(self) -> list[str]:
        out = [
            f"{self.name}: document {e.index} ({e.id}) was not copied: {e.message}"
            for e in self.errors
        ]
        if self.source_changed:
            out.append(
                f"{self.name}: the source changed while it was copied (stop workers "
                "and writers, then migrate again into an empty target)"
            )
        if self.source_count != self.target_count:
            out.append(
                f"{self.name}: {self.source_count} documents in the source, "
                f"{self.target_count} in the target"
            )
        elif self.source_checksum != self.target_checksum:
            out.append(f"{self.name}: the same number of documents, different contents")
        return out


@attrs.frozen
class MigrationReport:
    """What ``migrate`` copied and whether the copy verified."""

    source: str
    target: str
    collections: tuple[CollectionReport, ...]
    resumed: bool = False

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
        how = "resumed, " if self.resumed else ""
        return (
            f"{self.documents} documents in {len(self.collections)} collections from "
            f"{self.source} to {self.target}: {how}{verdict} against the source's manifest "
            "(counts and SHA-256 checksums)"
        )


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
    return {name: backend.collection(name).count() for name in _data_collections(backend)}


def manifest(source: Store, batch_size: int = BATCH) -> dict[str, dict[str, Any]]:
    """Count and SHA-256 checksum of every collection of ``source`` (its manifest)."""
    backend = _backend(source)
    out = {}
    for name in _data_collections(backend):
        count, digest = checksum(backend.collection(name).iter(batch_size=batch_size))
        out[name] = {"count": count, "sha256": digest}
    return out


def migrate(
    source: Store,
    target: Store,
    *,
    progress: Progress | None = None,
    batch_size: int = BATCH,
    resume: bool = False,
) -> MigrationReport:
    """Copy every collection of ``source`` into the empty ``target`` and verify the copy.

    Before copying, the source's manifest (each collection's count and checksum) is written
    into the target (collection ``_migration``, state ``copying``); the copy is verified
    against that manifest, and the state becomes ``verified`` only then. So a run that
    stopped halfway leaves a target that says so: ``resume=True`` continues it (copying only
    the documents still missing, after checking that the source still matches the manifest),
    and such a target is refused as the source of another migration.

    ``progress(collection, n)`` is called with 0 when a collection starts and then with the
    number of documents each batch copied. Raises ``StorageError`` (writing nothing) when the
    target already holds documents and ``resume`` is not set, or holds nothing to resume.
    """
    src, dst = _backend(source), _backend(target)
    if src is dst:
        raise ValidationError("the source and the target are the same store")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a whole number from 1, got {batch_size!r}")
    _refuse_partial_source(src)
    held = _manifest_of(dst)
    if resume:
        if held is None or held.get("state") != COPYING:
            state = (
                "no interrupted migration"
                if held is None
                else "a migration that already finished and verified"
            )
            raise StorageError(
                f"nothing to resume: the target {dst.describe()} holds {state}; "
                "migrate into an empty store without --resume"
            )
        expected = _from_rows(held.get("collections"))
        current = manifest(src, batch_size)
        if current != expected:
            changed = sorted(
                n for n in set(current) | set(expected) if current.get(n) != expected.get(n)
            )
            raise StorageError(
                "the source changed since the interrupted run (collections: "
                f"{', '.join(changed)}); start again into an empty target"
            )
    else:
        occupied = {
            name: n for name in dst.collection_names() if (n := dst.collection(name).count())
        }
        if occupied:
            listed = ", ".join(f"{name} ({n})" for name, n in sorted(occupied.items()))
            hint = (
                " (an interrupted migration: pass --resume to finish it)"
                if held is not None and held.get("state") == COPYING
                else ""
            )
            raise StorageError(
                f"the target {dst.describe()} is not empty: {listed}; migrate "
                f"into an empty store{hint}"
            )
        expected = manifest(src, batch_size)
        dst.collection(MANIFEST).insert(
            {
                "id": MANIFEST_ID,
                "state": COPYING,
                "source": src.describe(),
                "collections": _as_rows(expected),
            }
        )
    reports = []
    for name in sorted(expected):
        reports.append(
            _copy_collection(
                src.collection(name),
                dst.collection(name),
                name,
                expected[name],
                progress,
                batch_size,
            )
        )
    report = MigrationReport(src.describe(), dst.describe(), tuple(reports), resume)
    if report.ok:
        record = dst.collection(MANIFEST).get(MANIFEST_ID)
        dst.collection(MANIFEST).update(
            MANIFEST_ID, {"state": VERIFIED}, expected_version=record["version"]
        )
    return report


def _refuse_partial_source(src: Store) -> None:
    held = _manifest_of(src)
    if held is not None and held.get("state") != VERIFIED:
        raise StorageError(
            f"the source {src.describe()} is an incomplete copy: the migration "
            f"from {held.get('source')} into it did not finish; finish it first "
            "(crm migrate --resume into this store)"
        )


def _manifest_of(store: Store) -> dict[str, Any] | None:
    if MANIFEST not in store.collection_names():
        return None
    return store.collection(MANIFEST).find_one({"id": MANIFEST_ID})


def _as_rows(found: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    # A list, not a mapping keyed by name: collection names hold dots, which some backends
    # read as paths inside stored documents.
    return [{"name": name, **found[name]} for name in sorted(found)]


def _from_rows(rows: Any) -> dict[str, dict[str, Any]]:
    return {r["name"]: {"count": r["count"], "sha256": r["sha256"]} for r in rows or []}


def _data_collections(store: Store) -> list[str]:
    return sorted(n for n in store.collection_names() if n != MANIFEST)


def _copy_collection(
    src: Collection,
    dst: Collection,
    name: str,
    expected: dict[str, Any],
    progress: Progress | None,
    batch_size: int,
) -> CollectionReport:
    specs = tuple(src.indexes())
    for spec in specs:
        dst.ensure_index(spec)
    if progress is not None:
        progress(name, 0)
    errors: list[BulkError] = []
    digest = hashlib.sha256()
    read = copied = 0
    present = _ids(dst.iter(batch_size=batch_size))  # id order, as the source is read
    held = next(present, None)
    pending: list[tuple[int, Doc]] = []

    def flush() -> None:
        nonlocal copied
        if not pending:
            return
        result = dst.import_raw([doc for _, doc in pending])
        errors.extend(attrs.evolve(e, index=pending[e.index][0]) for e in result.errors)
        copied += len(pending)
        if progress is not None:
            progress(name, len(pending))
        pending.clear()

    for doc in src.iter(batch_size=batch_size):
        digest.update(canonical(doc))
        digest.update(b"\n")
        while held is not None and held < doc["id"]:
            held = next(present, None)
        if held != doc["id"]:  # not copied yet (a resumed run skips what is there)
            pending.append((read, doc))
            if len(pending) >= batch_size:
                flush()
        read += 1
    flush()
    target_count, target_sum = checksum(dst.iter(batch_size=batch_size))
    exact = type(dst).import_raw is not Collection.import_raw  # a direct write, not the default
    return CollectionReport(
        name,
        expected["count"],
        target_count,
        expected["sha256"],
        target_sum,
        specs,
        exact,
        tuple(errors),
        copied=copied,
        source_changed=(read, digest.hexdigest()) != (expected["count"], expected["sha256"]),
    )


def _ids(docs: Iterable[Doc]) -> Iterator[str]:
    return (d["id"] for d in docs)


def _backend(store: Store) -> Store:
    while isinstance(store, StoreLayer):
        store = store.inner
    return store
