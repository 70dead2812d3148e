"""Follow-ups by grade and rep load under ``crm report --since/--until/--team/--rep``: the
state as of the window's end, for its team or rep, and tasks done in its period."""

from __future__ import annotations

from datetime import timedelta

from crmcore_followup.reps import Roster

from crmcore import ReportWindow
from crmcore.report import build_report
from crmcore.testing import START

DAY = timedelta(days=1)


def section(crm, title, window):
    [found] = [s for s in build_report(crm, window=window) if s.title == title]
    return found


def seeded(crm, clock):
    """Two grade-A customers, a (ann, north) and b (cy, south), first contacts done at once;
    on day 3 ann does a's follow-up (the next is due a day later); now is day 6."""
    Roster(crm).add("ann", actor="manager", team="north", ability=4)
    Roster(crm).add("cy", actor="manager", team="south", ability=2)
    ids = {}
    for key, owner in (("a", "ann"), ("b", "cy")):
        customer = crm.customers.add(
            actor="t", name=key.upper(), owner=owner, ext={"grading": {"grades": {"pipeline": "A"}}}
        )
        ids[key] = customer.id
        crm.tasks.complete(crm.tasks.open_for(customer.id, kind="first_contact")[0].id, actor=owner)
    clock.advance(days=3)
    [follow_up] = crm.tasks.open_for(ids["a"], kind="follow_up")
    crm.tasks.complete(follow_up.id, actor="ann")
    clock.advance(days=3)
    return ids


def test_follow_ups_by_grade_as_of_the_windows_end_and_per_team(crm, clock):
    seeded(crm, clock)

    def grade_a(window):
        s = section(crm, "Follow-ups by grade", window)
        return next(r for r in s.rows if r[0] == "A")[2:], s.note

    # now: one open follow-up each, both overdue by more than a day
    assert grade_a(ReportWindow())[0] == (2, 2, 2, 2, 2)
    # as of day 2: both first follow-ups (due on day 1) were open and overdue, by a day only
    early, note = grade_a(ReportWindow(until=START + 2 * DAY))
    assert early == (2, 2, 2, 2, 0)
    assert "as of 2026-01-07 09:00" in note
    # as of day 3.5, team north: a's new follow-up was open and not yet due
    assert grade_a(ReportWindow(until=START + 3.5 * DAY, team="north"))[0] == (1, 1, 0, 0, 0)
    assert grade_a(ReportWindow(rep="cy"))[0] == (1, 1, 1, 1, 1)


def test_rep_load_counts_open_tasks_at_the_end_and_work_done_in_the_period(crm, clock):
    seeded(crm, clock)
    now = section(crm, "Rep load", ReportWindow())
    assert now.columns[-1] == "customers"  # no period: the load now
    assert [r[:5] for r in now.rows] == [
        ("ann", "north", 4, "yes", 1),
        ("cy", "south", 2, "yes", 1),
    ]
    first_days = section(crm, "Rep load", ReportWindow(since=START, until=START + 2 * DAY))
    assert first_days.columns[-1] == "done in the period"
    # day 0 to 2: ann and cy each did a first contact; each had one follow-up open at the end
    assert [(r[0], r[4], r[-1]) for r in first_days.rows] == [("ann", 1, 1), ("cy", 1, 1)]
    later = section(crm, "Rep load", ReportWindow(since=START + 2 * DAY, team="north"))
    assert [(r[0], r[4], r[-1]) for r in later.rows] == [("ann", 1, 1)]
