"""[complaints] settings: DOMAIN defaults, per-stack additions, and bad values by key path."""

import pytest
from crmcore_complaints.settings import DEFAULT_CATEGORIES, ComplaintsSettings

from crmcore import ConfigError


def test_defaults_follow_the_domain(make_crm):
    crm = make_crm(["complaints"])
    s: ComplaintsSettings = crm.settings("complaints")
    assert (
        s.all_categories
        == ("product_quality", "service", "price", "false_advertising", "other")
        == DEFAULT_CATEGORIES
    )
    assert [(lv.after_hours, lv.target) for lv in s.escalation] == [
        (24.0, "shift_lead"),
        (48.0, "department_manager"),
    ]
    assert s.callback_due_hours <= 72  # DOMAIN: a callback within 3 days of closing
    assert s.register_from_interactions is True
    assert s.sla[-1].catch_all


def test_telecom_adds_billing_dispute_by_configuration(make_crm):
    crm = make_crm(
        ["complaints"],
        settings={
            "complaints": {
                "extra_categories": ["billing_dispute"],
                "departments": {
                    "billing": {
                        "manager": "mgr-bill",
                        "capacity": 5,
                        "categories": ["billing_dispute"],
                    },
                    "customer_service": {"manager": "mgr-cs"},
                },
                "sla": [
                    {
                        "name": "billing",
                        "categories": ["billing_dispute"],
                        "first_response_hours": 1,
                        "resolution_hours": 24,
                        "clock": "business",
                    },
                    {"name": "standard"},
                ],
            }
        },
    )
    s = crm.settings("complaints")
    assert "billing_dispute" in s.all_categories
    assert s.departments_for("billing_dispute") == ["billing"]
    assert s.departments_for("price") == ["customer_service"]  # the catch-all


@pytest.mark.parametrize(
    ("table", "path", "message"),
    [
        (
            {"sla": [{"name": "x", "categories": ["nonsense"]}, {"name": "y"}]},
            "sla[0].categories",
            "unknown category 'nonsense'",
        ),
        (
            {"sla": [{"name": "x", "priorities": ["soon"]}, {"name": "y"}]},
            "complaints.sla[0].priorities",
            "unknown value 'soon'",
        ),
        ({"sla": [{"name": "x", "clock": "lunar"}]}, "complaints.sla[0].clock", "lunar"),
        ({"sla": [{"name": "x", "tiers": ["vip"]}]}, "sla[0]", "last policy must match every"),
        (
            {"sla": [{"name": "x", "resolution_hours": 0}]},
            "complaints.sla[0].resolution_hours",
            "more than 0",
        ),
        (
            {
                "escalation": [
                    {"after_hours": 48, "target": "shift_lead"},
                    {"after_hours": 24, "target": "department_manager"},
                ]
            },
            "complaints.escalation",
            "increasing order",
        ),
        (
            {"escalation": [{"after_hours": 24, "target": "the boss"}]},
            "complaints.escalation[0].target",
            "unknown target",
        ),
        ({"shifts": [{"lead": "wu", "start": "8:00"}]}, "complaints.shifts[0].start", "HH:MM"),
        ({"shifts": [{"lead": "wu", "end": "20:61"}]}, "complaints.shifts[0].end", "HH:MM"),
        ({"shifts": [{"lead": "wu", "days": ["monday"]}]}, "complaints.shifts[0].days", "monday"),
        (
            {"shifts": [{"lead": "wu", "departments": ["nowhere"]}]},
            "shifts[0].departments",
            "unknown department 'nowhere'",
        ),
        ({"calendar": {"hours": {"mon": "09:00-1800"}}}, "complaints.calendar.hours", "HH:MM"),
        (
            {"calendar": {"hours": {"funday": "09:00-18:00"}}},
            "complaints.calendar.hours",
            "unknown weekday",
        ),
        (
            {"calendar": {"hours": {"mon": "closed"}}},
            "complaints.calendar.hours",
            "no working hours",
        ),
        ({"calendar": {"holidays": ["2026-13-01"]}}, "complaints.calendar.holidays", "YYYY-MM-DD"),
        (
            {"calendar": {"timezone": "Mars/Olympus"}},
            "complaints.calendar.timezone",
            "unknown time zone",
        ),
        ({"categories": ["Service"]}, "complaints.categories", "not a name"),
        ({"extra_categories": ["price"]}, "complaints.extra_categories", "already in categories"),
        ({"default_category": "weather"}, "default_category", "unknown category"),
        (
            {"departments": {"ops": {"categories": ["price"]}}},
            "complaints.departments",
            "no department handles 'product_quality'",
        ),
        (
            {"departments": {"ops": {"capacity": -1}}},
            "complaints.departments.ops.capacity",
            "negative",
        ),
        (
            {"departments": {"ops": {"manager": "m", "bogus": 1}}},
            "complaints.departments.ops",
            "unknown key(s): bogus",
        ),
        ({"unsatisfied_at_or_below": 5}, "complaints.unsatisfied_at_or_below", "1 to 4"),
        ({"shifts": [{"lead": " "}]}, "complaints.shifts[0].lead", "must not be empty"),
        ({"callback_due_hours": "soon"}, "complaints.callback_due_hours", "expected"),
    ],
)
def test_bad_settings_name_their_key_path(make_crm, table, path, message):
    with pytest.raises(ConfigError) as caught:
        make_crm(["complaints"], settings={"complaints": table})
    assert path in str(caught.value)
    assert message in str(caught.value)
