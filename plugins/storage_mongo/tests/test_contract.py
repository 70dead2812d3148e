"""The core's storage contract, unchanged, on mongomock and (when configured) on a real server."""

from __future__ import annotations

import pytest

from crmcore.testing.contract import StorageContract


class TestMongoOnMongomock(StorageContract):
    """Every contract test on the in-process imitation (see conftest for what it can show)."""

    @pytest.fixture
    def open_store(self, open_mock):
        return open_mock

    def test_equality_is_json_equality_at_any_depth(self, coll):
        pytest.skip(
            "mongomock compares true equal to 1 (real MongoDB does not); this test runs "
            "against a real server in TestMongoOnRealServer"
        )


class TestMongoOnRealServer(StorageContract):
    """The identical suite against ``CRM_TEST_MONGODB_URI`` (skipped, with the reason, unset).

    On a replica set this includes the transaction rollback test, which mongomock skips.
    """

    @pytest.fixture
    def open_store(self, open_real):
        return open_real
