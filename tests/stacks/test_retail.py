"""Retail / e-commerce as shipped (docs/domain.md §8): returns and refunds as after-sale
tickets whose refunds are refunds, A-E cadence, RFM and pyramid tiers, care, referral."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from crmcore_complaints.api import Complaints
from crmcore_followup.api import record_callback
from crmcore_followup.engine import Engine
from crmcore_followup.report import callback_sections
from crmcore_followup.reps import Roster
from crmcore_grading import api as grading
from crmcore_loyalty.api import Loyalty

from crmcore.converter import parse_iso


def test_refunds_are_refunds(init_profile, open_profile):
    """Rule "refunds": a resolved return/refund ticket logs a refund for the amount; points,
    spend and value tiers follow; compensation stays a separate, capped remedy."""
    path = init_profile("retail")
    crm, clock = open_profile(path)
    complaints, loyalty = Complaints(crm), Loyalty(crm)
    buyer = crm.customers.add(actor="ann", name="Chen Jing", phone="139 1234 5678").id
    other = crm.customers.add(actor="ann", name="Liu Yang", phone="139 8765 4321").id
    purchase = crm.interactions.log(actor="ann", customer_id=buyer, kind="purchase", amount=399.0)
    crm.interactions.log(actor="ann", customer_id=other, kind="purchase", amount=100.0)
    assert loyalty.balance(buyer) == 399
    clock.advance(timedelta(days=1))
    ticket = complaints.open(
        actor="ann",
        customer_id=buyer,
        content="wrong size",
        category="return_refund",
        channel="chat",
    )
    ticket = complaints.dispatch(complaints.judge(ticket, actor="ann", valid=True), actor="ann")
    assert ticket.department == "after_sales"
    ticket = complaints.propose(
        ticket,
        actor="hu",
        solution="take it back, refund in full",
        refund=399,
        purchase_id=purchase.id,
        compensation=5,
    )
    ticket = complaints.approve(ticket, actor="ann")
    ticket = complaints.resolve(ticket, actor="hu")
    [refund] = crm.interactions.for_customer(buyer, kinds=["refund"])
    assert (refund.amount, refund.ref) == (399.0, purchase.id)
    # the purchase's 399 points are taken back; the goodwill (5 x 100 points) stays
    assert loyalty.balance(buyer) == 500
    grading.grade_all(crm, actor="nightly")
    grades = {c: grading.current(crm, c).grades for c in (buyer, other)}
    assert grades[other]["pyramid"] != "small"
    assert grades[buyer]["pyramid"] == "small"  # nothing spent once refunded


def test_compensation_is_capped(init_profile, open_profile):
    path = init_profile("retail")
    crm, _clock = open_profile(path)
    complaints, loyalty = Complaints(crm), Loyalty(crm)
    buyer = crm.customers.add(actor="ann", name="Chen Jing").id
    ticket = complaints.open(
        actor="ann", customer_id=buyer, content="late delivery", category="service"
    )
    ticket = complaints.dispatch(complaints.judge(ticket, actor="ann", valid=True), actor="ann")
    ticket = complaints.approve(
        complaints.propose(ticket, actor="hu", solution="sorry", compensation=399), actor="ann"
    )
    complaints.resolve(ticket, actor="hu")
    assert crm.interactions.for_customer(buyer, kinds=["refund"]) == []
    assert loyalty.balance(buyer) == loyalty.settings.compensation.cap_points


CADENCE = {"A": 1, "B": 7, "C": 15, "D": 30, "E": 365}
QUIET = ((21 * 60, 24 * 60), (0, 8 * 60), (12 * 60, 14 * 60))  # local minutes, strictly inside


def in_quiet_hours(when) -> bool:
    local = when.astimezone(ZoneInfo("Asia/Shanghai"))
    minute = local.hour * 60 + local.minute + local.second / 60
    return any(lo < minute < hi for lo, hi in QUIET)


def test_thirty_days_of_retail(init_profile, open_profile):
    """Rules by name: first contact within 7 days; A-E cadence; callbacks within 3 days;
    100% callbacks of key customers; quiet hours; referral rewards once; 60-second chat;
    holiday care from the maintained calendar."""
    path = init_profile("retail")
    crm, clock = open_profile(path)
    roster = Roster(crm)
    for name, ability in (("ann", 3), ("bo", 2)):
        roster.add(name, actor="admin", ability=ability)
    loyalty, complaints = Loyalty(crm), Complaints(crm)
    start = clock.now()
    ids = [
        crm.customers.add(actor="admin", name=f"Shopper {i}", phone=f"139 0000 {i:04d}").id
        for i in range(6)
    ]

    # first contact within 7 days, by the rep the customer was given to
    for cid in ids:
        [first] = crm.tasks.find({"kind": "first_contact", "customer_id": cid})
        owner = crm.customers.get(cid).owner
        assert first.assignee == owner and owner in ("ann", "bo")
        assert first.due_at <= start + timedelta(days=7)

    # A-E: grade by the pipeline inputs; the cadence follows the grade
    closes = {"A": 20, "B": 80, "C": 150, "D": 300}
    for cid, grade in zip(ids, "ABCDE", strict=False):
        if grade == "E":
            grading.set_inputs(crm, cid, actor="admin", demand="dead")
        else:
            grading.set_inputs(
                crm,
                cid,
                actor="admin",
                demand="target",
                expected_close=(start + timedelta(days=closes[grade])).date(),
            )
        assert grading.current(crm, cid).grades["pipeline"] == grade

    # referral: Shopper 5 brings a friend; the reward comes with the first purchase, once
    code = loyalty.referral_code(ids[5], actor="admin")
    friend, _ = loyalty.add_referred_customer(
        code, actor="admin", name="Friend", phone="139 0000 9999"
    )
    before = loyalty.balance(ids[5])

    purchases = []
    for day in range(31):
        clock.set(start + timedelta(days=day, hours=2))  # 11:00 in Shanghai
        for task in crm.tasks.find(
            {
                "status": "open",
                "due_at": {"$lte": clock.now()},
                "kind": {"$in": ["first_contact", "follow_up"]},
            }
        ):
            crm.tasks.complete(task.id, actor=task.assignee or "ann", outcome="called")
        if day % 5 == 0:
            buyer = ids[day // 5 % 6]
            purchases.append(
                crm.interactions.log(actor="ann", customer_id=buyer, kind="purchase", amount=120.0)
            )
        if day in (3, 4):
            crm.interactions.log(actor="ann", customer_id=friend.id, kind="purchase", amount=80.0)
        crm.tick("w1")
        for task in crm.tasks.find(
            {"kind": "callback", "status": "open", "due_at": {"$lte": clock.now()}}
        ):
            record_callback(crm, task.id, satisfied=True, score=5, actor=task.assignee or "ann")
    referrer_points = crm.settings("loyalty").referral.referrer_points
    assert loyalty.balance(ids[5]) - before == referrer_points + 120 * sum(
        1 for p in purchases if p.customer_id == ids[5]
    )

    # callbacks within 3 days of every purchase (one open callback covers later ones)
    for purchase in purchases:
        covering = [
            t
            for t in crm.tasks.find({"kind": "callback", "customer_id": purchase.customer_id})
            if parse_iso(t.ext["followup"]["event_at"])
            <= purchase.occurred_at
            <= parse_iso(t.ext["followup"]["deadline"])
            or t.ref == purchase.id
        ]
        assert covering, purchase
    for task in crm.tasks.find({"kind": "callback"}):
        deadline = parse_iso(task.ext["followup"]["deadline"])
        assert deadline == parse_iso(task.ext["followup"]["event_at"]) + timedelta(days=3)
        assert task.due_at <= deadline
        if deadline <= clock.now():
            assert task.completed_at is not None and task.completed_at <= deadline

    # 100% callbacks of key customers (the A grade is a key customer here)
    rows = {r[0]: r for r in callback_sections(crm, clock.now())[0].rows}
    assert rows["key customers"][1] > 0 and rows["key customers"][3] == "100.0%"

    # the cadence by grade: each open follow-up is due its grade's days after the last one
    for cid, grade in zip(ids, "ABCDE", strict=False):
        schedule = Engine(crm).schedule_of(cid)
        assert schedule.cadence_days == CADENCE[grade]
        [follow_up] = crm.tasks.find({"kind": "follow_up", "customer_id": cid, "status": "open"})
        assert follow_up.due_at <= schedule.last_follow_up_at + timedelta(days=CADENCE[grade])

    # quiet hours: nothing is due while customers rest
    assert not [
        t
        for t in crm.tasks.find({"status": "open"})
        if in_quiet_hours(t.due_at) and t.kind in ("follow_up", "first_contact", "callback", "care")
    ]

    # the 60-second chat rule
    ticket = complaints.open(
        actor="ann",
        customer_id=ids[0],
        content="where is my parcel",
        channel="chat",
        category="service",
    )
    assert ticket.sla_policy == "chat"
    assert ticket.first_response_due_at - ticket.opened_at <= timedelta(seconds=61)


def test_holiday_care_and_business_hours_follow_the_calendar(init_profile, open_profile):
    """Rule: holiday care from a maintained calendar (Golden Week once, seven days off)."""
    path = init_profile("retail")
    text = path.read_text("utf-8")
    assert "2027-" not in text  # no dates typed into the profile
    crm, clock = open_profile(path, start=datetime(2026, 9, 20, 1, tzinfo=UTC))
    customer = crm.customers.add(actor="admin", name="Shopper", timezone="Asia/Shanghai")
    for day in range(14):
        clock.set(datetime(2026, 9, 20, 1, tzinfo=UTC) + timedelta(days=day))
        crm.tick("w1")
    titles = [t.title for t in crm.tasks.find({"kind": "care", "customer_id": customer.id})]
    assert sorted(titles) == [
        "Holiday greeting: Mid-autumn Festival (2026-09-25)",
        "Holiday greeting: National Day (2026-10-01)",
    ]
    business = crm.settings("complaints").business_clock("Asia/Shanghai")
    eve = datetime(2026, 9, 30, 17, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert business.add(eve, timedelta(hours=2)) == datetime(
        2026, 10, 8, 10, tzinfo=ZoneInfo("Asia/Shanghai")
    )
