"""The core storage contract, unchanged, on the embedded store (in both durability modes)."""

from __future__ import annotations

import pytest
from crmcore_storage_tinydb import TinyStore, TinyStoreOptions

from crmcore.testing.contract import StorageContract


class TestTinyStore(StorageContract):
    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: TinyStore(tmp_path / "db")


class TestTinyStoreFsync(StorageContract):
    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: TinyStore(tmp_path / "db", TinyStoreOptions(durability="fsync"))


class TestTinyStoreCompressed(StorageContract):
    """Every collection of more than two documents kept compressed (see texts.py)."""

    @pytest.fixture
    def open_store(self, tmp_path):
        return lambda: TinyStore(tmp_path / "db", TinyStoreOptions(compress_from=3))
