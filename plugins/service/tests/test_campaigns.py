"""Care campaigns: a segment or an incident's customers get a care task with the offer; the
care contact is recorded with its satisfaction, points go through the loyalty plugin's
``crm_award_points`` contract when it is loaded, and the effect is measured."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crmcore_service.campaigns import Campaigns
from crmcore_service.plugin import crm_report_sections

from crmcore import Effects, ExtPatch, NotFoundError, TaskStatus, ValidationError

CAMPAIGNS = {
    "outage": {
        "title": "Network outage 5 Jan",
        "offer": "a day of free data",
        "points": 50,
        "incident": {
            "tag": "outage-0105",
            "interaction_kind": "complaint",
            "since": "2026-01-05T00:00",
            "until": "2026-01-06T00:00",
        },
    },
    "vip_care": {"title": "VIP new year", "audience": {"tags": ["vip"]}},
}


def people(crm):
    add = crm.customers.add
    return {
        "tagged": add(
            actor="x", name="A", phone="+86 138 0000 0001", tags=["outage-0105"], owner="ann"
        ).id,
        "complained": add(actor="x", name="B", phone="+86 138 0000 0002").id,
        "vip": add(actor="x", name="C", phone="+86 138 0000 0003", tags=["vip"]).id,
        "other": add(actor="x", name="D", phone="+86 138 0000 0004").id,
    }


def test_an_incident_campaign_reaches_those_hit_and_measures_the_effect(setup, clock):
    crm, api = setup({"campaigns": CAMPAIGNS}, plugins=("loyalty",))
    ids = people(crm)
    crm.interactions.log(actor="x", customer_id=ids["complained"], kind="complaint")
    crm.apply(
        Effects(
            ext=[ExtPatch(ids["tagged"], "grading", {"churn": {"level": "high", "reasons": []}})]
        ),
        actor="x",
    )
    care = Campaigns(api)
    run = care.run("outage", actor="lead", customers=[ids["other"]])
    assert (run.targeted, run.already) == (3, 0)
    assert care.run("outage", actor="lead").targeted == 0  # each customer once
    tasks = {t.customer_id: t for t in crm.tasks.find({"kind": "care"})}
    assert set(tasks) == {ids["tagged"], ids["complained"], ids["other"]}
    assert tasks[ids["tagged"]].assignee == "ann"
    assert "a day of free data" in tasks[ids["tagged"]].title
    clock.advance(timedelta(hours=2))
    target = care.contact(
        "outage", actor="ann", customer_id=ids["tagged"], satisfaction=4, accepted=True
    )
    assert target.points_entry  # loyalty credited the offer through the contract
    from crmcore_loyalty.api import Loyalty

    assert Loyalty(crm).balance(ids["tagged"]) == 50
    assert crm.tasks.get(tasks[ids["tagged"]].id).status is TaskStatus.DONE
    care.contact("outage", actor="bo", customer_id=ids["complained"], satisfaction=2)
    with pytest.raises(ValidationError, match="already contacted"):
        care.contact("outage", actor="ann", customer_id=ids["tagged"], satisfaction=5)
    crm.apply(
        Effects(
            ext=[ExtPatch(ids["tagged"], "grading", {"churn": {"level": "low", "reasons": []}})]
        ),
        actor="x",
    )
    effect = care.effect("outage")
    assert (
        effect.targeted,
        effect.contacted,
        effect.mean_satisfaction,
        effect.offers_accepted,
        effect.points_granted,
        effect.churn_improved,
    ) == (3, 2, 3.0, 1, 50, 1)
    [section] = [
        s for s in crm_report_sections(crm, crm.now()) if s.title.startswith("Care campaigns")
    ]
    assert ("outage", 3, 2, 3.0, 1, 50, "1/0/0") in section.rows


def test_a_segment_campaign_without_loyalty_grants_no_points(setup):
    crm, api = setup(
        {
            "campaigns": {
                **CAMPAIGNS,
                "vip_care": {"title": "VIP", "points": 10, "audience": {"tags": ["vip"]}},
            }
        }
    )
    ids = people(crm)
    care = Campaigns(api)
    assert care.run("vip_care", actor="lead").targeted == 1
    target = care.contact(
        "vip_care", actor="ann", customer_id=ids["vip"], satisfaction=5, accepted=True
    )
    assert target.points_entry is None and care.effect("vip_care").points_granted == 0
    [care_contact] = crm.interactions.for_customer(ids["vip"], kinds=["care"])
    assert care_contact.satisfaction == 5 and care_contact.ref == target.id


def test_campaign_mistakes(setup):
    crm, api = setup({"campaigns": CAMPAIGNS})
    ids = people(crm)
    care = Campaigns(api)
    with pytest.raises(ValidationError, match="unknown campaign 'x'"):
        care.run("x", actor="a")
    with pytest.raises(NotFoundError, match="run it first"):
        care.contact("outage", actor="a", customer_id=ids["other"], satisfaction=3)
    care.run("outage", actor="a", customers=[ids["other"]])
    with pytest.raises(ValidationError, match="1 to 5"):
        care.contact("outage", actor="a", customer_id=ids["other"], satisfaction=9)
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match="exactly one of audience and incident"):
        setup({"campaigns": {"c": {"title": "C"}}})
