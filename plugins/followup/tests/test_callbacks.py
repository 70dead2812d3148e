"""Callbacks (回访, DOMAIN §3): within 3 days of the triggering event, never in quiet hours,
100% coverage for key customers, every callback fully recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crmcore_followup.api import record_callback
from crmcore_followup.report import callback_sections
from crmcore_followup.settings import FollowupSettings

from crmcore import Priority, ValidationError
from crmcore.testing import START


def _callbacks(crm, customer_id=None):
    query = {"kind": "callback", "status": "open"}
    if customer_id:
        query["customer_id"] = customer_id
    return crm.tasks.find(query, sort=[("due_at", 1)])


@pytest.mark.parametrize(
    ("kind", "reason"), [("purchase", "purchase"), ("business", "business handled")]
)
def test_business_handled_or_a_purchase_calls_for_a_callback_within_3_days(
    crm, add_customer, kind, reason
):
    customer = add_customer()
    event = crm.interactions.log(actor="rep", customer_id=customer.id, kind=kind, amount=10.0)
    [task] = _callbacks(crm, customer.id)
    assert task.ref == event.id and task.dedupe_key == f"callback:{event.id}"
    assert task.title == f"Callback after {reason}"
    assert task.due_at == START + timedelta(hours=24)
    assert task.ext["followup"]["deadline"] == "2026-01-08T09:00:00.000000Z"
    assert START < task.due_at <= START + timedelta(days=3)


def test_other_interactions_make_no_callback(crm, add_customer):
    customer = add_customer()
    for kind in ("consultation", "inquiry", "visit", "feedback", "note"):
        crm.interactions.log(actor="rep", customer_id=customer.id, kind=kind)
    assert _callbacks(crm) == []


@pytest.mark.parametrize(
    ("event_at", "zone", "due"),
    [
        # 21:30 UTC + 24h is night: the next morning, still within the 3 days
        (datetime(2026, 1, 5, 21, 30, tzinfo=UTC), "UTC", datetime(2026, 1, 7, 8, 0, tzinfo=UTC)),
        # 05:00 UTC is 13:00 in Shanghai (lunch rest there): 14:00 Shanghai = 06:00 UTC
        (
            datetime(2026, 1, 5, 5, 0, tzinfo=UTC),
            "Asia/Shanghai",
            datetime(2026, 1, 6, 6, 0, tzinfo=UTC),
        ),
        # the same instant is fine for a UTC customer
        (datetime(2026, 1, 5, 5, 0, tzinfo=UTC), "UTC", datetime(2026, 1, 6, 8, 0, tzinfo=UTC)),
    ],
)
def test_callbacks_avoid_the_customers_quiet_hours(crm, clock, event_at, zone, due):
    clock.set(event_at)
    customer = crm.customers.add(actor="t", name="Tz", timezone=zone)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=5.0)
    [task] = _callbacks(crm, customer.id)
    assert task.due_at == due
    assert task.due_at <= event_at + timedelta(days=3)


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"ext": {"grading": {"grades": {"pipeline": "A"}}}}, True),
        ({"ext": {"grading": {"grades": {"hospital": "big"}}}}, True),
        ({"tags": ["vip"]}, True),
        ({"ext": {"grading": {"grades": {"pipeline": "B", "hospital": "major"}}}}, False),
        ({}, False),
    ],
)
def test_key_customers_always_get_a_callback_others_by_the_ratio(fu, fields, key):
    crm = fu(callback_ratio=0.0)
    customer = crm.customers.add(actor="t", name="K", **fields)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    tasks = _callbacks(crm, customer.id)
    assert len(tasks) == (1 if key else 0)
    if key:
        assert tasks[0].priority is Priority.HIGH
        assert tasks[0].ext["followup"]["key_customer"] is True


def test_key_customers_are_configurable(fu):
    crm = fu(callback_ratio=0.0, key_customers={"rfm": ["champion"]}, key_tags=[])
    a = crm.customers.add(actor="t", name="A", ext={"grading": {"grades": {"pipeline": "A"}}})
    champion = crm.customers.add(
        actor="t", name="Champ", ext={"grading": {"grades": {"rfm": "champion"}}}
    )
    for customer in (a, champion):
        crm.interactions.log(actor="rep", customer_id=customer.id, kind="business")
    assert [t.customer_id for t in _callbacks(crm)] == [champion.id]


def test_sampling_of_other_customers_is_deterministic(fu):
    crm = fu(callback_ratio=0.5)
    events = [
        crm.interactions.log(
            actor="rep",
            kind="purchase",
            amount=1.0,
            customer_id=crm.customers.add(actor="t", name="S").id,
        )
        for _ in range(200)
    ]
    got = {t.ref for t in _callbacks(crm)}
    assert 60 <= len(got) <= 140
    from crmcore_followup.engine import sampled

    assert got == {e.id for e in events if sampled(e.id, 0.5)}


def test_one_open_callback_covers_a_customers_later_events(crm, add_customer, clock, fakes):
    customer = add_customer()
    first = crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    clock.advance(hours=3)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="business")
    [task] = _callbacks(crm, customer.id)
    assert task.ref == first.id
    record_callback(crm, task.id, satisfied=True, actor="ann")
    later = crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    assert [t.ref for t in _callbacks(crm, customer.id)] == [later.id]


def test_an_event_logged_after_its_callback_window_makes_none(crm, add_customer):
    customer = add_customer()
    crm.interactions.log(
        actor="import",
        customer_id=customer.id,
        kind="purchase",
        occurred_at=START - timedelta(days=3),
        amount=1.0,
    )
    assert _callbacks(crm, customer.id) == []
    crm.interactions.log(
        actor="import",
        customer_id=customer.id,
        kind="purchase",
        occurred_at=START - timedelta(days=2),
        amount=1.0,
    )
    [task] = _callbacks(crm, customer.id)
    assert task.due_at == START - timedelta(days=1)  # still inside its window: overdue


def test_do_not_contact_customers_get_no_callbacks(crm, add_customer):
    customer = add_customer("A", do_not_contact=True)
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    assert _callbacks(crm) == []


def test_a_closed_complaint_calls_for_a_callback_once(fu, fakes):
    crm = fu(("complaints", fakes.ComplaintHooksOnly()), callback_ratio=0.0)
    customer = crm.customers.add(actor="t", name="Unhappy", tags=["vip"])
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    ticket = fakes.Ticket(id="tkt_001", customer_id=customer.id)
    for _ in range(3):  # repeated events (retries, several workers)
        crm.events.complaint_closed(actor="complaints", ticket=ticket)
    # its own callback, besides the open one for the purchase
    [_purchase, task] = sorted(_callbacks(crm, customer.id), key=lambda t: t.ref[:3])
    assert (task.ref, task.dedupe_key) == ("tkt_001", "callback:tkt_001")
    assert task.title == "Callback after complaint closed"
    assert task.due_at <= START + timedelta(days=3)


def test_recording_the_outcome_logs_the_callback_per_the_contract(crm, add_customer, clock):
    customer = add_customer("A")
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=9.0)
    [task] = _callbacks(crm, customer.id)
    clock.advance(hours=20)
    interaction, done = record_callback(
        crm, task.id, satisfied=False, score=2, notes="parcel arrived damaged", actor="ann"
    )
    assert interaction.kind == "callback" and interaction.ref == task.ref
    assert interaction.satisfaction == 2
    assert interaction.ext["followup"] == {"satisfied": False, "task_id": task.id}
    assert interaction.summary == "parcel arrived damaged"
    assert (done.status.value, done.outcome) == ("done", "unsatisfied")
    # exactly one callback interaction: completion did not log a second one
    assert crm.interactions.count({"customer_id": customer.id, "kind": "callback"}) == 1
    with pytest.raises(ValidationError, match="cannot be recorded again"):
        record_callback(crm, task.id, satisfied=True, actor="ann")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"satisfied": True, "score": 6}, "score"),
        ({"satisfied": True, "score": 0}, "score"),
        ({"satisfied": "yes"}, "satisfied"),
        ({"satisfied": True, "channel": "pigeon"}, "channel"),
    ],
)
def test_bad_outcomes_are_refused_and_nothing_is_written(crm, add_customer, kwargs, field):
    customer = add_customer()
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    [task] = _callbacks(crm, customer.id)
    with pytest.raises(ValidationError) as err:
        record_callback(crm, task.id, actor="ann", **kwargs)
    assert err.value.field == field
    assert crm.tasks.get(task.id).is_open
    assert crm.interactions.count({"kind": "callback"}) == 0


def test_only_callback_tasks_take_an_outcome(crm, add_customer):
    customer = add_customer()
    [first] = crm.tasks.open_for(customer.id, kind="first_contact")
    with pytest.raises(ValidationError, match="not a callback"):
        record_callback(crm, first.id, satisfied=True, actor="ann")


def test_a_callback_completed_plainly_is_still_recorded(crm, add_customer):
    customer = add_customer()
    crm.interactions.log(actor="rep", customer_id=customer.id, kind="business")
    [task] = _callbacks(crm, customer.id)
    crm.tasks.complete(task.id, actor="bo", outcome="reached")
    [logged] = crm.interactions.find({"kind": "callback"})
    assert logged.ref == task.ref and logged.ext["followup"]["satisfied"] is None


def test_report_shows_coverage_of_key_customers(crm, clock):
    key = [crm.customers.add(actor="t", name=f"K{i}", tags=["vip"]) for i in range(3)]
    other = crm.customers.add(actor="t", name="O")
    for customer in (*key, other):
        crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    tasks = {t.customer_id: t for t in _callbacks(crm)}
    clock.advance(days=1)
    record_callback(crm, tasks[key[0].id].id, satisfied=True, score=5, actor="ann")
    record_callback(crm, tasks[other.id].id, satisfied=True, score=4, actor="ann")
    clock.advance(days=3)  # past the window
    record_callback(crm, tasks[key[1].id].id, satisfied=False, score=1, actor="ann")  # late
    coverage, satisfaction = callback_sections(crm, clock.now())
    rows = {r[0]: r for r in coverage.rows}
    assert rows["key customers"] == ("key customers", 3, 1, "33.3%", 1)
    assert rows["all customers"] == ("all customers", 4, 2, "50.0%", 1)
    values = dict(satisfaction.rows)
    assert values["satisfied"] == 2 and values["unsatisfied"] == 1
    assert values["mean score (1-5)"] == "3.33"


def test_callback_defaults_follow_the_domain_brief():
    settings = FollowupSettings()
    assert (settings.callback_within_days, settings.callback_ratio) == (3, 1.0)


def test_report_charts_callback_coverage_over_the_period(crm, clock):
    from crmcore import ReportWindow

    start = clock.now()
    key = [crm.customers.add(actor="t", name=f"K{i}", tags=["vip"]) for i in range(2)]
    for customer in key:
        crm.interactions.log(actor="rep", customer_id=customer.id, kind="purchase", amount=1.0)
    tasks = {t.customer_id: t for t in _callbacks(crm)}
    clock.advance(days=1)
    record_callback(crm, tasks[key[0].id].id, satisfied=True, score=5, actor="ann")
    clock.advance(days=5)  # key[1]'s window ends unanswered
    window = ReportWindow(since=start - timedelta(days=1), until=clock.now())
    [chart] = callback_sections(crm, clock.now(), window)[0].charts
    assert chart.key == "callback_coverage_trend" and chart.unit == "%"
    assert chart.x_label == "Day" and len(chart.x) == 8  # a week, partial days at both ends
    by_name = {s.name: s.values for s in chart.series}
    # 100% on the day key[0] was called back, 0% on the day key[1]'s window closed
    assert [v for v in by_name["key customers"] if v is not None] == [100.0, 0.0]
    assert by_name["key customers"].index(100.0) < by_name["key customers"].index(0.0)
