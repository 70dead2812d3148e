"""MongoDB storage backend for crmcore: ``[storage] backend = "mongodb"``."""

from typing import TYPE_CHECKING, Any

from crmcore_storage_mongo.options import MongoOptions

if TYPE_CHECKING:
    from crmcore_storage_mongo.store import MongoCollection, MongoStore, open_store

__all__ = ["MongoCollection", "MongoOptions", "MongoStore", "open_store"]


def __getattr__(name: str) -> Any:
    """The store's names, imported on first use: pymongo is loaded when a MongoDB store is
    used, not by every process that has this plugin installed."""
    if name in ("MongoCollection", "MongoStore", "open_store"):
        from crmcore_storage_mongo import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
