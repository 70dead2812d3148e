"""Private hospital as shipped (docs/domain.md §8): the top 20% by the 8 signals are big
customers, and being big changes what happens: the VIP complaint lane, a weekly follow-up, a
callback within a day, a dedicated VIP rep, platinum perks; referral rewards once."""

from __future__ import annotations

from datetime import timedelta

from crmcore_complaints.api import Complaints
from crmcore_followup.api import record_callback
from crmcore_followup.engine import Engine
from crmcore_followup.reps import Roster
from crmcore_grading import api as grading
from crmcore_loyalty.api import Loyalty

from crmcore.converter import parse_iso
from tests.stacks.conftest import crm_run


def populated(crm, clock):
    """Ten patients, one of whom spends far more than the rest, over 30 days."""
    roster = Roster(crm)
    roster.add("ann", actor="admin", team="floor")
    roster.add("vic", actor="admin", team="vip", ability=5)
    ids = [crm.customers.add(actor="admin", name=f"Patient {i}").id for i in range(10)]
    for day in range(30):
        clock.advance(timedelta(days=1))
        for i, cid in enumerate(ids):
            if day % (i + 1) == 0:
                crm.interactions.log(
                    actor="ann",
                    customer_id=cid,
                    kind="treatment",
                    amount=3000.0 if i == 0 else 100.0,
                )
        crm.tick("w1")
        for task in crm.tasks.find({"kind": "callback", "status": "open"}):
            record_callback(crm, task.id, satisfied=True, score=5, actor=task.assignee or "ann")
    grading.grade_all(crm, actor="nightly")
    crm.tick("w1")
    return ids


def test_top_20_percent_are_big_and_it_changes_what_happens(init_profile, open_profile):
    path = init_profile("hospital")
    crm, clock = open_profile(path)
    ids = populated(crm, clock)
    tiers = {cid: grading.current(crm, cid).grades.get("hospital") for cid in ids}
    big = [cid for cid, tier in tiers.items() if tier == "big"]
    assert ids[0] in big and len(big) == 2  # the top 20% of ten
    top = crm.customers.get(ids[0])
    # a dedicated rep from the VIP team
    assert top.owner == "vic"
    # loyalty's platinum, mapped from the hospital tier, with its perks
    assert top.ext["loyalty"]["tier"] == "platinum"
    assert "dedicated_rep" in Loyalty(crm).perks(top.id)
    # the VIP complaint lane
    ticket = Complaints(crm).open(
        actor="vic", customer_id=top.id, content="scar", category="treatment_outcome"
    )
    assert (ticket.tier, ticket.sla_policy, ticket.priority.name) == ("big", "vip", "HIGH")
    # callbacks after treatment within a day, for every big customer
    event = crm.interactions.log(actor="vic", customer_id=top.id, kind="treatment", amount=50.0)
    [callback] = crm.tasks.find({"kind": "callback", "ref": event.id})
    assert parse_iso(callback.ext["followup"]["deadline"]) == event.occurred_at + timedelta(days=1)
    assert callback.due_at <= event.occurred_at + timedelta(days=1)
    # a weekly follow-up cadence instead of the default 30 days
    plans = {"big": 7, "potential_big": 15, "major": 15}
    cadence = {cid: Engine(crm).schedule_of(cid).cadence_days for cid in ids}
    assert cadence == {cid: plans.get(tiers[cid], 30) for cid in ids}
    assert cadence[top.id] == 7


def test_check_warns_while_the_vip_team_is_empty(init_profile):
    path = init_profile("hospital")
    result = crm_run(path.parent, "--as", "admin", "check")
    assert result.returncode == 0, result.stderr
    assert "vip_team 'vip' has no available rep" in result.stderr


def test_churn_watch_and_referral_rewards(init_profile, open_profile):
    """Rules: big-customer churn watch with a retention response; referral rewards
    ("old brings new"), generous and paid once."""
    path = init_profile("hospital")
    crm, clock = open_profile(path)
    ids = populated(crm, clock)
    top = crm.customers.get(ids[0])
    assert grading.current(crm, top.id).churn_level == "none"
    # the top patient stops coming: after twice their usual interval (at least 7 days) the
    # watch rises and their dedicated rep gets a retention call
    for _day in range(16):
        clock.advance(timedelta(days=1))
        crm.tick("w1")
    grading.grade_all(crm, actor="nightly")
    assert grading.current(crm, top.id).churn_level != "none"
    [retention] = crm.tasks.find({"kind": "retention", "customer_id": top.id, "status": "open"})
    assert retention.assignee == "vic"

    loyalty = Loyalty(crm)
    referrer = ids[3]
    code = loyalty.referral_code(referrer, actor="admin")
    friend, _ = loyalty.add_referred_customer(code, actor="admin", name="Friend")
    before = loyalty.balance(referrer)
    for _visit in range(3):
        crm.interactions.log(actor="ann", customer_id=friend.id, kind="treatment", amount=200.0)
        clock.advance(timedelta(days=1))
    settings = crm.settings("loyalty").referral
    assert settings.referrer_points == 1000  # generous, as the profile says
    assert loyalty.balance(referrer) - before == settings.referrer_points
    assert loyalty.referral_stats(referrer).rewarded == 1
