"""Code run in child processes by the embedded store's tests (started through a fork server,
so each child starts in milliseconds with crmcore already imported)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from crmcore_storage_tinydb import TinyStore, TinyStoreOptions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _note(fd: int, text: str) -> None:
    os.write(fd, (text + "\n").encode())


def writer(path: str, start: int, notes: str, durability: str = "os") -> None:
    """Write forever (pairs in transactions, updates, compactions), noting each acknowledged
    key in ``notes`` only after the write returned."""
    fd = os.open(notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    store = TinyStore(path, TinyStoreOptions(durability=durability))
    a, b = store.collection("a"), store.collection("b")
    _note(fd, "ready")
    for i in range(start, start + 1_000_000):
        key = f"k{i:07d}"
        if i % 3 == 0:
            with store.transaction():  # a pair: both or neither
                a.insert({"id": key, "n": i, "pad": "x" * (i % 50)})
                b.insert({"id": key, "n": i})
        else:
            a.insert({"id": key, "n": i, "pad": "y" * (i % 70)})
        if i % 40 == 39:
            a.update(key, {"touched": True}, expected_version=1)
        if i % 150 == 149:
            store.compact()
        _note(fd, key)


def adder(path: str, worker: int, count: int) -> None:
    """Insert ``count`` documents one by one, reading between writes."""
    store = TinyStore(path)
    things = store.collection("things")
    for i in range(count):
        things.insert({"id": f"w{worker}-{i:04d}", "worker": worker, "i": i})
        if i % 50 == 0:
            things.count({"worker": worker})
        if worker == 0 and i % 60 == 59:
            store.compact()  # the others follow the new journal mid-run
    store.close()


def crm_adder(path: str, worker: int, count: int) -> None:
    """Add customers through the core API (so with the audit trail's unique sequence)."""
    from crmcore import SystemClock
    from crmcore.testing.factories import make_test_crm

    crm = make_test_crm(
        ["storage_tinydb"], clock=SystemClock(), storage={"backend": "tinydb", "location": path}
    )
    for i in range(count):
        crm.customers.add(actor=f"worker{worker}", name=f"Person {worker}-{i}")
    crm.close()


def claimer(path: str, worker: int, notes: str) -> None:
    """Claim and finish documents until none is left, noting each claimed id."""
    fd = os.open(notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    store = TinyStore(path)
    jobs = store.collection("jobs")
    while True:
        doc = jobs.claim(
            {"done": {"$ne": True}},
            owner=f"w{worker}",
            until=T0 + timedelta(hours=1),
            now=T0,
            sort=[("n", 1)],
        )
        if doc is None:
            break
        _note(fd, doc["id"])
        jobs.update(doc["id"], {"done": True}, expected_version=doc["version"])
    store.close()
