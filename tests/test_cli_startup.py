"""How ``crm`` starts (``crmcore.cli.startup``): the collector paused while it starts, what
starting made set aside, collection running as before for the command's own work."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from crmcore.cli import main as cli_main

PROBE = (
    "import gc, sys; from crmcore.cli.main import run; code = run(sys.argv[1:]); "
    "print(gc.isenabled(), gc.get_freeze_count(), file=sys.stderr); sys.exit(code)"
)


def test_importing_the_command_line_leaves_the_collector_on(monkeypatch) -> None:
    assert gc.isenabled()  # this process imported crmcore.cli.main above
    monkeypatch.setenv("CRMCORE_PLUGINS", "storage_tinydb")
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    assert cli_main.run(["--help"]) == 0
    assert gc.isenabled()
    gc.disable()  # a host that turned it off keeps it off
    try:
        assert cli_main.run(["--help"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_command_runs_with_what_starting_made_set_aside(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "CRMCORE_"))}
    run = {"cwd": tmp_path, "env": env, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run([sys.executable, "-m", "crmcore.cli.main", "init"], check=True, **run)  # type: ignore[call-overload]
    done = subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-c", PROBE, "customer", "list"], check=True, **run
    )
    enabled, frozen = done.stderr.split()[-2:]
    assert enabled == "True"  # collecting again for the command's work
    assert int(frozen) > 10_000  # the modules, classes and plugins made while starting
