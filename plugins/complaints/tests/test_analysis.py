"""Complaint analysis: the numbers behind ``crm complaints report`` and ``crm report``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_complaints.analysis import analyse, customer_summary, report_sections, weekly_trend

from crmcore.report import build_report
from crmcore.testing import START

ROTA = {
    "shifts": [{"lead": "wu", "start": "00:00", "end": "24:00"}],
    "departments": {"customer_service": {"manager": "mei"}},
}


@pytest.fixture
def scenario(setup, clock):
    """Five customers served; three complaints: one smooth, one invalid, one slow and reopened."""
    crm, api = setup(ROTA)
    ids = [crm.customers.add(actor="x", name=f"C{i}").id for i in range(5)]
    for cid in ids:
        crm.interactions.log(actor="rep", customer_id=cid, kind="consultation")
    smooth = api.open(actor="ann", customer_id=ids[0], content="leaks", category="product_quality")
    smooth = api.respond(
        api.dispatch(api.judge(smooth, actor="ann", valid=True), actor="d"), actor="hu", message="m"
    )
    smooth = api.approve(
        api.propose(smooth, actor="hu", solution="replace", compensation=30), actor="mei"
    )
    smooth = api.close(api.resolve(smooth, actor="hu", cause="defective batch"), actor="ann")
    api.record_callback(smooth, actor="ann", score=5)
    invalid = api.open(actor="ann", customer_id=ids[1], content="rude", category="service")
    api.judge(invalid, actor="ann", valid=False, explanation="The call recording shows none.")
    slow = api.open(actor="bo", customer_id=ids[2], content="overcharged", category="price")
    clock.advance(hours=50)
    crm.tick("w")  # first response breached, two escalations, resolution breached
    slow = api.respond(
        api.dispatch(api.judge(api.get(slow.id), actor="bo", valid=True), actor="d"),
        actor="hu",
        message="m",
    )
    slow = api.approve(
        api.propose(slow, actor="hu", solution="refund", compensation=12.5), actor="mei"
    )
    slow = api.close(api.resolve(slow, actor="hu", cause="unclear fees"), actor="bo")
    api.record_callback(slow, actor="bo", score=1)  # not satisfied: reopened
    return crm, api, ids


def test_measures(scenario, clock):
    _crm, api, _ids = scenario
    a = analyse(api, START - timedelta(days=1), clock.now() + timedelta(seconds=1), weeks=3)
    assert a.tickets == 3
    assert a.by_category == {"product_quality": 1, "service": 1, "price": 1}
    assert a.by_cause == {"defective_batch": 1, "(invalid complaint)": 1, "unclear_fees": 1}
    assert a.by_department == {"customer_service": 2, "(not dispatched)": 1}
    assert a.invalid == 1
    assert (a.first_response_met, a.first_response_missed) == (2, 1)
    assert (a.resolution_met, a.resolution_missed) == (1, 1)
    assert a.escalations_by_level == {"level 1 (shift_lead)": 1, "level 2 (department_manager)": 1}
    assert (a.resolved, a.reopened, a.reopen_rate) == (2, 1, 0.5)
    assert (a.satisfaction_answers, a.satisfied, a.satisfaction_average) == (2, 1, 3.0)
    assert a.customers_served == 5 and a.complaint_rate == pytest.approx(3 / 5)
    assert a.compensation_total == pytest.approx(42.5)
    assert a.open_beyond_24h == 1  # the reopened one, open since day 1
    assert [(w["week"], w["tickets"]) for w in a.weekly] == [
        ("2025-12-22", 0),
        ("2025-12-29", 0),
        ("2026-01-05", 3),
    ]


def test_weekly_trend_week_over_week(setup, customer_id, clock):
    crm, api = setup()
    cid = customer_id(crm)
    for week, count in enumerate([2, 4, 1]):
        clock.set(START + timedelta(weeks=week, days=2))
        for _ in range(count):
            api.open(actor="ann", customer_id=cid, content="x")
    rows = weekly_trend(api, START + timedelta(weeks=2, days=6), weeks=4)
    assert [(r["week"], r["tickets"]) for r in rows] == [
        ("2025-12-29", 0),
        ("2026-01-05", 2),
        ("2026-01-12", 4),
        ("2026-01-19", 1),
    ]
    assert [r["change"] for r in rows] == [None, None, 1.0, -0.75]


def test_improvement_actions_are_tracked_to_closure(setup, customer_id, clock):
    crm, api = setup()
    cid = customer_id(crm)
    for _ in range(4):
        api.open(actor="ann", customer_id=cid, content="x", category="price")
    clock.advance(days=1)
    action = api.add_action(
        actor="boss",
        what="Publish fee table",
        owner="qa",
        due_at=clock.now() + timedelta(days=7),
        category="price",
    )
    assert action.baseline_per_week == 1.0  # 4 price complaints in the 4 weeks before
    task = crm.tasks.open_by_key(f"improvement:{action.id}")
    assert (task.kind, task.assignee) == ("improvement", "qa")
    clock.advance(days=8)
    a = analyse(api, START - timedelta(weeks=1), clock.now())
    assert a.actions[0]["overdue"] is True and a.actions[0]["status"] == "open"
    done = api.close_action(action.id, actor="qa", effect="fees listed on every bill")
    assert crm.tasks.get(task.id).status.value == "done"
    clock.advance(weeks=2)
    api.open(actor="ann", customer_id=cid, content="x", category="price")
    clock.advance(hours=1)
    [row] = analyse(api, START, clock.now()).actions
    assert (row["status"], row["before_per_week"], row["after_per_week"]) == ("done", 1.0, 0.5)
    assert row["effect"] == "fees listed on every bill" and done.closed_by == "qa"
    with pytest.raises(Exception, match="already done"):
        api.close_action(action.id, actor="qa", effect="again")
    with pytest.raises(Exception, match="unknown category"):
        api.add_action(actor="boss", what="x", owner="qa", due_at=clock.now(), category="weather")


def test_report_sections_and_crm_report(scenario, clock):
    crm, api, ids = scenario
    a = analyse(api, START - timedelta(days=1), clock.now() + timedelta(seconds=1))
    titles = [s.title for s in report_sections(a)]
    assert titles[0] == "Complaints: overview" and "Improvement actions" in titles
    overview = dict(report_sections(a)[0].rows)
    assert overview["complaint rate (tickets / customers served)"] == "60.0%"
    assert overview["first-response SLA met"] == "66.7% (2 of 3)"
    report = build_report(crm, clock.now())
    [ours] = [s for s in report if s.title.startswith("Complaints (last")]
    rows = dict(ours.rows)
    assert rows["complaint rate (tickets / customers served)"] == "60.0%"
    assert rows["resolution SLA met"] == "50.0%"
    assert rows["escalations: level 1 (shift_lead)"] == 1
    [line] = customer_summary(api, ids[2])
    assert line.text.startswith("1 complaint(s), 1 open") and "last satisfaction 1/5" in line.text
    assert customer_summary(api, ids[3]) == []


def test_empty_analysis_says_not_applicable(setup, clock):
    _crm, api = setup()
    a = analyse(api, START - timedelta(days=7), clock.now())
    assert a.tickets == 0 and a.complaint_rate is None and a.reopen_rate is None
    overview = dict(report_sections(a)[0].rows)
    assert overview["reopen rate"] == "n/a (0 of 0 resolved)"


def test_the_report_window_narrows_the_complaint_measures(scenario, clock):
    from crmcore import ReportWindow

    crm, _api, _ids = scenario

    def ours(window):
        [section] = [
            s
            for s in build_report(crm, clock.now(), window=window)
            if s.title.startswith("Complaints (")
        ]
        return section.title, dict(section.rows)

    title, rows = ours(ReportWindow(rep="bo"))
    assert title == "Complaints (last 30 days), rep bo"
    assert rows["tickets opened"] == 1  # bo took the slow one
    assert rows["escalations: level 1 (shift_lead)"] == 1
    _title, rows = ours(ReportWindow(rep="ann"))
    assert rows["tickets opened"] == 2 and "escalations: level 1 (shift_lead)" not in rows
    title, rows = ours(ReportWindow(since=clock.now() - timedelta(hours=1)))
    assert title.startswith("Complaints (2026-01-07 to") and rows["tickets opened"] == 0


def test_the_report_charts_complaints_and_sla_breaches_over_the_period(scenario, clock):
    from crmcore import ReportWindow

    crm, _api, _ids = scenario

    def charts(window):
        [section] = [
            s
            for s in build_report(crm, clock.now(), window=window)
            if s.title.startswith("Complaints (")
        ]
        return {c.key: c for c in section.charts}

    # the last 30 days: by week; all three tickets opened in the week of 2026-01-05
    everyone = charts(ReportWindow())
    opened = everyone["complaints_trend"]
    assert opened.x_label == "Week from" and opened.x[-1] == "2026-01-05"
    assert opened.series[0].values[-1] == 3 and sum(opened.series[0].values) == 3
    breaches = everyone["sla_breaches_trend"]
    assert [s.name for s in breaches.series] == ["first response late", "resolution late"]
    assert [s.values[-1] for s in breaches.series] == [1, 1]  # the slow one, both late
    # bo's window holds only the slow ticket; ann's neither breach
    assert charts(ReportWindow(rep="bo"))["complaints_trend"].series[0].values[-1] == 1
    ann = charts(ReportWindow(rep="ann"))
    assert ann["complaints_trend"].series[0].values[-1] == 2
    assert sum(ann["sla_breaches_trend"].series[0].values) == 0
    # a one-week period is drawn by day
    week = charts(ReportWindow(since=START - timedelta(days=2)))["complaints_trend"]
    assert week.x_label == "Day" and week.x[0] == (START - timedelta(days=2)).date().isoformat()
