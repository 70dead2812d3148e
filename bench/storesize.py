"""W8: bytes on disk per business record, full retail stack against core + store (issue 24,
item 2).

Two stores in the same run, at each size: the retail stack exactly as ``crm init --profile
retail`` writes it (its ``crm.toml`` opened as written, the audit trail on) and the core with
the embedded store alone (the same default configuration, trail on, no other plugin). Each is
filled **through the API**: N customers, then 2N purchases a minute apart, then N/4 of the
follow-ups the stack made completed (the core completes first-contact tasks made with
``crm.tasks.create``). Both are closed (the embedded store folds its journal into the
collection files, as it does at every close) and the files in the store's folder are
measured.

A business record is a customer, an interaction, a task or a complaint ticket: what a user
counts. Everything else the store keeps (the audit trail, plugin collections such as loyalty's
accounts and ledger or follow-up's schedules, the ``ext`` mirrors inside customers, index
files, the journal, lock and manifest) is overhead on those records, and is reported by part.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import Result
from bench.stack import START, init_retail
from crmcore import ManualClock, ids, open_crm
from crmcore.app import CRM

BUSINESS = ("customers", "interactions", "tasks", "complaints.tickets")
GOAL_BYTES = 1500  # 1.5 KB per business record, read strictly (1,500 B, not 1.5 KiB)


def build(crm: CRM, clock: ManualClock, n: int, seed: int) -> None:
    """N customers, 2N purchases and N/4 completed follow-ups, through the API."""
    rng = random.Random(seed)
    ids = []
    for i in range(n):
        clock.advance(timedelta(minutes=1))
        ids.append(
            crm.customers.add(actor="ann", name=f"Customer {i:06d}", phone=f"+86139{i:08d}").id
        )
    for _ in range(2 * n):
        clock.advance(timedelta(minutes=1))
        crm.interactions.log(
            actor="ann",
            customer_id=rng.choice(ids),
            kind="purchase",
            amount=round(rng.uniform(5, 800), 2),
        )
    todo = [t.id for t in crm.tasks.iter({"kind": "first_contact", "status": "open"})][: n // 4]
    if not todo:  # the core alone: no plugin makes work
        for cid in ids[: n // 4]:
            todo.append(
                crm.tasks.create(
                    actor="ann",
                    kind="first_contact",
                    title="first contact",
                    due_at=clock.now() + timedelta(days=1),
                    customer_id=cid,
                ).id
            )
    for task in todo:
        clock.advance(timedelta(minutes=1))
        crm.tasks.complete(task, actor="ann", outcome="reached")


def part_of(name: str) -> str:
    """Which part of the store a file of the embedded store belongs to."""
    stem, _, ext = name.rpartition(".")
    if stem in ("audit", "audit_head"):
        return "audit trail"  # its index file too, written once something read the trail
    if ext == "idx":
        return "indexes"
    if stem in BUSINESS:
        return f"records: {stem}"
    if "." in stem:
        return f"plugin: {stem}"
    if ext == "json":
        return f"core: {stem}"
    return "journal, lock, manifest"


def measure(folder: Path) -> dict[str, int]:
    """Bytes on disk by part of the store."""
    parts: dict[str, int] = {}
    for path in folder.iterdir():
        if path.is_file():
            part = part_of(path.name)
            parts[part] = parts.get(part, 0) + path.stat().st_size
    return parts


def reopen(folder: Path) -> CRM:
    return open_crm(
        {"storage": {"backend": "tinydb", "location": str(folder)}}, plugins=["storage_tinydb"]
    )


def business_records(crm: CRM) -> int:
    names = set(crm.store.collection_names())
    return sum(crm.store.collection(c).count() for c in BUSINESS if c in names)


def audit_entries(crm: CRM) -> tuple[int, int]:
    """(entries, operations) of the trail."""
    from crmcore.audit import AUDIT

    assert crm.audit is not None
    entries = ops = 0
    for entry in crm.audit.inner.collection(AUDIT).iter():
        entries += 1
        ops += len(entry["ops"]) if "ops" in entry else 1
    return entries, ops


def w8_store_size(size: dict[str, Any], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available

    results = []
    for n in size["W8_customers"]:
        sizes = {"customers": n, "purchases": 2 * n, "follow_ups_completed": n // 4}
        result = Result("W8", "bytes per business record on disk", sizes, "bytes/record", False)
        if not embedded_available():
            result.note = "storage_tinydb is not installed: crmcore not measured"
            return [result]
        figures: dict[str, dict[str, Any]] = {}
        for side in ("core", "stack"):
            # Ids as a fresh process mints them: otherwise the second side, its clock back at
            # START, would get ids all of one millisecond (the generator stays monotonic),
            # counting up, which compress far better in the index files than real ones.
            ids._reset_after_fork()
            clock = ManualClock(START)
            if side == "core":
                folder = tmp / f"core-{n}"
                crm = open_crm(
                    {"storage": {"backend": "tinydb", "location": str(folder)}},
                    clock=clock,
                    plugins=["storage_tinydb"],
                )
            else:
                config = init_retail(tmp / f"retail-{n}")
                crm = open_crm(config, clock=clock)
                folder = config.parent / "crm-data"
            try:
                build(crm, clock, n, seed=n)
                records = business_records(crm)
            finally:
                crm.close()
            # Measured before anything reads the trail: once read, the embedded store keeps
            # its indexes in a file too, which a store that only appends never writes.
            parts = measure(folder)
            with open_crm(config, clock=clock) if side == "stack" else reopen(folder) as crm:
                entries, ops = audit_entries(crm)
            total = sum(parts.values())
            figures[side] = {
                "records": records,
                "bytes": total,
                "per_record": total / records,
                "audit_entries": entries,
                "audit_operations": ops,
                "parts": dict(sorted(parts.items(), key=lambda kv: -kv[1])),
            }
        stack, core = figures["stack"], figures["core"]
        result.crmcore = round(stack["per_record"], 1)
        result.baselines["core_and_store"] = round(core["per_record"], 1)
        audit_share = stack["parts"].get("audit trail", 0) / stack["bytes"]
        result.extra = {
            "stack_over_core": round(stack["per_record"] / core["per_record"], 2),
            "goal_bytes_per_record": GOAL_BYTES,
            "goal_met": stack["per_record"] <= GOAL_BYTES,
            "stack_records": stack["records"],
            "stack_bytes": stack["bytes"],
            "stack_audit_share": round(audit_share, 3),
            "stack_audit_entries": stack["audit_entries"],
            "stack_audit_operations": stack["audit_operations"],
            "stack_parts_per_record": {
                k: round(v / stack["records"], 1) for k, v in stack["parts"].items()
            },
            "core_records": core["records"],
            "core_bytes": core["bytes"],
            "core_audit_entries": core["audit_entries"],
            "core_parts_per_record": {
                k: round(v / core["records"], 1) for k, v in core["parts"].items()
            },
        }
        result.note = (
            "bytes on disk per customer/interaction/task/ticket; ratio < 1: the stack takes "
            "more (stack_over_core is how many times)"
        )
        results.append(result)
    return results
