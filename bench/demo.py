"""W16: ``crm demo`` as a user starts it, its CPU time at several sizes and how it grows.

Each run is a whole ``crm demo --json`` process (the default retail profile) in a fresh
folder; the figure is the child's CPU time (user + system, ``getrusage``). Sizes vary the days
at a fixed population and the population at fixed days, so the report says whether a
simulated day costs what happens in it (a day's cost flat as days grow) or grows with all the
data before it (issue 24, item 7: 300 customers and 60 days within 15 s of CPU).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from bench.common import Result
from bench.startup import CRM, _environment

TIMEOUT = 600  # seconds, per process


def run_demo(folder: Path, customers: int, days: int, env: dict[str, str]) -> tuple[float, dict]:
    """(CPU seconds, the demo's JSON summary) of one ``crm demo`` process."""
    args = ["demo", "--json", "--dir", str(folder), "--customers", str(customers)]
    args += ["--days", str(days)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*CRM, *args],
        env=env,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(
            f"W16: crm demo exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-400:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, json.loads(done.stdout)


def w16_demo(size: dict, tmp: Path) -> list[Result]:
    env = _environment(tmp / "pycache")
    subprocess.run([sys.executable, "-c", "import crmcore.cli.main"], env=env, check=True)
    results = []
    first: tuple[float, int] | None = None
    by_customers: dict[int, tuple[int, float]] = {}  # customers -> (days, CPU) of the last run
    sizes = size["W16_sizes"]
    given = os.environ.get("W16_SIZES", "").strip()  # e.g. "300x60,600x60"
    if given:
        sizes = [tuple(int(x) for x in part.split("x")) for part in given.split(",")]
    for n, (customers, days) in enumerate(sizes):
        cpu, summary = run_demo(tmp / f"demo-{n}", customers, days, env)
        result = Result(
            "W16",
            "`crm demo`: one whole process (s of CPU)",
            {"customers": customers, "days": days},
            "s",
            False,
        )
        result.crmcore = cpu
        per_day = cpu / days
        if first is None:
            first = (per_day, days)
        result.extra = {
            "CPU s per simulated day": round(per_day, 3),
            "per-day cost / the first size's": round(per_day / first[0], 2),
        }
        earlier = by_customers.get(customers)
        if earlier is not None and days > earlier[0]:
            # what each further day cost: the fixed part (start-up, the population, the
            # closing report) cancels out; flat if a day costs what happens in it
            result.extra["CPU s per added day"] = round((cpu - earlier[1]) / (days - earlier[0]), 3)
        by_customers[customers] = (days, cpu)
        result.extra |= {
            "interactions": summary["interactions"],
            "customers at the end": summary["customers"],
            "tasks done": summary["tasks_done"],
        }
        result.note = "retail profile; goal: 300 customers, 60 days within 15 s of CPU"
        results.append(result)
    return results
