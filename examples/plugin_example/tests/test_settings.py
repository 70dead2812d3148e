"""``[nps]``: defaults, accepted values, and bad values refused with their key path."""

import pytest
from crmcore import ConfigError

from crmcore_nps.settings import NpsSettings


def test_defaults(make_crm):
    crm = make_crm(["nps"])
    assert crm.settings("nps") == NpsSettings()
    assert crm.settings("nps").delay_hours == 24.0
    assert crm.settings("nps").period_days == 90


def test_values_from_the_config(make_crm):
    crm = make_crm(
        ["nps"],
        settings={
            "nps": {"delay_hours": 2, "period_days": 0, "assign_to": "owner", "report_days": 30}
        },
    )
    conf = crm.settings("nps")
    assert (conf.delay_hours, conf.period_days, conf.assign_to, conf.report_days) == (
        2.0,
        0,
        "owner",
        30,
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"delay_hours": 0}, "nps.delay_hours: expected more than 0"),
        ({"delay_hours": -3}, "nps.delay_hours: expected more than 0"),
        ({"delay_hours": 8761}, "nps.delay_hours: expected more than 0 and at most 8760 hours"),
        ({"delay_hours": float("inf")}, "nps.delay_hours:"),
        ({"delay_hours": "24"}, "nps.delay_hours: expected float"),
        ({"period_days": -1}, "nps.period_days: expected 0 or more"),
        ({"period_days": 1.5}, "nps.period_days: expected int"),
        ({"expire_days": 0}, "nps.expire_days: expected 1 or more"),
        ({"report_days": 0}, "nps.report_days: expected 1 or more"),
        ({"assign_to": "boss"}, "nps.assign_to: expected one of rep, owner, none"),
        ({"skip_do_not_contact": "yes"}, "nps.skip_do_not_contact: expected bool"),
        ({"delay": 24}, "nps: unknown key(s): delay"),
    ],
)
def test_bad_settings_are_refused_with_the_key_path(make_crm, table, message):
    with pytest.raises(ConfigError) as caught:
        make_crm(["nps"], settings={"nps": table})
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("delay_hours", 8760),
        ("delay_hours", 0.5),
        ("period_days", 0),
        ("expire_days", 1),
    ],
)
def test_boundary_values_are_accepted(make_crm, key, value):
    assert getattr(make_crm(["nps"], settings={"nps": {key: value}}).settings("nps"), key) == value
