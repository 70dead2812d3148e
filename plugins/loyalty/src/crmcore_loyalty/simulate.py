"""One simulated day of loyalty work for ``crm demo`` (every random choice from ``rng``).

Customers who bought recently bring friends (a new customer added with the code and linked),
some of those friends make their first purchase (both get rewarded), now and then someone tries
to refer themselves (refused), members redeem points at the counter, and a few purchases are
refunded (their points and any referral reward they qualified are clawed back).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import Channel, ConflictError, NotFoundError, ValidationError
from crmcore_loyalty.log import logger
from crmcore_loyalty.records import EARN, LINKED

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty

GIVEN = ["Ming", "Xiu", "Hao", "Lan", "Rui", "Ping", "Kai", "Ying", "Ada", "Ben", "Cleo", "Dev"]
FAMILY = ["Deng", "Feng", "Han", "Jiang", "Pan", "Song", "Tang", "Xie", "Ortiz", "Park"]


def simulate_day(loyalty: Loyalty, now: datetime, rng: random.Random, actor: str) -> None:
    """Act out the day; see the module docstring."""
    crm = loyalty.crm
    recent = crm.interactions.find(
        {"kind": "purchase", "occurred_at": {"$gt": now - timedelta(days=30), "$lte": now}},
        sort=[("occurred_at", 1)],
    )
    buyers = sorted({p.customer_id for p in recent})
    if buyers:
        _bring_friends(loyalty, now, rng, actor, buyers)
    _first_purchases(loyalty, rng)
    _redeem(loyalty, now, rng, actor)
    if recent and rng.random() < 0.3:
        _refund(loyalty, rng, recent)


def _bring_friends(
    loyalty: Loyalty, now: datetime, rng: random.Random, actor: str, buyers: list[str]
) -> None:
    crm = loyalty.crm
    count = (rng.random() < 0.7) + (rng.random() < 0.3)
    for _ in range(count):
        referrer = crm.customers.get(rng.choice(buyers))
        code = loyalty.referral_code(referrer.id, actor=actor, rng=rng)
        serial = f"{now:%m%d}{rng.randrange(10**6):06d}"
        friend: dict[str, Any] = {
            "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
            "phone": f"+86 139 {rng.randrange(10**8):08d}",
            "email": f"friend{serial}@example.org",
            "region": referrer.region,
            "owner": referrer.owner,
            "source": "referral",
        }
        try:
            loyalty.add_referred_customer(code, actor=actor, **friend)
        except (ValidationError, ConflictError) as exc:
            logger().info("referral refused", referrer=referrer.id, reason=str(exc))
    if rng.random() < 0.08:  # someone tries to refer themselves under a new record
        referrer = crm.customers.get(rng.choice(buyers))
        code = loyalty.referral_code(referrer.id, actor=actor, rng=rng)
        try:
            loyalty.add_referred_customer(
                code, actor=actor, name="Self Referrer", phone=referrer.phone, email=None
            )
        except ValidationError as exc:
            logger().info("self-referral refused", referrer=referrer.id, reason=str(exc))


def _first_purchases(loyalty: Loyalty, rng: random.Random) -> None:
    crm = loyalty.crm
    # only the referrals still waiting for a purchase (an index look-up), not all of them
    for referral in sorted(
        loyalty.referrals.awaiting_purchase(), key=lambda r: (r.linked_at, r.id)
    ):
        if referral.status != LINKED or rng.random() > 0.35:
            continue
        try:
            customer = crm.customers.get(referral.referred_id)
        except NotFoundError:  # merged meanwhile
            continue
        crm.interactions.log(
            actor=customer.owner or "demo-staff",
            customer_id=customer.id,
            kind="purchase",
            amount=round(rng.lognormvariate(5, 0.7), 2),
            summary="first order",
            channel=rng.choice(list(Channel)[:4]),
            rep=customer.owner,
        )


def _redeem(loyalty: Loyalty, now: datetime, rng: random.Random, actor: str) -> None:
    earners = sorted(
        {
            e.customer_id
            for e in loyalty.ledger.find({"kind": EARN, "at": {"$gt": now - timedelta(days=60)}})
        }
    )
    for customer_id in rng.sample(earners, min(len(earners), 4)):
        state = loyalty.ledger.state(customer_id)
        available = state.available(now)
        if available < 200 or rng.random() > 0.5:
            continue
        points = max(100, (rng.randint(100, available) // 50) * 50)
        try:
            loyalty.redeem(
                customer_id, min(points, available), actor=actor, note="redeemed at the counter"
            )
        except ValidationError as exc:
            logger().info("redemption refused", customer_id=customer_id, reason=str(exc))


def _refund(loyalty: Loyalty, rng: random.Random, recent: list) -> None:
    crm = loyalty.crm
    purchase = rng.choice(recent)
    if not purchase.amount:
        return
    already = [
        r
        for r in crm.interactions.for_customer(purchase.customer_id, kinds=["refund"])
        if r.ref == purchase.id
    ]
    if already:
        return
    amount = purchase.amount if rng.random() < 0.6 else round(purchase.amount / 2, 2)
    try:
        crm.interactions.log(
            actor=purchase.rep or "demo-staff",
            customer_id=purchase.customer_id,
            kind="refund",
            amount=amount,
            ref=purchase.id,
            summary="returned the goods",
        )
    except ValidationError:  # the customer was merged or erased meanwhile
        return
