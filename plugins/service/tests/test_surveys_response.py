"""Satisfaction surveys as data and first-response time of every enquiry, on the injected
clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_service.plugin import crm_report_sections
from crmcore_service.response import ResponseTimes
from crmcore_service.surveys import Surveys

from crmcore import ConfigError, TaskStatus, ValidationError

SURVEY = {
    "half_year": {
        "title": "Half-year satisfaction",
        "scale": 10,
        "period_days": 182,
        "questions": [
            {"key": "overall", "category": "service"},
            {"key": "network", "category": "network"},
        ],
        "audience": {"tags": ["vip"], "fields": {"region": ["north"]}},
    }
}
SECURITY = {
    "actors": {
        "ann": {"role": "agent", "department": "front"},
        "bo": {"role": "agent", "department": "back"},
    }
}


def test_a_survey_asks_its_audience_once_per_period_and_stores_scored_answers(setup, clock):
    crm, api = setup({"surveys": SURVEY}, other_settings={"security": SECURITY})
    add = crm.customers.add
    vip_north = add(
        actor="x", name="A", phone="+86 138 0000 0001", tags=["vip"], region="north", owner="ann"
    ).id
    add(actor="x", name="B", phone="+86 138 0000 0002", tags=["vip"], region="south")
    add(actor="x", name="C", phone="+86 138 0000 0003", region="north")
    add(
        actor="x",
        name="D",
        phone="+86 138 0000 0004",
        tags=["vip"],
        region="north",
        do_not_contact=True,
    )
    other = add(
        actor="x",
        name="E",
        phone="+86 138 0000 0005",
        tags=["vip", "new"],
        region="north",
        owner="bo",
    ).id
    surveys = Surveys(api)
    result = surveys.run("half_year", actor="lead")
    assert (result.asked, result.already) == (2, 0)
    assert surveys.run("half_year", actor="lead").asked == 0  # once per period
    [task] = crm.tasks.find({"customer_id": vip_north, "kind": "survey"})
    assert task.assignee == "ann"
    logged = surveys.answer(
        "half_year",
        actor="ann",
        customer_id=vip_north,
        scores={"overall": "9", "network": 7},
        comment="good",
    )
    assert logged.kind == "survey" and logged.satisfaction == 4  # mean 8 of 10 → 4 of 5
    assert logged.ext["service"]["scores"] == {"overall": 9, "network": 7}
    assert crm.tasks.get(task.id).status is TaskStatus.DONE
    surveys.answer("half_year", actor="bo", customer_id=other, scores={"overall": 3, "network": 5})
    by_rep = {r.group: (r.answers, r.mean) for r in surveys.results("half_year", "rep")}
    assert by_rep == {"ann": (2, 8.0), "bo": (2, 4.0)}
    by_cat = {r.group: r.mean for r in surveys.results("half_year", "category")}
    assert by_cat == {"network": 6.0, "service": 6.0}
    by_dept = {r.group: r.mean for r in surveys.results("half_year", "department")}
    assert by_dept == {"back": 4.0, "front": 8.0}
    with pytest.raises(ValidationError, match="already answered"):
        surveys.answer(
            "half_year", actor="ann", customer_id=vip_north, scores={"overall": 1, "network": 1}
        )
    clock.advance(timedelta(days=183))  # the next half year asks again
    assert surveys.run("half_year", actor="lead").asked == 2
    section = next(
        s
        for s in crm_report_sections(crm, crm.now() - timedelta(days=183, hours=-1))
        if s.title.startswith("Survey")
    )
    assert ("rep", "ann", 2, 8.0) in section.rows


def test_bad_answers_are_refused_and_write_nothing(setup, customer_id):
    crm, api = setup({"surveys": SURVEY})
    cid = customer_id(crm)
    surveys = Surveys(api)
    for scores, message in [
        ({"overall": 5}, "no score for question 'network'"),
        ({"overall": 11, "network": 5}, "outside 1-10"),
        ({"overall": "x", "network": 5}, "not a whole number"),
        ({"overall": 5, "network": 5, "price": 5}, "unknown question"),
    ]:
        with pytest.raises(ValidationError, match=message):
            surveys.answer("half_year", actor="ann", customer_id=cid, scores=scores)
    with pytest.raises(ValidationError, match="unknown survey 'nps'"):
        surveys.run("nps", actor="ann")
    assert crm.interactions.count({"kind": "survey"}) == 0


def test_a_bad_survey_definition_is_refused(setup):
    with pytest.raises(ConfigError, match="at least one question"):
        setup({"surveys": {"s": {"title": "S", "questions": []}}})
    with pytest.raises(ConfigError, match="2 to 10"):
        setup({"surveys": {"s": {"title": "S", "scale": 1, "questions": [{"key": "a"}]}}})


def test_first_response_time_per_channel_and_rep_with_breaches(setup, customer_id, clock):
    crm, api = setup()
    cid = customer_id(crm)
    times = ResponseTimes(api)
    start = clock.now()
    quick = crm.interactions.log(actor="bot", customer_id=cid, kind="inquiry", channel="chat")
    clock.advance(timedelta(seconds=45))
    times.reply(quick.id, actor="ann", summary="here you go")
    slow = crm.interactions.log(actor="bot", customer_id=cid, kind="inquiry", channel="chat")
    clock.advance(timedelta(seconds=90))
    times.reply(slow.id, actor="ann")
    clock.advance(timedelta(seconds=30))
    times.reply(slow.id, actor="bo")  # a second answer does not count
    mail = crm.interactions.log(
        actor="bot", customer_id=cid, kind="consultation", channel="email", rep="bo"
    )
    waiting = crm.interactions.log(
        actor="bot", customer_id=cid, kind="inquiry", channel="chat", rep="bo"
    )
    clock.advance(timedelta(seconds=61))
    rows = {(r.channel, r.rep): r for r in times.by_channel_and_rep(start, clock.now())}
    ann = rows[("chat", "ann")]
    assert (ann.enquiries, ann.answered, ann.mean_seconds, ann.worst_seconds, ann.breaches) == (
        2,
        2,
        67.5,
        90.0,
        1,
    )
    unanswered = rows[("chat", "bo")]
    assert (unanswered.enquiries, unanswered.answered, unanswered.breaches) == (1, 0, 1)
    assert rows[("email", "bo")].breaches == 0  # a day to answer e-mail
    assert mail.id and waiting.id
    with pytest.raises(ValidationError, match="not an enquiry"):
        times.reply(
            crm.interactions.log(actor="x", customer_id=cid, kind="purchase").id, actor="ann"
        )
    section = next(
        s for s in crm_report_sections(crm, clock.now()) if s.title.startswith("First response")
    )
    assert section.chart == {"chat": 2.0, "email": 0.0}


def test_survey_answers_feed_the_grading_signals(setup):
    """An answer is an interaction with a satisfaction score, which the grading plugin reads
    as feedback (its ``feedback_kinds`` include ``survey``): a low score counts against."""
    crm, api = setup(
        {
            "surveys": {
                "q": {
                    "title": "Q",
                    "scale": 5,
                    "questions": [{"key": "overall", "category": "service"}],
                }
            }
        },
        plugins=("grading",),
    )
    unhappy = crm.customers.add(actor="ann", name="Li", phone="+86 138 0013 8000", owner="ann").id
    happy = crm.customers.add(actor="ann", name="Wu", phone="+86 138 0013 8001", owner="ann").id
    surveys = Surveys(api)
    assert surveys.run("q", actor="lead").asked == 2
    surveys.answer("q", actor="ann", customer_id=unhappy, scores={"overall": 1})
    surveys.answer("q", actor="ann", customer_id=happy, scores={"overall": 5})
    signals = {cid: crm.customers.get(cid).ext["grading"]["signals"] for cid in (unhappy, happy)}
    assert signals[unhappy].get("feedback_neg") == 1 and "feedback_pos" not in signals[unhappy]
    assert signals[happy].get("feedback_pos") == 1 and "feedback_neg" not in signals[happy]
