"""Where an add's time goes: ``python -m bench.profile_adds [N] [--audit] [--profile]``.

N customers (5,000 unless given) added one by one through ``crm.customers.add`` on the
embedded store with no plugins, as W1 adds them (the system clock, the same people), without
the audit trail unless ``--audit``. Prints adds per CPU second; with ``--profile``, the
cProfile listing of the adds (cumulative, then own time), which slows them several times.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.common import person
from bench.workloads import open_embedded
from crmcore.clock import SystemClock
from crmcore.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_adds", description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=5000)
    parser.add_argument("--audit", action="store_true", help="keep the audit trail on")
    parser.add_argument("--profile", action="store_true", help="print cProfile's listing")
    args = parser.parse_args(argv)
    configure_logging("warning")
    rng = random.Random(1)
    people = [person(rng, i) for i in range(args.n)]
    options = {} if args.audit else {"core": {"audit": False}}
    with (
        tempfile.TemporaryDirectory() as tmp,
        open_embedded(Path(tmp) / "crm", [], options, clock=SystemClock()) as crm,
    ):
        # CPU time, as the benchmarks: on a loaded machine wall time counts the waits
        profile = cProfile.Profile(time.process_time) if args.profile else None
        started = time.process_time()
        if profile is not None:
            profile.enable()
        for fields in people:
            crm.customers.add(actor="bench", **fields)
        if profile is not None:
            profile.disable()
        cpu = time.process_time() - started
    trail = "on" if args.audit else "off"
    print(f"{args.n:,} adds, audit trail {trail}: {args.n / cpu:,.0f} adds per CPU second")
    if profile is not None:
        stats = pstats.Stats(profile, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
