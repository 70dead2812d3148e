"""What people see: report sections, summary lines, the simulated day, and the hook docs."""

from __future__ import annotations

import inspect
import random
import re
from datetime import timedelta
from pathlib import Path

from crmcore_grading import api
from grading_helpers import add_customer, grades_of, log

from crmcore.contracts import GradingContract
from crmcore.report import build_report

README = Path(__file__).resolve().parents[1] / "README.md"


def test_report_sections_show_the_grade_pyramid_tiers_and_churn_watch(grading_crm, clock):
    crm = grading_crm({"churn": {"valuable": {"pyramid": ["vip", "major"]}}})
    ids = [add_customer(crm, name=f"Customer {i}") for i in range(10)]
    for i, cid in enumerate(ids):
        log(crm, cid, "purchase", amount=100.0 * (i + 1))
    api.set_inputs(crm, ids[0], actor="ann", demand="target", expected_close="2026-01-20")
    api.set_inputs(crm, ids[1], actor="ann", demand="dead")
    api.grade_all(crm, actor="nightly")
    clock.advance(days=250)  # one purchase each, 250 days ago: about 0.1 expected in 90 days
    api.grade_all(crm, actor="nightly")
    sections = {s.title: s for s in build_report(crm)}
    pipeline = sections["Pipeline grades (A-E)"]
    assert pipeline.rows[0][:3] == ("A", "clear need, closing within 1 month", 1)
    assert pipeline.rows[4][2] == 1 and pipeline.rows[5][2] == 8
    pyramid = sections["Value tiers: pyramid tier"]
    assert [r[:2] for r in pyramid.rows] == [
        ("vip", 1),
        ("major", 1),
        ("ordinary", 3),
        ("small", 5),
    ]
    assert pyramid.rows[0][3] == 1000.0 and pyramid.chart == {
        "vip": 1,
        "major": 1,
        "ordinary": 3,
        "small": 5,
    }
    assert "Value tiers: RFM segment" in sections and "Value tiers: hospital tier" in sections
    churn = dict(sections["Churn watch (valuable customers)"].rows)
    assert churn["watched (hold a valuable tier)"] == 2
    assert churn["risk high"] == 2 and churn["open retention tasks"] == 2
    [risk] = sections["Churn watch (valuable customers)"].charts
    assert risk.x == ("high risk", "medium risk", "low risk")
    assert risk.series[0].values == (2, 0, 0)


def test_summary_lines_for_customer_show(grading_crm):
    crm = grading_crm()
    cid = add_customer(crm)
    assert crm.plugins.flat("crm_customer_summary", crm=crm, customer=crm.customers.get(cid)) == []
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2027-01-20")
    log(crm, cid, "purchase", amount=10.0)
    api.grade_all(crm, actor="nightly")
    lines = crm.plugins.flat("crm_customer_summary", crm=crm, customer=crm.customers.get(cid))
    assert lines[0].label == "grade"
    assert lines[0].text == "D: clear need, expected to close 2027-01-20, not within 6 months"
    assert [line.label for line in lines] == [
        "grade",
        "RFM segment",
        "pyramid tier",
        "hospital tier",
    ]


def test_simulated_days_grade_customers_and_move_the_pipeline(grading_crm, clock):
    crm = grading_crm()
    rng = random.Random(3)
    ids = [add_customer(crm, name=f"Customer {i}", owner="ann") for i in range(60)]
    for _day in range(30):
        for cid in ids:
            if rng.random() < 0.3:
                kind = rng.choice(["consultation", "purchase", "visit"])
                log(
                    crm,
                    cid,
                    kind,
                    amount=round(rng.uniform(5, 300), 2) if kind == "purchase" else None,
                )
        crm.plugins.call("crm_simulate", crm=crm, now=clock.now(), rng=rng, actor="demo")
        crm.tick("demo")
        clock.advance(days=1)
    graded = [grades_of(crm, cid) for cid in ids]
    assert sum("pipeline" in g for g in graded) >= 30
    assert len({g.get("pipeline") for g in graded} - {None}) >= 3
    assert all("pyramid" in g and "hospital" in g for g in graded)
    assert sum("rfm" in g for g in graded) >= 50  # everyone who bought
    changes = [h for cid in ids for h in api.history(crm, cid, scheme="pipeline")]
    assert any(h.old is not None for h in changes)  # prospects moved along
    assert api.grade_all(crm, actor="check").changed == 0  # the worker kept everyone current


def test_every_offered_hook_is_documented_with_its_signature():
    text = README.read_text(encoding="utf-8")
    for name in sorted(n for n in dir(GradingContract) if n.startswith("crm_")):
        params = [
            p for p in inspect.signature(getattr(GradingContract, name)).parameters if p != "self"
        ]
        assert re.search(rf"`{name}\({', '.join(params)}\)", text), name


def test_simulation_only_uses_the_rng_it_is_given(grading_crm, clock):
    def run(seed: int) -> list[dict]:
        crm = grading_crm()
        ids = [add_customer(crm, name=f"C{i}") for i in range(20)]
        for cid in ids:
            log(crm, cid, "consultation")
        rng = random.Random(seed)
        crm.plugins.call("crm_simulate", crm=crm, now=clock.now(), rng=rng, actor="demo")
        return [grades_of(crm, cid) for cid in ids]

    assert run(11) == run(11)
    clock.advance(timedelta(0))
