"""Refunds are refunds: money returned for a purchase is logged as a ``refund`` interaction
when the ticket is resolved, apart from goodwill compensation."""

from __future__ import annotations

import pytest
from crmcore_complaints.api import Complaints

from crmcore import ValidationError


def in_progress(api: Complaints, customer: str):
    ticket = api.open(
        actor="ann",
        customer_id=customer,
        content="wrong size, send it back",
        category="product_quality",
        claim="repair_replace_redo",
    )
    ticket = api.judge(ticket, actor="ann", valid=True)
    return api.dispatch(ticket, actor="dana", handler="hu")


def refunds_of(crm, customer: str):
    return crm.interactions.for_customer(customer, kinds=["refund"])


def test_resolving_an_approved_refund_logs_it_once(setup, customer_id):
    crm, api = setup()
    customer = customer_id(crm)
    purchase = crm.interactions.log(
        actor="ann", customer_id=customer, kind="purchase", amount=399.0
    )
    ticket = in_progress(api, customer)
    ticket = api.propose(
        ticket,
        actor="hu",
        solution="take it back, refund in full",
        refund=399,
        purchase_id=purchase.id,
        compensation=20,
    )
    ticket = api.approve(ticket, actor="mgr")
    assert refunds_of(crm, customer) == []  # approval alone returns no money
    ticket = api.resolve(ticket, actor="hu")
    [refund] = refunds_of(crm, customer)
    assert (refund.amount, refund.ref) == (399.0, purchase.id)
    assert refund.ext["complaints"] == {"ticket_id": ticket.id, "proposal": 1}
    assert (ticket.refund, ticket.refund_interaction_id, ticket.compensation) == (
        399.0,
        refund.id,
        20,
    )
    # the customer is unhappy; reopened and resolved again on the same approved solution
    ticket = api.reopen(ticket, actor="ann", reason="still waiting for the money")
    ticket = api.resolve(ticket, actor="hu")
    assert [r.id for r in refunds_of(crm, customer)] == [refund.id]
    assert ticket.refund_interaction_id == refund.id


def test_no_refund_without_a_refund_in_the_solution(setup, customer_id):
    crm, api = setup()
    customer = customer_id(crm)
    ticket = api.approve(
        api.propose(in_progress(api, customer), actor="hu", solution="apologise", compensation=30),
        actor="mgr",
    )
    ticket = api.resolve(ticket, actor="hu")
    assert refunds_of(crm, customer) == []
    assert (ticket.refund, ticket.compensation) == (None, 30)


@pytest.mark.parametrize(
    ("refund", "purchase", "message"),
    [
        (500, "mine", "exceeds what is left of purchase"),
        (100, None, "name the purchase the refund returns"),
        (100, "nope", "no purchase 'nope'"),
        (100, "other", "is not a purchase of customer"),
        (0, "mine", "an amount above zero"),
    ],
)
def test_bad_refunds_are_refused_at_proposal(setup, customer_id, refund, purchase, message):
    crm, api = setup()
    customer = customer_id(crm)
    mine = crm.interactions.log(actor="ann", customer_id=customer, kind="purchase", amount=399.0)
    other = crm.interactions.log(
        actor="ann", customer_id=customer_id(crm, "Wang Fang"), kind="purchase", amount=399.0
    )
    ids = {"mine": mine.id, "other": other.id, "nope": "nope", None: None}
    ticket = in_progress(api, customer)
    with pytest.raises(ValidationError, match=message):
        api.propose(ticket, actor="hu", solution="refund", refund=refund, purchase_id=ids[purchase])
    assert api.get(ticket.id).proposals == ()


def test_a_refund_never_exceeds_the_approved_amount_or_what_is_left(setup, customer_id):
    crm, api = setup()
    customer = customer_id(crm)
    purchase = crm.interactions.log(
        actor="ann", customer_id=customer, kind="purchase", amount=399.0
    )
    ticket = api.approve(
        api.propose(
            in_progress(api, customer),
            actor="hu",
            solution="half",
            refund=200,
            purchase_id=purchase.id,
        ),
        actor="mgr",
    )
    with pytest.raises(ValidationError, match="exceeds the approved 200"):
        api.resolve(ticket, actor="hu", refund=300)
    crm.interactions.log(
        actor="ann", customer_id=customer, kind="refund", amount=250.0, ref=purchase.id
    )  # refunded at the till meanwhile
    with pytest.raises(ValidationError, match=r"what is left of purchase .* \(149 of 399\)"):
        api.resolve(ticket, actor="hu")
    assert api.get(ticket.id).status == "in_progress"
    ticket = api.resolve(ticket, actor="hu", refund=149)
    assert ticket.refund == 149.0


def test_refund_from_the_cli(crm_cli):
    cli = crm_cli("complaints")
    crm = cli.open()
    customer = crm.customers.add(actor="ann", name="Li Wei").id
    purchase = crm.interactions.log(
        actor="ann", customer_id=customer, kind="purchase", amount=399.0
    ).id
    ticket = in_progress(Complaints(crm), customer).id
    crm.close()
    code, _out, err = cli(
        "--as",
        "hu",
        "complaints",
        "propose",
        ticket,
        "--solution",
        "refund",
        "--refund",
        "399",
        "--purchase",
        purchase,
    )
    assert code == 0, err
    code, _out, err = cli("--as", "mgr", "complaints", "approve", ticket)
    assert code == 0, err
    code, out, err = cli("--as", "hu", "--json", "complaints", "resolve", ticket)
    assert code == 0, err
    assert '"resolved"' in out
    crm = cli.open()
    [refund] = crm.interactions.for_customer(customer, kinds=["refund"])
    assert (refund.amount, refund.ref) == (399.0, purchase)
    code, _out, err = cli(
        "--as", "hu", "complaints", "propose", ticket, "--solution", "x", "--refund", "-5"
    )
    assert code != 0 and "Traceback" not in err
