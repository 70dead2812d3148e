"""The plugin module registered under the name ``storage_mongo``."""

from __future__ import annotations

from crmcore import hookimpl
from crmcore.storage import StorageBackend, StorageOptions, Store
from crmcore_storage_mongo.store import open_store


def _open(options: StorageOptions) -> Store:
    return open_store(options)


@hookimpl
def crm_storage_backends() -> list[StorageBackend]:
    """The ``mongodb`` backend: ``location`` is a MongoDB URI, ``[storage.options]`` tunes it."""
    return [StorageBackend(
        "mongodb", _open,
        "MongoDB via pymongo: several machines and workers, replica-set transactions, tenants")]
