"""The dashboard's brief report (``ReportWindow(brief=True)``: each source computes only what
the dashboard shows, by indexed counts and narrow filters) against the full report, over a
random history on the retail profile as ``crm init`` writes it, for several windows, teams
and reps: the key figures and every chart must be the same."""

from __future__ import annotations

import random
from datetime import timedelta

import attrs
import pytest

from crmcore.report import chosen_window, effective_window, report_by_source, shown

from .conftest import crm_run

REPS = {"ann": "north", "bo": "north", "cy": "south", "di": "south"}


def card_data(sections):
    """What a dashboard card shows: the key-figure table (title, rows, note) and the charts."""
    first = shown(list(sections))
    table = next((s for s in first if len(s.columns) == 2 and s.rows), None)
    figures = None if table is None else (table.title, table.rows, table.note)
    return figures, [c for s in first for c in s.charts]


@pytest.fixture
def history(init_profile, open_profile):
    """Ten weeks of a retail store: 60 customers shared by four reps in two teams, purchases,
    inquiries (some naming no rep), callbacks, complaints, a sweep every nine days (value
    tiers and churn risk move) and a merged duplicate."""
    path = init_profile("retail")
    for rep, team in REPS.items():
        result = crm_run(path.parent, "reps", "add", rep, "--team", team)
        assert result.returncode == 0, result.stderr
    crm, clock = open_profile(path)
    rng = random.Random(21)
    late = random.Random(22)
    ids = []
    for i in range(60):
        owner = rng.choice([*REPS, None])
        ids.append(crm.customers.add(actor="admin", name=f"Customer {i}", owner=owner).id)
    from crmcore_grading import api as grading

    for cid in rng.sample(ids, 25):  # pipeline grades A-E for some (the others ungraded)
        close = (crm.now() + timedelta(days=rng.choice([10, 60, 150, 400]))).date()
        grading.set_inputs(
            crm,
            cid,
            actor="admin",
            demand=rng.choice(["target", "potential", "dead"]),
            expected_close=close,
        )
    for _day in range(70):
        for _ in range(rng.randint(0, 6)):
            cid = rng.choice(ids)
            kind = rng.choice(["purchase", "purchase", "inquiry", "consultation"])
            rep = rng.choice([*REPS, None])
            extra = {"amount": round(rng.uniform(10, 900), 2)} if kind == "purchase" else {}
            crm.interactions.log(actor="admin", customer_id=cid, kind=kind, rep=rep, **extra)
        if rng.random() < 0.2:
            from crmcore_complaints.api import Complaints

            Complaints(crm).open(
                actor=rng.choice(list(REPS)),
                customer_id=rng.choice(ids),
                content="late delivery",
                category="service",
                channel="phone",
            )
        for task in crm.tasks.find({"status": "open", "kind": "callback"})[:2]:
            if rng.random() < 0.5:
                crm.tasks.complete(task.id, actor=task.assignee or "admin")
        # some follow-ups done late (a past period counts them as open and overdue then);
        # a generator of its own, so the history above stays what it was
        for task in crm.tasks.find({"status": "open", "kind": "follow_up"})[:3]:
            if task.due_at < crm.now() and late.random() < 0.3:
                crm.tasks.complete(task.id, actor=task.assignee or "admin")
        if _day % 9 == 8:  # the sweep: value tiers and churn risk change over the weeks
            crm.tick("test")
        clock.advance(timedelta(hours=rng.randint(12, 36)))
    crm.customers.merge(ids[0], ids[1], actor="admin")
    return crm


WINDOWS = [
    ("day", "", ""),
    ("week", "", ""),
    ("month", "", ""),
    ("custom", "first", "last"),  # the whole history, ending today
    ("custom", "first", "middle"),  # ending in the past: the sources' full path
    ("custom", "middle", ""),  # the last month to today
    ("custom", "first", "early"),  # ending in the first days: tasks open then, few overdue
    ("custom", "before", "before"),  # a day before the first customer: nothing listed
]


@pytest.mark.parametrize(
    ("team", "rep"), [(None, None), ("north", None), (None, "cy"), ("south", "di")]
)
def test_brief_report_shows_what_the_full_report_shows(history, team, rep):
    crm = history
    now = crm.now()
    zone = crm.config.core.timezone
    days = {
        "first": (now - timedelta(days=80)).date().isoformat(),
        "middle": (now - timedelta(days=30)).date().isoformat(),
        "last": now.date().isoformat(),
        "early": (now - timedelta(days=66)).date().isoformat(),
        "before": (now - timedelta(days=90)).date().isoformat(),
    }
    for period, since, until in WINDOWS:
        window = chosen_window(
            now, zone, period, days.get(since, ""), days.get(until, ""), team, rep
        )
        full = dict(report_by_source(crm, now, effective_window(window, now)))
        brief = dict(report_by_source(crm, now, attrs.evolve(window, brief=True)))
        assert set(brief) == set(full), (period, since, until)
        for source, sections in full.items():
            assert card_data(brief[source]) == card_data(sections), (source, period, until)


def test_the_history_has_something_to_show(history):
    """The comparison above is not between empty reports."""
    crm = history
    window = chosen_window(crm.now(), crm.config.core.timezone, "month")
    full = dict(report_by_source(crm, crm.now(), attrs.evolve(window, brief=True)))
    figures, charts = card_data(full["core"])
    assert figures is not None and dict(figures[1])["interactions logged"] > 0
    assert any(v for c in charts for s in c.series for v in s.values if v)
    _figures, followup_charts = card_data(full["followup"])
    [overdue] = [c for c in followup_charts if c.key == "overdue_by_grade"]
    assert len(set(overdue.x) - {"ungraded"}) >= 2  # graded customers on the axis
    assert card_data(full["grading"])[0] is not None
    # a period ending a month ago: the churn watch as it was then (the grade history), not
    # as it is now
    now, zone = crm.now(), crm.config.core.timezone
    then = chosen_window(
        now,
        zone,
        "custom",
        (now - timedelta(days=80)).date().isoformat(),
        (now - timedelta(days=30)).date().isoformat(),
    )
    past = dict(report_by_source(crm, now, attrs.evolve(then, brief=True)))
    watched_then = dict(card_data(past["grading"])[0][1])["watched (hold a valuable tier)"]
    watched_now = dict(card_data(full["grading"])[0][1])["watched (hold a valuable tier)"]
    assert 0 < watched_then != watched_now
    # the team windows above take the indexed path: the roster lists each team's members
    from crmcore import ReportWindow

    assert ReportWindow(team="north").reps(crm) == ["ann", "bo"]
    assert ReportWindow(team="south", rep="di").reps(crm) == ["di"]
