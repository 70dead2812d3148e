"""``crm report``'s window (period, team, rep) in every section of the plugin: what happened in
the period counts, what happened outside it does not, and a team or rep sees its own."""

from __future__ import annotations

from datetime import datetime, timedelta

from crmcore_service.campaigns import Campaigns
from crmcore_service.plugin import crm_report_sections
from crmcore_service.response import ResponseTimes
from crmcore_service.surveys import Surveys

from crmcore import ReportWindow

SETTINGS = {
    "surveys": {
        "s": {"title": "S", "scale": 5, "questions": [{"key": "overall", "category": "service"}]}
    },
    "campaigns": {"vip": {"title": "VIP care", "audience": {"tags": ["vip"]}}},
}
SECURITY = {
    "actors": {
        "ann": {"role": "agent", "team": "front", "department": "cs"},
        "bo": {"role": "agent", "team": "back", "department": "cs"},
    }
}


def by_title(crm, now: datetime, window: ReportWindow | None = None) -> dict:
    return {s.title.split(",")[0]: s for s in crm_report_sections(crm, now, window)}


def scenario(setup, clock):
    """Week one (from ``start``): ann's cancellation breaches its SLA and moves on, bo's is
    retained, ann's customer answers a survey, ann answers an enquiry in 90 s and makes a care
    contact. Ten days later bo opens a cancellation, bo's customer answers, bo answers an
    enquiry in 30 s and makes a care contact."""
    crm, api = setup(SETTINGS, other_settings={"security": SECURITY})
    start = clock.now()
    add = crm.customers.add
    ann_c = add(actor="x", name="A", phone="+86 138 0000 0001", owner="ann", tags=["vip"]).id
    bo_c = add(actor="x", name="B", phone="+86 138 0000 0002", owner="bo").id
    Surveys(api).run("s", actor="lead")
    Campaigns(api).run("vip", actor="lead")
    first = api.open(
        actor="ann", type="cancellation", customer_id=ann_c, fields={"reason": "price"}
    )
    kept = api.open(actor="bo", type="cancellation", customer_id=bo_c, fields={"reason": "moving"})
    api.advance(kept, actor="bo", to="retained", fields={"offer": "discount"})
    Surveys(api).answer("s", actor="ann", customer_id=ann_c, scores={"overall": 4})
    times = ResponseTimes(api)
    asked = crm.interactions.log(actor="bot", customer_id=ann_c, kind="inquiry", channel="chat")
    clock.advance(timedelta(seconds=90))
    times.reply(asked.id, actor="ann")
    Campaigns(api).contact("vip", actor="ann", customer_id=ann_c, satisfaction=4)
    clock.advance(timedelta(hours=5))  # past the 4-hour SLA of the request step
    crm.tick("w")
    api.advance(first.id, actor="ann", to="fee_settlement")

    clock.advance(timedelta(days=10))
    later = add(actor="x", name="C", phone="+86 138 0000 0003", owner="bo", tags=["vip"]).id
    Campaigns(api).run("vip", actor="lead")
    api.open(actor="bo", type="cancellation", customer_id=later, fields={"reason": "price"})
    Surveys(api).answer("s", actor="bo", customer_id=bo_c, scores={"overall": 2})
    asked = crm.interactions.log(actor="bot", customer_id=bo_c, kind="inquiry", channel="chat")
    clock.advance(timedelta(seconds=30))
    times.reply(asked.id, actor="bo")
    Campaigns(api).contact("vip", actor="bo", customer_id=later, satisfaction=2)
    return crm, api, start


def test_a_period_that_holds_the_events_counts_them(setup, clock):
    crm, _api, start = scenario(setup, clock)
    week_one = ReportWindow(since=start - timedelta(hours=1), until=start + timedelta(days=1))
    s = by_title(crm, clock.now(), week_one)
    assert s["Service orders opened and closed"].title.endswith("2026-01-05 to 2026-01-06")
    assert s["Service orders opened and closed"].rows == (("cancellation", 2, 1, 0, 1, 0),)
    assert s["Service SLA breaches"].rows == (("cancellation", "request", 1, 1),)
    assert ("cancellation", "request", 2, 2.5, 5.0) in s["Service cycle time per step (hours)"].rows
    assert set(s["Cancellation requests by reason"].rows) == {
        ("price", "open", 1),
        ("moving", "retained", 1),
    }
    # open at the end of the period, at the step it was at then
    assert s["Service orders open"].rows == (("cancellation", "fee_settlement", 1, 0),)
    assert s["Service orders open"].title.endswith("at 2026-01-06T09:00")
    assert ("rep", "ann", 1, 4.0) in s["Survey 'S'"].rows
    assert all(row[1] != "bo" for row in s["Survey 'S'"].rows)
    assert s["First response to enquiries"].rows == (("chat", "ann", 1, 1, 90.0, 1),)
    assert s["Care campaigns"].rows == (("vip", 1, 1, 4.0, 0, 0, "0/0/0"),)


def test_a_period_without_events_counts_nothing(setup, clock):
    crm, _api, start = scenario(setup, clock)
    quiet = ReportWindow(since=start + timedelta(days=3), until=start + timedelta(days=4))
    s = by_title(crm, clock.now(), quiet)
    for title in (
        "Service orders opened and closed",
        "Service SLA breaches",
        "Service cycle time per step (hours)",
        "Cancellation requests by reason",
        "Fee settlements and charge adjustments",
        "Survey 'S'",
        "First response to enquiries",
    ):
        assert s[title].rows == (), title
    assert s["Care campaigns"].rows == (("vip", 0, 0, "", 0, 0, "0/0/0"),)
    # ann's order still waits at fee settlement, whose 24 business hours ran out by then
    assert s["Service orders open"].rows == (("cancellation", "fee_settlement", 1, 1),)


def test_the_later_period_and_the_default_window(setup, clock):
    crm, _api, start = scenario(setup, clock)
    later = ReportWindow(since=start + timedelta(days=5))  # up to now
    s = by_title(crm, clock.now(), later)
    assert s["Service orders opened and closed"].rows == (("cancellation", 1, 0, 0, 0, 0),)
    assert s["Cancellation requests by reason"].rows == (("price", "open", 1),)
    assert s["First response to enquiries"].rows == (("chat", "bo", 1, 1, 30.0, 0),)
    assert s["Care campaigns"].rows == (("vip", 1, 1, 2.0, 0, 0, "0/0/0"),)
    assert set(s["Service orders open"].rows) == {
        ("cancellation", "fee_settlement", 1, 1),
        ("cancellation", "request", 1, 0),
    }
    # without a window: the last report_days (30) days hold both weeks
    everything = by_title(crm, clock.now())
    assert everything["Service orders opened and closed"].title.endswith("last 30 days")
    assert everything["Service orders opened and closed"].rows == (("cancellation", 3, 1, 0, 1, 0),)
    assert everything["Care campaigns"].rows == (("vip", 2, 2, 3.0, 0, 0, "0/0/0"),)
    # a report ending 40 days on holds neither week
    gone = by_title(crm, clock.now() + timedelta(days=40))
    assert gone["Service orders opened and closed"].rows == ()


def test_a_team_or_rep_sees_its_own_orders_answers_and_contacts(setup, clock):
    crm, _api, _start = scenario(setup, clock)
    back = by_title(crm, clock.now(), ReportWindow(team="back"))
    assert back["Service orders opened and closed"].title.endswith("last 30 days, team back")
    assert back["Service orders opened and closed"].rows == (("cancellation", 2, 1, 0, 1, 0),)
    assert back["Service SLA breaches"].rows == ()  # the breach was on ann's order
    assert set(back["Cancellation requests by reason"].rows) == {
        ("price", "open", 1),
        ("moving", "retained", 1),
    }
    assert back["Service orders open"].rows == (("cancellation", "request", 1, 0),)
    assert {row[1] for row in back["Survey 'S'"].rows if row[0] == "rep"} == {"bo"}
    assert back["First response to enquiries"].rows == (("chat", "bo", 1, 1, 30.0, 0),)
    assert back["Care campaigns"].rows == (("vip", 1, 1, 2.0, 0, 0, "0/0/0"),)
    ann = by_title(crm, clock.now(), ReportWindow(rep="ann"))
    assert ann["Service SLA breaches"].rows == (("cancellation", "request", 1, 1),)
    assert ann["Service orders open"].rows == (("cancellation", "fee_settlement", 1, 1),)
    assert ann["First response to enquiries"].rows == (("chat", "ann", 1, 1, 90.0, 1),)
    nobody = by_title(crm, clock.now(), ReportWindow(team="nobody"))
    assert nobody["Service orders opened and closed"].rows == ()
    assert nobody["Service orders open"].rows == ()


def test_quality_has_a_section_per_month_of_the_period_and_keeps_to_the_rep(setup, clock):
    crm, _api, start = scenario(setup, clock)
    two_months = ReportWindow(
        since=datetime(2026, 1, 1, tzinfo=start.tzinfo),
        until=datetime(2026, 3, 1, tzinfo=start.tzinfo),
        rep="ann",
    )
    quality = [
        s
        for s in crm_report_sections(crm, clock.now(), two_months)
        if s.title.startswith("Service quality")
    ]
    assert [s.title for s in quality] == [
        "Service quality, 2026-01, rep ann",
        "Service quality, 2026-02, rep ann",
    ]
    assert [row[0] for row in quality[0].rows] == ["ann"]
    assert quality[1].rows == ()
    everyone = [
        s for s in crm_report_sections(crm, clock.now()) if s.title.startswith("Service quality")
    ]
    assert [s.title for s in everyone] == ["Service quality, 2026-01"]
    assert {row[0] for row in everyone[0].rows} == {"ann", "bo"}
