"""Measure the embedded store against its baselines, in one run (not a test).

    .venv/bin/python plugins/storage_tinydb/scripts/measure.py            # adds (20,000)
    .venv/bin/python plugins/storage_tinydb/scripts/measure.py --large    # + size, RSS, queue

``adds``: single-record adds of customers through the core API with no plugins (audit trail
on, as by default, and off), against stock TinyDB with CachingMiddleware inserting the same
documents one by one, and sqlite3 (WAL, synchronous=NORMAL) doing one autocommit INSERT of the
same JSON document per record. ``--large`` also builds 100,000 customers, 1,000,000 interactions
and 200,000 tasks, then measures a fresh process that opens the store (open time, peak RSS)
and the "tasks due for a rep by now" query against sqlite3 with a matching index.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.storages import JSONStorage

from crmcore import ManualClock, open_crm
from crmcore.converter import iso, to_doc
from crmcore.entities import Customer, Interaction, Task
from crmcore.ids import new_id
from crmcore.tasks import task_doc

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REPS = [f"rep{i:02d}" for i in range(50)]
REGIONS = ["North", "South", "East", "West", "Centre"]


def person(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": f"Customer {i} {rng.choice(['Li', 'Wang', 'Zhang', 'Smith', 'Garcia'])}",
        "phone": f"+86138{i:08d}",
        "email": f"customer{i}@example.com",
        "region": rng.choice(REGIONS),
        "occupation": rng.choice(["teacher", "engineer", "doctor", None]),
        "owner": rng.choice(REPS),
        "tags": rng.sample(["vip", "new", "wholesale"], rng.randint(0, 2)),
    }


def customer_docs(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **to_doc(
                Customer(
                    id=new_id("cus_", T0),
                    created_at=T0,
                    created_by="bench",
                    updated_at=T0,
                    updated_by="bench",
                    **p,
                )
            ),
            "version": 1,
        }
        for p in people
    ]


def open_embedded(folder: Path, audit: bool = True):
    return open_crm(
        {"core": {"audit": audit}, "storage": {"backend": "tinydb", "location": str(folder)}},
        plugins=["storage_tinydb"],
        clock=ManualClock(T0),
    )


def sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def measure_adds(n: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(1)
    people = [person(rng, i) for i in range(n)]
    docs = customer_docs(people)
    out: dict[str, Any] = {"customers": n}

    t = time.perf_counter()
    db = TinyDB(tmp / "tinydb.json", storage=CachingMiddleware(JSONStorage))
    for doc in docs:
        db.insert(doc)
    db.close()
    out["tinydb_caching_adds_per_s"] = n / (time.perf_counter() - t)

    conn = sqlite_connect(tmp / "adds.sqlite")
    conn.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    t = time.perf_counter()
    for doc in docs:
        conn.execute("INSERT INTO docs (id, doc) VALUES (?, ?)", (doc["id"], json.dumps(doc)))
    out["sqlite_adds_per_s"] = n / (time.perf_counter() - t)
    conn.close()

    for audit in (True, False):
        with open_embedded(tmp / f"crm-audit-{audit}", audit=audit) as crm:
            t = time.perf_counter()
            for fields in people:
                crm.customers.add(actor="bench", **fields)
            key = "crmcore_adds_per_s" + ("" if audit else "_without_audit")
            out[key] = n / (time.perf_counter() - t)

    for key in ("crmcore_adds_per_s", "crmcore_adds_per_s_without_audit"):
        out[key.replace("adds_per_s", "vs_tinydb_caching")] = round(
            out[key] / out["tinydb_caching_adds_per_s"], 2
        )
        out[key.replace("adds_per_s", "vs_sqlite")] = round(out[key] / out["sqlite_adds_per_s"], 2)
    return out


CHILD = """
import json, sys, time
t = time.perf_counter()
from crmcore import open_crm
crm = open_crm({"storage": {"backend": "tinydb", "location": sys.argv[1]}},
               plugins=["storage_tinydb"])
imported = time.perf_counter() - t
counts = {n: crm.store.collection(n).count() for n in ("customers", "interactions", "tasks")}
opened = time.perf_counter() - t
crm.close()
# VmHWM, not ru_maxrss: a child started by a big parent inherits the parent's ru_maxrss.
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"open_s": opened, "counts": counts, "peak_rss_mb": peak / 1024}))
"""


def measure_large(
    tmp: Path, nc: int = 100_000, ni: int = 1_000_000, nt: int = 200_000, queries: int = 200
) -> dict[str, Any]:
    rng = random.Random(6)
    folder = tmp / "large"
    out: dict[str, Any] = {"customers": nc, "interactions": ni, "tasks": nt}
    customers = customer_docs([person(rng, i) for i in range(nc)])
    ids = [c["id"] for c in customers]
    tasks = []
    for _ in range(nt):
        due = T0 + timedelta(hours=rng.uniform(-24 * 30, 24 * 30))
        task = Task(
            id=new_id("tsk_", T0),
            kind="follow_up",
            title="follow up",
            due_at=due,
            created_at=T0,
            created_by="bench",
            updated_at=T0,
            updated_by="bench",
            customer_id=rng.choice(ids),
            assignee=rng.choice(REPS),
            status="open" if rng.random() < 0.6 else "done",
            priority=rng.choice([1, 2, 2, 3, 4]),
        )
        tasks.append({**task_doc(task), "version": 1})
    t = time.perf_counter()
    with open_embedded(folder) as crm:
        raw = getattr(crm.store, "inner", crm.store)  # bulk loading: not through the audit
        raw.collection("customers").insert_many(customers)
        coll = raw.collection("interactions")
        batch = []
        for _ in range(ni):
            kind = rng.choice(["purchase", "consultation", "visit", "feedback"])
            batch.append(
                to_doc(
                    Interaction(
                        id=new_id("int_", T0),
                        customer_id=rng.choice(ids),
                        kind=kind,
                        occurred_at=T0 - timedelta(minutes=rng.randrange(500_000)),
                        created_at=T0,
                        created_by="bench",
                        amount=round(rng.uniform(5, 500), 2) if kind == "purchase" else None,
                    )
                )
            )
            if len(batch) == 10_000:
                coll.insert_many(batch)
                batch = []
        coll.insert_many(batch)
        raw.collection("tasks").insert_many(tasks)
    out["build_s"] = time.perf_counter() - t
    out["bytes_on_disk"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=True
    )
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))

    # "tasks due for a rep by now"
    now = T0
    picks = [rng.choice(REPS) for _ in range(queries)]
    conn = sqlite_connect(tmp / "tasks.sqlite")
    conn.execute(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, assignee TEXT, status TEXT, "
        "due_at TEXT, priority INTEGER, doc TEXT NOT NULL)"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
        (
            (d["id"], d["assignee"], d["status"], d["due_at"], d["priority"], json.dumps(d))
            for d in tasks
        ),
    )
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX tasks_due ON tasks (assignee, status, due_at)")
    samples = []
    for rep in picks:
        t = time.perf_counter()
        rows = conn.execute(
            "SELECT doc FROM tasks WHERE assignee = ? AND status = 'open' AND "
            "due_at <= ? ORDER BY priority DESC, due_at",
            (rep, iso(now)),
        )
        [json.loads(r[0]) for r in rows]
        samples.append((time.perf_counter() - t) * 1000)
    conn.close()
    out["due_sqlite_p50_ms"] = statistics.median(samples)
    with open_embedded(folder) as crm:
        coll = crm.store.collection("tasks")
        coll.count()  # load before timing
        samples, core = [], []
        for rep in picks:
            t = time.perf_counter()
            coll.find(
                {"status": "open", "due_at": {"$lte": now}, "assignee": rep},
                sort=[("priority", -1), ("due_at", 1)],
            )
            samples.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            found = crm.tasks.due(assignee=rep, now=now)
            core.append((time.perf_counter() - t) * 1000)
        out["due_results_per_query"] = len(found)
    out["due_store_p50_ms"] = statistics.median(samples)
    out["due_core_api_p50_ms"] = statistics.median(core)
    out["due_store_vs_sqlite"] = round(out["due_sqlite_p50_ms"] / out["due_store_p50_ms"], 2)
    out["due_core_api_vs_sqlite"] = round(out["due_sqlite_p50_ms"] / out["due_core_api_p50_ms"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adds", type=int, default=20_000)
    parser.add_argument("--large", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}",
    }
    with tempfile.TemporaryDirectory(prefix="tinydb-measure-") as tmp:
        report["adds"] = measure_adds(args.adds, Path(tmp))
        if args.large:
            report["large"] = measure_large(Path(tmp))
    print(json.dumps(report, indent=2, default=lambda v: round(v, 3)))


if __name__ == "__main__":
    main()
