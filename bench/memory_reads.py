"""W15's CPU side: what reads cost on a store W15 built (issue 24 item 8, compressed text).

``python -m bench.memory_reads FOLDER``: copies the store in FOLDER (a W15 step's
``w15-crm``) aside, opens it on the retail stack, loads the four largest collections (timed),
then times each read below in CPU seconds per call and prints one JSON line. Compare two code
versions by running it alternately under each (``PYTHONPATH``), on copies of one store.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from crmcore import open_crm
from crmcore.logs import configure_logging

CALLS = 300
SCAN_CALLS = 20


def measure(folder: Path) -> dict[str, float]:
    from bench.workloads import retail_stack

    plugins, settings = retail_stack()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "crm"
        shutil.copytree(folder, copy)
        config = {"storage": {"backend": "tinydb", "location": str(copy)}, **settings}
        started = time.process_time()
        crm = open_crm(config, plugins=["storage_tinydb", *plugins])
        try:
            store: Any = crm.store
            while hasattr(store, "inner"):
                store = store.inner
            for name in ("customers", "interactions", "loyalty.ledger", "tasks"):
                store.collection(name).count()
            out = {"load_s": time.process_time() - started}
            rng = random.Random(1)
            ids = [d["id"] for d in store.collection("customers").find({}, limit=1_000_000)]
            ids = rng.sample(ids, min(CALLS, len(ids)))
            inter, ledger, tasks = (
                store.collection(n) for n in ("interactions", "loyalty.ledger", "tasks")
            )
            now = crm.now()
            month = {"$gte": "2021-01-01", "$lt": "2021-02-01"}
            reads = {
                "customer list by id, limit 50": lambda c: crm.customers.find(
                    sort=[("id", 1)], limit=50
                ),
                "due queue, limit 20": lambda c: crm.tasks.due(now=now, limit=20),
                "a customer by id": lambda c: crm.customers.get(c),
                "a customer's last 20 interactions": lambda c: inter.find(
                    {"customer_id": c}, sort=[("occurred_at", -1)], limit=20
                ),
                "a customer's ledger": lambda c: ledger.find({"customer_id": c}),
                "a customer's tasks": lambda c: tasks.find({"customer_id": c}),
                "search by a phone's last 4": lambda c: crm.customers.search(c[-4:].lower()),
                "search by name": lambda c: crm.customers.search("Customer 00" + c[-3:].lower()),
                "purchases in a month (count)": lambda c: inter.count(
                    {"kind": "purchase", "occurred_at": month}
                ),
                "scan: interactions with amount > 799.5": lambda c: inter.find(
                    {"amount": {"$gt": 799.5}}
                ),
            }
            for title, read in reads.items():
                calls = SCAN_CALLS if title.startswith("scan") else CALLS
                read(ids[0])  # a first call loads what it reads: not timed
                started = time.process_time()
                for i in range(calls):
                    read(ids[i % len(ids)])
                out[title + " (ms)"] = (time.process_time() - started) / calls * 1000
        finally:
            crm.close()
    return out


if __name__ == "__main__":
    configure_logging("warning")
    figures = measure(Path(sys.argv[1]))
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))
