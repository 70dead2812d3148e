"""W12: a client's purchase history imported on the retail stack (issue 23, item 4).

The same rows go through ``crm interaction import``'s code path (file read, checks, replay
through every plugin: the batch hook ``crm_interactions_replayed`` where the plugins fold whole
customers, row by row in time order for the customers they name; batched transactions) and, on
a copy of the same store,
through the per-row API (``crm.interactions.log`` with the clock at each row's time, which is
what an import did before). Both are measured in CPU seconds of this process, so other load
on the machine does not count. Both runs see the same rows (``W12_per_row`` may cut the per-row
run short, the ratio then compares a prefix of the history, where customers have fewer
purchases).
"""

from __future__ import annotations

import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import Result
from crmcore import ManualClock, open_crm
from crmcore.tabular import open_table
from crmcore.transfer import import_interactions

HISTORY_START = datetime(2020, 1, 1, tzinfo=UTC)
IMPORTED_AT = datetime(2026, 6, 1, tzinfo=UTC)


def _open(folder: Path, plugins: list[str], settings: dict, clock: ManualClock):
    config = {"storage": {"backend": "tinydb", "location": str(folder)}, **settings}
    return open_crm(config, clock=clock, plugins=["storage_tinydb", *plugins])


def w12_history(size: dict[str, int], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available, retail_stack

    nc, ni, sample = size["W12_customers"], size["W12_purchases"], size["W12_per_row"]
    plugins, settings = retail_stack()
    result = Result(
        "W12",
        "history import, retail stack (purchases/s of CPU)",
        {"customers": nc, "purchases": ni, "per_row_sample": sample},
        "rows/s",
        True,
        extra={"plugins": plugins},
    )
    if not embedded_available():
        result.note = "storage_tinydb is not installed: crmcore not measured"
        return [result]
    rng = random.Random(7)
    folder = tmp / "w7"
    clock = ManualClock(HISTORY_START)
    with _open(folder, plugins, settings, clock) as crm:
        for i in range(nc):
            crm.customers.add(
                actor="bench",
                name=f"Customer {i:06d}",
                phone=f"+86139{i:08d}",
                external_ids={"shop": str(i)},
            )
    span = int((IMPORTED_AT - HISTORY_START).total_seconds()) - 86400 * 30
    rows = sorted(
        (
            HISTORY_START + timedelta(seconds=rng.randrange(span)),
            rng.randrange(nc),
            round(rng.uniform(5, 800), 2),
        )
        for _ in range(ni)
    )
    csv_path = tmp / "history.csv"
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("会员号,时间,类型,金额\n")
        for at, customer, amount in rows:
            handle.write(f"shop:{customer},{at:%Y-%m-%dT%H:%M:%S%z},purchase,{amount}\n")
    per_row_folder = tmp / "w7-per-row"
    shutil.copytree(folder, per_row_folder)

    clock.set(IMPORTED_AT)
    with _open(folder, plugins, settings, clock) as crm:
        cpu, wall = time.process_time(), time.perf_counter()
        report = import_interactions(
            crm, open_table(csv_path, "csv"), actor="bench", batch_size=500
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        asks = crm.tasks.count({"kind": "referral_ask"})
    if report.errors or report.written != ni:
        result.note = f"import wrote {report.written} of {ni}: {report.errors[:1]}"
        return [result]
    result.crmcore = ni / cpu
    result.extra.update(
        bulk_cpu_s=round(cpu, 1), bulk_wall_s=round(wall, 1), referral_asks_created=asks
    )

    with _open(per_row_folder, plugins, settings, clock) as crm:
        by_key = {}
        for c in crm.customers.iter():
            by_key[c.external_ids["shop"]] = c.id
        cpu = time.process_time()
        for at, customer, amount in rows[:sample]:
            clock.set(at)
            crm.interactions.log(
                actor="bench",
                customer_id=by_key[str(customer)],
                kind="purchase",
                amount=amount,
                occurred_at=at,
            )
        cpu = time.process_time() - cpu
    result.baselines["per_row_api"] = sample / cpu
    result.extra["per_row_ms_cpu"] = round(1000 * cpu / sample, 2)
    result.note = (
        "CPU time of this process; baseline: the per-row API on "
        + ("the same rows" if sample >= ni else f"the first {sample:,} rows")
        + " of the same file, on a copy of the same store"
    )
    return [result]
