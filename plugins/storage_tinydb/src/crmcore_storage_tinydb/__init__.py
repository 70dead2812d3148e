"""The embedded default store: stock-TinyDB files, a checksummed journal, in-memory indexes.

Open it through configuration (``[storage] backend = "tinydb"``) or directly with
``open_tinydb_store(path)``. See ``docs/storage.md`` for the design and its guarantees.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_storage_tinydb.collection import TinyCollection
    from crmcore_storage_tinydb.options import TinyStoreOptions
    from crmcore_storage_tinydb.store import TinyStore, open_tinydb_store
    from crmcore_storage_tinydb.tinyquery import to_tinydb_query

__all__ = [
    "TinyCollection",
    "TinyStore",
    "TinyStoreOptions",
    "open_tinydb_store",
    "to_tinydb_query",
]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "TinyCollection": "crmcore_storage_tinydb.collection",
    "TinyStore": "crmcore_storage_tinydb.store",
    "TinyStoreOptions": "crmcore_storage_tinydb.options",
    "open_tinydb_store": "crmcore_storage_tinydb.store",
    "to_tinydb_query": "crmcore_storage_tinydb.tinyquery",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
