"""MongoDB storage backend for crmcore: ``[storage] backend = "mongodb"``."""

from crmcore_storage_mongo.options import MongoOptions
from crmcore_storage_mongo.store import MongoCollection, MongoStore, open_store

__all__ = ["MongoCollection", "MongoOptions", "MongoStore", "open_store"]
