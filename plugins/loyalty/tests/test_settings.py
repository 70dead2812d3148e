"""``[loyalty]`` settings: defaults from DOMAIN §4/§6, and bad values named by their key path."""

from __future__ import annotations

import pytest
from crmcore_loyalty.settings import LoyaltySettings

from crmcore import ConfigError


def test_defaults(make_crm):
    settings = make_crm(["loyalty"]).settings("loyalty")
    assert settings == LoyaltySettings()
    assert [lv.name for lv in settings.tiers.levels] == ["silver", "gold", "platinum"]
    assert "dedicated_rep" in settings.tiers.levels[-1].perks
    assert settings.referral.reward_stage == "first_purchase"
    assert (settings.expiry.days, settings.expiry.reminder_days) == (365, 30)
    assert settings.earn.kind_points == {"event": 50, "survey": 20}


def test_a_full_custom_section_loads(make_crm):
    settings = make_crm(
        ["loyalty"],
        settings={
            "loyalty": {
                "point_value": 0.05,
                "earn": {"points_per_currency": 2, "kind_points": {"event": 10, "visit": 1}},
                "tiers": {
                    "basis": "points",
                    "window_days": 180,
                    "review_days": 90,
                    "levels": [
                        {"name": "iron", "threshold": 1},
                        {"name": "gold", "threshold": 50.5, "multiplier": 2, "perks": ["gifts"]},
                    ],
                },
                "referral": {"reward_stage": "link", "max_links_per_hour": 1},
                "compensation": {"points_per_currency": 20},
            }
        },
    ).settings("loyalty")
    assert settings.tiers.levels[1].multiplier == 2.0
    assert settings.earn.points_per_currency == 2.0
    assert settings.rank("gold") == 2 and settings.rank("nope") == 0


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        (
            {
                "tiers": {
                    "levels": [
                        {"name": "gold", "threshold": 500},
                        {"name": "silver", "threshold": 100},
                    ]
                }
            },
            "loyalty.tiers.levels",
            "strictly ascending",
        ),
        (
            {
                "tiers": {
                    "levels": [{"name": "gold", "threshold": 5}, {"name": "gold", "threshold": 9}]
                }
            },
            "loyalty.tiers.levels",
            "unique",
        ),
        (
            {"tiers": {"levels": [{"name": "gold", "threshold": 0}]}},
            "loyalty.tiers.levels[0].threshold",
            "> 0",
        ),
        (
            {"tiers": {"levels": [{"name": "gold", "threshold": 5, "multiplier": 0}]}},
            "loyalty.tiers.levels[0].multiplier",
            "> 0",
        ),
        (
            {"tiers": {"levels": [{"name": "Gold Club", "threshold": 5}]}},
            "loyalty.tiers.levels[0].name",
            "not a name",
        ),
        ({"tiers": {"basis": "visits"}}, "loyalty.tiers.basis", "spend, points"),
        ({"earn": {"points_per_currency": -1}}, "loyalty.earn.points_per_currency", ">= 0"),
        ({"earn": {"kind_points": {"purchase": 5}}}, "loyalty.earn.kind_points", "own rule"),
        ({"earn": {"kind_points": {"event": -5}}}, "loyalty.earn.kind_points", ">= 0"),
        (
            {"expiry": {"days": 30, "reminder_days": 30}},
            "loyalty.expiry.reminder_days",
            "less than days",
        ),
        (
            {"referral": {"reward_stage": "anniversary"}},
            "loyalty.referral.reward_stage",
            "link, first_purchase",
        ),
        (
            {"referral": {"max_links_per_hour": 5, "max_links_per_day": 4}},
            "loyalty.referral.max_links_per_day",
            "at least max_links_per_hour",
        ),
        ({"referral": {"code_length": 3}}, "loyalty.referral.code_length", ">= 4"),
        (
            {"asks": {"satisfaction_threshold": 6}},
            "loyalty.asks.satisfaction_threshold",
            "from 1 to 5",
        ),
        ({"compensation": {"cap_points": 0}}, "loyalty.compensation.cap_points", ">= 1"),
        ({"point_value": "cheap"}, "loyalty.point_value", "expected float"),
        ({"referral": {"bonus": 1}}, "loyalty.referral", "unknown key"),
    ],
)
def test_bad_settings_are_refused_with_their_key_path(make_crm, section, path, message):
    with pytest.raises(ConfigError) as error:
        make_crm(["loyalty"], settings={"loyalty": section})
    text = str(error.value)
    assert text.startswith(path) or f" {path}" in text or f"{path}:" in text, text
    assert message in text, text
