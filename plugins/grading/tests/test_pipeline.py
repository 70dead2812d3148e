"""The A-E pipeline grade (DOMAIN §2): every rule and month boundary, table-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from crmcore_grading import api
from crmcore_grading.dates import add_months
from crmcore_grading.inputs import clean_inputs
from crmcore_grading.pipeline import grade_pipeline, urgency
from crmcore_grading.settings import PipelineSettings
from grading_helpers import Recorder, add_customer, grades_of, grading_of
from hypothesis import given
from hypothesis import strategies as st

from crmcore import ValidationError

TODAY = date(2026, 1, 5)  # the test clock's day
DEFAULT = PipelineSettings()


def target(close: str | None, **more: str) -> dict[str, str]:
    inputs = {"demand": "target", **more}
    if close is not None:
        inputs["expected_close"] = close
    return inputs


@pytest.mark.parametrize(
    ("inputs", "grade", "reason"),
    [
        ({"demand": "dead"}, "E", "no need or no chance of a deal (dead)"),
        (target("2026-02-01", deal_status="negotiating"), "A", None),
        ({"demand": "potential"}, "D", "potential need only"),
        ({"demand": "potential", "expected_close": "2026-01-10"}, "D", "potential need only"),
        (target(None), "D", "clear need, no expected closing date yet"),
        (target("2026-01-04"), "A", "clear need, expected to close 2026-01-04, date passed"),
        (target("2026-01-05"), "A", "clear need, expected to close 2026-01-05, within 1 month"),
        (target("2026-02-05"), "A", "clear need, expected to close 2026-02-05, within 1 month"),
        (target("2026-02-06"), "B", "clear need, expected to close 2026-02-06, within 3 months"),
        (target("2026-04-05"), "B", "clear need, expected to close 2026-04-05, within 3 months"),
        (target("2026-04-06"), "C", "clear need, expected to close 2026-04-06, within 6 months"),
        (target("2026-07-05"), "C", "clear need, expected to close 2026-07-05, within 6 months"),
        (
            target("2026-07-06"),
            "D",
            "clear need, expected to close 2026-07-06, not within 6 months",
        ),
        (
            target("2027-01-20"),
            "D",
            "clear need, expected to close 2027-01-20, not within 6 months",
        ),
        # deal status "closed": done, unless a clear need has a later date (a repeat deal)
        (
            target("2026-03-01", deal_status="closed"),
            "B",
            "repeat need, expected to close 2026-03-01, within 3 months",
        ),
        (target("2026-01-05", deal_status="closed"), "D", "deal closed"),
        (target(None, deal_status="closed"), "D", "deal closed"),
        ({"demand": "potential", "deal_status": "closed"}, "D", "deal closed"),
        ({"demand": "dead", "deal_status": "closed"}, "E", "no need or no chance of a deal (dead)"),
        # importance does not move the letter
        (target("2026-02-06", importance="important"), "B", None),
        (target("2026-02-06", importance="not_important"), "B", None),
    ],
)
def test_pipeline_grade_table(inputs, grade, reason):
    result = grade_pipeline(inputs, TODAY, DEFAULT)
    assert result is not None and result.value == grade
    if reason is not None:
        assert result.reason == reason


@pytest.mark.parametrize("inputs", [{}, {"demand": "maybe"}, {"expected_close": "2026-02-01"}])
def test_no_valid_demand_means_no_pipeline_grade(inputs):
    assert grade_pipeline(inputs, TODAY, DEFAULT) is None


@pytest.mark.parametrize(
    ("today", "close", "grade"),
    [
        # calendar months, clamped to the month's last day
        (date(2026, 1, 31), "2026-02-28", "A"),
        (date(2026, 1, 31), "2026-03-01", "B"),
        (date(2028, 1, 31), "2028-02-29", "A"),
        (date(2028, 1, 31), "2028-03-01", "B"),
        (date(2026, 8, 31), "2026-11-30", "B"),
        (date(2026, 8, 31), "2026-12-01", "C"),
        (date(2026, 8, 31), "2027-02-28", "C"),
        (date(2026, 8, 31), "2027-03-01", "D"),
        (date(2026, 12, 15), "2027-01-15", "A"),
        (date(2026, 12, 15), "2027-01-16", "B"),
    ],
)
def test_month_boundaries_are_calendar_months(today, close, grade):
    assert grade_pipeline(target(close), today, DEFAULT).value == grade


@pytest.mark.parametrize(
    ("close", "grade"),
    [
        ("2026-03-05", "A"),
        ("2026-03-06", "B"),
        ("2026-05-05", "B"),
        ("2026-05-06", "C"),
        ("2026-09-05", "C"),
        ("2026-09-06", "D"),
    ],
)
def test_month_boundaries_are_configurable(close, grade):
    settings = PipelineSettings(a_months=2, b_months=4, c_months=8)
    result = grade_pipeline(target(close), TODAY, settings)
    assert result.value == grade


def test_no_date_and_closed_grades_are_configurable():
    settings = PipelineSettings(no_date_grade="C", closed_grade="E")
    assert grade_pipeline(target(None), TODAY, settings).value == "C"
    assert grade_pipeline(target(None, deal_status="closed"), TODAY, settings).value == "E"


@pytest.mark.parametrize(
    ("close", "expected"),
    [
        (None, None),
        ("2026-01-01", "urgent"),
        ("2026-01-12", "urgent"),
        ("2026-01-13", "soon"),
        ("2026-02-05", "soon"),
        ("2026-02-06", "not urgent"),
        ("2026-04-05", "not urgent"),
        ("2026-04-06", "slow"),
    ],
)
def test_time_urgency_classes(close, expected):
    assert urgency(None if close is None else date.fromisoformat(close), TODAY) == expected


@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    st.integers(-400, 800),
    st.integers(0, 400),
)
def test_a_later_close_never_grades_better(today, offset, extra):
    first = today + timedelta(days=offset)
    later = first + timedelta(days=extra)
    order = "ABCD"
    g1 = grade_pipeline(target(first.isoformat()), today, DEFAULT).value
    g2 = grade_pipeline(target(later.isoformat()), today, DEFAULT).value
    assert order.index(g1) <= order.index(g2)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 1, 1)), st.integers(0, 240))
def test_add_months_is_a_calendar_month_step(day, months):
    moved = add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day == day.day or (moved.day < day.day and (moved + timedelta(days=1)).day == 1)


# -- inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"demand": "hot"}, "demand"),
        ({"demand": "target", "expected_close": "2026-13-01"}, "expected_close"),
        ({"demand": "target", "expected_close": 20260101}, "expected_close"),
        ({"demand": "target", "deal_status": "won"}, "deal_status"),
        ({"demand": "target", "importance": "vip"}, "importance"),
        ({"expected_close": "2026-02-01"}, "demand"),
    ],
)
def test_bad_inputs_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValidationError) as info:
        clean_inputs(changes)
    assert info.value.field == field


def test_unknown_input_is_refused():
    with pytest.raises(ValidationError, match="unknown grading input"):
        clean_inputs({"demand": "target", "budget": 100})


def test_inputs_merge_and_none_removes():
    stored = clean_inputs(
        {"demand": "target", "expected_close": date(2026, 2, 1), "importance": "important"}
    )
    assert stored == {"demand": "target", "expected_close": "2026-02-01", "importance": "important"}
    assert clean_inputs({"expected_close": None}, stored) == {
        "demand": "target",
        "importance": "important",
    }


# -- through the API, with the injected clock ----------------------------------------------


def test_set_inputs_stores_grades_and_records_history(grading_crm):
    recorder = Recorder()
    crm = grading_crm(plugins=[("recorder", recorder)])
    cid = add_customer(crm)
    result = api.set_inputs(
        crm,
        cid,
        actor="ann",
        demand="target",
        expected_close="2026-03-20",
        deal_status="negotiating",
        importance="important",
    )
    assert result.grades == {"pipeline": "B"}
    assert result.line("pipeline") == "B: clear need, expected to close 2026-03-20, within 3 months"
    assert grading_of(crm, cid)["inputs"] == {
        "demand": "target",
        "expected_close": "2026-03-20",
        "deal_status": "negotiating",
        "importance": "important",
    }
    [record] = api.history(crm, cid)
    assert (record.scheme, record.old, record.new, record.actor) == ("pipeline", None, "B", "ann")
    assert record.reason == "clear need, expected to close 2026-03-20, within 3 months"
    assert recorder.grades == [(cid, "pipeline", None, "B", record.reason)]
    assert recorder.seen_stored == ["B"]  # the event fires after the grade is stored


def test_setting_the_same_inputs_again_writes_nothing(grading_crm):
    crm = grading_crm()
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-03-20")
    version = crm.customers.get(cid).version
    api.set_inputs(crm, cid, actor="bo", demand="target", expected_close="2026-03-20")
    assert crm.customers.get(cid).version == version
    assert len(api.history(crm, cid)) == 1


def test_changing_importance_stores_inputs_without_a_grade_change(grading_crm):
    crm = grading_crm()
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-03-20")
    api.set_inputs(crm, cid, actor="ann", importance="important")
    assert grading_of(crm, cid)["inputs"]["importance"] == "important"
    assert len(api.history(crm, cid)) == 1


def test_bad_input_through_the_api_writes_nothing(grading_crm):
    crm = grading_crm()
    cid = add_customer(crm)
    version = crm.customers.get(cid).version
    with pytest.raises(ValidationError):
        api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="soon")
    with pytest.raises(ValidationError):
        api.set_inputs(crm, cid, actor="ann")
    with pytest.raises(ValidationError):
        api.set_inputs(crm, cid, actor=" ", demand="target")
    assert crm.customers.get(cid).version == version
    assert api.history(crm, cid) == []


def test_the_grade_moves_as_time_passes_when_re_graded(grading_crm, clock):
    crm = grading_crm()
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-03-01")
    assert grades_of(crm, cid)["pipeline"] == "B"
    clock.advance(days=27)  # 2026-02-01: within one month of 2026-03-01
    api.grade_customer(crm, cid, actor="ann")
    assert grades_of(crm, cid)["pipeline"] == "A"
    assert [(h.old, h.new) for h in api.history(crm, cid, scheme="pipeline")] == [
        ("B", "A"),
        (None, "B"),
    ]


def test_the_grading_day_is_the_customers_own(grading_crm, clock):
    clock.set(datetime(2026, 1, 5, 20, 0, tzinfo=UTC))  # already 2026-01-06 in Shanghai
    crm = grading_crm()
    east = add_customer(crm, timezone="Asia/Shanghai")
    west = add_customer(crm, name="Ann Lee", timezone="UTC")
    for cid in (east, west):
        api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-02-06")
    assert grades_of(crm, east)["pipeline"] == "A"
    assert grades_of(crm, west)["pipeline"] == "B"


def test_a_follow_up_done_re_grades_the_customer(grading_crm, clock):
    crm = grading_crm()
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="target", expected_close="2026-03-01")
    task = crm.tasks.create(
        actor="ann",
        kind="follow_up",
        title="call",
        customer_id=cid,
        due_at=clock.now() + timedelta(days=30),
    )
    clock.advance(days=30)
    crm.tasks.complete(task.id, actor="ann", outcome="reached")
    assert grades_of(crm, cid)["pipeline"] == "A"


def test_customer_created_with_inputs_is_graded(grading_crm):
    crm = grading_crm()
    cid = crm.customers.add(
        actor="import", name="Wang Fang", ext={"grading": {"inputs": {"demand": "dead"}}}
    ).id
    assert grades_of(crm, cid) == {"pipeline": "E"}
    with pytest.raises(ValidationError):
        crm.customers.add(
            actor="import", name="Bad Input", ext={"grading": {"inputs": {"demand": "someday"}}}
        )
    assert crm.customers.count() == 1


def test_clearing_every_input_removes_the_grade(grading_crm):
    recorder = Recorder()
    crm = grading_crm(plugins=[("recorder", recorder)])
    cid = add_customer(crm)
    api.set_inputs(crm, cid, actor="ann", demand="potential")
    api.set_inputs(crm, cid, actor="ann", demand=None)
    assert "pipeline" not in grades_of(crm, cid)
    assert recorder.grades[-1][1:4] == ("pipeline", "D", None)
