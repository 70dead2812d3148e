"""W7: what the assembled stack costs per event (issue 24, item 1).

Three calls a user makes all day: add a customer, log a purchase, complete a follow-up. Each is
timed on the full retail stack exactly as ``crm init --profile retail`` writes it (its
``crm.toml`` opened as written, audit trail on) and on the core with the embedded store alone
(the same audit trail, no other plugin), in the same run, at each size. The stores are built
through the API first (so every plugin's state exists: accounts, grades, schedules, tasks),
then ``W7_ops`` calls of each kind are timed in CPU seconds of this process, the two sides
taking turns in blocks of 50 calls so that a change of load on the machine falls on both.

The follow-up completed is the open follow-up task the stack's follow-up plugin created for a
customer (``first_contact``); the core alone has no plugin creating work, so it completes
a ``first_contact`` task made with ``crm.tasks.create`` for the same customers.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Result
from crmcore import ManualClock, open_crm
from crmcore.app import CRM

# A Monday 09:00 in Shanghai: the retail profile's business day.
START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
BLOCK = 50
OPS = ("add_customer", "log_purchase", "complete_follow_up")


def init_retail(folder: Path) -> Path:
    """``crm init --profile retail`` in ``folder`` (a real subprocess): the written crm.toml."""
    folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    crm_bin = str(Path(sys.executable).parent / "crm")
    done = subprocess.run(
        [crm_bin, "init", "--profile", "retail"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"crm init --profile retail failed: {done.stderr.strip()}")
    return folder / "crm.toml"


class Side:
    """One store under test, with its clock, customers and follow-ups to complete."""

    def __init__(self, name: str, crm: CRM, clock: ManualClock) -> None:
        self.name, self.crm, self.clock = name, crm, clock
        self.customers: list[str] = []
        self.follow_ups: list[str] = []
        self.cpu = dict.fromkeys(OPS, 0.0)
        self.audit_entries = dict.fromkeys(OPS, 0)
        self.added = 0

    def fill(self, n: int, rng: random.Random) -> None:
        """``n`` customers and ``n`` purchases through the API (a minute apart)."""
        for i in range(n):
            self.clock.advance(timedelta(minutes=1))
            self.customers.append(
                self.crm.customers.add(
                    actor="ann", name=f"Customer {i:06d}", phone=f"+86139{i:08d}"
                ).id
            )
        for _ in range(n):
            self.clock.advance(timedelta(minutes=1))
            self.crm.interactions.log(
                actor="ann",
                customer_id=rng.choice(self.customers),
                kind="purchase",
                amount=round(rng.uniform(5, 800), 2),
            )

    def prepare_follow_ups(self, count: int) -> None:
        """The open follow-ups to complete: the stack's own, or made here for the core."""
        open_ones = [t.id for t in self.crm.tasks.iter({"kind": "first_contact", "status": "open"})]
        if not open_ones:
            for cid in self.customers[:count]:
                open_ones.append(
                    self.crm.tasks.create(
                        actor="ann",
                        kind="first_contact",
                        title="first contact",
                        due_at=self.clock.now() + timedelta(days=1),
                        customer_id=cid,
                    ).id
                )
        self.follow_ups = open_ones[:count]

    def run(self, op: str, count: int, rng: random.Random) -> None:
        calls: Callable[[int], Any] = {
            "add_customer": self._add,
            "log_purchase": lambda _i: self._buy(rng),
            "complete_follow_up": self._complete,
        }[op]
        entries = self._audit_count()
        cpu = time.process_time()
        for i in range(count):
            self.clock.advance(timedelta(seconds=20))
            calls(i)
        self.cpu[op] += time.process_time() - cpu
        self.audit_entries[op] += self._audit_count() - entries

    def _audit_count(self) -> int:
        # The head's sequence number: counting the trail itself would load it into memory,
        # which an application never does (and would make every append index the entry).
        audit = self.crm.audit
        head = audit.head_record() if audit is not None else None
        return int(head["seq"]) if head else 0

    def _add(self, _i: int) -> None:
        self.added += 1
        self.crm.customers.add(
            actor="ann", name=f"New customer {self.added:06d}", phone=f"+86138{self.added:08d}"
        )

    def _buy(self, rng: random.Random) -> None:
        self.crm.interactions.log(
            actor="ann",
            customer_id=rng.choice(self.customers),
            kind="purchase",
            amount=round(rng.uniform(5, 800), 2),
        )

    def _complete(self, _i: int) -> None:
        self.crm.tasks.complete(self.follow_ups.pop(), actor="ann", outcome="reached")


def w7_stack(size: dict[str, Any], tmp: Path) -> list[Result]:
    from bench.workloads import embedded_available

    ops = size["W7_ops"]
    results = []
    for n in size["W7_customers"]:
        sizes = {"customers": n, "purchases": n, "timed_calls_each": ops}
        if not embedded_available():
            result = Result("W7", "full-stack events", sizes, "ms/call", False)
            result.note = "storage_tinydb is not installed: crmcore not measured"
            return [result]
        sides = []
        core_clock, stack_clock = ManualClock(START), ManualClock(START)
        core = open_crm(
            {"storage": {"backend": "tinydb", "location": str(tmp / f"core-{n}")}},
            clock=core_clock,
            plugins=["storage_tinydb"],
        )
        stack = open_crm(init_retail(tmp / f"retail-{n}"), clock=stack_clock)
        try:
            sides = [Side("core", core, core_clock), Side("stack", stack, stack_clock)]
            for side in sides:
                side.fill(n, random.Random(n))
                side.prepare_follow_ups(ops)
            if len(sides[1].follow_ups) < ops:
                raise RuntimeError(
                    f"the retail stack made {len(sides[1].follow_ups)} "
                    f"first-contact tasks, {ops} needed"
                )
            rngs = {s.name: random.Random(7) for s in sides}
            for op in OPS:
                for start in range(0, ops, BLOCK):
                    for side in sides:
                        side.run(op, min(BLOCK, ops - start), rngs[side.name])
        finally:
            core.close()
            stack.close()
        for op in OPS:
            core_ms, stack_ms = (1000 * s.cpu[op] / ops for s in sides)
            result = Result(
                "W7",
                f"{op.replace('_', ' ')}: full retail stack vs core + store",
                {**sizes},
                "ms/call",
                False,
            )
            result.crmcore = stack_ms
            result.baselines["core_and_store"] = core_ms
            result.extra = {
                "op": op,
                "stack_over_core": round(stack_ms / core_ms, 2),
                "audit_entries_per_call_stack": round(sides[1].audit_entries[op] / ops, 2),
                "audit_entries_per_call_core": round(sides[0].audit_entries[op] / ops, 2),
            }
            result.note = (
                "CPU ms per call; ratio < 1: the stack costs more (stack_over_core "
                "is how many times)"
            )
            results.append(result)
    return results
