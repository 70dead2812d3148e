"""Timing, data generation and result records shared by the workloads."""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
REPS = [f"rep{i:02d}" for i in range(50)]


@attrs.define
class Result:
    """One workload's figures: crmcore's, each baseline's, and crmcore/baseline ratios."""

    workload: str
    title: str
    sizes: dict[str, int]
    unit: str
    higher_is_better: bool
    crmcore: float | None = None
    baselines: dict[str, float] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)
    note: str = ""

    @property
    def ratios(self) -> dict[str, float]:
        """crmcore relative to each baseline: >1 means crmcore is better, whatever the unit."""
        out = {}
        for name, value in self.baselines.items():
            if self.crmcore and value:
                out[name] = self.crmcore / value if self.higher_is_better else value / self.crmcore
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "title": self.title,
            "sizes": self.sizes,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "crmcore": self.crmcore,
            "baselines": self.baselines,
            "ratios": {k: round(v, 3) for k, v in self.ratios.items()},
            "extra": self.extra,
            "note": self.note,
        }


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    elapsed: list[float] = []
    yield lambda: elapsed[0] if elapsed else time.perf_counter() - start
    elapsed.append(time.perf_counter() - start)


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def person(rng: random.Random, n: int) -> dict[str, Any]:
    """Fields of a realistic customer (the same for crmcore and the baselines)."""
    return {
        "name": f"Customer {n:06d}",
        "phone": f"+86138{rng.randrange(10**8):08d}",
        "email": f"c{n:06d}@example.com",
        "region": rng.choice(["North", "South", "East", "West", "Central"]),
        "occupation": rng.choice(["teacher", "engineer", "nurse", "driver", "chef"]),
        "owner": rng.choice(REPS),
        "tags": rng.sample(["vip", "new", "b2b", "wholesale", "online"], 2),
    }


def when(rng: random.Random, days: int = 365) -> datetime:
    return T0 - timedelta(seconds=rng.randrange(days * 86400))


def cpu_note() -> str:
    return f"{os.cpu_count()} cores"
