"""``location = "mongomock://"``: try the MongoDB backend on a laptop, with no server.

Needs the optional extra ``crmcore-storage-mongo[mock]`` (mongomock). This is for evaluating
the production backend and for tests; it is not a database:

- ``mongomock://`` keeps the data in ``crm-mongomock.bson`` in the current directory;
  ``mongomock:///abs/path.bson`` or ``mongomock://rel/path.bson`` name the file;
  ``mongomock://:memory:`` (or ``:memory:NAME``) keeps it in this process only. The file is
  read when the first store opens and written (owner-only, replaced atomically) when the
  last one closes: a process that dies loses what it wrote since it opened.
- One process at a time: the file is locked while a store is open; a second process waits up
  to ``LOCK_WAIT`` seconds, then gets a ``StorageError`` saying so.
- No transactions, sessions, validators, write concerns or several processes (the backend
  reports those capabilities absent), and mongomock's speed says nothing about MongoDB's.

mongomock (4.3) lacks a few behaviours a real server has and the backend relies on;
``install_fixes`` adds exactly those, once, to mongomock itself:

1. Atomic single-document operations: MongoDB applies ``find_one_and_update`` (and every
   single-document write) atomically; mongomock finds, then updates. One lock serialises
   mongomock's operations, which is the guarantee a real server gives.
2. ``$type`` with a list of types (MongoDB 3.6+), used by the partial unique indexes.
3. Building a unique partial index over existing documents: uniqueness is checked only among
   documents the partial filter admits (mongomock checks all of them).
4. pymongo 4.9+ passes ``sort`` to bulk update/replace operations; mongomock ignores it.
5. ``$$NOW``: mongomock does not evaluate it (nor date arithmetic). Expressions built only from
   ``$$NOW`` and constants (``$add``, ``$dateToString``, ``$concat``) are evaluated here, on the
   imitation server's clock (``MockServer.clock``), before mongomock sees the command, so that
   server-time leases behave as on MongoDB. This is an emulation: a real server's clock is
   verified only by the suite run under ``CRM_TEST_MONGODB_URI``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crmcore.clock import Clock, SystemClock
from crmcore.errors import ConfigError, StorageError

SCHEME = "mongomock://"
MEMORY = ":memory:"
DEFAULT_FILE = "crm-mongomock.bson"
LOCK_WAIT = 10.0  # seconds a second process waits for the file
FORMAT = "crmcore-mongomock/1"
_NOW = "$$NOW"

_lock = threading.RLock()  # serialises mongomock's operations (fix 1)
_installed = False
_servers: dict[str, MockServer] = {}
_servers_lock = threading.Lock()


def is_mock(location: str | None) -> bool:
    """Whether ``location`` names the imitation server."""
    return bool(location) and str(location).startswith(SCHEME)


def _mongomock() -> Any:
    try:
        import mongomock
    except ImportError:
        raise ConfigError(
            "storage.location: mongomock:// needs the optional extra: pip install "
            "'crmcore-storage-mongo[mock]'"
        ) from None
    return mongomock


def resolve(location: str) -> str:
    """The file a ``mongomock://`` location keeps its data in (absolute), or ``:memory:``."""
    rest = location[len(SCHEME) :].split("?", 1)[0]
    if rest.startswith(MEMORY):
        return rest  # ":memory:" or ":memory:NAME" (several servers in one process)
    if "\0" in rest:
        raise ConfigError("storage.location: the mongomock path contains a NUL byte")
    path = Path(rest or DEFAULT_FILE).expanduser()
    if path.is_dir():
        path = path / DEFAULT_FILE
    return str(path.resolve())


class MockServer:
    """One imitation MongoDB server: mongomock's store, the file it lives in, its clock."""

    def __init__(self, path: str, clock: Clock | None = None) -> None:
        mongomock = _mongomock()
        install_fixes()
        self.path = path
        self.clock: Clock = clock or SystemClock()
        self.store = mongomock.store.ServerStore()
        self.refs = 0
        self._lock_fd: int | None = None
        if self.persistent:
            self._lock_file()
            try:
                self._load()
            except BaseException:
                self._unlock()
                raise

    @property
    def persistent(self) -> bool:
        return not self.path.startswith(MEMORY)

    def client(self, **kwargs: Any) -> Any:
        """A mongomock client on this server."""
        return _client_class()(self, **kwargs)

    def now(self) -> datetime:
        """The imitation server's time (what ``$$NOW`` evaluates to)."""
        return self.clock.now().astimezone(UTC)

    def save(self) -> None:
        """Write every database to the file (owner-only), replacing it atomically."""
        if not self.persistent:
            return
        import bson

        target = Path(self.path)
        fd, tmp = tempfile.mkstemp(prefix=".crm-mongomock-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), 0o600)
                out.write(bson.encode({"format": FORMAT}))
                client = self.client()
                for db_name in client.list_database_names():
                    db = client[db_name]
                    for name in db.list_collection_names():
                        coll = db[name]
                        for info in coll.list_indexes():
                            if info.get("name") != "_id_":
                                out.write(
                                    bson.encode(
                                        {"db": db_name, "coll": name, "index": _plain_index(info)}
                                    )
                                )
                        for doc in coll.find():
                            out.write(bson.encode({"db": db_name, "coll": name, "doc": doc}))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _load(self) -> None:
        import bson

        target = Path(self.path)
        if not target.exists():
            return
        client = self.client()
        try:
            with target.open("rb") as data:
                items = bson.decode_file_iter(data)
                header = next(items, None)
                if not header or header.get("format") != FORMAT:
                    raise StorageError(f"{target} is not a crmcore mongomock file")
                docs: dict[tuple[str, str], list[dict[str, Any]]] = {}
                for item in items:
                    coll = client[item["db"]][item["coll"]]
                    if "index" in item:
                        index = dict(item["index"])
                        keys = [(k, v) for k, v in index.pop("key").items()]
                        coll.create_index(keys, **index)
                    else:
                        docs.setdefault((item["db"], item["coll"]), []).append(item["doc"])
                for (db_name, name), rows in docs.items():
                    client[db_name][name].insert_many(rows)
        except bson.errors.BSONError as exc:
            raise StorageError(
                f"{target} is damaged ({exc}); restore a copy or delete it to start empty"
            ) from None

    def _lock_file(self) -> None:
        lock_path = f"{self.path}.lock"
        try:
            Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open {lock_path}: {exc.strerror}") from None
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StorageError(
                        f"{self.path} is open in another process; mongomock:// serves one "
                        "process at a time (use a real MongoDB server for several)"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        """Save and unlock (called when the last client closes)."""
        try:
            self.save()
        finally:
            self._unlock()


def acquire_server(location: str, clock: Clock | None = None) -> MockServer:
    """The server for ``location``: the open one in this process, else loaded from its file."""
    path = resolve(location)
    with _servers_lock:
        server = _servers.get(path)
        if server is None:
            server = _servers[path] = MockServer(path, clock)
        server.refs += 1
        return server


def release_server(server: MockServer) -> None:
    """Give a server back; the last holder saves it and unlocks its file."""
    with _servers_lock:
        server.refs -= 1
        if server.refs > 0:
            return
        if _servers.get(server.path) is server:
            del _servers[server.path]
    server.close()


def client_factory(server: MockServer) -> Callable[..., Any]:
    """A ``connection.ClientFactory`` making clients on ``server`` (the URI is ignored)."""

    def factory(_uri: str, **kwargs: Any) -> Any:
        return server.client(**kwargs)

    return factory


@functools.cache
def _client_class() -> type:
    mongomock = _mongomock()

    class MockClient(mongomock.MongoClient):  # type: ignore[name-defined]
        """A mongomock client that knows its ``MockServer`` (for ``$$NOW``)."""

        def __init__(self, server: MockServer, **kwargs: Any) -> None:
            known = {
                k: v
                for k, v in kwargs.items()
                if k in ("document_class", "tz_aware", "read_preference")
            }
            super().__init__("mongodb://mongomock", _store=server.store, **known)
            self.crm_server = server

    return MockClient


# -- fixes to mongomock ------------------------------------------------------------------------


def install_fixes() -> None:
    """Add to mongomock what the backend relies on (see the module's docstring); once."""
    global _installed
    with _lock:
        if _installed:
            return
        import mongomock.collection as mm_collection
        import mongomock.filtering as mm_filtering

        coll = mm_collection.Collection
        for name in (
            "_insert",
            "_update",
            "_delete",
            "bulk_write",
            "count_documents",
            "list_indexes",
            "drop_index",
            "estimated_document_count",
        ):
            setattr(coll, name, _locked(getattr(coll, name)))
        # Patching mongomock's classes in place is the point (see the module docstring):
        # mypy refuses assignments to methods, hence the ignores.
        coll._find_and_modify = _locked(_with_now(coll._find_and_modify))  # type: ignore[method-assign]
        coll.find = _with_now(coll.find)  # type: ignore[method-assign]
        coll.update_one = _with_now(coll.update_one)  # type: ignore[method-assign]
        coll.update_many = _with_now(coll.update_many)  # type: ignore[method-assign]
        coll.create_index = _locked(_partial_unique(coll.create_index))  # type: ignore[method-assign]
        cursor = mm_collection.Cursor
        cursor._compute_results = _locked(cursor._compute_results)  # type: ignore[method-assign]
        builder = mm_collection.BulkOperationBuilder
        builder.add_update = _drop_sort(builder.add_update)  # type: ignore[method-assign]
        builder.add_replace = _drop_sort(builder.add_replace)  # type: ignore[method-assign]
        operators = mm_filtering._filterer_inst._operator_map
        operators["$type"] = _type_list(operators["$type"])
        _installed = True


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    return locked


def _with_now(method: Callable[..., Any]) -> Callable[..., Any]:
    """Evaluate ``$$NOW`` expressions in a command's arguments on the server's clock."""

    @functools.wraps(method)
    def evaluated(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _mentions_now((args, kwargs)):
            return method(self, *args, **kwargs)
        now = _server_now(self)
        return method(
            self, *fold_now(list(args), now), **{k: fold_now(v, now) for k, v in kwargs.items()}
        )

    return evaluated


def _server_now(collection: Any) -> datetime:
    server = getattr(collection.database.client, "crm_server", None)
    return server.now() if server is not None else datetime.now(UTC)


def _mentions_now(value: Any) -> bool:
    if isinstance(value, str):
        return value == _NOW
    if isinstance(value, Mapping):
        return any(_mentions_now(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_mentions_now(v) for v in value)
    return False


_CONSTANT = (str, int, float, datetime)


def fold_now(value: Any, now: datetime) -> Any:
    """``value`` with every expression built from ``$$NOW`` and constants evaluated."""
    if isinstance(value, str):
        return now if value == _NOW else value
    if isinstance(value, list):
        return [fold_now(v, now) for v in value]
    if not isinstance(value, Mapping):
        return value
    folded = {k: fold_now(v, now) for k, v in value.items()}
    if len(folded) != 1 or not _mentions_now(value):
        return folded
    ((op, arg),) = folded.items()
    evaluated = _evaluate(op, arg)
    return folded if evaluated is None else evaluated


def _evaluate(op: str, arg: Any) -> Any:
    """One operator over constant arguments, or None when that is not the case here."""
    if op == "$add" and isinstance(arg, list) and all(_is_value(a) for a in arg):
        dates = [a for a in arg if isinstance(a, datetime)]
        numbers = [a for a in arg if not isinstance(a, datetime)]
        if len(dates) == 1 and all(isinstance(n, int | float) for n in numbers):
            return dates[0] + timedelta(milliseconds=sum(numbers))
        return None
    if op == "$dateToString" and isinstance(arg, Mapping) and isinstance(arg.get("date"), datetime):
        return _date_to_string(arg["date"], str(arg.get("format", "%Y-%m-%dT%H:%M:%S.%LZ")))
    if op == "$concat" and isinstance(arg, list) and all(isinstance(a, str) for a in arg):
        return "".join(arg)
    return None


def _is_value(value: Any) -> bool:
    return isinstance(value, _CONSTANT) and not (isinstance(value, str) and value.startswith("$"))


def _date_to_string(when: datetime, fmt: str) -> str:
    """MongoDB's ``$dateToString`` for the specifiers the backend uses (UTC)."""
    when = when.astimezone(UTC) if when.tzinfo else when
    out = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            spec = fmt[i + 1]
            out.append(
                {
                    "Y": f"{when.year:04d}",
                    "m": f"{when.month:02d}",
                    "d": f"{when.day:02d}",
                    "H": f"{when.hour:02d}",
                    "M": f"{when.minute:02d}",
                    "S": f"{when.second:02d}",
                    "L": f"{when.microsecond // 1000:03d}",
                    "%": "%",
                }.get(spec, "%" + spec)
            )
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def _partial_unique(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_index(self: Any, keys: Any, **kwargs: Any) -> Any:
        partial = kwargs.get("partialFilterExpression")
        if not (kwargs.get("unique") and partial):
            return original(self, keys, **kwargs)
        import mongomock

        keys = [(keys, 1)] if isinstance(keys, str) else list(keys)
        fields = [k for k, _ in keys]
        seen: set[str] = set()
        for doc in self.find(partial):
            key = repr([_dotted(doc, f) for f in fields])
            if key in seen:
                raise mongomock.DuplicateKeyError("E11000 duplicate key error", 11000)
            seen.add(key)
        name = original(self, keys, **{**kwargs, "unique": False})
        self._store.indexes[name]["unique"] = True
        return name

    return create_index


def _dotted(doc: Mapping[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _drop_sort(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def without_sort(*args: Any, sort: Any = None, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    return without_sort


def _type_list(single: Callable[..., Any]) -> Callable[..., Any]:
    def type_op(doc_val: Any, search_val: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(search_val, list):
            return any(single(doc_val, t, *args, **kwargs) for t in search_val)
        return single(doc_val, search_val, *args, **kwargs)

    return type_op


def _plain_index(info: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"key": dict(info["key"]), "name": info["name"]}
    for option in ("unique", "sparse", "partialFilterExpression"):
        if info.get(option):
            out[option] = info[option]
    return out


@contextlib.contextmanager
def server_at(location: str, clock: Clock | None = None) -> Iterator[MockServer]:
    """A server held open for a ``with`` block (tests, tools)."""
    server = acquire_server(location, clock)
    try:
        yield server
    finally:
        release_server(server)
