"""W15: the memory of a process holding a large retail store (issue 24, item 8).

One store grows through the full retail stack up a ladder of sizes, by default 1%, 10%, 30% and
100% of 100,000 customers, 1,000,000 interactions and 200,000 tasks:

- customers are added through ``crm.customers.add`` (every plugin reacting, audited);
- interactions (purchases, most of them, consultations and visits) are imported through
  ``crm interaction import``'s code path (``import_interactions``: the history replay, every
  plugin reacting), from CSV files of at most 100,000 rows, each step covering a later time
  window over every customer so far;
- tasks are what the stack created while replaying, topped up through ``crm.tasks.create``
  to the step's number;
- the audit trail is whatever all of that wrote.

After each step a fresh process opens the store on the retail stack, reads every collection
but the audit trail (a server appends to the trail without loading it), answers the customer
list and the due queue, adds a customer and logs a purchase: its peak resident set (``VmHWM``)
then is the serving figure. It then reads the audit trail too (as ``crm audit verify`` would)
and reports its peak (the figure) and where the memory goes (document text, id lists, index
entries per collection, from ``sys.getsizeof``). The goal is at most 1.5 GB at the full size.

Building is slow (the history replay costs about a millisecond per row of CPU): the ladder
stops before a step whose projected build time (from the previous step's rate) would exceed
``W15_BUDGET_S`` seconds of wall time in all (default 5,400), and the result says which sizes
were measured and which are extrapolated from them. ``W15_SCALE`` (default 1.0) scales the
ladder's top. W15 runs only when named (``--only W15``); ``--quick`` runs a tiny ladder.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import REPS, Result
from crmcore import ManualClock, open_crm
from crmcore.audit import AUDIT

FULL = {"customers": 100_000, "interactions": 1_000_000, "tasks": 200_000}
LADDER = {"full": [0.01, 0.1, 0.3, 1.0], "quick": [0.001, 0.002]}
GOAL_MB = 1536
CHUNK_ROWS = 100_000
START = datetime(2020, 1, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)

CHILD = r"""
import json, sys, time
from crmcore import open_crm
from crmcore.audit import AUDIT
from crmcore.logs import configure_logging
configure_logging("warning")
config = json.loads(sys.argv[1])
plugins = json.loads(sys.argv[2])

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

t = time.process_time()
crm = open_crm(config, plugins=plugins)
store = crm.store
while hasattr(store, "inner"):
    store = store.inner
names = sorted(store.collection_names())
# serving: every collection but the audit trail read (a server appends to the trail without
# loading it), the two big queries answered, a customer added and a purchase logged
counts = {n: store.collection(n).count() for n in names if n != AUDIT}
opened = time.process_time() - t
crm.customers.find(sort=[("id", 1)], limit=50)
crm.tasks.due(now=crm.now(), limit=20)
c = crm.customers.add(actor="bench", name="Memory Probe", phone="+8613000000000")
crm.interactions.log(actor="bench", customer_id=c.id, kind="purchase", amount=12.5)
trail = store.collection(AUDIT)
serving = {"peak_rss_mb": hwm(), "audit_loaded": getattr(trail, "_table", None) is not None}
# everything: the audit trail read too (what 'crm audit verify' in the process does)
counts[AUDIT] = trail.count()
trail.table()

def where(name):
    table = store.collection(name).table()
    stored = getattr(table.docs, "stored_bytes", None)  # kept compressed (texts.py)
    texts = stored() if stored else sum(sys.getsizeof(t) for t in table.docs.values())
    ids = sys.getsizeof(table.docs) + sum(
        sys.getsizeof(chunk) for chunk in table.ids._chunks)
    indexes = 0
    for index in table.indexes.values():
        for chunk in index.entries._chunks:
            if isinstance(chunk, list):
                indexes += sys.getsizeof(chunk) + sum(sys.getsizeof(e) for e in chunk)
            else:  # a packed run: one buffer and its offsets
                indexes += sys.getsizeof(chunk) + sys.getsizeof(chunk.blob) + sys.getsizeof(
                    chunk.offsets)
    return {"docs": len(table.docs), "text_mb": texts / 2**20,
            "ids_mb": ids / 2**20, "indexes_mb": indexes / 2**20,
            "index_count": len(table.indexes)}

peak = hwm()
breakdown = {n: where(n) for n in names}
crm.close()
print(json.dumps({"open_cpu_s": opened, "peak_rss_mb": peak, "serving": serving,
                  "counts": counts, "breakdown": breakdown}))
"""


def _hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _grow(
    crm: Any,
    clock: ManualClock,
    target: dict[str, int],
    have: dict[str, int],
    window: tuple[datetime, datetime],
    rng: random.Random,
    tmp: Path,
) -> None:
    """Grow the store from ``have`` to ``target``, through the API and the history import."""
    from crmcore.tabular import open_table
    from crmcore.transfer import import_interactions

    start, end = window
    clock.set(start)
    for i in range(have["customers"], target["customers"]):
        crm.customers.add(
            actor="bench",
            name=f"Customer {i:06d}",
            phone=f"+86139{i:08d}",
            external_ids={"shop": str(i)},
            owner=REPS[i % len(REPS)],
        )
    span = max(1, int((end - start).total_seconds() * 0.99))  # rows end before the window
    rows = sorted(
        (start + timedelta(seconds=rng.randrange(span)), rng.randrange(target["customers"]))
        for _ in range(target["interactions"] - have["interactions"])
    )
    clock.set(end)
    for first in range(0, len(rows), CHUNK_ROWS):
        path = tmp / "w15-history.csv"
        with path.open("w", encoding="utf-8") as handle:
            handle.write("external_id,occurred_at,kind,amount\n")
            for at, customer in rows[first : first + CHUNK_ROWS]:
                kind = rng.choice(("purchase", "purchase", "purchase", "consultation", "visit"))
                amount = f"{rng.uniform(5, 800):.2f}" if kind == "purchase" else ""
                handle.write(f"shop:{customer},{at:%Y-%m-%dT%H:%M:%S%z},{kind},{amount}\n")
        report = import_interactions(
            crm, open_table(path, "csv"), actor="bench", customer_key="external_id"
        )
        if report.errors:
            raise RuntimeError(f"W15: import failed: {report.errors[:1]}")
    del rows
    ids = None
    missing = target["tasks"] - crm.tasks.count()
    if missing > 0:
        ids = [c.id for c in crm.customers.iter({"status": "active"})]
    for _ in range(max(0, missing)):
        crm.tasks.create(
            actor="bench",
            kind="follow_up",
            title="Call back about the last order",
            due_at=end + timedelta(hours=rng.uniform(-24 * 30, 24 * 30)),
            customer_id=rng.choice(ids),  # type: ignore[arg-type]
            assignee=rng.choice(REPS),
        )
    have.update(
        customers=target["customers"],
        interactions=crm.interactions.count(),
        tasks=crm.tasks.count(),
    )


def w15_memory(size: dict[str, Any], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available, retail_stack

    quick = size["W1"] < 1000
    scale = float(os.environ.get("W15_SCALE", "1"))
    budget = float(os.environ.get("W15_BUDGET_S", "5400"))
    plugins, settings = retail_stack()
    top = {k: int(v * scale) for k, v in FULL.items()}
    results: list[Result] = []
    if not embedded_available():
        r = Result("W15", "peak RSS holding the store (MB)", top, "MB", False)
        r.note = "storage_tinydb is not installed: crmcore not measured"
        return [r]
    folder = tmp / "w15-crm"
    config = {"storage": {"backend": "tinydb", "location": str(folder)}, **settings}
    clock = ManualClock(START)
    rng = random.Random(15)
    have = {"customers": 0, "interactions": 0, "tasks": 0}
    fractions = LADDER["quick" if quick else "full"]
    began = time.perf_counter()
    rate: float | None = None  # wall seconds per interaction row of the last step
    for step, fraction in enumerate(fractions):
        target = {k: max(1, int(v * fraction)) for k, v in top.items()}
        rows = target["interactions"] - have["interactions"]
        spent = time.perf_counter() - began
        if rate is not None and spent + rate * rows > budget:
            results.append(_skipped(target, rate * rows, budget - spent))
            break
        window = (
            START + (END - START) * (fractions[step - 1] if step else 0),
            START + (END - START) * fraction,
        )
        wall, cpu = time.perf_counter(), time.process_time()
        with open_crm(config, clock=clock, plugins=["storage_tinydb", *plugins]) as crm:
            _grow(crm, clock, target, have, window, rng, tmp)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        rate = wall / max(1, rows)
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                json.dumps(config),
                json.dumps(["storage_tinydb", *plugins]),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(proc.stdout)
        counts = figures["counts"]
        records = sum(counts.values())
        audit = counts.get(AUDIT, 0)
        result = Result(
            "W15",
            "peak RSS of a process holding the store, retail stack (MB)",
            dict(have),
            "MB",
            False,
            crmcore=figures["peak_rss_mb"],
        )
        result.baselines["goal_1.5GB"] = GOAL_MB
        result.extra.update(
            # rounded down: the serving peak is never more than the figure (VmHWM only rises)
            serving_peak_rss_mb=math.floor(figures["serving"]["peak_rss_mb"] * 10) / 10,
            serving_loaded_the_audit_trail=figures["serving"]["audit_loaded"],
            documents=records,
            audit_entries=audit,
            bytes_per_document_in_memory=round(figures["peak_rss_mb"] * 2**20 / records),
            bytes_on_disk=_bytes(folder),
            open_and_load_cpu_s=round(figures["open_cpu_s"], 1),
            build_cpu_s=round(cpu, 1),
            build_wall_s=round(wall, 1),
            builder_peak_rss_mb=round(_hwm_mb(), 1),
            counts=counts,
            breakdown={
                k: {f: round(x, 1) if isinstance(x, float) else x for f, x in v.items()}
                for k, v in figures["breakdown"].items()
            },
        )
        result.note = (
            "a fresh process opens the store, reads every collection but the audit trail, "
            "queries and writes once (serving_peak_rss_mb), then reads the audit trail too "
            "(the figure: peak RSS, VmHWM, of that process); built through the API and the "
            "history import on the retail stack"
        )
        results.append(result)
        print(json.dumps(result.as_dict()), file=sys.stderr, flush=True)  # progress
    return results


def _skipped(target: dict[str, int], projected: float, left: float) -> Result:
    result = Result("W15", "peak RSS holding the store (MB)", target, "MB", False)
    result.note = (
        f"not built: projected {projected:,.0f} s of building, {max(0.0, left):,.0f} s of "
        "the W15_BUDGET_S budget left; extrapolate from the sizes above (and say so)"
    )
    return result
