"""W10's customer list taken apart (issue 24 item 4): what each step of the API's answer costs
beside sqlite3's answer, in one process, CPU time.

``python -m bench.w10_parts [customers]`` (default 10,000) loads the W10 documents beneath the
API and into sqlite3 (as ``bench.queries`` does), then times, alternating in a new order each
round: sqlite3's answer and its rows alone, ``orjson.loads`` and the store's ``decode_doc`` of the
50 stored texts (and the wide-number check inside it), the store's ``find``, building the 50
``Customer`` records from dicts, and the API's ``crm.customers.find``. Prints a Markdown table
of medians: µs per call, per customer, and as a ratio to sqlite3's answer.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.queries import LIST_LIMIT, sqlite_list, sqlite_store
from bench.workloads import customer_docs, open_embedded, raw, task_docs
from crmcore.converter import from_docs
from crmcore.entities import Customer

ROUNDS, CALLS = 200, 20


def parts(n: int) -> list[tuple[str, float]]:
    """(step, median µs of CPU per call) for the list at ``n`` customers."""
    from crmcore_storage_tinydb.files import _DIGITS_AS_ZERO, WIDE, decode_doc

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        customers = customer_docs(n, seed=10)
        tasks = task_docs(2 * n, [c["id"] for c in customers], seed=11)
        conn = sqlite_store(tmp / "s.sqlite", customers, tasks)
        with open_embedded(tmp / "e") as crm:
            coll = raw(crm, "customers")
            coll.insert_many(customers)
            del customers, tasks
            table = coll.table()
            texts = [table.docs[d["id"]] for d in sqlite_list(conn)]
            docs = [decode_doc(t) for t in texts]
            rows = (
                f"SELECT doc FROM customers WHERE status = 'active' ORDER BY id LIMIT {LIST_LIMIT}"
            )
            calls: dict[str, Callable[[], Any]] = {
                "sqlite3's answer (`SELECT … LIMIT 50` and `orjson.loads`)": lambda: sqlite_list(
                    conn
                ),
                "sqlite3's rows alone (no decoding)": lambda: conn.execute(rows).fetchall(),
                "`orjson.loads` of the 50 stored texts": lambda: [orjson.loads(t) for t in texts],
                "the store's `decode_doc` of those texts": lambda: [decode_doc(t) for t in texts],
                "of which the wide-number check": lambda: [
                    WIDE in t.encode().translate(_DIGITS_AS_ZERO) for t in texts
                ],
                "the store's answer (`find`, dicts)": lambda: coll.find(
                    {"status": "active"}, sort=[("id", 1)], limit=LIST_LIMIT
                ),
                "`from_docs(Customer, …)` of the 50 dicts": lambda: from_docs(Customer, docs),
                "the API's answer (`crm.customers.find`)": lambda: crm.customers.find(
                    sort=[("id", 1)], limit=LIST_LIMIT
                ),
            }
            samples: dict[str, list[float]] = {k: [] for k in calls}
            order = list(calls)
            shuffle = random.Random(10).shuffle
            for fn in calls.values():  # every cache warm
                fn()
            for _ in range(ROUNDS):
                shuffle(order)
                for name in order:
                    fn = calls[name]
                    started = time.process_time()
                    for _ in range(CALLS):
                        fn()
                    samples[name].append((time.process_time() - started) / CALLS * 1e6)
        conn.close()
    return [(name, statistics.median(values)) for name, values in samples.items()]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    measured = parts(n)
    base = measured[0][1]
    print("| what | µs per call | µs per customer | ÷ sqlite3's answer |")
    print("|---|---|---|---|")
    for name, us in measured:
        print(f"| {name} | {us:.0f} | {us / LIST_LIMIT:.2f} | {us / base:.2f} |")


if __name__ == "__main__":
    main()
