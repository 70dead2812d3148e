"""``crm demo``'s closing summary counts what its store holds (issue 24 item 7): the customers,
interactions and done tasks the plugins' own simulations add (referred customers, service
visits, callbacks) included, so the summary agrees with the report it printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from crmcore import open_crm
from crmcore.demo import demo_config
from crmcore.entities import TaskStatus


def test_the_summary_counts_what_the_store_holds(tmp_path):
    folder = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", "--json", "demo", "--customers", "40",
         "--days", "14", "--dir", str(folder), "--seed", "3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "CRMCORE_PLUGINS"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    with open_crm(demo_config(folder / "crm.toml", summary["profile"])) as crm:
        held = {
            "customers": crm.customers.count(),
            "interactions": crm.interactions.count(),
            "tasks_done": crm.tasks.count({"status": TaskStatus.DONE.value}),
        }
    assert {key: summary[key] for key in held} == held
    # the plugins' simulations add their own: more interactions than the 40 arrivals alone
    assert held["interactions"] > 0 and held["tasks_done"] > 0
