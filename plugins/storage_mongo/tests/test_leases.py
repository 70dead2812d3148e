"""Leases on the server's clock: a worker whose clock is wrong cannot steal a live lease.

On mongomock, ``$$NOW`` is evaluated by the plugin's adapter on the imitation server's clock
(``server_clock``), which the tests move by hand; what is verified there is the backend's
filter and update pipeline under that emulation. ``TestOnRealServer`` runs the skew test where
MongoDB itself evaluates ``$$NOW`` (when ``CRM_TEST_MONGODB_URI`` is set).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_storage_mongo.store import open_store

from crmcore.clock import ManualClock, SystemClock
from crmcore.converter import iso
from crmcore.storage import StorageOptions
from crmcore.testing import START

LEASE = timedelta(minutes=5)
SKEW = timedelta(hours=1)


def _task(coll, n: int = 0, **extra):
    return coll.insert({"id": f"t{n:03d}", "status": "open", "n": n, **extra})


def test_auto_uses_the_server_clock_only_on_the_system_clock(mock_factory):
    on_system = open_store(
        StorageOptions("mongodb://h", {}, SystemClock()), client_factory=mock_factory
    )
    simulated = open_store(
        StorageOptions("mongodb://h", {}, ManualClock(START)), client_factory=mock_factory
    )
    forced = open_store(
        StorageOptions("mongodb://h", {"lease_clock": "caller"}, SystemClock()),
        client_factory=mock_factory,
    )
    try:
        assert on_system.server_leases
        assert not simulated.server_leases  # one injected clock: no skew, simulated time
        assert not forced.server_leases
    finally:
        for store in (on_system, simulated, forced):
            store.close()


class TestOnMongomock:
    @pytest.fixture
    def coll(self, open_mock):
        return open_mock(lease_clock="server").collection("tasks")

    def test_a_worker_whose_clock_runs_ahead_cannot_steal_a_live_lease(self, coll, server_clock):
        _task(coll)
        a = coll.claim({"status": "open"}, owner="A", until=START + LEASE, now=START)
        assert a["lease_owner"] == "A"
        assert a["lease_until"] == iso(server_clock.now() + LEASE)  # from the server's time
        ahead = START + SKEW  # B's clock: an hour fast; on its own clock A's lease has ended
        assert coll.claim({"status": "open"}, owner="B", until=ahead + LEASE, now=ahead) is None
        assert coll.get("t000")["lease_owner"] == "A"
        server_clock.advance(LEASE)  # the lease ends on the server's clock
        b = coll.claim({"status": "open"}, owner="B", until=ahead + LEASE, now=ahead)
        assert b["lease_owner"] == "B"
        assert b["lease_until"] == iso(server_clock.now() + LEASE)

    def test_a_worker_whose_clock_runs_behind_still_takes_an_ended_lease(self, coll, server_clock):
        _task(coll)
        coll.claim({}, owner="A", until=START + LEASE, now=START)
        server_clock.advance(LEASE + timedelta(seconds=1))
        behind = START - SKEW  # on C's clock A's lease runs for another hour
        c = coll.claim({}, owner="C", until=behind + LEASE, now=behind)
        assert c is not None and c["lease_owner"] == "C"

    def test_the_owner_renews_and_release_frees(self, coll, server_clock):
        _task(coll)
        coll.claim({}, owner="A", until=START + LEASE, now=START)
        server_clock.advance(minutes=1)
        again = coll.claim({}, owner="A", until=START + LEASE, now=START)
        assert again["lease_until"] == iso(server_clock.now() + LEASE)
        assert again["version"] == 3
        coll.release("t000", owner="A")
        assert coll.claim({}, owner="B", until=START + LEASE, now=START)["lease_owner"] == "B"

    def test_filters_checked_in_python_lease_on_the_server_clock_too(self, coll, server_clock):
        _task(coll, 0, tags=["a", "b"])
        _task(coll, 1, tags=["a"])
        whole_list = {"tags": ["a", "b"]}  # not exact in MongoDB: re-checked by the reference
        a = coll.claim(whole_list, owner="A", until=START + LEASE, now=START)
        assert a["id"] == "t000"
        ahead = START + SKEW
        assert coll.claim(whole_list, owner="B", until=ahead + LEASE, now=ahead) is None
        server_clock.advance(LEASE)
        assert coll.claim(whole_list, owner="B", until=ahead, now=ahead)["lease_owner"] == "B"

    def test_an_owner_name_that_looks_like_a_field_path_is_stored_as_written(self, coll):
        _task(coll)
        got = coll.claim({}, owner="$lease_owner", until=START + LEASE, now=START)
        assert got["lease_owner"] == "$lease_owner"


class TestOnRealServer:
    """MongoDB evaluates ``$$NOW``: the skewed worker gets nothing while the lease runs."""

    @pytest.fixture
    def coll(self, open_real):
        return open_real(lease_clock="server").collection("tasks")

    def test_a_worker_whose_clock_runs_ahead_cannot_steal_a_live_lease(self, coll):
        _task(coll)
        now = SystemClock().now()
        a = coll.claim({}, owner="A", until=now + LEASE, now=now)
        assert a["lease_owner"] == "A"
        ahead = now + SKEW
        assert coll.claim({}, owner="B", until=ahead + LEASE, now=ahead) is None
        coll.release("t000", owner="A")
        assert coll.claim({}, owner="B", until=ahead + LEASE, now=ahead)["lease_owner"] == "B"
