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

W11 builds a retail store through the API (customers added 500 per transaction, then nine
months of purchases imported through ``crm interaction import``'s path, every plugin reacting),
adds open tasks beneath the API until there are three per customer, moves the clock a day on
and runs one ``crm.tick``, in CPU seconds, reported with how many schedules it planned (the
follow-up sweep plans up to ``sweep_batch``, 1,000, per tick), tasks it created and tasks it
moved, the customers grading's population run read and assessed, the CPU seconds of that run
and of the follow-up sweep inside the tick, and what building the store cost. ``W11_SIZES``
picks the sizes; ``W11_STORE`` keeps each built store for later runs (before/after on one
store).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.common import REPS, T0, Result, median
from crmcore import ManualClock, open_crm
from crmcore.converter import from_doc, iso
from crmcore.entities import Customer, Task

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


def sqlite_list_records(conn: sqlite3.Connection) -> list[Customer]:
    """``sqlite_list`` with each document built into the ``Customer`` the API returns."""
    return [from_doc(Customer, d) for d in sqlite_list(conn)]


def sqlite_due_records(conn: sqlite3.Connection, now_iso: str) -> list[Task]:
    return [from_doc(Task, d) for d in sqlite_due(conn, now_iso)]


QUERIES = ("list", "due")
SIDES = ("sql", "sql_records", "api", "store")


def _measure(crm: Any, conn: sqlite3.Connection, rounds: int) -> dict[str, float]:
    """Median CPU ms of each query on each side, the sides alternating query by query."""
    now_iso = iso(T0)
    coll_c, coll_t = crm.store.collection("customers"), crm.store.collection("tasks")
    expected_list = [c["id"] for c in sqlite_list(conn)]
    expected_due = [t["id"] for t in sqlite_due(conn, now_iso)]
    got_list = [c.id for c in crm.customers.find(sort=[("id", 1)], limit=LIST_LIMIT)]
    got_due = [t.id for t in crm.tasks.due(now=T0, limit=DUE_LIMIT)]
    if got_list != expected_list or got_due != expected_due:
        raise RuntimeError("W10: crmcore and sqlite3 answer differently")
    calls: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = {
        "sql_list": (sqlite_list, (conn,), {}),
        "sql_records_list": (sqlite_list_records, (conn,), {}),
        "api_list": (crm.customers.find, (), {"sort": [("id", 1)], "limit": LIST_LIMIT}),
        "store_list": (
            coll_c.find,
            ({"status": "active"},),
            {"sort": [("id", 1)], "limit": LIST_LIMIT},
        ),
        "sql_due": (sqlite_due, (conn, now_iso), {}),
        "sql_records_due": (sqlite_due_records, (conn, now_iso), {}),
        "api_due": (crm.tasks.due, (), {"now": T0, "limit": DUE_LIMIT}),
        "store_due": (
            coll_t.find,
            ({"status": "open", "due_at": {"$lte": now_iso}},),
            {"sort": [("priority", -1), ("due_at", 1)], "limit": DUE_LIMIT},
        ),
    }
    samples: dict[str, list[float]] = {k: [] for k in calls}
    order = list(calls)
    shuffle = random.Random(10).shuffle
    for fn, args, kwargs in calls.values():  # one untimed round: every cache warm
        fn(*args, **kwargs)
    for _ in range(rounds):
        # a new order each round: no side always runs first after a switch of query
        shuffle(order)
        for name in order:
            fn, args, kwargs = calls[name]
            samples[name].append(_cpu_ms(fn, *args, **kwargs))
    return {k: median(v) for k, v in samples.items()}


def _through_the_api(crm: Any, n: int, seed: int) -> None:
    """``n`` customers and ``2n`` tasks (40% of them done) added through the core API."""
    from bench.common import person

    rng = random.Random(seed)
    ids = [crm.customers.add(actor="bench", **person(rng, i)).id for i in range(n)]
    for _ in range(2 * n):
        task = crm.tasks.create(
            actor="bench",
            kind="follow_up",
            title="follow up",
            due_at=T0 + timedelta(hours=rng.uniform(-24 * 30, 24 * 30)),
            customer_id=rng.choice(ids),
            assignee=rng.choice(REPS),
            priority=rng.choice([1, 2, 2, 3, 4]),
        )
        if rng.random() < 0.4:
            crm.tasks.complete(task.id, actor="bench")


def _documents(crm: Any, name: str) -> list[dict[str, Any]]:
    from bench.workloads import raw

    return list(raw(crm, name).iter())


def w10_queries(size: dict[str, int], tmp: Path) -> list[Result]:
    from bench.workloads import customer_docs, embedded_available, open_embedded, raw, task_docs

    quick = size["W1"] < 1000
    rounds = W10_QUERIES["quick" if quick else "full"]
    results = []
    ladder = W10_SIZES["quick" if quick else "full"]
    for n in ladder:
        customers = customer_docs(n, seed=10)
        tasks = task_docs(2 * n, [c["id"] for c in customers], seed=11)
        runs: list[tuple[str, dict[str, float], int]] = []
        now_iso = iso(T0)
        matches = len([t for t in tasks if t["status"] == "open" and t["due_at"] <= now_iso])
        if not embedded_available():
            results.append(
                Result(
                    "W10-list",
                    "`customer list`",
                    {"customers": n},
                    "ms",
                    False,
                    note="storage_tinydb is not installed: crmcore not measured",
                )
            )
            continue
        conn = sqlite_store(tmp / f"w10-{n}.sqlite", customers, tasks)
        with open_embedded(tmp / f"w10-{n}") as crm:
            raw(crm, "customers").insert_many(customers)
            raw(crm, "tasks").insert_many(tasks)
            coll_c, coll_t = crm.store.collection("customers"), crm.store.collection("tasks")
            medians = _measure(crm, conn, rounds)
            # what the limit saves: the same question answered by sorting every match
            every = {
                "list": _cpu_ms(coll_c.find, {"status": "active"}, sort=[("id", 1)]),
                "due": _cpu_ms(
                    coll_t.find,
                    {"status": "open", "due_at": {"$lte": now_iso}},
                    sort=[("priority", -1), ("due_at", 1)],
                ),
            }
        conn.close()
        runs.append(("loaded beneath the API", medians, matches))
        if n == ladder[0]:
            # the same sizes built through the core API (audit trail, journal as written), and
            # sqlite3 holding the documents that store ended up with
            with open_embedded(tmp / f"w10-api-{n}") as crm:
                _through_the_api(crm, n, seed=10)
                built_c, built_t = _documents(crm, "customers"), _documents(crm, "tasks")
                conn = sqlite_store(tmp / f"w10-api-{n}.sqlite", built_c, built_t)
                built = _measure(crm, conn, rounds)
                conn.close()
            due_now = [t for t in built_t if t["status"] == "open" and t["due_at"] <= now_iso]
            runs.append(("built through the API", built, len(due_now)))
        for how, m, count in runs:
            for q, title in (
                ("list", "`customer list`: active customers by id, limit 50 (ms of CPU)"),
                ("due", "due queue: open tasks due now, most urgent first, limit 20 (ms of CPU)"),
            ):
                r = Result(
                    f"W10-{q}",
                    title,
                    {"customers": n, "tasks": 2 * n},
                    "ms",
                    False,
                    crmcore=m[f"api_{q}"],
                    baselines={
                        "sqlite3_orjson": m[f"sql_{q}"],
                        "sqlite3_orjson_records": m[f"sql_records_{q}"],
                    },
                )
                r.extra.update(
                    store_ms=round(m[f"store_{q}"], 3),
                    store_time_over_sqlite3=round(m[f"store_{q}"] / m[f"sql_{q}"], 2),
                    built=how,
                )
                if how == "loaded beneath the API":
                    r.extra["every_match_sorted_ms"] = round(every[q], 1)
                if q == "due":
                    r.extra["matches"] = count
                r.note = (
                    "medians of alternating queries, CPU time; ratios >1 mean crmcore is "
                    "faster. sqlite3_orjson returns dicts; sqlite3_orjson_records builds the "
                    "same Customer/Task records the API returns; store_ms is the storage "
                    "collection's answer (dicts)"
                )
                results.append(r)
    return results


# -- W11 -------------------------------------------------------------------------------------

HISTORY_START = datetime(2026, 1, 1, tzinfo=UTC)
HISTORY_END = HISTORY_START + timedelta(days=270)  # nine months
ADD_BATCH = 500  # customers added per transaction while building a W11 store


def w11_sizes(quick: bool) -> list[int]:
    """W11's customer counts: ``W11_SIZES`` (comma-separated) if set, else the defaults."""
    given = os.environ.get("W11_SIZES", "").strip()
    if given and not quick:
        return [int(n.replace("_", "")) for n in given.split(",") if n.strip()]
    return W11_SIZES["quick" if quick else "full"]


def w11_build(nc: int, folder: Path, tmp: Path) -> None:
    """A W11 store in ``folder``: ``nc`` customers through the API, nine months of purchases
    imported through ``crm interaction import``'s path, a settling tick, open tasks added
    beneath the API until there are three per customer."""
    from bench.workloads import raw, retail_stack, task_docs
    from crmcore.tabular import open_table
    from crmcore.transfer import import_interactions

    plugins, settings = retail_stack()
    rng = random.Random(nc)
    clock = ManualClock(HISTORY_START)
    config = {"storage": {"backend": "tinydb", "location": str(folder)}, **settings}
    with open_crm(config, clock=clock, plugins=["storage_tinydb", *plugins]) as crm:
        for start in range(0, nc, ADD_BATCH):  # every plugin reacts; one commit per batch
            with crm.transaction("bench"):
                for i in range(start, min(nc, start + ADD_BATCH)):
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
        csv_path.unlink()
        if report.errors:
            raise RuntimeError(f"W11: import failed: {report.errors[:1]}")
        crm.tick("bench", HISTORY_END)  # settle what the history left due
        open_now = crm.tasks.count({"status": "open"})
        ids = [c.id for c in crm.customers.iter()]
        extra = task_docs(max(0, 3 * nc - open_now), ids, seed=nc)
        for t in extra:  # open, due within the month around the tick
            t["status"], t["open_key"] = "open", None
        raw(crm, "tasks").insert_many(extra)


def w11_store(nc: int, tmp: Path) -> tuple[Path, float]:
    """A fresh copy of the W11 store of ``nc`` customers, and the CPU seconds its build took.
    With ``W11_STORE`` set, stores are built once into that folder and copied for each run
    (so before/after runs tick the same store); otherwise built into ``tmp``."""
    keep = os.environ.get("W11_STORE", "").strip()
    folder = tmp / f"w11-{nc}"
    if not keep:
        started = time.process_time()
        w11_build(nc, folder, tmp)
        return folder, time.process_time() - started
    built = Path(keep) / f"w11-{nc}"
    if not (built / "BUILT").exists():
        if built.exists():
            shutil.rmtree(built)
        built.mkdir(parents=True)
        started = time.process_time()
        w11_build(nc, built, tmp)
        spent = time.process_time() - started
        (built / "BUILT").write_text(f"{nc}\n{spent:.1f}\n", encoding="utf-8")
    spent = float((built / "BUILT").read_text(encoding="utf-8").split()[1])
    shutil.copytree(built, folder, ignore=shutil.ignore_patterns("BUILT"))
    return folder, spent


def w11_tick(size: dict[str, int], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available, retail_stack

    quick = size["W1"] < 1000
    plugins, settings = retail_stack()
    results = []
    for nc in w11_sizes(quick):
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
        folder, build_cpu = w11_store(nc, tmp)
        when = HISTORY_END + timedelta(days=1)
        clock = ManualClock(when)
        config = {"storage": {"backend": "tinydb", "location": str(folder)}, **settings}
        with open_crm(config, clock=clock, plugins=["storage_tinydb", *plugins]) as crm:
            _settle(crm)
            open_tasks = crm.tasks.count({"status": "open"})
            schedules = crm.collection("followup.schedule")
            due = schedules.count({"check_at": {"$lte": when}})
            spent, undo = _time_grading()
            cpu, wall = time.process_time(), time.perf_counter()
            tick = crm.tick("bench", when)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            undo()
            planned = due - schedules.count({"check_at": {"$lte": when}})
            graded = _grading_items(crm)
            later = [
                _later_day(crm, clock, HISTORY_END + timedelta(days=d)) for d in w11_later_days()
            ]
        shutil.rmtree(folder, ignore_errors=True)
        handled = planned + tick.tasks_created + tick.tasks_updated
        result.sizes["open_tasks"] = open_tasks
        result.crmcore = cpu
        result.extra.update(
            wall_s=round(wall, 2),
            build_cpu_s=round(build_cpu, 1),
            schedules_due=due,
            schedules_planned=planned,
            tasks_created=tick.tasks_created,
            tasks_updated=tick.tasks_updated,
            **graded,
            **spent,
            ms_per_item_handled=round(1000 * cpu / max(1, handled), 2),
        )
        if later:
            result.extra["later_days"] = later
        result.note = (
            "CPU time of one tick a day after nine months of imported purchases; "
            "no baseline: the figure to watch is ms per item handled across sizes"
        )
        results.append(result)
    return results


def w11_later_days() -> range:
    """The days after the measured tick that are ticked too, one tick a day (``W11_DAYS``,
    the measured one included; default 1: none), to show what a day brings once the store's
    backlog is worked off."""
    days = int(os.environ.get("W11_DAYS", "1").strip() or 1)
    return range(2, days + 1)


def _later_day(crm: Any, clock: ManualClock, when: datetime) -> dict[str, Any]:
    """One more daily tick at ``when``: what was due, planned and created, in CPU seconds."""
    clock.set(when)
    schedules = crm.collection("followup.schedule")
    due = schedules.count({"check_at": {"$lte": when}})
    spent, undo = _time_grading()
    cpu = time.process_time()
    tick = crm.tick("bench", when)
    cpu = time.process_time() - cpu
    undo()
    return {
        "day": (when - HISTORY_END).days,
        "schedules_due": due,
        "schedules_planned": due - schedules.count({"check_at": {"$lte": when}}),
        "tasks_created": tick.tasks_created,
        "cpu_s": round(cpu, 3),
        **spent,
        **_grading_items(crm),
    }


def _settle(crm: Any) -> None:
    """Before the measured tick, in a process that has just opened the store: every collection
    read once (the embedded store loads a table on first use, which the tick would otherwise
    pay for), and grading's population run at the history's end, as the settling tick ran it,
    by the grading code under test (a store built by an older version is brought up to it
    here, not in the measured tick)."""
    try:
        from crmcore_grading.engine import engine_for
    except ImportError:
        engine_for = None
    for name in crm.store.collection_names():
        crm.store.collection(name).count()
    if engine_for is not None and crm.has_plugin("grading"):
        engine_for(crm).grade_all(actor="bench", now=HISTORY_END)


def _time_grading() -> tuple[dict[str, float], Callable[[], None]]:
    """CPU seconds of grading's population run inside the tick (``grading_cpu_s``) and of the
    follow-up sweep (``sweep_cpu_s``), whatever versions are installed: grading's
    ``Engine.grade_all`` and followup's ``sweep.sweep`` timed until ``undo()``."""
    spent: dict[str, float] = {}
    undos: list[Callable[[], None]] = []
    try:
        from crmcore_grading.engine import Engine
    except ImportError:
        pass
    else:
        undos.append(_timed(Engine, "grade_all", "grading_cpu_s", spent))
    try:
        from crmcore_followup import sweep
    except ImportError:
        pass
    else:
        undos.append(_timed(sweep, "sweep", "sweep_cpu_s", spent))

    def undo() -> None:
        for one in undos:
            one()

    return spent, undo


def _timed(owner: Any, name: str, key: str, spent: dict[str, float]) -> Callable[[], None]:
    """Replace ``owner.name`` by a wrapper adding its CPU seconds to ``spent[key]``; returns
    what puts the original back."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[key] = round(spent.get(key, 0.0) + time.process_time() - started, 3)

    setattr(owner, name, timed)
    return lambda: setattr(owner, name, original)


def _grading_items(crm: Any) -> dict[str, Any]:
    """What grading's population run in the tick handled (customers read, assessed, written),
    where the installed grading reports it."""
    try:
        from crmcore_grading.engine import engine_for
    except ImportError:
        return {}
    report = getattr(engine_for(crm), "last_run", None)
    if report is None:
        return {}
    return {
        "grading_customers": report.customers,
        "grading_assessed": getattr(report, "assessed", report.customers),
        "grading_written": report.changed,
    }
