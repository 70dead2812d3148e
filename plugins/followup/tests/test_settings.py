"""``[followup]`` settings: DOMAIN defaults, and bad values refused with their key path."""

from __future__ import annotations

import tomllib
from datetime import date, time

import pytest
from crmcore_followup.settings import FollowupSettings, Holiday, QuietWindow

from crmcore import ConfigError, ValidationError


def test_defaults_follow_the_domain_brief(crm):
    settings = crm.settings("followup")
    assert settings.cadence_days == {"A": 1, "B": 7, "C": 15, "D": 30, "E": 365}
    assert settings.first_contact_days == 7
    assert settings.callback_within_days == 3
    assert [str(w) for w in settings.windows] == ["21:00-08:00", "12:00-14:00"]
    assert settings.callback_kinds == ["business", "purchase"]
    assert settings.holidays == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            {"cadence_days": {"A": 0}},
            "followup.cadence_days: grade 'A': cadence must be a positive number of days, got 0",
        ),
        ({"cadence_days": {"B": -7}}, "followup.cadence_days: grade 'B'"),
        ({"cadence_days": {"A": "daily"}}, "followup.cadence_days.A: expected int"),
        ({"cadence_days": {}}, "followup.cadence_days: needs at least one grade"),
        ({"default_cadence_days": 0}, "followup.default_cadence_days: must be a positive"),
        ({"first_contact_days": 0}, "followup.first_contact_days: must be a positive"),
        ({"callback_within_days": -1}, "followup.callback_within_days: must be a positive"),
        ({"quiet_hours": ["25:00-08:00"]}, "followup.quiet_hours: item 1: '25:00' is not a time"),
        (
            {"quiet_hours": ["21:00-08:00", "12:00"]},
            "followup.quiet_hours: item 2: '12:00' is not a window",
        ),
        ({"quiet_hours": ["9:00-10:00"]}, "followup.quiet_hours: item 1: '9:00' is not a time"),
        (
            {"quiet_hours": ["10:00-10:00"]},
            "followup.quiet_hours: item 1: '10:00-10:00' starts and ends at the same time",
        ),
        (
            {"quiet_hours": ["08:00-07:30"]},
            "followup.quiet_hours: the windows leave less than an hour",
        ),
        ({"quiet_hours": "21:00-08:00"}, "followup.quiet_hours: expected a list"),
        ({"holidays": ["2026-13-01"]}, "followup.holidays: item 1: '2026-13-01' is not a date"),
        ({"holidays": ["2026-02-17", "next friday"]}, "followup.holidays: item 2"),
        ({"callback_ratio": 1.5}, "followup.callback_ratio: must be between 0 and 1, got 1.5"),
        (
            {"callback_delay_hours": 73},
            "followup.callback_delay_hours: 73 hours is later than the 3-day callback deadline",
        ),
        ({"care_time": "7pm"}, "followup.care_time: '7pm' is not a time of day"),
        ({"key_customers": {"pipeline": "A"}}, "followup.key_customers.pipeline: expected a list"),
        ({"shift_hours": 0}, "followup.shift_hours: must be a positive"),
        ({"cadence": {"A": 1}}, "followup: unknown key(s): cadence"),
    ],
)
def test_bad_settings_are_refused_naming_the_key_path(fu, bad, message):
    with pytest.raises(ConfigError) as err:
        fu(**bad)
    assert message in str(err.value)


def test_settings_from_toml_accept_native_dates_and_named_holidays(fu):
    table = tomllib.loads("""
        cadence_days = {A = 2, B = 10, C = 20, D = 40, E = 400}
        quiet_hours = ["22:30-07:00"]
        holidays = [2026-02-17, "2026-10-01 National Day"]
        key_customers = {pipeline = ["A", "B"], rfm = ["champion"]}
    """)
    settings = fu(**table).settings("followup")
    assert settings.cadence_for("B") == 10
    assert settings.windows == (QuietWindow(time(22, 30), time(7, 0)),)
    assert settings.holiday_list == (
        Holiday(date(2026, 2, 17)),
        Holiday(date(2026, 10, 1), "National Day"),
    )
    assert settings.holiday_list[1].label == "National Day (2026-10-01)"


@pytest.mark.parametrize("text", ["24:00", "12:60", "1200", "12:00:00", "", "ab:cd"])
def test_times_of_day_must_be_hh_mm(text):
    with pytest.raises(ValidationError):
        QuietWindow.parse(f"{text}-08:00")


def test_settings_class_validates_on_its_own():
    with pytest.raises(ValidationError) as err:
        FollowupSettings(cadence_days={"A": 0})
    assert err.value.field == "cadence_days"
