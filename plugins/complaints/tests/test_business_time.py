"""The SLA time arithmetic: calendar hours, business hours, holidays, pauses, DST."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from crmcore_complaints.business_time import (
    BusinessClock,
    CalendarClock,
    merge_intervals,
    parse_hhmm,
    parse_spans,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore import ConfigError

H = timedelta(hours=1)
WEEKDAYS_9_18 = {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def office() -> BusinessClock:
    return BusinessClock.from_text("UTC", WEEKDAYS_9_18)


# 2026-01-09 is a Friday; 2026-01-12 a Monday.
@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (utc(2026, 1, 9, 17), 24, utc(2026, 1, 14, 14)),  # Fri 17-18 1h, Mon 9h, Tue 9h, Wed +5h
        (utc(2026, 1, 9, 17), 1, utc(2026, 1, 9, 18)),  # runs out exactly at closing time
        (utc(2026, 1, 9, 17), 2, utc(2026, 1, 12, 10)),  # the weekend does not count
        (utc(2026, 1, 9, 18), 1, utc(2026, 1, 12, 10)),  # starting at closing time
        (utc(2026, 1, 10, 12), 1, utc(2026, 1, 12, 10)),  # starting on Saturday
        (utc(2026, 1, 12, 7), 9, utc(2026, 1, 12, 18)),  # starting before opening
        (utc(2026, 1, 12, 9), 9, utc(2026, 1, 12, 18)),
        (utc(2026, 1, 12, 9), 9.5, utc(2026, 1, 13, 9, 30)),
        (utc(2026, 1, 9, 17), 48, utc(2026, 1, 19, 11)),  # 1 + 5 x 9 = 46 by Fri 18:00, Mon +2h
        (utc(2026, 1, 12, 10), 0, utc(2026, 1, 12, 10)),
        (utc(2026, 1, 10, 12), 0, utc(2026, 1, 10, 12)),  # zero is the start, even off hours
    ],
)
def test_add_business_hours(office, start, hours, expected):
    assert office.add(start, timedelta(hours=hours)) == expected


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (utc(2026, 1, 9, 17), utc(2026, 1, 14, 14), 24),
        (utc(2026, 1, 9, 17), utc(2026, 1, 12, 9), 1),
        (utc(2026, 1, 10, 0), utc(2026, 1, 12, 0), 0),  # a whole weekend
        (utc(2026, 1, 12, 12), utc(2026, 1, 12, 12), 0),
        (utc(2026, 1, 12, 12), utc(2026, 1, 12, 11), 0),  # end before start
        (utc(2026, 1, 12, 8), utc(2026, 1, 12, 20), 9),
    ],
)
def test_elapsed_business_hours(office, start, end, hours):
    assert office.elapsed(start, end) == timedelta(hours=hours)


def test_holidays_are_skipped():
    clock = BusinessClock.from_text("UTC", WEEKDAYS_9_18, ["2026-01-12", "2026-01-13"])
    # Fri 17-18 1h, Mon and Tue holidays, Wed 9h, Thu 9h, Fri 9:00 + 5h
    assert clock.add(utc(2026, 1, 9, 17), timedelta(hours=24)) == utc(2026, 1, 16, 14)
    assert clock.elapsed(utc(2026, 1, 12), utc(2026, 1, 14)) == timedelta(0)


def test_split_days_and_per_weekday_hours():
    clock = BusinessClock.from_text(
        "UTC", {"mon": "09:00-12:00, 13:00-18:00", "sat": "10:00-14:00"}
    )
    assert clock.add(utc(2026, 1, 12, 11), 2 * H) == utc(2026, 1, 12, 14)  # lunch skipped
    assert clock.add(utc(2026, 1, 12, 17), 2 * H) == utc(2026, 1, 17, 11)  # next Sat
    assert clock.elapsed(utc(2026, 1, 12), utc(2026, 1, 13)) == 8 * H
    assert clock.is_working(utc(2026, 1, 12, 12, 30)) is False
    assert clock.is_working(utc(2026, 1, 12, 13)) is True
    assert clock.is_working(utc(2026, 1, 12, 18)) is False


def test_business_hours_are_local_to_the_time_zone():
    shanghai = BusinessClock.from_text("Asia/Shanghai", WEEKDAYS_9_18)
    friday_17_local = datetime(2026, 1, 9, 17, tzinfo=ZoneInfo("Asia/Shanghai"))
    due = shanghai.add(friday_17_local, timedelta(hours=24))
    assert due == datetime(2026, 1, 14, 14, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert due.astimezone(UTC) == utc(2026, 1, 14, 6)


def test_daylight_saving_day_counts_real_hours():
    # Europe/Berlin springs forward on 2026-03-29 at 02:00 (a Sunday): open 00:00-24:00 that
    # day only, it has 23 real hours.
    clock = BusinessClock.from_text("Europe/Berlin", {"sun": "00:00-24:00"})
    start = datetime(2026, 3, 29, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert clock.elapsed(start, start + timedelta(days=2)) == 23 * H


def test_end_of_day_span_runs_to_midnight():
    clock = BusinessClock.from_text("UTC", {"mon": "20:00-24:00", "tue": "00:00-02:00"})
    assert clock.add(utc(2026, 1, 12, 23), 2 * H) == utc(2026, 1, 13, 1)


@pytest.mark.parametrize(
    "pauses,expected",
    [
        ([], utc(2026, 1, 14, 14)),
        ([(utc(2026, 1, 12, 9), utc(2026, 1, 12, 18))], utc(2026, 1, 15, 14)),  # a whole day
        ([(utc(2026, 1, 10), utc(2026, 1, 11))], utc(2026, 1, 14, 14)),  # off hours: no effect
        (
            [
                (utc(2026, 1, 12, 12), utc(2026, 1, 12, 13)),
                (utc(2026, 1, 12, 12, 30), utc(2026, 1, 12, 14)),
            ],
            utc(2026, 1, 14, 16),
        ),  # overlapping
    ],
)
def test_pauses_do_not_count(office, pauses, expected):
    start = utc(2026, 1, 9, 17)
    assert office.add(start, 24 * H, pauses) == expected
    assert office.elapsed(start, expected, pauses) == 24 * H


def test_calendar_clock_counts_every_hour_minus_pauses():
    clock = CalendarClock()
    start = utc(2026, 1, 9, 17)
    assert clock.add(start, 24 * H) == utc(2026, 1, 10, 17)
    pause = [(utc(2026, 1, 9, 20), utc(2026, 1, 10, 2))]
    assert clock.add(start, 24 * H, pause) == utc(2026, 1, 10, 23)
    assert clock.elapsed(start, utc(2026, 1, 10, 23), pause) == 24 * H
    with pytest.raises(ValueError, match="negative"):
        clock.add(start, -H)


@pytest.mark.parametrize("text,minutes", [("00:00", 0), ("09:30", 570), ("23:59", 1439)])
def test_parse_hhmm(text, minutes):
    assert parse_hhmm(text) == minutes


@pytest.mark.parametrize("text", ["9:00", "24:00", "12:60", "0900", "", "ab:cd", "12:00 "])
def test_parse_hhmm_refuses(text):
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm(text)


@pytest.mark.parametrize(
    "text,error",
    [
        ("09:00", "span"),
        ("18:00-09:00", "ends before"),
        ("09:00-12:00,11:00-13:00", "overlaps"),
        ("09:00-25:00", "HH:MM"),
    ],
)
def test_parse_spans_refuses(text, error):
    with pytest.raises(ValueError, match=error):
        parse_spans(text)


def test_a_calendar_without_working_hours_is_refused():
    with pytest.raises(ValueError, match="at least one weekday"):
        BusinessClock("UTC", {"mon": ()})
    with pytest.raises(ValueError, match="unknown weekday"):
        BusinessClock("UTC", {"monday": ((540, 1080),)})


def test_merge_intervals():
    a, b, c = utc(2026, 1, 1), utc(2026, 1, 2), utc(2026, 1, 3)
    assert merge_intervals([(b, c), (a, b), (c, c)]) == [(a, c)]


# -- properties --------------------------------------------------------------------------

ANCHOR = utc(2026, 1, 1)
instants = st.integers(min_value=0, max_value=60 * 24 * 120).map(
    lambda m: ANCHOR + timedelta(minutes=m)
)
amounts = st.integers(min_value=0, max_value=60 * 200).map(lambda m: timedelta(minutes=m))
spans = st.sampled_from(
    ["09:00-18:00", "08:30-12:00, 13:00-17:30", "", "00:00-24:00", "22:00-24:00"]
)
calendars = st.builds(
    lambda week, holidays, zone: BusinessClock.from_text(
        zone,
        {d: s for d, s in zip(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), week, strict=True)}
        | {"wed": "09:00-18:00"},
        [date(2026, 1, 1) + timedelta(days=h) for h in holidays],
    ),
    st.lists(spans, min_size=7, max_size=7),
    st.lists(st.integers(0, 120), max_size=10),
    st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]),
)
pause_lists = st.lists(st.tuples(instants, amounts).map(lambda p: (p[0], p[0] + p[1])), max_size=4)


@settings(max_examples=150, deadline=None)
@given(clock=calendars, start=instants, a=amounts, b=amounts, pauses=pause_lists)
def test_add_is_monotonic(clock, start, a, b, pauses):
    lo, hi = sorted((a, b))
    assert clock.add(start, lo, pauses) <= clock.add(start, hi, pauses)


@settings(max_examples=150, deadline=None)
@given(clock=calendars, start=instants, amount=amounts, pauses=pause_lists)
def test_elapsed_undoes_add(clock, start, amount, pauses):
    due = clock.add(start, amount, pauses)
    assert due >= start
    assert clock.elapsed(start, due, pauses) == amount


@settings(max_examples=150, deadline=None)
@given(clock=calendars, start=instants, end=instants, pauses=pause_lists)
def test_add_of_elapsed_lands_no_later_than_the_end(clock, start, end, pauses):
    spent = clock.elapsed(start, end, pauses)
    assert spent <= max(end - start, timedelta(0))
    back = clock.add(start, spent, pauses)
    assert back <= max(end, start)
    assert clock.elapsed(start, back, pauses) == spent


@settings(max_examples=100, deadline=None)
@given(start=instants, amount=amounts, pauses=pause_lists)
def test_calendar_clock_round_trips(start, amount, pauses):
    clock = CalendarClock()
    due = clock.add(start, amount, pauses)
    assert clock.elapsed(start, due, pauses) == amount
    if not pauses:
        assert due == start + amount


SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        # Golden Week: 1-7 October 2026 off, all seven days
        (datetime(2026, 9, 30, 17, tzinfo=SHANGHAI), datetime(2026, 10, 8, 10, tzinfo=SHANGHAI)),
        # Saturday 10 October is worked in exchange (调休): its hours count
        (datetime(2026, 10, 9, 17, tzinfo=SHANGHAI), datetime(2026, 10, 10, 10, tzinfo=SHANGHAI)),
        # an ordinary Saturday stays closed
        (datetime(2026, 10, 16, 17, tzinfo=SHANGHAI), datetime(2026, 10, 19, 10, tzinfo=SHANGHAI)),
        # Spring Festival 15-23 February 2026; Saturday 28 February is a make-up day
        (datetime(2026, 2, 13, 17, tzinfo=SHANGHAI), datetime(2026, 2, 14, 10, tzinfo=SHANGHAI)),
        (datetime(2026, 2, 14, 17, tzinfo=SHANGHAI), datetime(2026, 2, 24, 10, tzinfo=SHANGHAI)),
    ],
)
def test_the_cn_calendar_skips_festivals_and_works_makeup_days(opened, due):
    clock = BusinessClock.from_text(
        "Asia/Shanghai",
        {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
        calendar="cn",
    )
    assert clock.add(opened, timedelta(hours=2)) == due
    assert clock.elapsed(opened, due) == timedelta(hours=2)


def test_listed_dates_add_to_the_calendar_and_uncovered_years_use_the_weekdays():
    hours = {d: "09:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
    clock = BusinessClock.from_text("Asia/Shanghai", hours, ["2026-10-08"], calendar="cn")
    opened = datetime(2026, 9, 30, 17, tzinfo=SHANGHAI)
    assert clock.add(opened, timedelta(hours=2)) == datetime(2026, 10, 9, 10, tzinfo=SHANGHAI)
    # 1 October 2099: no data; a Thursday like any other
    far = datetime(2099, 9, 30, 17, tzinfo=SHANGHAI)
    assert clock.add(far, timedelta(hours=2)) == datetime(2099, 10, 1, 10, tzinfo=SHANGHAI)


def test_an_unknown_calendar_is_refused(make_crm):
    with pytest.raises(ConfigError, match="unknown holiday calendar 'xx'"):
        make_crm(["complaints"], settings={"complaints": {"calendar": {"holiday_calendar": "xx"}}})
