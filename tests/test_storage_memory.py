"""The storage contract on the in-memory reference backend."""

import pytest

from crmcore.storage.memory import MemoryStore
from crmcore.testing.contract import StorageContract


class TestMemoryStore(StorageContract):
    @pytest.fixture
    def open_store(self):
        return MemoryStore
