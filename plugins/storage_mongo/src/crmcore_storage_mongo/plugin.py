"""The plugin module registered under the name ``storage_mongo``."""

from __future__ import annotations

from crmcore import hookimpl
from crmcore.storage import StorageBackend, StorageOptions, Store


def _open(options: StorageOptions) -> Store:
    # pymongo (and its asyncio client) is imported only when a MongoDB store is opened, not
    # on every start of a process that loads this plugin for a TinyDB store
    from crmcore_storage_mongo.store import open_store

    return open_store(options)


@hookimpl
def crm_storage_backends() -> list[StorageBackend]:
    """The ``mongodb`` backend: ``location`` is a MongoDB URI, ``[storage.options]`` tunes it."""
    return [
        StorageBackend(
            "mongodb",
            _open,
            "MongoDB via pymongo: several machines and workers, replica-set transactions, tenants",
        )
    ]
