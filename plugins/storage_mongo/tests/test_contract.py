"""The core's storage contract, unchanged, on mongomock and (when configured) on a real server."""

from __future__ import annotations

import pytest

from crmcore.testing.contract import StorageContract


class TestMongoOnMongomock(StorageContract):
    """Every contract test on the in-process imitation (see conftest for what it can show)."""

    @pytest.fixture
    def open_store(self, open_mock):
        return open_mock


class TestMongoOnRealServer(StorageContract):
    """The identical suite against ``CRM_TEST_MONGODB_URI`` (skipped, with the reason, unset).

    On a replica set this includes the transaction rollback test, which mongomock skips.
    """

    @pytest.fixture
    def open_store(self, open_real):
        return open_real
