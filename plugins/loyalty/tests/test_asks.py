""" "Ask for a referral" at the three moments of DOMAIN §6, at most once per cooldown."""

from __future__ import annotations

import pytest
from crmcore_loyalty.asks import ASK_KIND

from crmcore import TaskStatus

ASKS = {
    "after_purchase_due_hours": 24,
    "satisfaction_threshold": 5,
    "proven_after_days": 30,
    "cooldown_days": 60,
    "quiet_after_complaint_days": 30,
}


@pytest.fixture
def asks(kit_for):
    return kit_for({"asks": ASKS})


def ask_tasks(kit, customer=None):
    return kit.tasks(ASK_KIND, customer)


def test_right_after_a_purchase(asks, clock):
    ann = asks.customer(owner="bo")
    purchase = asks.buy(ann, 80)
    [task] = ask_tasks(asks, ann)
    assert task.title == "Ask for a referral: they have just bought"
    assert (task.ref, task.assignee, task.source) == (purchase.id, "bo", "loyalty")
    assert task.due_at == clock.now().replace(day=6)
    code = asks.crm.customers.get(ann.id).ext["loyalty"]["referral_code"]
    assert task.ext["loyalty"] == {"moment": "purchase", "referral_code": code}
    assert code in task.notes


@pytest.mark.parametrize(
    ("satisfaction", "asked"), [(None, False), (3, False), (4, False), (5, True)]
)
def test_after_praise_at_the_satisfaction_threshold(asks, satisfaction, asked):
    ann = asks.customer()
    asks.log(ann, "feedback", satisfaction=satisfaction)
    tasks = ask_tasks(asks, ann)
    assert len(tasks) == int(asked)
    if asked:
        assert tasks[0].ext["loyalty"]["moment"] == "praise"


def test_threshold_is_configurable(kit_for):
    kit = kit_for({"asks": {**ASKS, "satisfaction_threshold": 4}})
    ann = kit.customer()
    kit.log(ann, "callback", satisfaction=4)
    assert len(ask_tasks(kit, ann)) == 1


@pytest.mark.parametrize(("days_later", "asked_again"), [(59, False), (60, True)])
def test_at_most_once_per_cooldown_even_after_the_first_ask_is_done(
    asks, clock, days_later, asked_again
):
    ann = asks.customer()
    asks.buy(ann, 10)
    [first] = ask_tasks(asks, ann)
    asks.crm.tasks.complete(first.id, actor="bo", outcome="asked")
    clock.advance(days=days_later)
    asks.log(ann, "feedback", satisfaction=5)
    assert len(ask_tasks(asks, ann)) == 1 + int(asked_again)


def test_never_while_do_not_contact_or_soon_after_a_complaint(asks, clock):
    quiet = asks.customer(do_not_contact=True)
    asks.buy(quiet, 10)
    unhappy = asks.customer("Unhappy")
    asks.log(unhappy, "complaint")
    clock.advance(days=29)
    asks.buy(unhappy, 10)
    assert ask_tasks(asks) == []
    clock.advance(days=1)
    asks.log(unhappy, "feedback", satisfaction=5)
    assert len(ask_tasks(asks, unhappy)) == 1


@pytest.fixture
def proven(kit_for):
    # Only the "proven" moment, so the other two do not use up the cooldown.
    return kit_for({"asks": {**ASKS, "after_purchase": False, "satisfaction_threshold": 5}})


def test_when_the_product_has_proven_itself(proven, clock):
    ann = proven.customer()
    purchase = proven.buy(ann, 10)
    proven.crm.tick("w")
    clock.advance(days=30)
    proven.crm.tick("w")
    [task] = ask_tasks(proven, ann)
    assert (task.ext["loyalty"]["moment"], task.ref) == ("proven", purchase.id)
    assert task.title == "Ask for a referral: the purchase has proven itself"
    clock.advance(days=1)
    proven.crm.tick("w")
    proven.crm.tick("w2")
    assert len(ask_tasks(proven, ann)) == 1


def test_proven_waits_the_configured_days(proven, clock):
    ann = proven.customer()
    proven.buy(ann, 10)
    proven.crm.tick("w")
    clock.advance(days=29, hours=23)
    proven.crm.tick("w")
    assert ask_tasks(proven, ann) == []
    clock.advance(hours=1)
    proven.crm.tick("w")
    assert len(ask_tasks(proven, ann)) == 1


@pytest.mark.parametrize("setback", ["complaint", "refund"])
def test_no_proven_ask_after_a_complaint_or_refund(proven, clock, setback):
    ann = proven.customer()
    purchase = proven.buy(ann, 10)
    proven.crm.tick("w")
    clock.advance(days=10)
    if setback == "complaint":
        proven.log(ann, "complaint")
    else:
        proven.log(ann, "refund", ref=purchase.id)
    clock.advance(days=20)
    proven.crm.tick("w")
    assert ask_tasks(proven, ann) == []


def test_one_open_ask_per_customer_across_workers(asks):
    ann = asks.customer()
    asks.buy(ann, 10)
    asks.buy(ann, 20)
    asks.log(ann, "feedback", satisfaction=5)
    tasks = ask_tasks(asks, ann)
    assert len(tasks) == 1 and tasks[0].status is TaskStatus.OPEN


def test_disabled(kit):
    ann = kit.customer()
    kit.buy(ann, 10)
    kit.log(ann, "feedback", satisfaction=5)
    assert ask_tasks(kit) == []


def test_an_open_ask_is_found_by_its_key_before_any_cooldown_count(asks, monkeypatch):
    """With an ask open the customer is not asked again, and finding that out reads the
    task's open key only (not every task of the customer made within the cooldown)."""
    ann = asks.customer()
    asks.buy(ann, 80)
    [task] = ask_tasks(asks, ann)
    counted: list[dict] = []
    real_count = type(asks.crm.tasks).count

    def count(self, filter=None):
        counted.append(dict(filter or {}))
        return real_count(self, filter)

    monkeypatch.setattr(type(asks.crm.tasks), "count", count)
    asks.buy(ann, 90)
    assert ask_tasks(asks, ann) == [task]
    assert not [f for f in counted if f.get("kind") == ASK_KIND], counted
    monkeypatch.undo()
    asks.crm.tasks.complete(task.id, actor="t", outcome="asked")
    asks.buy(ann, 95)  # done, but within the cooldown: still not asked again
    assert len(ask_tasks(asks, ann)) == 1
