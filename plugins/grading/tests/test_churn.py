"""Churn risk for valuable customers (DOMAIN §4): warning signs, levels, the event on a rise and
the escalating retention task."""

from __future__ import annotations

import math
from datetime import timedelta

import attrs
import pytest
from crmcore_grading import api
from crmcore_grading.churn import assess, pace
from crmcore_grading.settings import ChurnLevels, ChurnSettings
from crmcore_grading.signals import Signals, Window
from grading_helpers import Recorder, add_customer, churn_of, grading_of, log, make_facts
from grading_helpers import signals_dict as sig

from crmcore import Priority, ValidationError
from crmcore.converter import iso
from crmcore.testing import START

NOW = START
DAY = timedelta(days=1)
VALUABLE = {"pyramid": "vip"}
C = ChurnSettings(rule="interval")  # the former default: overdue against the usual interval
PACE = ChurnSettings()  # the default rule
W = Window(NOW, C.spend_window_days, C.complaint_open_days)


def active(count: int, first_days: float, last_days: float, **more):
    return make_facts(
        first_activity=NOW - first_days * DAY,
        last_activity=NOW - last_days * DAY,
        activities=count,
        **more,
    )


def risk(facts, grades=VALUABLE, settings=C):
    return assess(facts, grades, settings, W)


@pytest.mark.parametrize(
    ("facts", "level", "reasons"),
    [
        # usual interval 10 days (4 gaps over 40 days): overdue after 2 x 10 = 20 idle days
        (active(5, 60, 20), "none", []),
        (
            active(5, 60, 20.0001),
            "low",
            ["no purchase or visit since 2025-12-16 (usually every 10 days)"],
        ),
        (
            active(5, 80, 40),
            "low",
            ["no purchase or visit since 2025-11-26 (usually every 10 days)"],
        ),
        (
            active(5, 80, 40.0001),
            "medium",
            ["no purchase or visit since 2025-11-26 (usually every 10 days), long overdue"],
        ),
        # fewer than two contacts: the default interval (60 days) applies
        (
            active(1, 121, 121),
            "low",
            ["no purchase or visit since 2025-09-06 (usually every 60 days)"],
        ),
        (active(1, 119, 119), "none", []),
        # a very regular customer is still allowed min_interval_days (7)
        (active(11, 10, 14), "none", []),
        (
            active(11, 10, 14.001),
            "low",
            ["no purchase or visit since 2025-12-22 (usually every 7 days)"],
        ),
    ],
)
def test_overdue_against_the_customers_own_interval(facts, level, reasons):
    result = risk(facts)
    assert (result.level, list(result.reasons)) == (level, reasons)


@pytest.mark.parametrize(
    ("complaints", "level"), [(0, "none"), (1, "low"), (2, "medium"), (5, "medium")]
)
def test_open_complaints(complaints, level):
    assert risk(active(3, 10, 1, open_complaints=complaints)).level == level


def spending(recent: float, previous: float):
    days = {}
    if previous:
        days[(NOW - 120 * DAY).date().isoformat()] = round(previous * 100)
    if recent:
        days[(NOW - 10 * DAY).date().isoformat()] = round(recent * 100)
    facts = active(3, 130, 10)
    return attrs.evolve(facts, signals=Signals({**facts.signals.data, "spend_days": days}))


@pytest.mark.parametrize(
    ("recent", "previous", "level"),
    [
        (49.99, 100, "low"),
        (50, 100, "none"),
        (0, 100, "low"),
        (100, 0, "none"),
        (300, 100, "none"),
    ],
)
def test_falling_spend(recent, previous, level):
    result = risk(spending(recent, previous))
    assert result.level == level
    if level == "low":
        assert result.reasons[0].startswith(f"spend fell to {recent:,.2f} in the last 90 days")


def test_points_add_up_to_high():
    facts = attrs.evolve(spending(0, 100), open_complaints=2)
    assert risk(facts).level == "high"
    assert len(risk(facts).reasons) == 2


def test_levels_and_multiple_are_configurable():
    settings = ChurnSettings(
        rule="interval", multiple=4.0, levels=ChurnLevels(low=2, medium=3, high=4)
    )
    facts = active(5, 60, 30)  # idle 30 of usual 10: overdue at x2, not at x4
    assert risk(facts).level == "low"
    assert risk(facts, settings=settings).level == "none"
    # usual 10 days: more than 4 x that idle is 1 point, more than 8 x is 2
    assert risk(active(5, 81, 41, open_complaints=1), settings=settings).level == "low"
    assert risk(active(5, 121, 81, open_complaints=1), settings=settings).level == "medium"


# -- the default rule: purchases expected at the customer's pace ------------------------------


def buying(days_ago: list[int], activities: int | None = None, cents: int = 10_000, **more):
    """Facts of a customer who bought on these days (one purchase a day, ``cents`` each)."""
    days = {(NOW - d * DAY).date().isoformat(): cents for d in days_ago}
    facts = make_facts(
        first_activity=NOW - max(days_ago) * DAY,
        last_activity=NOW - min(days_ago) * DAY,
        activities=activities or len(days_ago),
        **more,
    )
    return attrs.evolve(facts, signals=Signals({**facts.signals.data, "spend_days": days}))


def test_pace_weights_recent_purchase_days_and_the_lifetime_pace():
    p = pace(buying([10, 40, 70, 100]).signals, W.today, PACE)
    recent = sum(math.exp(-(d + 0.5) / 90) for d in (10, 40, 70, 100)) / 90
    lifetime = 4 / 100.5
    assert p.expected == pytest.approx(90 * (0.9 * recent + 0.1 * lifetime))
    assert p.usual == pytest.approx(90 * lifetime)
    assert (p.idle_days, p.interval_days) == (10.5, pytest.approx(30))
    # a refund-only day is no purchase; a visit (not in the spend days) counts once
    refund = buying([10, 40, 70, 100])
    days = {**refund.signals.data["spend_days"], (NOW - 5 * DAY).date().isoformat(): -500}
    visit = Signals(
        {
            **refund.signals.data,
            "spend_days": days,
            "last_activity": refund.signals.data["last_activity"],
        }
    )
    assert pace(visit, W.today, PACE).expected == pytest.approx(p.expected)
    later = Signals({**visit.data, "last_activity": iso(NOW - 2 * DAY), "activities": 5})
    assert pace(later, W.today, PACE).expected == pytest.approx(
        90 * (0.9 * (recent + math.exp(-2.5 / 90) / 90) + 0.1 * 5 / 100.5)
    )
    assert pace(Signals({}), W.today, PACE) is None


@pytest.mark.parametrize(
    ("days_ago", "level"),
    [
        ([3, 20, 40, 60, 80], "none"),  # a regular buyer: about 4 expected in 90 days
        ([80, 120, 150], "low"),  # 0.5 to 1 expected
        ([200, 230], "high"),  # 0.25 or fewer
        ([250], "high"),
    ],
)
def test_pace_levels(days_ago, level):
    assert risk(buying(days_ago), settings=PACE).level == level


def test_pace_reasons_say_why_in_words():
    [reason] = risk(buying([80, 120, 150]), settings=PACE).reasons
    assert reason == (
        "no purchase or visit since 2025-10-17 (usually every 35 days, more "
        "than 2 times that); purchases and visits expected in the next 90 days: "
        "under 1 at their pace, 1.8 at their usual pace"
    )
    [reason] = risk(buying([250]), settings=PACE).reasons
    assert reason == (
        "no purchase or visit since 2025-04-30 (their only one so far); purchases "
        "and visits expected in the next 90 days: under 0.25 at their pace, 0.4 at "
        "their usual pace"
    )
    # a frequent customer who stops is overdue long before their pace runs out
    [reason] = risk(buying(list(range(16, 46))), settings=PACE).reasons
    assert reason == (
        "no purchase or visit since 2025-12-20 (usually every 7 days, more than 2 times that)"
    )
    assert risk(buying(list(range(16, 46))), settings=PACE).level == "low"
    # the words read the same from one day to the next (nothing to rewrite every night)
    later = Window(NOW + 3 * DAY, C.spend_window_days, C.complaint_open_days)
    facts = buying([80, 120, 150])
    assert assess(attrs.evolve(facts, now=NOW + 3 * DAY), VALUABLE, PACE, later) == risk(
        facts, settings=PACE
    )


def test_pace_thresholds_are_configurable_and_checked():
    strict = ChurnSettings(pace_low=5.0, pace_medium=2.0, pace_high=1.0)
    assert risk(buying([3, 20, 40, 60, 80]), settings=strict).level == "low"
    with pytest.raises(ValidationError, match="pace thresholds must descend"):
        ChurnSettings(pace_low=0.5, pace_medium=0.5)
    with pytest.raises(ValidationError, match="unknown value 'magic'"):
        ChurnSettings(rule="magic")


def test_default_rule_in_a_crm_rises_with_the_lapse_and_creates_the_task(grading_crm, clock):
    recorder = Recorder()
    crm = grading_crm(
        {**SETTINGS, "churn": {"valuable": {"pyramid": ["vip"]}}}, plugins=[("recorder", recorder)]
    )
    vip, small = vip_and_small(crm, clock)  # four purchases 10 days apart, the last 10 ago
    assert grading_of(crm, vip).get("churn", {}).get("level", "none") == "none"
    levels = []
    for _week in range(23):  # idle 17 to 171 days (past 180 the spend-drop sign lapses)
        clock.advance(days=7)
        api.grade_customer(crm, vip, actor="ann")
        levels.append(grading_of(crm, vip).get("churn", {}).get("level", "none"))
    assert levels == sorted(levels, key=lambda lv: ("none", "low", "medium", "high").index(lv))
    assert levels[0] == "none" and levels[-1] == "high"
    # a week on (idle 17 days): more than twice their usual 10 days; the spend of the last 90
    # days falls below half the 90 before: medium; under 0.5 expected at their pace: high
    assert (levels.index("low"), levels.index("medium"), levels.index("high")) == (1, 9, 21)
    assert [c[1:3] for c in recorder.churn] == [
        ("none", "low"),
        ("low", "medium"),
        ("medium", "high"),
    ]
    [task] = crm.tasks.open_for(vip)
    assert (task.kind, task.priority) == ("retention", Priority.URGENT)
    assert "usually every 10 days, more than 2 times that" in task.notes
    assert crm.tasks.open_for(small) == []


@pytest.mark.parametrize("grades", [{}, {"pyramid": "small"}, {"rfm": "lost"}, {"pipeline": "A"}])
def test_only_valuable_customers_are_watched(grades):
    assert risk(active(5, 300, 200, open_complaints=2), grades=grades).level == "none"


# -- in a CRM: events, history and the retention task -----------------------------------------

SETTINGS = {
    "schemes": ["pipeline", "pyramid"],
    "pyramid": {"tiers": [{"name": "vip", "top": 0.5}], "rest": "small"},
    "churn": {"valuable": {"pyramid": ["vip"]}, "rule": "interval"},
}


def vip_and_small(crm, clock):
    vip = add_customer(crm, owner="ann")
    small = add_customer(crm, name="Bo Chen", owner="bo")
    for _ in range(4):
        log(crm, vip, "purchase", amount=500.0)
        log(crm, small, "purchase", amount=5.0)
        clock.advance(days=10)
    api.grade_all(crm, actor="nightly")
    return vip, small


def test_a_rise_fires_the_event_and_creates_a_retention_task(grading_crm, clock):
    recorder = Recorder()
    crm = grading_crm(SETTINGS, plugins=[("recorder", recorder)])
    vip, small = vip_and_small(crm, clock)
    assert grading_of(crm, vip)["grades"]["pyramid"] == "vip"
    assert grading_of(crm, vip).get("churn", {}).get("level", "none") == "none"
    clock.advance(days=25)  # idle 35 days against a usual 10: overdue, not yet twice
    api.grade_customer(crm, vip, actor="ann")
    assert churn_of(crm, vip) == {
        "level": "low",
        "reasons": ["no purchase or visit since 2026-02-04 (usually every 10 days)"],
    }
    assert recorder.churn == [(vip, "none", "low", churn_of(crm, vip)["reasons"])]
    assert crm.tasks.open_for(vip) == []  # a task from "medium" up (the default)
    clock.advance(days=10)  # idle 45 days: more than twice overdue
    api.grade_customer(crm, vip, actor="ann")
    [task] = crm.tasks.open_for(vip)
    assert (task.kind, task.assignee, task.priority, task.source) == (
        "retention",
        "ann",
        Priority.HIGH,
        "grading",
    )
    assert task.dedupe_key == f"retention:{vip}"
    assert task.due_at == clock.now() + timedelta(days=2)
    assert "pyramid vip" in task.title
    assert [c[1:3] for c in recorder.churn] == [("none", "low"), ("low", "medium")]
    assert crm.tasks.open_for(small) == []
    churn_history = api.history(crm, vip, scheme="churn")
    assert [(h.old, h.new) for h in churn_history] == [("low", "medium"), ("none", "low")]


def test_the_retention_response_escalates_and_falls_quietly(grading_crm, clock):
    recorder = Recorder()
    crm = grading_crm(SETTINGS, plugins=[("recorder", recorder)])
    vip, _small = vip_and_small(crm, clock)
    clock.advance(days=40)
    api.grade_customer(crm, vip, actor="ann")
    [task] = crm.tasks.open_for(vip)
    assert task.priority is Priority.HIGH
    log(crm, vip, "complaint", summary="late delivery")  # an open complaint: high now
    [task] = crm.tasks.open_for(vip)
    assert task.priority is Priority.URGENT
    assert churn_of(crm, vip)["level"] == "high"
    rises = len(recorder.churn)
    log(crm, vip, "purchase", amount=500.0)  # back: the risk falls, no event
    assert churn_of(crm, vip)["level"] == "low"
    assert len(recorder.churn) == rises
    clock.advance(days=60)
    api.grade_customer(crm, vip, actor="ann")  # rises again while the task is still open
    assert len(crm.tasks.open_for(vip)) == 1


def test_retention_tasks_can_be_switched_off(grading_crm, clock):
    crm = grading_crm({**SETTINGS, "churn": {**SETTINGS["churn"], "retention_task": "off"}})
    vip, _small = vip_and_small(crm, clock)
    clock.advance(days=60)
    api.grade_customer(crm, vip, actor="ann")
    assert churn_of(crm, vip)["level"] == "medium"
    assert crm.tasks.open_for(vip) == []


class FakeComplaints:
    """Stands in for the complaints plugin by name; its hooks are contracts (declared always)
    and the test fires them itself."""


@attrs.frozen
class Ticket:
    id: str
    customer_id: str
    status: str = "open"


def test_open_complaints_follow_the_complaints_plugins_tickets(grading_crm, clock):
    crm = grading_crm(SETTINGS, plugins=[("complaints", FakeComplaints())])
    vip, _small = vip_and_small(crm, clock)
    log(crm, vip, "complaint", summary="old, unresolved?")  # tickets decide, not interactions
    assert "churn" not in grading_of(crm, vip)  # never at risk: nothing stored
    for n in (1, 2):
        crm.events.complaint_registered(actor="desk", ticket=Ticket(f"tkt_{n}", vip))
    assert grading_of(crm, vip)["open_complaints"] == ["tkt_1", "tkt_2"]
    assert churn_of(crm, vip) == {"level": "medium", "reasons": ["2 open complaints"]}
    crm.events.complaint_resolved(actor="desk", ticket=Ticket("tkt_1", vip, "resolved"))
    crm.events.complaint_closed(actor="desk", ticket=Ticket("tkt_2", vip, "closed"))
    assert grading_of(crm, vip)["open_complaints"] == []
    assert churn_of(crm, vip)["level"] == "none"
    crm.events.complaint_reopened(actor="desk", ticket=Ticket("tkt_2", vip, "reopened"))
    assert churn_of(crm, vip) == {"level": "low", "reasons": ["1 open complaint"]}


def test_without_the_complaints_plugin_recent_complaints_count_as_open(grading_crm, clock):
    crm = grading_crm(SETTINGS)
    vip, _small = vip_and_small(crm, clock)
    log(crm, vip, "complaint")
    assert churn_of(crm, vip)["reasons"] == ["1 open complaint"]
    clock.advance(days=29)
    log(crm, vip, "purchase", amount=500.0)
    assert churn_of(crm, vip)["reasons"] == ["1 open complaint"]
    clock.advance(days=2)  # 31 days on: no longer counted (complaint_open_days = 30)
    log(crm, vip, "purchase", amount=500.0)
    assert churn_of(crm, vip)["level"] == "none"


def test_stored_signal_dicts_round_trip_for_facts():
    data = sig(spend=12.5, purchases=2, last_purchase=NOW)
    assert Signals(data).spend == 12.5 and Signals(data).last_purchase == NOW


def test_with_the_real_complaints_plugin(make_crm, clock):
    """contracts.md: a logged complaint registers a ticket; grading counts it open until it is
    resolved or closed."""
    pytest.importorskip("crmcore_complaints")
    from crmcore_complaints.api import Complaints

    crm = make_crm(["grading", "complaints"], settings={"grading": SETTINGS})
    vip, _small = vip_and_small(crm, clock)
    log(crm, vip, "complaint", summary="the kettle leaks")
    [ticket] = Complaints(crm).find()
    assert grading_of(crm, vip)["open_complaints"] == [ticket.id]
    assert churn_of(crm, vip)["reasons"] == ["1 open complaint"]
    Complaints(crm).judge(
        ticket.id, actor="lead", valid=False, explanation="not one of our products"
    )
    assert grading_of(crm, vip)["open_complaints"] == []
    assert churn_of(crm, vip)["level"] == "none"
