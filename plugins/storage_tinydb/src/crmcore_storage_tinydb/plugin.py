"""The plugin module: registers the ``tinydb`` storage backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import hookimpl

if TYPE_CHECKING:
    from crmcore.storage import StorageBackend, StorageOptions, Store


def open_store(options: StorageOptions) -> Store:
    """The backend factory: validate ``[storage.options]`` and open the store folder."""
    from crmcore.config import structure_section
    from crmcore.errors import ConfigError
    from crmcore_storage_tinydb.options import TinyStoreOptions
    from crmcore_storage_tinydb.store import TinyStore

    settings = structure_section(options.options, TinyStoreOptions, "storage.options")
    if not options.location:
        raise ConfigError(
            "storage.location: the tinydb backend needs a folder (for example 'crm-data')"
        )
    if "://" in options.location:
        raise ConfigError(
            f"storage.location: the tinydb backend takes a folder path, not a "
            f"URI ({options.location!r})"
        )
    return TinyStore(options.location, settings)


@hookimpl
def crm_storage_backends() -> list[StorageBackend]:
    """The embedded default store."""
    from crmcore.storage import StorageBackend

    return [
        StorageBackend(
            "tinydb",
            open_store,
            "embedded files in a folder (stock TinyDB format plus a journal); "
            "several processes may share it",
        )
    ]
