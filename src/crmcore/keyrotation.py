"""Key rotation: which key opens each sealed personal value, and re-sealing what is still
under a previous key (``crm encryption status`` / ``crm encryption rotate``; the procedure is
in docs/security.md, "Rotating the key")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from crmcore.audit import acting_as
from crmcore.encryption import (
    CURRENT,
    ENV_PREVIOUS_KEYS,
    UNSEALED,
    EncryptedStore,
    FieldCipher,
    encrypted_layer,
    is_sealed,
)
from crmcore.errors import (
    ConfigError,
    ConflictError,
    CrmError,
    DuplicateKeyError,
    NotFoundError,
    StorageError,
    ValidationError,
)
from crmcore.names import CUSTOMERS
from crmcore.retry import retrying
from crmcore.searchkeys import FIELD as SEARCH_FIELD
from crmcore.searchkeys import customer_keys
from crmcore.security import Resource
from crmcore.storage import Collection, batches
from crmcore.storage.base import Doc

if TYPE_CHECKING:
    from crmcore.app import CRM

Progress = Callable[[str, int], None]
BATCH = 500
ATTEMPTS = 5  # re-reads of a document that keeps changing while it is re-sealed
NO_PREVIOUS_KEY = (
    f"nothing to rotate from: no previous key is configured (list the old key "
    f"in core.encryption_previous_key_files or ${ENV_PREVIOUS_KEYS})"
)


@attrs.frozen
class KeyUsage:
    """How the personal values stored in one collection open (``key_status``)."""

    collection: str
    documents: int
    current: int  # sealed values the current key opens
    previous: tuple[int, ...]  # sealed values each previous key opens, in configured order
    unreadable: int  # sealed values no configured key opens: damaged, or their key is missing
    plaintext: int  # personal values stored unsealed (written before encryption was on)


@attrs.frozen
class CollectionRotation:
    """What ``rotate_keys`` did in one collection."""

    collection: str
    documents: int  # documents read
    resealed: int  # documents whose values under a previous key were sealed anew
    unreadable: int  # sealed values no configured key opens (left as they are)
    problems: tuple[str, ...] = ()  # documents that could not be re-sealed, and why


@attrs.frozen
class RotationReport:
    """What ``rotate_keys`` did; ``compact_error`` says why the store could not be compacted
    afterwards (the old seals then remain in the backend's journal until ``crm compact``)."""

    collections: tuple[CollectionRotation, ...]
    compact_error: str | None = None

    @property
    def resealed(self) -> int:
        return sum(c.resealed for c in self.collections)

    @property
    def unreadable(self) -> int:
        return sum(c.unreadable for c in self.collections)

    @property
    def problems(self) -> list[str]:
        return [p for c in self.collections for p in c.problems]


def sealed_documents(crm: CRM) -> dict[str, int]:
    """Documents per collection with personal fields (to size progress bars)."""
    layer = encrypted_layer(crm.store)
    return {name: layer.inner.collection(name).count() for name in layer.sealed_collections()}


def key_status(
    crm: CRM, *, progress: Progress | None = None, batch_size: int = BATCH
) -> list[KeyUsage]:
    """Which key opens each sealed personal value, per collection with personal fields.
    ``progress(collection, n)`` is called after each batch of ``n`` documents."""
    layer = encrypted_layer(crm.store)
    cipher = layer.cipher
    usage = []
    for name, fields in layer.sealed_collections().items():
        documents = plaintext = 0
        counts = [0] * (cipher.previous_keys + 2)  # current, each previous, none (last)
        for batch in batches(layer.inner.collection(name).iter(batch_size=batch_size), batch_size):
            for doc in batch:
                for field in fields:
                    value = doc.get(field)
                    if is_sealed(value):
                        index = cipher.key_of(value)
                        counts[-1 if index is None else index] += 1
                    elif value not in UNSEALED:
                        plaintext += 1
            documents += len(batch)
            if progress is not None:
                progress(name, len(batch))
        usage.append(
            KeyUsage(name, documents, counts[CURRENT], tuple(counts[1:-1]), counts[-1], plaintext)
        )
    return usage


def rotate_keys(
    crm: CRM, *, actor: str, progress: Progress | None = None, batch_size: int = BATCH
) -> RotationReport:
    """Re-seal with the current key every personal value still sealed under a previous key.

    Works beneath the audit layer, one version-checked update per document, read in batches:
    a document changed meanwhile is read again and retried, so a run never loses a concurrent
    write, and a run that was interrupted is finished by running it again. The audit trail
    gets one ``rekey`` entry per collection where documents were re-sealed (with their
    number), attributed to ``actor``. Values no configured key opens are counted and left
    alone. Afterwards the store is compacted where the backend can, so the old seals leave
    its files. ``ConfigError`` when encryption is off or no previous key is configured;
    ``PermissionDenied`` unless ``actor`` may ``encryption.rotate`` (admins).
    """
    layer = encrypted_layer(crm.store)
    if not layer.cipher.previous_keys:
        raise ConfigError(NO_PREVIOUS_KEY)
    return _reseal_all(crm, layer, actor, "encryption.rotate", "rekey", progress, batch_size)


def seal_plaintext(
    crm: CRM, *, actor: str, progress: Progress | None = None, batch_size: int = BATCH
) -> RotationReport:
    """Seal under the current key every personal value stored in the clear: written before
    encryption was turned on, or before its field was declared personal (``organisation``
    before crmcore declared it). Works as ``rotate_keys`` does (batches, version-checked
    updates beneath the audit layer, safe to interrupt and run again, compaction afterwards,
    so the clear values leave the embedded store's files); the audit trail gets one ``seal``
    entry per collection where documents were sealed. ``CollectionRotation.resealed`` counts
    the documents sealed. ``PermissionDenied`` unless ``actor`` may ``encryption.seal``."""
    layer = encrypted_layer(crm.store)
    return _reseal_all(crm, layer, actor, "encryption.seal", "seal", progress, batch_size)


def _reseal_all(
    crm: CRM,
    layer: EncryptedStore,
    actor: str,
    action: str,
    event: str,
    progress: Progress | None,
    batch_size: int,
) -> RotationReport:
    from crmcore.customers import require_actor

    actor = require_actor(actor)
    crm.authorize(actor, action, Resource("encryption key"))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(f"batch_size must be a whole number from 1, got {batch_size!r}")
    reports = []
    with acting_as(actor):
        for name, fields in layer.sealed_collections().items():
            reports.append(
                _rotate_collection(crm, layer, name, fields, progress, batch_size, event)
            )
        if SEARCH_FIELD in layer.blind_fields().get(CUSTOMERS, ()):
            _rehash_search_keys(layer, batch_size)
    compact_error = None
    try:
        crm.store.compact()
    except NotImplementedError:
        pass  # nothing on disk to rewrite
    except StorageError as exc:
        compact_error = str(exc)
    return RotationReport(tuple(reports), compact_error)


def _rotate_collection(
    crm: CRM,
    layer: EncryptedStore,
    name: str,
    fields: dict[str, bool],
    progress: Progress | None,
    batch_size: int,
    event: str = "rekey",
) -> CollectionRotation:
    """Re-seal (``rekey``: what a previous key sealed) or seal (``seal``: what is in the
    clear) one collection's personal values."""
    coll = layer.inner.collection(name)
    documents = resealed = unreadable = 0
    problems: list[str] = []
    finished = False
    try:
        for batch in batches(coll.iter(batch_size=batch_size), batch_size):
            for doc in batch:
                done, bad = _reseal(
                    coll, doc, fields, layer.cipher, problems, plaintext=event == "seal"
                )
                resealed += done
                unreadable += bad
            documents += len(batch)
            if progress is not None:
                progress(name, len(batch))
        finished = True
    finally:
        if resealed and crm.audit is not None:
            try:
                counted = "resealed" if event == "rekey" else "sealed"
                retrying(
                    crm,
                    crm.audit.record_event,
                    event,
                    name,
                    {counted: resealed, "complete": finished},
                )
            except CrmError:
                if finished:
                    raise
                # else the error that interrupted the run is the one to report
    return CollectionRotation(name, documents, resealed, unreadable, tuple(problems))


def _reseal(
    coll: Collection,
    doc: Doc,
    fields: dict[str, bool],
    cipher: FieldCipher,
    problems: list[str],
    *,
    plaintext: bool = False,
) -> tuple[int, int]:
    """Re-seal one document's stale values (``plaintext``: seal its values in the clear):
    (1 if it was changed else 0, unreadable)."""
    for _attempt in range(ATTEMPTS):
        changes: dict[str, str] = {}
        unreadable = 0
        for field, deterministic in fields.items():
            value = doc.get(field)
            if not is_sealed(value):
                if plaintext and value not in UNSEALED:
                    changes[field] = cipher.seal(value, deterministic=deterministic)
                continue
            if plaintext:
                continue
            found = cipher.try_open(value)
            if found is None:
                unreadable += 1
            elif found[0] != CURRENT:
                changes[field] = cipher.seal(found[1], deterministic=deterministic)
        if not changes:
            return 0, unreadable
        try:
            coll.update(doc["id"], changes, expected_version=doc["version"])
        except DuplicateKeyError as exc:
            problems.append(
                f"{coll.name} {doc['id']} was not re-sealed: {exc} (resolve the "
                "duplicate, then rotate again)"
            )
            return 0, unreadable
        except ConflictError:  # changed since it was read: read it again
            try:
                doc = coll.get(doc["id"])
            except NotFoundError:
                return 0, 0  # deleted meanwhile: nothing left to re-seal
            continue
        return 1, unreadable
    raise ConflictError(
        f"{coll.name} {doc['id']} kept changing while being re-sealed; run the rotation again"
    )


def _rehash_search_keys(layer: EncryptedStore, batch_size: int) -> int:
    """Make every customer's search keys again under the current key (they are keyed hashes,
    which cannot be re-sealed; keys stored in the clear before encryption was on are hashed
    too): beneath the audit layer, version-checked, a document whose fields no configured key
    opens left alone (the customers' report counts it). Returns how many changed."""
    coll = layer.inner.collection(CUSTOMERS)
    cipher = layer.cipher
    changed = 0
    for batch in batches(coll.iter(batch_size=batch_size), batch_size):
        for doc in batch:
            for _attempt in range(ATTEMPTS):
                opened = dict(doc)
                readable = True
                for field in ("name", "phone", "email"):
                    if is_sealed(opened.get(field)):
                        found = cipher.try_open(opened[field])
                        if found is None:
                            readable = False
                            break
                        opened[field] = found[1]
                if not readable:
                    break
                keys = [cipher.blind(k) for k in customer_keys(opened)]
                if doc.get(SEARCH_FIELD) == keys:
                    break
                try:
                    coll.update(doc["id"], {SEARCH_FIELD: keys}, expected_version=doc["version"])
                    changed += 1
                    break
                except ConflictError:
                    try:
                        doc = coll.get(doc["id"])
                    except NotFoundError:
                        break
    return changed
