"""``[grading]`` settings: defaults from DOMAIN.md, and bad configuration refused naming the
key (at load time where the value alone is wrong, on first use where it names something
other plugins provide)."""

from __future__ import annotations

import pytest
from crmcore_grading import api
from crmcore_grading.settings import GradingSettings

from crmcore import ConfigError


def test_defaults_follow_the_domain():
    s = GradingSettings()
    assert s.schemes == ["pipeline", "rfm", "pyramid"]
    assert (s.pipeline.a_months, s.pipeline.b_months, s.pipeline.c_months) == (1, 3, 6)
    assert s.rfm.bins == 5
    assert [(t.name, t.top) for t in s.pyramid.tiers] == [
        ("vip", 0.05),
        ("major", 0.2),
        ("ordinary", 0.5),
    ]
    assert s.pyramid.rest == "small"
    assert (s.hospital.big_rule, s.hospital.big_share) == ("top_share", 0.2)
    assert s.churn.multiple == 2.0


@pytest.mark.parametrize(
    ("grading", "key"),
    [
        ({"hospital": {"weights": {"spend": "heavy"}}}, "grading.hospital.weights.spend"),
        ({"hospital": {"weights": {"spend": -1}}}, "grading.hospital.weights.spend"),
        ({"hospital": {"weights": {"looks": 2}}}, "grading.hospital.weights"),
        (
            {
                "hospital": {
                    "weights": {
                        k: 0
                        for k in (
                            "history",
                            "spend",
                            "visits",
                            "frequency",
                            "items",
                            "referrals",
                            "events",
                            "feedback",
                        )
                    }
                }
            },
            "grading.hospital.weights.spend",
        ),
        (
            {"hospital": {"thresholds": {"big": 50, "major": 60}}},
            "grading.hospital.thresholds.major",
        ),
        ({"hospital": {"thresholds": {"ordinary": 45}}}, "grading.hospital.thresholds.ordinary"),
        ({"hospital": {"thresholds": {"big": 120}}}, "grading.hospital.thresholds.big"),
        ({"hospital": {"big_share": 0}}, "grading.hospital.big_share"),
        ({"hospital": {"big_rule": "top_10"}}, "grading.hospital.big_rule"),
        ({"hospital": {"full_marks": {"spend": 0}}}, "grading.hospital.full_marks.spend"),
        ({"pipeline": {"a_months": 3, "b_months": 3}}, "grading.pipeline.b_months"),
        ({"pipeline": {"c_months": 2}}, "grading.pipeline.c_months"),
        ({"pipeline": {"a_months": 0}}, "grading.pipeline.a_months"),
        ({"pipeline": {"no_date_grade": "F"}}, "grading.pipeline.no_date_grade"),
        (
            {"pyramid": {"tiers": [{"name": "vip", "top": 0.2}, {"name": "major", "top": 0.1}]}},
            "grading.pyramid.tiers",
        ),
        ({"pyramid": {"tiers": [{"name": "vip", "top": 1.5}]}}, "grading.pyramid.tiers"),
        ({"pyramid": {"tiers": [{"name": "small", "top": 0.2}]}}, "grading.pyramid.tiers"),
        ({"pyramid": {"basis": "visits"}}, "grading.pyramid.basis"),
        ({"rfm": {"bins": 3}}, "grading.rfm.segments"),
        ({"rfm": {"bins": 1}}, "grading.rfm.bins"),
        ({"rfm": {"segments": [{"name": "x", "r": [5, 4]}]}}, "grading.rfm.segments"),
        ({"churn": {"levels": {"low": 2, "medium": 2}}}, "grading.churn.levels.medium"),
        ({"churn": {"levels": {"high": 1}}}, "grading.churn.levels.high"),
        ({"churn": {"multiple": 0}}, "grading.churn.multiple"),
        ({"churn": {"retention_task": "always"}}, "grading.churn.retention_task"),
        ({"signals": {"refund_kinds": ["purchase"]}}, "grading.signals.refund_kinds"),
        ({"schemes": "pipeline"}, "grading.schemes"),
        ({"schemes": ["rfm", "rfm"]}, "grading.schemes"),
        ({"schemes": ["churn"]}, "grading.schemes"),
        ({"colour": "blue"}, "grading"),
    ],
)
def test_bad_values_are_refused_at_load_naming_the_key(make_crm, grading, key):
    with pytest.raises(ConfigError) as info:
        make_crm(["grading"], settings={"grading": grading})
    assert str(info.value).startswith(key), str(info.value)


@pytest.mark.parametrize(
    ("grading", "message"),
    [
        (
            {"schemes": ["pipeline", "rfmm"]},
            r"grading\.schemes\[1\]: unknown grading scheme 'rfmm' \(registered: hospital, "
            r"pipeline, pyramid, rfm\)",
        ),
        (
            {"options": {"loyalty_points": {"x": 1}}},
            "grading.options.loyalty_points: no grading scheme 'loyalty_points' is registered",
        ),
        (
            {"signals": {"spend_kinds": ["purchase", "purchace"]}},
            r"grading\.signals\.spend_kinds\[1\]: unknown interaction kind 'purchace'",
        ),
        (
            {"churn": {"valuable": {"pyramid": ["vip", "gold"]}}},
            r"grading\.churn\.valuable\.pyramid\[1\]: 'gold' is not a tier of scheme 'pyramid'",
        ),
        (
            {"churn": {"valuable": {"loyalty": ["gold"]}}},
            "grading.churn.valuable.loyalty: unknown grading scheme 'loyalty'",
        ),
    ],
)
def test_names_other_plugins_provide_are_checked_on_first_use(make_crm, grading, message):
    crm = make_crm(["grading"], settings={"grading": grading})
    with pytest.raises(ConfigError, match=message):
        api.grade_all(crm, actor="nightly")
    with pytest.raises(ConfigError, match=message):
        crm.customers.add(actor="ann", name="Li Lei")
    assert crm.customers.count() == 0


def test_a_good_configuration_loads(make_crm):
    crm = make_crm(
        ["grading"],
        settings={
            "grading": {
                "schemes": ["pipeline", "hospital"],
                "pipeline": {"a_months": 2, "b_months": 4, "c_months": 9, "no_date_grade": "C"},
                "hospital": {
                    "weights": {"spend": 5, "referrals": 2.5},
                    "thresholds": {"big": 80, "major": 55, "ordinary": 25},
                    "big_rule": "threshold",
                },
                "churn": {
                    "valuable": {"hospital": ["big"]},
                    "multiple": 3,
                    "retention_task": "high",
                },
            }
        },
    )
    assert crm.settings("grading").hospital.weights.spend == 5
    assert api.grade_all(crm, actor="nightly").customers == 0
