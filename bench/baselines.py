"""The baselines crmcore is compared with: stock TinyDB and Python's sqlite3.

sqlite3 holds each document as JSON text written and read with orjson, as the embedded store
does (the standard library's ``json`` would make the baseline slower than it need be); stock
TinyDB uses its own storage, as shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from tinydb import Query, TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.storages import JSONStorage


def tinydb_caching_inserts(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Stock TinyDB with CachingMiddleware, one ``insert`` per document (then close)."""
    db = TinyDB(path, storage=CachingMiddleware(JSONStorage))
    count = 0
    for doc in docs:
        db.insert(doc)
        count += 1
    db.close()
    return count


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """sqlite3 in WAL mode with synchronous=NORMAL, autocommit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    return conn


def sqlite_autocommit_inserts(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """One autocommit INSERT of the JSON document per record."""
    conn = sqlite_connect(path)
    count = 0
    for doc in docs:
        conn.execute(
            "INSERT INTO docs (id, doc) VALUES (?, ?)", (doc["id"], orjson.dumps(doc).decode())
        )
        count += 1
    conn.close()
    return count


def sqlite_one_transaction(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """All documents inserted in one transaction."""
    conn = sqlite_connect(path)
    conn.execute("BEGIN")
    count = 0
    for doc in docs:
        conn.execute(
            "INSERT INTO docs (id, doc) VALUES (?, ?)", (doc["id"], orjson.dumps(doc).decode())
        )
        count += 1
    conn.execute("COMMIT")
    conn.close()
    return count


def sqlite_tasks(path: Path, tasks: Iterable[dict[str, Any]]) -> sqlite3.Connection:
    """A tasks table with the index that 'due for a rep by now' needs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, assignee TEXT, status TEXT, "
        "due_at TEXT, priority INTEGER, doc TEXT NOT NULL)"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
        (
            (
                t["id"],
                t["assignee"],
                t["status"],
                t["due_at"],
                t["priority"],
                orjson.dumps(t).decode(),
            )
            for t in tasks
        ),
    )
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX tasks_due ON tasks (assignee, status, due_at)")
    return conn


def sqlite_due(conn: sqlite3.Connection, assignee: str, now_iso: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT doc FROM tasks WHERE assignee = ? AND status = 'open' AND "
        "due_at <= ? ORDER BY priority DESC, due_at",
        (assignee, now_iso),
    )
    return [orjson.loads(r[0]) for r in rows]


def tinydb_due(db: TinyDB, assignee: str, now_iso: str) -> list[dict[str, Any]]:
    q = Query()
    found = db.search((q.assignee == assignee) & (q.status == "open") & (q.due_at <= now_iso))
    return sorted(found, key=lambda t: (-t["priority"], t["due_at"]))
