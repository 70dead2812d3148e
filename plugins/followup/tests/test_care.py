"""Care (DOMAIN §3): birthday and holiday greetings, created ahead of the date by the sweep,
once per occasion, in the customer's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from crmcore_followup.care import birthday_in, next_birthday
from hypothesis import given
from hypothesis import strategies as st

from crmcore import ConfigError
from crmcore.testing import START


def _care(crm, customer_id=None, status=None):
    query = {"kind": "care"}
    if customer_id:
        query["customer_id"] = customer_id
    if status:
        query["status"] = status
    return crm.tasks.find(query, sort=[("due_at", 1)])


def _days(crm, clock, start, days, worker="w1"):
    clock.set(start)
    created_on = {}
    for _ in range(days):
        crm.tick(worker)
        for task in _care(crm):
            created_on.setdefault(task.dedupe_key, clock.now().date())
        clock.advance(days=1)
    return created_on


def test_birthdays_across_the_year_end(crm, clock):
    clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    dec30 = crm.customers.add(actor="t", name="Dec", birth_date=date(1980, 12, 30))
    jan2 = crm.customers.add(actor="t", name="Jan", birth_date=date(1975, 1, 2))
    created_on = _days(crm, clock, datetime(2026, 12, 10, 9, 0, tzinfo=UTC), 40)
    assert created_on == {
        f"care:birthday:{dec30.id}:2026": date(2026, 12, 23),  # 7 days ahead, this year
        f"care:birthday:{jan2.id}:2027": date(2026, 12, 26),  # 7 days ahead, next year
    }
    by_customer = {t.customer_id: t for t in _care(crm)}
    assert by_customer[dec30.id].due_at == datetime(2026, 12, 30, 10, 0, tzinfo=UTC)
    assert by_customer[jan2.id].due_at == datetime(2027, 1, 2, 10, 0, tzinfo=UTC)
    assert by_customer[jan2.id].title == "Birthday greeting (2027-01-02)"


def test_one_greeting_per_birthday_even_after_it_is_done(crm, clock):
    clock.set(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    customer = crm.customers.add(actor="t", name="B", birth_date=date(1990, 3, 5))
    for _ in range(400):
        crm.tick("w1")
        for task in crm.tasks.due(kinds=["care"]):
            crm.tasks.complete(task.id, actor="rep")
        clock.advance(days=1)
    keys = sorted(t.dedupe_key for t in _care(crm, customer.id))
    assert keys == [f"care:birthday:{customer.id}:2026", f"care:birthday:{customer.id}:2027"]
    assert crm.interactions.count({"customer_id": customer.id, "kind": "care"}) == 2


def test_a_leap_day_birthday_is_greeted_on_28_february(crm, clock):
    clock.set(datetime(2027, 2, 1, 9, 0, tzinfo=UTC))
    customer = crm.customers.add(actor="t", name="Leap", birth_date=date(2000, 2, 29))
    _days(crm, clock, datetime(2027, 2, 20, 9, 0, tzinfo=UTC), 10)
    [task] = _care(crm, customer.id)
    assert task.due_at.date() == date(2027, 2, 28)


def test_the_day_is_the_customers_own(crm, clock):
    # 2026-12-22 11:30 UTC is already 23 December in Auckland (UTC+13)
    clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    far = crm.customers.add(
        actor="t", name="Far", birth_date=date(1980, 12, 30), timezone="Pacific/Auckland"
    )
    near = crm.customers.add(actor="t", name="Near", birth_date=date(1980, 12, 30))
    clock.set(datetime(2026, 12, 22, 11, 30, tzinfo=UTC))
    crm.tick("w1")
    assert [t.customer_id for t in _care(crm)] == [far.id]
    [task] = _care(crm)
    # 10:00 on the 30th in Auckland
    assert task.due_at == datetime(2026, 12, 29, 21, 0, tzinfo=UTC)
    clock.set(datetime(2026, 12, 23, 0, 0, tzinfo=UTC))
    crm.tick("w1")
    assert {t.customer_id for t in _care(crm)} == {far.id, near.id}


def test_configured_holidays_get_a_greeting_ahead_for_every_customer(fu, clock):
    crm = fu(holidays=["2026-02-17 Spring Festival", "2026-10-01"], holiday_days_ahead=3)
    clock.set(datetime(2026, 2, 1, 9, 0, tzinfo=UTC))
    customers = [crm.customers.add(actor="t", name=f"C{i}") for i in range(3)]
    quiet = crm.customers.add(actor="t", name="DNC", do_not_contact=True)
    created_on = _days(crm, clock, datetime(2026, 2, 10, 9, 0, tzinfo=UTC), 10)
    assert set(created_on) == {f"care:holiday:{c.id}:2026-02-17" for c in customers}
    assert set(created_on.values()) == {date(2026, 2, 14)}
    assert all(t.title == "Holiday greeting: Spring Festival (2026-02-17)" for t in _care(crm))
    assert _care(crm, quiet.id) == []
    # done or not, a holiday is greeted once
    for task in _care(crm):
        crm.tasks.complete(task.id, actor="rep")
    _days(crm, clock, datetime(2026, 2, 16, 9, 0, tzinfo=UTC), 3)
    assert len(_care(crm)) == 3


def test_customers_added_after_a_holiday_are_not_greeted_for_it(fu, clock):
    crm = fu(holidays=["2026-02-17"])
    clock.set(datetime(2026, 2, 18, 9, 0, tzinfo=UTC))
    customer = crm.customers.add(actor="t", name="Late")
    _days(crm, clock, datetime(2026, 2, 18, 9, 0, tzinfo=UTC), 5)
    assert _care(crm, customer.id) == []


@pytest.mark.parametrize(
    ("birth", "today", "after", "expected"),
    [
        (date(1980, 12, 30), date(2026, 12, 15), None, date(2026, 12, 30)),
        (date(1980, 1, 2), date(2026, 12, 15), None, date(2027, 1, 2)),
        (date(1980, 12, 30), date(2026, 12, 15), 2026, date(2027, 12, 30)),
        (date(1980, 12, 30), date(2026, 12, 30), None, date(2026, 12, 30)),  # today counts
        (date(1980, 12, 30), date(2026, 12, 31), None, date(2027, 12, 30)),
        (date(2000, 2, 29), date(2027, 1, 1), None, date(2027, 2, 28)),
        (date(2000, 2, 29), date(2028, 1, 1), None, date(2028, 2, 29)),
        (date(2030, 5, 1), date(2026, 1, 1), None, None),  # not born yet
    ],
)
def test_next_birthday(birth, today, after, expected):
    assert next_birthday(birth, today, after_year=after) == expected


@given(
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)),
    today=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
)
def test_the_next_birthday_is_the_first_one_not_yet_passed(birth, today):
    got = next_birthday(birth, today, after_year=None)
    assert got is not None and today <= got < today + timedelta(days=367)
    assert got == birthday_in(got.year, birth)
    earlier = birthday_in(got.year - 1, birth)
    assert earlier < today


def test_holiday_greetings_from_the_cn_calendar(fu, clock):
    """The maintained calendar gives each festival's first day (Golden Week from 1 October
    2026, Spring Festival from 15 February); a listed date keeps its own name."""
    crm = fu(
        holiday_calendar="cn",
        holiday_days_ahead=3,
        holidays=["2026-02-15 Chunjie greeting"],
        core={"timezone": "Asia/Shanghai"},
    )
    customer = crm.customers.add(actor="t", name="Li", timezone="Asia/Shanghai")
    titles = []
    day = START
    while day < START + timedelta(days=320):
        clock.set(day)
        crm.tick("w1")
        day += timedelta(days=1)
    for task in crm.tasks.find({"kind": "care", "customer_id": customer.id}, sort=[("due_at", 1)]):
        titles.append(task.title)
    assert titles == [
        f"Holiday greeting: {label}"
        for label in (
            "Chunjie greeting (2026-02-15)",
            "Tomb-sweeping Day (2026-04-04)",
            "Labour Day (2026-05-01)",
            "Dragon Boat Festival (2026-06-19)",
            "Mid-autumn Festival (2026-09-25)",
            "National Day (2026-10-01)",
        )
    ]


def test_an_unknown_care_calendar_is_refused(fu):
    with pytest.raises(ConfigError, match="unknown holiday calendar"):
        fu(holiday_calendar="atlantis")
