"""The measurement script's AUC (scripts/churn_holdout.py; the data set needs lifetimes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "churn_holdout.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("churn_holdout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("scores", "labels", "expected"), [
    ([3, 2, 1, 0], [True, True, False, False], 1.0),     # every churner ranked above
    ([0, 1, 2, 3], [True, True, False, False], 0.0),
    ([1, 1, 1, 1], [True, False, True, False], 0.5),     # ties count a half
    ([2, 1, 1, 0], [True, True, False, False], 0.875),
])
def test_auc(script, scores, labels, expected):
    assert script.auc(scores, labels) == pytest.approx(expected)


def test_measures_the_shipped_rule_on_the_cdnow_sample(script):
    pytest.importorskip("lifetimes")
    rows = script.load()
    assert len({r[0] for r in rows}) == 2357
    cut = script.START + script.timedelta(weeks=script.WEEKS)
    ours = script.grade(rows, cut)
    watched = [k for k, (_level, is_watched, _why) in ours.items() if is_watched]
    assert 0 < len(watched) < len(ours)
