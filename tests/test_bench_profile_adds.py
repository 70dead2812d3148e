"""``python -m bench.profile_adds`` runs: the adds are made and profiled (the W1 breakdown in
docs/performance.md comes from it)."""

from __future__ import annotations

import pytest

pytest.importorskip("crmcore_storage_tinydb")


def test_the_add_profile_runs_and_lists_the_add(capsys):
    from bench.profile_adds import main

    assert main(["30", "--profile"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("30 adds, audit trail off:")
    assert "customers.py" in out and "(add)" in out
