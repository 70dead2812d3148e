"""W7 (bench/stack.py) measures what it says: the retail stack as ``crm init`` writes it,
against the core with the embedded store alone, on the same calls."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

from bench.stack import OPS, START, Side, init_retail, w7_stack
from crmcore import ManualClock, open_crm


def test_the_stack_is_the_profile_crm_init_writes(tmp_path: Path) -> None:
    config = init_retail(tmp_path / "retail")
    written = tomllib.loads(config.read_text("utf-8"))
    assert {"grading", "followup", "complaints", "loyalty"} <= set(written["plugins"]["enabled"])
    clock = ManualClock(START)
    with open_crm(config, clock=clock) as crm:
        assert crm.audit is not None  # the trail is on, as shipped
        side = Side("stack", crm, clock)
        side.fill(5, random.Random(1))
        side.prepare_follow_ups(5)
        # the follow-ups completed are the ones the follow-up plugin made
        tasks = [crm.tasks.get(t) for t in side.follow_ups]
        assert len(tasks) == 5 and {t.kind for t in tasks} == {"first_contact"}
        assert {t.source for t in tasks} == {"followup"}
        side.run("complete_follow_up", 2, random.Random(2))
        assert [
            t.status.value
            for t in crm.tasks.find({"id": {"$in": [t.id for t in tasks]}}, sort=[("id", 1)])
        ].count("done") == 2
        assert side.audit_entries["complete_follow_up"] >= 2


def test_w7_reports_each_call_against_core_and_store(tmp_path: Path) -> None:
    results = w7_stack({"W7_customers": [8], "W7_ops": 6}, tmp_path)
    assert [r.extra["op"] for r in results] == list(OPS)
    for r in results:
        assert r.crmcore and r.baselines["core_and_store"]
        assert r.extra["stack_over_core"] > 0
        # one audit entry per call on both sides: the call and every plugin reaction to it
        # are one transaction, and one transaction is one entry
        assert r.extra["audit_entries_per_call_core"] == 1
        assert r.extra["audit_entries_per_call_stack"] == 1
