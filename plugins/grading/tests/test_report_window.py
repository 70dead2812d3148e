"""Grading's report sections under ``crm report --since/--until/--team/--rep``: tiers and the
churn watch as of the window's end (from the grade history), for the window's customers (by
owner); revenue and churn rises over its period."""

from __future__ import annotations

from datetime import timedelta

from crmcore_grading import api
from grading_helpers import add_customer, log

from crmcore import ReportWindow
from crmcore.report import build_report
from crmcore.testing import START

SECURITY = {
    "actors": {"ann": {"role": "agent", "team": "north"}, "cy": {"role": "agent", "team": "south"}}
}
SETTINGS = {
    "schemes": ["pipeline", "pyramid"],
    "pyramid": {"tiers": [{"name": "vip", "top": 0.5}], "rest": "small"},
    "churn": {"valuable": {"pyramid": ["vip"]}},
}
DAY = timedelta(days=1)


def section_of(sections, title):
    [section] = [s for s in sections if s.title == title]
    return section


def make(make_crm, clock):
    """Day 0: v1 (ann) 600, v2 (cy) 500, s1 (ann) 5, s2 (cy) 5; vips v1, v2. Day 10: s1 buys
    5,000: vips s1, v1. Day 150: v1 and s1 have bought nothing for months."""
    crm = make_crm(["grading"], settings={"grading": SETTINGS, "security": SECURITY})
    c = {}
    for key, owner, amount in (
        ("v1", "ann", 600.0),
        ("v2", "cy", 500.0),
        ("s1", "ann", 5.0),
        ("s2", "cy", 5.0),
    ):
        c[key] = add_customer(crm, name=f"Customer {key}", owner=owner)
        log(crm, c[key], "purchase", amount=amount)
    clock.advance(hours=1)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=10)
    log(crm, c["s1"], "purchase", amount=5000.0)
    api.grade_all(crm, actor="nightly")
    clock.advance(days=140)
    api.grade_all(crm, actor="nightly")
    return crm, c


def test_value_tiers_and_churn_watch_follow_the_window(make_crm, clock):
    crm, _c = make(make_crm, clock)
    early = ReportWindow(since=START, until=START + 5 * DAY)
    late = ReportWindow(since=START + 5 * DAY)

    def tiers(window):
        section = section_of(build_report(crm, window=window), "Value tiers: pyramid tier")
        return [(*r[:2], r[3]) for r in section.rows], section.note

    # as of day 5: v1 and v2 were the vips; revenue is the spend in the period
    assert tiers(early)[0] == [("vip", 2, 1100.0), ("small", 2, 10.0)]
    assert "as of 2026-01-10 09:00" in tiers(early)[1]
    assert "net spend in the period" in tiers(early)[1]
    # as of now: s1 and v1; only s1's purchase fell in the later period
    assert tiers(late)[0] == [("vip", 2, 5000.0), ("small", 2, 0.0)]
    assert tiers(ReportWindow(team="north"))[0] == [("vip", 2, 5605.0), ("small", 0, 0.0)]
    assert tiers(ReportWindow(rep="cy", since=START, until=START + 5 * DAY))[0] == [
        ("vip", 1, 500.0),
        ("small", 1, 5.0),
    ]

    def churn(window):
        return dict(
            section_of(build_report(crm, window=window), "Churn watch (valuable customers)").rows
        )

    before = churn(early)
    assert before["watched (hold a valuable tier)"] == 2 and before["risk none"] == 2
    assert before["open retention tasks"] == 0 and before["risk rose in the period"] == 0
    after = churn(late)
    assert after["watched (hold a valuable tier)"] == 2
    assert after["risk none"] == 0
    assert after["risk rose in the period"] == 2
    assert after["retention tasks created in the period"] == after["open retention tasks"] == 2
    south = churn(ReportWindow(team="south", since=START + 5 * DAY))
    assert south["watched (hold a valuable tier)"] == 0
    assert south["risk rose in the period"] == south["open retention tasks"] == 0
    everything = churn(ReportWindow())  # no period: the state now, no flow rows
    assert everything["risk high"] == 2 and "risk rose in the period" not in everything
