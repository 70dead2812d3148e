"""The embedded default store: stock-TinyDB files, a checksummed journal, in-memory indexes.

Open it through configuration (``[storage] backend = "tinydb"``) or directly with
``open_tinydb_store(path)``. See ``docs/storage.md`` for the design and its guarantees.
"""

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
