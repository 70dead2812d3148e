"""Opening MongoDB: the client factory, clients shared between stores, and what the server can do.

A ``MongoClient`` holds a connection pool and monitoring threads, so stores opened on the same
URI with the same options (one per tenant, say) share one client; it closes with the last store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import pymongo
from pymongo.errors import (
    ConfigurationError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
)

from crmcore.errors import ConfigError, StorageError
from crmcore_storage_mongo.options import hosts, redact

ClientFactory = Callable[..., Any]

MIN_WIRE_VERSION = 13  # MongoDB 5.0: dotted field names inside stored values, $type lists …
WIRE_TRANSACTIONS_REPLICA_SET = 7  # 4.0
WIRE_TRANSACTIONS_SHARDED = 8  # 4.2
WIRE_JSON_SCHEMA = 6  # 3.6
AUTH_FAILED = 18


def pymongo_client(uri: str, **kwargs: Any) -> Any:
    """The production client."""
    return pymongo.MongoClient(uri, **kwargs)


#: The factory stores use unless one is passed to them. Only tests replace it (to run the same
#: code on mongomock, which has no server to connect to).
client_factory: ClientFactory = pymongo_client


@attrs.define
class _Shared:
    client: Any
    refs: int


_clients: dict[tuple[Any, ...], _Shared] = {}
_lock = threading.Lock()


def acquire(uri: str, kwargs: Mapping[str, Any], factory: ClientFactory | None = None) -> Any:
    """A client for ``uri`` and ``kwargs``: the shared one if open, else a new one."""
    make = factory or client_factory
    key = (make, uri, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    with _lock:
        shared = _clients.get(key)
        if shared is not None:
            shared.refs += 1
            return shared.client
        try:
            client = make(uri, **kwargs)
        except (ConfigurationError, TypeError, ValueError) as exc:
            # The keyword options were validated already: the URI (or an option in it) is bad.
            raise ConfigError(
                f"storage.location: {redact(uri)} is not a usable MongoDB URI: "
                f"{_scrub(str(exc), uri)}"
            ) from None
        _clients[key] = _Shared(client, 1)
        return client


def release(client: Any) -> None:
    """Give a client back; the last holder closes it."""
    with _lock:
        for key, shared in list(_clients.items()):
            if shared.client is client:
                shared.refs -= 1
                if shared.refs <= 0:
                    del _clients[key]
                    client.close()
                return


def shared_clients() -> int:
    """How many distinct clients are open (for tests and ``describe``)."""
    with _lock:
        return len(_clients)


@attrs.frozen
class ServerInfo:
    """What the server said about itself (``hello``)."""

    answered: bool  # False: it did not describe itself (an emulator); claim nothing
    set_name: str | None = None
    sharded: bool = False
    max_wire_version: int = 0
    sessions: bool = False

    @property
    def transactions(self) -> bool:
        """Multi-document transactions: replica set (4.0+) or sharded cluster (4.2+)."""
        if not (self.answered and self.sessions):
            return False
        if self.sharded:
            return self.max_wire_version >= WIRE_TRANSACTIONS_SHARDED
        return self.set_name is not None and self.max_wire_version >= WIRE_TRANSACTIONS_REPLICA_SET

    @property
    def schema_validation(self) -> bool:
        return self.answered and self.max_wire_version >= WIRE_JSON_SCHEMA

    def describe(self) -> str:
        if not self.answered:
            return "server features unknown: it did not answer 'hello'"
        if self.sharded:
            return "sharded cluster"
        if self.set_name:
            return f"replica set {self.set_name}"
        return "standalone server"


def probe(client: Any, uri: str, timeout_ms: int) -> ServerInfo:
    """Reach the server (within the selection timeout) and ask what it is."""
    try:
        client.admin.command("ping")
    except OperationFailure as exc:
        if exc.code == AUTH_FAILED:
            raise StorageError(
                f"MongoDB at {hosts(uri)}: authentication failed; check the "
                "user and password in the URI"
            ) from None
        raise StorageError(f"MongoDB at {hosts(uri)} refused 'ping': {exc}") from None
    except ConnectionFailure as exc:  # ServerSelectionTimeoutError among others
        raise StorageError(
            f"MongoDB at {hosts(uri)} is unreachable (gave up after "
            f"{timeout_ms / 1000:g} s): {_short(exc)}"
        ) from None
    except PyMongoError as exc:
        raise StorageError(f"MongoDB at {hosts(uri)}: {_short(exc)}") from None
    hello = _hello(client)
    if hello is None:
        return ServerInfo(answered=False)
    info = ServerInfo(
        answered=True,
        set_name=hello.get("setName"),
        sharded=hello.get("msg") == "isdbgrid",
        max_wire_version=int(hello.get("maxWireVersion", 0)),
        sessions="logicalSessionTimeoutMinutes" in hello,
    )
    if info.max_wire_version < MIN_WIRE_VERSION:
        raise StorageError(
            f"MongoDB at {hosts(uri)} is too old (wire version "
            f"{info.max_wire_version}); MongoDB 5.0 or newer is required"
        )
    return info


def _hello(client: Any) -> Mapping[str, Any] | None:
    for command in ("hello", "isMaster"):  # isMaster: servers before 4.4.2
        try:
            return client.admin.command(command)
        except OperationFailure:
            continue
        except NotImplementedError:  # an in-process emulator (mongomock) knows no 'hello'
            return None
    return None


def _scrub(text: str, uri: str) -> str:
    """``text`` without the URI's credentials, should a driver message quote them."""
    hosts_part = uri.split("://", 1)[-1].split("/", 1)[0]
    if "@" in hosts_part:
        text = text.replace(hosts_part.rsplit("@", 1)[0], "***")
    return text[:300]


def _short(exc: BaseException) -> str:
    text = str(exc).split(", Timeout:")[0].split(", Topology Description:")[0]
    return text.strip()[:300]
