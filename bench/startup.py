"""W9: CLI start-up, whole processes against a bare ``python -c pass``.

A store made by ``crm init`` (the default profile: every installed plugin), seeded with a few
customers through the API. Each command runs as its own process, the way a user runs it, with
an environment that points at nothing but that store's ``crm.toml``. The figure per command
is the median CPU time (user + system, from ``getrusage`` of the children) over several runs;
the wall-clock median is in ``extra``. Every process runs from cached bytecode (a first,
untimed run writes it), as an installed ``crm`` does. The ratio is command / ``python -c
pass``: the goal of issue 24 is at most 8.
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Result, median, person
from crmcore.app import open_crm

# How ``crm`` is started: the console script's own two lines, on this interpreter, so the
# figure does not depend on which ``crm`` is first on PATH.
CRM = [
    sys.executable,
    "-c",
    "import sys; from crmcore.cli.main import main; sys.argv[0] = 'crm'; sys.exit(main())",
]
COMMANDS = {
    "W9-help": ("`crm --help`", ["--help"]),
    "W9-list": ("`crm customer list`", ["customer", "list"]),
}
CUSTOMERS = 20
TIMEOUT = 60  # seconds, per process


def _environment(pycache: Path | None = None) -> dict[str, str]:
    """This environment without anything that would point ``crm`` elsewhere. With
    ``pycache``, bytecode is written and read there (``PYTHONPYCACHEPREFIX``) even where
    ``PYTHONDONTWRITEBYTECODE`` is set: an installed ``crm`` runs from cached bytecode, and
    compiling the sources on every start would otherwise be most of what is measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def _time(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one process; a failing command stops the bench."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(
            f"W9: {' '.join(argv[3:] or argv)} exited {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-400:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def make_store(folder: Path, env: dict[str, str]) -> Path:
    """``crm init`` in ``folder``, then ``CUSTOMERS`` customers added through the API."""
    folder.mkdir(parents=True, exist_ok=True)
    _time([*CRM, "init"], folder, env)
    config = folder / "crm.toml"
    rng = random.Random(9)
    with open_crm(config) as crm:
        for i in range(CUSTOMERS):
            crm.customers.add(actor="bench", **person(rng, i))
    return config


def w9_startup(size: dict[str, int], tmp: Path) -> list[Result]:
    runs = size["W9_runs"]
    env = _environment(tmp / "pycache")
    folder = tmp / "store"
    make_store(folder, env)
    _time([sys.executable, "-c", "pass"], folder, env)  # its bytecode cached too
    bare = [_time([sys.executable, "-c", "pass"], folder, env) for _ in range(runs)]
    bare_cpu, bare_wall = median([c for c, _ in bare]), median([w for _, w in bare])
    results = []
    for name, (label, args) in COMMANDS.items():
        _time([*CRM, *args], folder, env)  # caches the bytecode, warms the file system cache
        samples = [_time([*CRM, *args], folder, env) for _ in range(runs)]
        cpu, wall = median([c for c, _ in samples]), median([w for _, w in samples])
        result = Result(
            name,
            f"{label}: one whole process (s of CPU)",
            {"runs": runs, "customers": CUSTOMERS},
            "s",
            False,
        )
        result.crmcore = cpu
        result.baselines["python -c pass"] = bare_cpu
        result.extra = {
            "ratio to python -c pass (CPU)": round(cpu / bare_cpu, 1),
            "wall s": round(wall, 3),
            "ratio to python -c pass (wall)": round(wall / bare_wall, 1),
        }
        result.note = "median of runs; default profile (all installed plugins); goal <= 8x"
        results.append(result)
    return results
