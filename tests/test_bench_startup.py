"""W9 (bench/startup.py) measures what it says: real processes on a store made by ``crm init``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bench.startup import CRM, CUSTOMERS, _environment, _time, make_store, w9_startup


def test_the_store_is_made_by_crm_init_and_listed_by_the_timed_command(tmp_path: Path) -> None:
    env = _environment()
    config = make_store(tmp_path / "store", env)
    assert "[storage]" in config.read_text("utf-8")  # crm init's own file
    done = subprocess.run(
        [*CRM, "customer", "list", "--json"],
        cwd=config.parent,
        env=env,
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert len(json.loads(done.stdout)) == CUSTOMERS


def test_a_failing_command_stops_the_bench(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited 2"):
        _time([*CRM, "no-such-command"], tmp_path, _environment())


def test_w9_reports_both_commands_against_python(tmp_path: Path) -> None:
    results = w9_startup({"W9_runs": 1}, tmp_path)
    assert [r.workload for r in results] == ["W9-help", "W9-list"]
    for r in results:
        assert r.crmcore > 0 and r.baselines["python -c pass"] > 0
        assert r.extra["ratio to python -c pass (CPU)"] == round(
            r.crmcore / r.baselines["python -c pass"], 1
        )


def test_the_environment_points_at_nothing_but_the_store(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CRM_CONFIG", "/elsewhere/crm.toml")
    monkeypatch.setenv("CRMCORE_PLUGINS", "web")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = _environment(tmp_path / "pyc")
    assert "CRM_CONFIG" not in env and "CRMCORE_PLUGINS" not in env
    assert "PYTHONDONTWRITEBYTECODE" not in env  # timed runs use cached bytecode
    _time([*CRM, "--help"], tmp_path, env)
    assert list((tmp_path / "pyc").rglob("main*.pyc"))
