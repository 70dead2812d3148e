""" "Ask for a referral" tasks at the three moments of DOMAIN §6.

1. ``purchase``: right after a purchase (due ``after_purchase_due_hours`` later).
2. ``praise``: an interaction with satisfaction at or above ``satisfaction_threshold``.
3. ``proven``: ``proven_after_days`` after a purchase with no complaint and no refund of it in
   between (found by the worker sweep).

A customer is asked at most once per ``cooldown_days`` (counting every ask task made, whatever
became of it), never while ``do_not_contact`` is set, and not within
``quiet_after_complaint_days`` of a complaint. One open ask per customer (task dedupe key
``referral_ask:<customer id>``), enforced by the core across workers.

An event older than the ask's window (``after_purchase_due_hours``, at least a day) at the
present (``crm.wall_now()``, the real time also while history is imported) gets no ask: nobody
asks for a referral right after a purchase made years ago. Points, tiers and referral rewards of
that history are still posted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore import Customer, CustomerStatus, Priority, TaskDraft
from crmcore.i18n import N_, msg
from crmcore_loyalty.settings import LoyaltySettings

if TYPE_CHECKING:
    from crmcore import CRM

ASK_KIND = "referral_ask"
MOMENTS = {  # the ask's title (shown in the reader's language: a message id)
    "purchase": N_("Ask for a referral: they have just bought"),
    "praise": N_("Ask for a referral: they praised the service"),
    "proven": N_("Ask for a referral: the purchase has proven itself"),
}


def ask_key(customer_id: str) -> str:
    return f"{ASK_KIND}:{customer_id}"


class Asks:
    """Decide whether to ask a customer for a referral now, and draft the task."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    def draft(
        self,
        customer: Customer,
        moment: str,
        *,
        ref: str | None,
        now: datetime,
        code: str | Callable[[], str | None] | None = None,
        event_at: datetime | None = None,
    ) -> TaskDraft | None:
        """The ask task for ``moment``, or None when the rules say not to ask now (also when
        the event at ``event_at`` is older than the ask's window at the present). ``code``
        may be a function: called only when an ask is drafted."""
        asks = self.settings.asks
        if moment not in MOMENTS:
            raise ValueError(f"unknown ask moment {moment!r}")
        if not asks.enabled or (moment == "purchase" and not asks.after_purchase):
            return None
        if customer.do_not_contact or customer.status is not CustomerStatus.ACTIVE:
            return None
        if (
            event_at is not None
            and event_at + timedelta(hours=max(asks.after_purchase_due_hours, 24))
            < self._crm.wall_now()
        ):
            return None  # an old event (logged late, or history imported): the moment passed
        if self._crm.tasks.count({"open_key": ask_key(customer.id)}):
            return None  # one is open: a draft would be skipped (one index look-up, no decode)
        if self._crm.tasks.count(
            {
                "kind": ASK_KIND,
                "customer_id": customer.id,
                "created_at": {"$gt": now - timedelta(days=asks.cooldown_days)},
            }
        ):
            return None
        if asks.quiet_after_complaint_days and self._crm.interactions.count(
            {
                "customer_id": customer.id,
                "kind": "complaint",
                "occurred_at": {"$gt": now - timedelta(days=asks.quiet_after_complaint_days)},
            }
        ):
            return None
        due = now + timedelta(hours=asks.after_purchase_due_hours) if moment == "purchase" else now
        if callable(code):
            code = code()
        notes = f"Their referral code: {code}." if code else ""
        return TaskDraft(
            kind=ASK_KIND,
            title=msg(MOMENTS[moment]),
            due_at=due,
            customer_id=customer.id,
            assignee=customer.owner,
            priority=Priority.NORMAL,
            dedupe_key=ask_key(customer.id),
            source="loyalty",
            ref=ref,
            notes=notes,
            ext={"loyalty": {"moment": moment, "referral_code": code}},
        )
