"""The lease primitive: however many workers race, a document is handed to one at a time.

On mongomock the workers are threads sharing the imitation server (with the shim's lock
standing in for MongoDB's document-level atomicity: see conftest). Several *processes* need a
real server, so that test runs only when ``CRM_TEST_MONGODB_URI`` is set.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from crmcore_storage_mongo.store import open_store

from crmcore.clock import ManualClock
from crmcore.storage import StorageOptions

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


def _work(coll, name: str, taken: list[str], lock: threading.Lock, filter=None, sort=None) -> None:
    while True:
        doc = coll.claim(
            {"done": {"$ne": True}, **(filter or {})},
            owner=name,
            until=T0 + LEASE,
            now=T0,
            sort=sort,
        )
        if doc is None:
            return
        with lock:
            taken.append(doc["id"])
        coll.update(doc["id"], {"done": True, "by": name}, expected_version=doc["version"])


def _race(coll, workers: int, **kwargs) -> list[str]:
    taken: list[str] = []
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_work, args=(coll, f"w{i}", taken, lock), kwargs=kwargs)
        for i in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return taken


def test_eight_threads_share_out_a_hundred_and_fifty_tasks_exactly_once(open_mock):
    coll = open_mock().collection("jobs")
    coll.insert_many({"id": f"j{i:04d}", "priority": i % 4} for i in range(150))
    taken = _race(coll, 8, sort=[("priority", -1)])
    assert sorted(taken) == [f"j{i:04d}" for i in range(150)]
    assert coll.count({"done": True}) == 150
    assert len(Counter(d["by"] for d in coll.find())) > 1  # the work was actually shared


def test_exclusive_on_the_python_checked_path_too(open_mock):
    """A filter on a whole list and a sort over mixed values take the slow, re-checked path;
    it leases through the same version-checked ``find_one_and_update``."""
    coll = open_mock().collection("jobs")
    coll.insert_many(
        {
            "id": f"j{i:03d}",
            "tags": ["a", "b"] if i % 2 else ["b", "a"],
            "rank": [i] if i % 3 else i,
        }
        for i in range(90)
    )
    taken = _race(coll, 6, filter={"tags": ["a", "b"]}, sort=[("rank", 1)])
    assert sorted(taken) == [f"j{i:03d}" for i in range(90) if i % 2]


def test_a_crashed_workers_lease_runs_out_and_another_takes_over(open_mock):
    coll = open_mock().collection("jobs")
    coll.insert({"id": "j1"})
    first = coll.claim({}, owner="crashed", until=T0 + LEASE, now=T0)
    assert first["lease_owner"] == "crashed"
    assert (
        coll.claim({}, owner="w2", until=T0 + LEASE, now=T0 + LEASE - timedelta(seconds=1)) is None
    )
    second = coll.claim({}, owner="w2", until=T0 + 2 * LEASE, now=T0 + LEASE)
    assert second["lease_owner"] == "w2" and second["version"] == first["version"] + 1
    coll.release("j1", owner="crashed")  # the old holder comes back: no effect
    assert coll.get("j1")["lease_owner"] == "w2"


def test_crm_workers_claim_due_tasks_once_each(make_crm, use_mongomock, clock):
    crm = make_crm(
        ["storage_mongo"], storage={"backend": "mongodb", "location": "mongodb://127.0.0.1:27017"}
    )
    for i in range(60):
        crm.tasks.create(
            actor="system",
            kind="callback",
            title=f"call {i}",
            due_at=clock.now() - timedelta(minutes=i % 7),
            priority=1 + i % 4,
        )
    crm.tasks.create(
        actor="system", kind="callback", title="later", due_at=clock.now() + timedelta(days=1)
    )
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (task := crm.tasks.claim(worker=name, lease=LEASE)) is not None:
            with lock:
                taken.append(task.id)
            crm.tasks.complete(task.id, actor=f"worker:{name}")

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(taken) == 60 == len(set(taken))
    assert crm.tasks.count({"status": "open"}) == 1  # the one not yet due


def _process_worker(uri: str, database: str, name: str, queue) -> None:
    store = open_store(StorageOptions(uri, {"database": database}, ManualClock(T0)))
    coll = store.collection("jobs")
    taken = []
    while (
        doc := coll.claim({"done": {"$ne": True}}, owner=name, until=T0 + LEASE, now=T0)
    ) is not None:
        taken.append(doc["id"])
        coll.update(doc["id"], {"done": True}, expected_version=doc["version"])
    store.close()
    queue.put(taken)


def test_several_processes_never_process_a_task_twice(open_real):
    """Real server only: four processes, each with its own client, race for 400 jobs."""
    store = open_real()
    store.collection("jobs").insert_many({"id": f"j{i:04d}"} for i in range(400))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    uri = os.environ["CRM_TEST_MONGODB_URI"]
    procs = [
        ctx.Process(target=_process_worker, args=(uri, store.database_name, f"p{i}", queue))
        for i in range(4)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    taken = [id for part in results for id in part]
    assert sorted(taken) == [f"j{i:04d}" for i in range(400)]


@pytest.mark.parametrize("workers", [2, 16])
def test_contention_does_not_lose_or_duplicate(open_mock, workers):
    coll = open_mock().collection("jobs")
    coll.insert_many({"id": f"j{i:03d}"} for i in range(64))
    taken = _race(coll, workers)
    assert Counter(taken) == Counter(f"j{i:03d}" for i in range(64))
