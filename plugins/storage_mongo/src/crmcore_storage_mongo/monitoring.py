"""pymongo's command and pool events as structlog events and process-wide counters.

``listeners(slow_ms)`` is passed to every ``MongoClient`` (``event_listeners``). What is logged
(logger ``storage_mongo``, on stderr with the rest of the logs):

- ``mongo.slow_operation`` (warning): a command that took ``slow_ms`` or longer: its name,
  database, collection and milliseconds;
- ``mongo.retry`` (warning): a command run again by the driver (retryable reads and writes
  after a failover or a network error), with the failed attempt's error code;
- ``mongo.command_failed`` (info): a command the server refused, by error code name;
- ``mongo.pool_wait`` (warning): a connection checkout that waited ``slow_ms`` or longer (the
  pool is too small for the process's concurrency: raise ``max_pool_size``);
- ``mongo.pool_checkout_failed`` (warning) and ``mongo.pool_cleared`` (warning).

Never logged: command documents, replies or error messages, which can quote customer data;
only names, codes and durations. ``METRICS.snapshot()`` gives the counters (the store logs
them as ``mongo.metrics`` when it closes).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any

from pymongo import monitoring

from crmcore.logs import get_logger

log = get_logger("storage_mongo")

_REMEMBERED_FAILURES = 1000


class Metrics:
    """Counters over every client of this process (thread-safe)."""

    FIELDS = (
        "commands",
        "failed",
        "retries",
        "slow",
        "pool_checkouts",
        "pool_waits_slow",
        "pool_wait_ms_max",
        "pool_checkout_failures",
        "pool_cleared",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(self.FIELDS, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] += amount

    def peak(self, name: str, value: int) -> None:
        with self._lock:
            self._values[name] = max(self._values[name], value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


METRICS = Metrics()


def _ms(seconds: float | None) -> int:
    """A pool event's duration (seconds, None on older drivers) in milliseconds."""
    return 0 if seconds is None else int(seconds * 1000)


def _command_ms(event: Any) -> int:
    """A command event's duration in milliseconds."""
    return int(event.duration_micros) // 1000


class CommandMonitor(monitoring.CommandListener):
    """Slow, failed and retried commands."""

    def __init__(self, slow_ms: int, metrics: Metrics = METRICS) -> None:
        self.slow_ms = slow_ms
        self.metrics = metrics
        self._failed: OrderedDict[Any, str] = OrderedDict()
        self._collections: OrderedDict[Any, str] = OrderedDict()
        self._lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.metrics.add("commands")
        target = event.command.get(event.command_name) if event.command else None
        with self._lock:
            if isinstance(target, str):
                self._remember(self._collections, event.request_id, target)
            failure = self._failed.pop(event.operation_id, None)
        if failure is not None:
            self.metrics.add("retries")
            log.warning(
                "mongo.retry",
                command=event.command_name,
                database=event.database_name,
                after=failure,
            )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self._lock:
            collection = self._collections.pop(event.request_id, None)
        ms = _command_ms(event)
        if ms >= self.slow_ms:
            self.metrics.add("slow")
            log.warning(
                "mongo.slow_operation",
                command=event.command_name,
                database=event.database_name,
                collection=collection,
                ms=ms,
            )

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self.metrics.add("failed")
        failure = event.failure or {}
        name = str(failure.get("codeName") or failure.get("code") or "network error")
        with self._lock:
            collection = self._collections.pop(event.request_id, None)
            self._remember(self._failed, event.operation_id, name)
        log.info(
            "mongo.command_failed",
            command=event.command_name,
            database=event.database_name,
            collection=collection,
            error=name,
            ms=_command_ms(event),
        )

    @staticmethod
    def _remember(table: OrderedDict[Any, str], key: Any, value: str) -> None:
        table[key] = value
        while len(table) > _REMEMBERED_FAILURES:
            table.popitem(last=False)


class PoolMonitor(monitoring.ConnectionPoolListener):
    """Waits for a connection, failed checkouts, cleared pools."""

    def __init__(self, slow_ms: int, metrics: Metrics = METRICS) -> None:
        self.slow_ms = slow_ms
        self.metrics = metrics

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        self.metrics.add("pool_checkouts")
        waited = _ms(getattr(event, "duration", None))
        self.metrics.peak("pool_wait_ms_max", waited)
        if waited >= self.slow_ms and waited > 0:
            self.metrics.add("pool_waits_slow")
            log.warning("mongo.pool_wait", server=_address(event.address), ms=waited)

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        self.metrics.add("pool_checkout_failures")
        log.warning(
            "mongo.pool_checkout_failed",
            server=_address(event.address),
            reason=str(event.reason),
            ms=_ms(getattr(event, "duration", None)),
        )

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        self.metrics.add("pool_cleared")
        log.warning("mongo.pool_cleared", server=_address(event.address))

    # The remaining pool events carry nothing worth a log line.
    def pool_created(self, event: Any) -> None: ...
    def pool_ready(self, event: Any) -> None: ...
    def pool_closed(self, event: Any) -> None: ...
    def connection_created(self, event: Any) -> None: ...
    def connection_ready(self, event: Any) -> None: ...
    def connection_closed(self, event: Any) -> None: ...
    def connection_check_out_started(self, event: Any) -> None: ...
    def connection_checked_in(self, event: Any) -> None: ...


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) == 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


@functools.cache
def listeners(slow_ms: int) -> list[Any]:
    """The listeners for a client; the same objects for the same threshold, so that stores
    with equal options still share one client."""
    return [CommandMonitor(slow_ms), PoolMonitor(slow_ms)]
