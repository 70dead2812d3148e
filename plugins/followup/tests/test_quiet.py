"""Quiet hours (DOMAIN §3: never at times the customer rests), in the customer's own zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from crmcore_followup.quiet import is_quiet, place
from crmcore_followup.settings import QuietWindow
from hypothesis import given, settings
from hypothesis import strategies as st

DEFAULT = (QuietWindow.parse("21:00-08:00"), QuietWindow.parse("12:00-14:00"))
DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday


def at(hhmm: str, days: int = 0) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return DAY + timedelta(days=days, hours=h, minutes=m)


@pytest.mark.parametrize(
    ("due", "placed"),
    [
        (at("20:59"), at("20:59")),
        (at("21:00"), at("21:00")),  # the boundary itself is a contact time
        (at("21:01"), at("08:00", 1)),  # night: to the end of the window, next morning
        (at("23:59"), at("08:00", 1)),
        (at("00:00"), at("08:00")),
        (at("07:59"), at("08:00")),
        (at("08:00"), at("08:00")),
        (at("11:59"), at("11:59")),
        (at("12:00"), at("12:00")),
        (at("12:01"), at("14:00")),  # lunch rest
        (at("13:59"), at("14:00")),
        (at("14:00"), at("14:00")),
    ],
)
def test_a_due_time_inside_a_window_moves_to_its_end(due, placed):
    assert place(due, "UTC", DEFAULT) == placed


@pytest.mark.parametrize(
    ("due", "deadline", "placed"),
    [
        (at("21:30"), at("21:30"), at("21:00")),  # would pass the deadline: back
        (at("07:00"), at("07:00"), at("21:00", -1)),
        (at("12:30"), at("12:30"), at("12:00")),
        (at("12:30"), at("14:00"), at("14:00")),  # the end is within the deadline
        (at("23:00"), at("08:00", 1), at("08:00", 1)),
        (at("23:00"), at("07:59", 1), at("21:00")),
    ],
)
def test_a_deadline_moves_the_due_time_back_to_the_window_start(due, deadline, placed):
    assert place(due, "UTC", DEFAULT, deadline=deadline) == placed


def test_windows_are_read_in_the_customers_own_time_zone():
    # 14:00 UTC is 22:00 in Shanghai, eight hours ahead: night there, not here
    due = at("14:00")
    assert not is_quiet(due, "UTC", DEFAULT)
    assert is_quiet(due, "Asia/Shanghai", DEFAULT)
    assert place(due, "Asia/Shanghai", DEFAULT) == at("00:00", 1)  # 08:00 in Shanghai
    # and 03:00 UTC is 19:00 in Los Angeles (eight hours behind): fine there
    assert place(at("03:00"), "America/Los_Angeles", DEFAULT) == at("03:00")
    assert place(at("03:00"), "UTC", DEFAULT) == at("08:00")


def test_daylight_saving_days_keep_the_wall_clock_windows():
    # New York springs forward on 2026-03-08: 08:00 EDT is 12:00 UTC that day
    due = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)  # 00:00 EST / night
    assert place(due, "America/New_York", DEFAULT) == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


ZONES = [
    "UTC",
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
]


@st.composite
def windows(draw: st.DrawFn) -> tuple[QuietWindow, ...]:
    out = []
    covered: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        s = draw(st.integers(0, 1439))
        e = draw(st.integers(0, 1439).filter(lambda v, s=s: v != s))
        window = QuietWindow.parse(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}")
        if len(covered | window.minutes()) > 23 * 60:
            break
        covered |= window.minutes()
        out.append(window)
    return tuple(out)


@settings(max_examples=300, deadline=None)
@given(
    due=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(ZONES),
    wins=windows(),
    with_deadline=st.booleans(),
)
def test_placed_times_are_never_quiet_and_keep_the_deadline(due, zone, wins, with_deadline):
    deadline = due if with_deadline else None
    placed = place(due, zone, wins, deadline=deadline)
    assert not is_quiet(placed, zone, wins)
    assert abs(placed - due) < timedelta(days=1)
    if deadline is not None:
        assert placed <= deadline
    if not is_quiet(due, zone, wins):
        assert placed == due


def test_quiet_until_is_worked_out_once_per_moment_zone_and_windows():
    """My day asks it for every row at one moment: the same question is answered from memory,
    a different moment, zone or set of windows is worked out anew, and the answers are those
    of the windows (21:00-08:00 UTC: quiet at 23:00 until 08:00)."""
    from crmcore_followup import quiet

    quiet._quiet_until.cache_clear()
    for _ in range(200):
        assert quiet.quiet_until(at("23:00"), "UTC", list(DEFAULT)) == at("08:00", 1)
    assert quiet._quiet_until.cache_info().misses == 1
    assert quiet.quiet_until(at("10:00"), "UTC", DEFAULT) is None
    # 07:00 in Shanghai: quiet until 08:00 there
    assert quiet.quiet_until(at("23:00"), "Asia/Shanghai", DEFAULT) == at("00:00", 1)
    assert quiet.quiet_until(at("23:00"), "UTC", DEFAULT[1:]) is None
    assert quiet._quiet_until.cache_info().misses == 4
