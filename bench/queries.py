"""W10 (sorted, limited queries) and W11 (one worker tick), issue 24 items 4 and 5.

W10 asks the two questions users ask most of a large store, each as its API answers it, and
the same question of sqlite3 holding the same documents with the same indexes (JSON decoded
with orjson on both sides, since the embedded store uses it):

- ``crm customer list``: active customers by id, 50 of them (``crm.customers.find``);
- the due queue: open tasks due by now, most urgent first, 20 of them (``crm.tasks.due``).

Each size is loaded beneath the API (the documents crmcore would store; loading is not what is
measured). Queries alternate between the two so both see the machine in the same state, and
each is timed in CPU time of this process (sqlite3 runs in it too). ``store_ms`` is the same
question asked of the storage collection, without turning documents into records.

W11 builds a retail store through the API (customers added, then nine months of purchases
imported through ``crm interaction import``'s path, every plugin reacting), adds open tasks
beneath the API until there are three per customer, moves the clock a day on and runs one
``crm.tick``, in CPU seconds, reported with how many schedules it planned (the follow-up sweep
plans up to ``sweep_batch``, 1,000, per tick), tasks it created and tasks it moved.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.common import T0, Result, median
from crmcore import ManualClock, open_crm
from crmcore.converter import iso

W10_SIZES = {"full": [10_000, 50_000, 100_000], "quick": [300, 1_000]}
W10_QUERIES = {"full": 60, "quick": 10}
W11_SIZES = {"full": [500, 2_000], "quick": [40]}
LIST_LIMIT, DUE_LIMIT = 50, 20


def _cpu_ms(fn: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    """CPU milliseconds of one call of ``fn``."""
    t = time.process_time()
    fn(*args, **kwargs)
    return (time.process_time() - t) * 1000


def sqlite_store(
    path: Path, customers: list[dict[str, Any]], tasks: list[dict[str, Any]]
) -> sqlite3.Connection:
    """sqlite3 holding the same documents as orjson text, with the embedded store's indexes
    on the fields the two queries use."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE customers (id TEXT PRIMARY KEY, owner TEXT, status TEXT, doc TEXT NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE tasks (id TEXT PRIMARY KEY, assignee TEXT, status TEXT, "
        "due_at TEXT, priority INTEGER, doc TEXT NOT NULL)"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?, ?)",
        ((c["id"], c.get("owner"), c["status"], orjson.dumps(c).decode()) for c in customers),
    )
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
    # builtin.py's indexes: customers (owner, status); tasks (status, due_at),
    # (status, priority desc, due_at), (assignee, status, due_at)
    conn.execute("CREATE INDEX c_owner_status ON customers (owner, status)")
    conn.execute("CREATE INDEX t_status_due ON tasks (status, due_at)")
    conn.execute("CREATE INDEX t_urgency ON tasks (status, priority DESC, due_at)")
    conn.execute("CREATE INDEX t_assignee ON tasks (assignee, status, due_at)")
    conn.execute("ANALYZE")
    return conn


def sqlite_list(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT doc FROM customers WHERE status = 'active' ORDER BY id LIMIT ?", (LIST_LIMIT,)
    )
    return [orjson.loads(r[0]) for r in rows]


def sqlite_due(conn: sqlite3.Connection, now_iso: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT doc FROM tasks WHERE status = 'open' AND due_at <= ? "
        "ORDER BY priority DESC, due_at, id LIMIT ?",
        (now_iso, DUE_LIMIT),
    )
    return [orjson.loads(r[0]) for r in rows]


def w10_queries(size: dict[str, int], tmp: Path) -> list[Result]:
    from bench.workloads import customer_docs, embedded_available, open_embedded, raw, task_docs

    quick = size["W1"] < 1000
    results = []
    for n in W10_SIZES["quick" if quick else "full"]:
        customers = customer_docs(n, seed=10)
        tasks = task_docs(2 * n, [c["id"] for c in customers], seed=11)
        sizes = {"customers": n, "tasks": 2 * n}
        listing = Result(
            "W10-list",
            "`customer list`: active customers by id, limit 50 (ms of CPU)",
            sizes,
            "ms",
            False,
        )
        due = Result(
            "W10-due",
            "due queue: open tasks due now, most urgent first, limit 20 (ms of CPU)",
            dict(sizes),
            "ms",
            False,
        )
        conn = sqlite_store(tmp / f"w10-{n}.sqlite", customers, tasks)
        now_iso = iso(T0)
        if not embedded_available():
            conn.close()
            listing.note = due.note = "storage_tinydb is not installed: crmcore not measured"
            results += [listing, due]
            continue
        with open_embedded(tmp / f"w10-{n}") as crm:
            raw(crm, "customers").insert_many(customers)
            raw(crm, "tasks").insert_many(tasks)
            coll_c, coll_t = crm.store.collection("customers"), crm.store.collection("tasks")
            expected_list = [c["id"] for c in sqlite_list(conn)]
            expected_due = [t["id"] for t in sqlite_due(conn, now_iso)]
            got_list = [c.id for c in crm.customers.find(sort=[("id", 1)], limit=LIST_LIMIT)]
            got_due = [t.id for t in crm.tasks.due(now=T0, limit=DUE_LIMIT)]
            if got_list != expected_list or got_due != expected_due:
                raise RuntimeError("W10: crmcore and sqlite3 answer differently")
            samples: dict[str, list[float]] = {
                k: []
                for k in ("sql_list", "api_list", "store_list", "sql_due", "api_due", "store_due")
            }
            for _ in range(W10_QUERIES["quick" if quick else "full"]):
                samples["sql_list"].append(_cpu_ms(sqlite_list, conn))
                samples["api_list"].append(
                    _cpu_ms(crm.customers.find, sort=[("id", 1)], limit=LIST_LIMIT)
                )
                samples["store_list"].append(
                    _cpu_ms(coll_c.find, {"status": "active"}, sort=[("id", 1)], limit=LIST_LIMIT)
                )
                samples["sql_due"].append(_cpu_ms(sqlite_due, conn, now_iso))
                samples["api_due"].append(_cpu_ms(crm.tasks.due, now=T0, limit=DUE_LIMIT))
                samples["store_due"].append(
                    _cpu_ms(
                        coll_t.find,
                        {"status": "open", "due_at": {"$lte": now_iso}},
                        sort=[("priority", -1), ("due_at", 1)],
                        limit=DUE_LIMIT,
                    )
                )
            # what the limit saves: the same question answered by sorting every match
            full_due = _cpu_ms(
                coll_t.find,
                {"status": "open", "due_at": {"$lte": now_iso}},
                sort=[("priority", -1), ("due_at", 1)],
            )
            full_list = _cpu_ms(coll_c.find, {"status": "active"}, sort=[("id", 1)])
        conn.close()
        listing.crmcore = median(samples["api_list"])
        listing.baselines["sqlite3_orjson"] = median(samples["sql_list"])
        listing.extra.update(
            store_ms=round(median(samples["store_list"]), 3),
            every_match_sorted_ms=round(full_list, 1),
        )
        due.crmcore = median(samples["api_due"])
        due.baselines["sqlite3_orjson"] = median(samples["sql_due"])
        due.extra.update(
            store_ms=round(median(samples["store_due"]), 3),
            every_match_sorted_ms=round(full_due, 1),
            matches=len([t for t in tasks if t["status"] == "open" and t["due_at"] <= now_iso]),
        )
        listing.note = due.note = (
            "medians of alternating queries, CPU time; the API turns "
            "documents into records, store_ms does not"
        )
        results += [listing, due]
    return results


# -- W11 -------------------------------------------------------------------------------------

HISTORY_START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY_END = HISTORY_START + timedelta(days=270)  # nine months


def w11_tick(size: dict[str, int], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available, raw, retail_stack, task_docs
    from crmcore.tabular import open_table
    from crmcore.transfer import import_interactions

    quick = size["W1"] < 1000
    plugins, settings = retail_stack()
    results = []
    for nc in W11_SIZES["quick" if quick else "full"]:
        result = Result(
            "W11",
            "one `crm.tick` on the retail stack (s of CPU)",
            {"customers": nc, "purchases": 6 * nc, "open_tasks": 3 * nc},
            "s",
            False,
            extra={"plugins": plugins},
        )
        if not embedded_available():
            result.note = "storage_tinydb is not installed: crmcore not measured"
            results.append(result)
            continue
        rng = random.Random(nc)
        folder = tmp / f"w11-{nc}"
        clock = ManualClock(HISTORY_START)
        config = {"storage": {"backend": "tinydb", "location": str(folder)}, **settings}
        with open_crm(config, clock=clock, plugins=["storage_tinydb", *plugins]) as crm:
            for i in range(nc):
                crm.customers.add(
                    actor="bench",
                    name=f"Customer {i:06d}",
                    phone=f"+86139{i:08d}",
                    external_ids={"shop": str(i)},
                )
            span = int((HISTORY_END - HISTORY_START).total_seconds())
            rows = sorted(
                (
                    HISTORY_START + timedelta(seconds=rng.randrange(span)),
                    rng.randrange(nc),
                    round(rng.uniform(5, 800), 2),
                )
                for _ in range(6 * nc)
            )
            csv_path = tmp / f"w11-{nc}.csv"
            with csv_path.open("w", encoding="utf-8") as handle:
                handle.write("external_id,occurred_at,kind,amount\n")
                for at, customer, amount in rows:
                    handle.write(f"shop:{customer},{at:%Y-%m-%dT%H:%M:%S%z},purchase,{amount}\n")
            clock.set(HISTORY_END)
            report = import_interactions(
                crm, open_table(csv_path, "csv"), actor="bench", customer_key="external_id"
            )
            if report.errors:
                raise RuntimeError(f"W11: import failed: {report.errors[:1]}")
            crm.tick("bench", HISTORY_END)  # settle what the history left due
            open_now = crm.tasks.count({"status": "open"})
            ids = [c.id for c in crm.customers.iter()]
            extra = task_docs(max(0, 3 * nc - open_now), ids, seed=nc)
            for t in extra:  # open, due within the month around the tick
                t["status"], t["open_key"] = "open", None
            raw(crm, "tasks").insert_many(extra)
            open_tasks = crm.tasks.count({"status": "open"})
            when = HISTORY_END + timedelta(days=1)
            clock.set(when)
            schedules = crm.collection("followup.schedule")
            due = schedules.count({"check_at": {"$lte": when}})
            cpu, wall = time.process_time(), time.perf_counter()
            tick = crm.tick("bench", when)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            planned = due - schedules.count({"check_at": {"$lte": when}})
        handled = planned + tick.tasks_created + tick.tasks_updated
        result.sizes["open_tasks"] = open_tasks
        result.crmcore = cpu
        result.extra.update(
            wall_s=round(wall, 2),
            schedules_due=due,
            schedules_planned=planned,
            tasks_created=tick.tasks_created,
            tasks_updated=tick.tasks_updated,
            ms_per_item_handled=round(1000 * cpu / max(1, handled), 2),
        )
        result.note = (
            "CPU time of one tick a day after nine months of imported purchases; "
            "no baseline: the figure to watch is ms per item handled across sizes"
        )
        results.append(result)
    return results
