"""MongoDB storage backend for crmcore: ``[storage] backend = "mongodb"``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_storage_mongo.options import MongoOptions
    from crmcore_storage_mongo.store import MongoCollection, MongoStore, open_store

__all__ = ["MongoCollection", "MongoOptions", "MongoStore", "open_store"]

# Imported on first use (PEP 562): pymongo is loaded when a MongoDB store is used, not by
# every process that has this plugin installed.
_EXPORTS = {
    "MongoCollection": "crmcore_storage_mongo.store",
    "MongoOptions": "crmcore_storage_mongo.options",
    "MongoStore": "crmcore_storage_mongo.store",
    "open_store": "crmcore_storage_mongo.store",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
