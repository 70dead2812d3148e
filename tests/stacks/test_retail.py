"""Retail / e-commerce as shipped (docs/domain.md §8): returns and refunds as after-sale
tickets whose refunds are refunds, A-E cadence, RFM and pyramid tiers, care, referral."""

from __future__ import annotations

from datetime import timedelta

from crmcore_complaints.api import Complaints
from crmcore_grading import api as grading
from crmcore_loyalty.api import Loyalty


def test_refunds_are_refunds(init_profile, open_profile):
    """Rule "refunds": a resolved return/refund ticket logs a refund for the amount; points,
    spend and value tiers follow; compensation stays a separate, capped remedy."""
    path = init_profile("retail")
    crm, clock = open_profile(path)
    complaints, loyalty = Complaints(crm), Loyalty(crm)
    buyer = crm.customers.add(actor="ann", name="Chen Jing", phone="139 1234 5678").id
    other = crm.customers.add(actor="ann", name="Liu Yang", phone="139 8765 4321").id
    purchase = crm.interactions.log(actor="ann", customer_id=buyer, kind="purchase",
                                    amount=399.0)
    crm.interactions.log(actor="ann", customer_id=other, kind="purchase", amount=100.0)
    assert loyalty.balance(buyer) == 399
    clock.advance(timedelta(days=1))
    ticket = complaints.open(actor="ann", customer_id=buyer, content="wrong size",
                             category="return_refund", channel="chat")
    ticket = complaints.dispatch(complaints.judge(ticket, actor="ann", valid=True),
                                 actor="ann")
    assert ticket.department == "after_sales"
    ticket = complaints.propose(ticket, actor="hu", solution="take it back, refund in full",
                                refund=399, purchase_id=purchase.id, compensation=5)
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
    ticket = complaints.open(actor="ann", customer_id=buyer, content="late delivery",
                             category="service")
    ticket = complaints.dispatch(complaints.judge(ticket, actor="ann", valid=True),
                                 actor="ann")
    ticket = complaints.approve(complaints.propose(ticket, actor="hu", solution="sorry",
                                                   compensation=399), actor="ann")
    complaints.resolve(ticket, actor="hu")
    assert crm.interactions.for_customer(buyer, kinds=["refund"]) == []
    assert loyalty.balance(buyer) == loyalty.settings.compensation.cap_points
