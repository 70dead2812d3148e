"""W7's counts: what one add / purchase / completed follow-up asks of the embedded backend.

``python -m bench.stack_counts [--customers N] [--calls N]`` builds the retail stack as
``bench.stack`` does (``crm init --profile retail``, filled through the API), then counts the
backend's own calls per user call: audit entries appended, writes, reads by id and queries,
per collection. Counts, not times: they are the same on a loaded machine.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.stack import OPS, START, Side, init_retail
from crmcore import ManualClock, open_crm
from crmcore.storage.base import StoreLayer

COUNTED = ("get", "insert", "update", "delete", "find", "count", "append", "insert_encoded")


def count_calls(customers: int, calls: int) -> dict[str, Counter[tuple[str, str]]]:
    """Per op: the backend's calls ``(method, collection)`` summed over ``calls`` calls."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(START)
        crm = open_crm(init_retail(Path(tmp) / "retail"), clock=clock)
        try:
            side = Side("stack", crm, clock)
            side.fill(customers, random.Random(customers))
            side.prepare_follow_ups(calls)
            backend: Any = crm.store
            while isinstance(backend, StoreLayer):
                backend = backend.inner
            kind = type(backend.collection("customers"))
            counted: Counter[tuple[str, str]] = Counter()
            originals: dict[str, Callable[..., Any]] = {}
            for name in COUNTED:
                originals[name] = getattr(kind, name)

                def counting(
                    self: Any, *a: Any, _f: Any = originals[name], _n: str = name, **k: Any
                ) -> Any:
                    counted[(_n, self.name)] += 1
                    return _f(self, *a, **k)

                setattr(kind, name, counting)
            try:
                result = {}
                rng = random.Random(7)
                for op in OPS:
                    counted.clear()
                    side.run(op, calls, rng)
                    result[op] = Counter(counted)
            finally:
                for name, original in originals.items():
                    setattr(kind, name, original)
            return result
        finally:
            crm.close()


def summary(counts: Counter[tuple[str, str]], calls: int) -> dict[str, float]:
    """Audit entries, other writes, reads by id and queries per call."""

    def per_call(methods: tuple[str, ...], audit: bool) -> float:
        total = sum(
            n for (m, c), n in counts.items() if m in methods and c.startswith("audit") == audit
        )
        return round(total / calls, 2)

    return {
        "audit entries": per_call(("append", "insert_encoded"), True),
        "writes": per_call(("insert", "update", "delete"), False),
        "reads by id": per_call(("get",), False),
        "queries": per_call(("find", "count"), False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    for op, counts in count_calls(args.customers, args.calls).items():
        print(f"{op}: {summary(counts, args.calls)}")
        for (method, coll), n in sorted(counts.items()):
            print(f"    {method:15s} {coll:28s} {n / args.calls:.2f}")


if __name__ == "__main__":
    main()
