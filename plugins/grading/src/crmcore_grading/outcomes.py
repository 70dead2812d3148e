"""Churn is counted, not only watched (DOMAIN §9): lost customers with a churn type and a
reason, won back by their next purchase, and the rates managers read over a period.

A customer is marked lost with ``mark_lost`` (``crm grade lost``): ``ext["grading"]["lost"]``
holds ``type`` (natural, malicious, competitive, negligent), ``reason``, ``at`` and ``by``,
and each loss is appended to ``ext["grading"]["outcomes"]``. Their next spend interaction
(``[grading.signals] spend_kinds``) wins them back: the outcome gets ``won_back_at`` and
``lost`` is cleared. Over [since, until):

- churn rate: customers lost in the period / customers active at its start;
- win-back rate: losses (before ``until``) won back in the period / losses open at the start
  or made in it;
- repeat-purchase rate: customers with two or more spend interactions in the period / those
  with at least one.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import CustomerStatus, ValidationError
from crmcore.converter import iso
from crmcore.customers import require_actor, resource
from crmcore_grading.engine import engine_for

if TYPE_CHECKING:
    from crmcore import CRM

CHURN_TYPES = ("natural", "malicious", "competitive", "negligent")
NAMESPACE = "grading"


@attrs.frozen
class ChurnMeasures:
    """The churn outcomes of one period."""

    since: datetime
    until: datetime
    active_at_start: int
    lost: int
    by_type: dict[str, int]
    losses_open: int
    won_back: int
    buyers: int
    repeat_buyers: int

    @property
    def churn_rate(self) -> float | None:
        return self.lost / self.active_at_start if self.active_at_start else None

    @property
    def win_back_rate(self) -> float | None:
        return self.won_back / self.losses_open if self.losses_open else None

    @property
    def repeat_purchase_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None


def mark_lost(
    crm: CRM,
    customer_id: str,
    *,
    actor: str,
    churn_type: str,
    reason: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """Record that the customer is lost (type and reason); returns the stored ``lost``."""
    actor = require_actor(actor)
    if churn_type not in CHURN_TYPES:
        raise ValidationError(
            f"unknown churn type {churn_type!r} (one of {', '.join(CHURN_TYPES)})", field="type"
        )
    if not (reason or "").strip():
        raise ValidationError(
            "say why the customer left (price, quality, a competitor …)", field="reason"
        )
    customer = crm.customers.get(customer_id, actor=actor)
    crm.authorize(actor, "customer.update", resource(customer))
    if customer.status is not CustomerStatus.ACTIVE:
        raise ValidationError(f"customer {customer_id} is {customer.status.value}")
    if (customer.ext.get(NAMESPACE) or {}).get("lost"):
        raise ValidationError(f"customer {customer_id} is already marked lost")
    when = at or crm.now()
    lost = {"type": churn_type, "reason": reason.strip(), "at": iso(when), "by": actor}

    def record(grading: dict[str, Any]) -> None:
        grading["lost"] = lost
        grading["outcomes"] = [*(grading.get("outcomes") or []), dict(lost)]

    engine_for(crm).regrade(customer_id, actor=actor, edit=record)
    return lost


def win_back(grading: dict[str, Any], at: str) -> None:
    """A spend interaction at ``at`` (stored ISO form) after the loss wins the customer back."""
    lost = grading.get("lost")
    if not lost or at <= lost.get("at", ""):
        return
    outcomes = [dict(o) for o in grading.get("outcomes") or []]
    if outcomes and outcomes[-1].get("at") == lost.get("at"):
        outcomes[-1]["won_back_at"] = at
    grading["outcomes"] = outcomes
    grading["lost"] = None


def measures(crm: CRM, since: datetime, until: datetime) -> ChurnMeasures:
    """Churn, win-back and repeat-purchase rates over [since, until)."""
    if until <= since:
        raise ValidationError("the period must end after it starts")
    lo, hi = iso(since), iso(until)
    active = lost = losses_open = won = 0
    by_type: Counter[str] = Counter()
    for customer in crm.customers.iter({"status": CustomerStatus.ACTIVE.value}):
        outcomes = (customer.ext.get(NAMESPACE) or {}).get("outcomes") or []
        created = iso(customer.created_at)
        lost_before = any(o["at"] < lo and (o.get("won_back_at") or "~") >= lo for o in outcomes)
        if created < lo and not lost_before:
            active += 1
        for o in outcomes:
            if lo <= o["at"] < hi:
                lost += 1
                by_type[o["type"]] += 1
            if o["at"] < hi and (o.get("won_back_at") or "~") >= lo:
                losses_open += 1
                if lo <= (o.get("won_back_at") or "~") < hi:
                    won += 1
    spend_kinds = engine_for(crm).settings.signals.spend_kinds
    counts: Counter[str] = Counter()
    for interaction in crm.interactions.iter(
        {"kind": {"$in": list(spend_kinds)}, "occurred_at": {"$gte": since, "$lt": until}}
    ):
        counts[interaction.customer_id] += 1
    return ChurnMeasures(
        since=since,
        until=until,
        active_at_start=active,
        lost=lost,
        by_type=dict(by_type),
        losses_open=losses_open,
        won_back=won,
        buyers=len(counts),
        repeat_buyers=sum(1 for n in counts.values() if n >= 2),
    )
