"""The storage contract every backend implements, and the in-memory reference backend."""

from crmcore.storage.base import (
    LEASE_OWNER,
    LEASE_UNTIL,
    BulkError,
    BulkResult,
    Capabilities,
    Collection,
    CollectionLayer,
    CollectionSpec,
    IndexSpec,
    SortSpec,
    StorageBackend,
    StorageOptions,
    Store,
    StoreLayer,
    batches,
)

__all__ = [
    "LEASE_OWNER",
    "LEASE_UNTIL",
    "BulkError",
    "BulkResult",
    "Capabilities",
    "Collection",
    "CollectionLayer",
    "CollectionSpec",
    "IndexSpec",
    "SortSpec",
    "StorageBackend",
    "StorageOptions",
    "Store",
    "StoreLayer",
    "batches",
]
