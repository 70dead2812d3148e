"""The worker's sweeps: expiry, expiry reminders, "proven" referral asks, tier reviews.

Each sweep covers a window of time and remembers how far it got in a shared ``Cursor`` record,
so a sweep never rescans old data. Everything a sweep does is idempotent (ledger keys, task
dedupe keys, optimistic locking on accounts), so several workers may sweep at once, and a
sweep that dies half-way is simply redone by the next one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore import (
    ConflictError,
    CustomerStatus,
    DuplicateKeyError,
    NotFoundError,
    Priority,
    TaskDraft,
)
from crmcore.converter import iso
from crmcore.i18n import msg
from crmcore_loyalty.log import logger
from crmcore_loyalty.records import ACCOUNTS, ADJUST, CURSORS, EARN, Account, Cursor

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty

REMINDER_KIND = "points_expiry"


def reminder_key(customer_id: str) -> str:
    return f"{REMINDER_KIND}:{customer_id}"


class Sweeps:
    """What ``crm_tick`` runs."""

    def __init__(self, loyalty: Loyalty) -> None:
        self._loyalty = loyalty
        self._crm = loyalty.crm
        self._cursors = self._crm.records(CURSORS, Cursor)
        self._accounts = self._crm.records(ACCOUNTS, Account)

    def _cursor(self, name: str) -> tuple[Cursor, bool]:
        try:
            return self._cursors.get(name), True
        except NotFoundError:
            return Cursor(id=name), False

    def _advance(self, cursor: Cursor, stored: bool, through: datetime) -> None:
        """Move a cursor forward (never back); losing a race to another worker is fine."""
        if cursor.through is not None and cursor.through >= through:
            return
        try:
            if stored:
                self._cursors.update(cursor, through=through)
            else:
                self._cursors.insert(Cursor(id=cursor.id, through=through))
        except (ConflictError, DuplicateKeyError):
            logger().debug("cursor moved by another worker", cursor=cursor.id)

    def run(self, now: datetime, *, actor: str) -> list[TaskDraft]:
        """Every sweep once; returns the tasks to create."""
        self.expire(now, actor=actor)
        drafts = self.reminders(now)
        drafts += self.proven_asks(now)
        self.reviews(now, actor=actor)
        return drafts

    def expire(self, now: datetime, *, actor: str) -> int:
        """Post expire entries for every lot whose date has come; returns how many."""
        cursor, stored = self._cursor("expiry")
        query: dict = {"kind": {"$in": [EARN, ADJUST]}, "expires_at": {"$lte": now}}
        if cursor.through is not None:
            query["expires_at"]["$gt"] = cursor.through
        customers = sorted({e.customer_id for e in self._loyalty.ledger.iter(query)})
        count = 0
        for customer_id in customers:
            count += len(self._loyalty.ledger.expire_due(customer_id, actor=actor, now=now))
        self._advance(cursor, stored, now)
        return count

    def reminders(self, now: datetime) -> list[TaskDraft]:
        """A task to remind each customer whose points expire within ``reminder_days``."""
        days = self._loyalty.settings.expiry.reminder_days
        if not days or not self._loyalty.settings.expiry.days:
            return []
        horizon = now + timedelta(days=days)
        cursor, stored = self._cursor("reminder")
        query: dict = {"kind": {"$in": [EARN, ADJUST]}, "expires_at": {"$lte": horizon}}
        if cursor.through is not None:
            query["expires_at"]["$gt"] = cursor.through
        customers = sorted({e.customer_id for e in self._loyalty.ledger.iter(query)})
        drafts = []
        for customer_id in customers:
            draft = self._reminder(customer_id, now, horizon)
            if draft is not None:
                drafts.append(draft)
        self._advance(cursor, stored, horizon)
        return drafts

    def _reminder(self, customer_id: str, now: datetime, horizon: datetime) -> TaskDraft | None:
        try:
            customer = self._crm.customers.get(customer_id)
        except NotFoundError:
            return None
        if customer.do_not_contact:
            return None
        state = self._loyalty.ledger.state(customer_id)
        soon = [
            lot
            for lot in state.lots.values()
            if lot.remaining > 0 and lot.expires_at and now < lot.expires_at <= horizon
        ]
        if not soon:
            return None
        points = sum(lot.remaining for lot in soon)
        first = min(lot.expires_at for lot in soon if lot.expires_at)
        return TaskDraft(
            kind=REMINDER_KIND,
            title=msg(
                "Remind the customer: %(points)s points expire from %(day)s",
                points=points,
                day=first.date().isoformat(),
            ),
            due_at=now,
            customer_id=customer_id,
            assignee=customer.owner,
            priority=Priority.NORMAL,
            dedupe_key=reminder_key(customer_id),
            source="loyalty",
            ext={"loyalty": {"points": points, "expires_at": iso(first)}},
        )

    def proven_asks(self, now: datetime) -> list[TaskDraft]:
        """Ask customers whose purchase has proven itself (no complaint, no refund since)."""
        asks = self._loyalty.settings.asks
        if not asks.enabled:
            return []
        upper = now - timedelta(days=asks.proven_after_days)
        cursor, stored = self._cursor("proven")
        lower = cursor.through if cursor.through is not None else upper - timedelta(days=1)
        drafts: list[TaskDraft] = []
        asked: set[str] = set()
        for purchase in self._crm.interactions.find(
            {
                "kind": {"$in": self._loyalty.settings.earn.purchase_kinds},
                "occurred_at": {"$gt": lower, "$lte": upper},
            },
            sort=[("occurred_at", 1)],
        ):
            if purchase.customer_id in asked:
                continue
            try:
                customer = self._crm.customers.get(purchase.customer_id)
            except NotFoundError:
                continue
            if customer.status is not CustomerStatus.ACTIVE:
                continue
            since = {"$gte": purchase.occurred_at}
            if self._crm.interactions.count(
                {"customer_id": customer.id, "kind": "complaint", "occurred_at": since}
            ):
                continue
            if any(
                r.ref == purchase.id
                for r in self._crm.interactions.for_customer(
                    customer.id, kinds=["refund"], since=purchase.occurred_at
                )
            ):
                continue
            draft = self._loyalty.asks.draft(
                customer,
                "proven",
                ref=purchase.id,
                now=now,
                code=self._loyalty.referrals.code_of(customer.id),
            )
            if draft is not None:
                drafts.append(draft)
                asked.add(customer.id)
        self._advance(cursor, stored, upper)
        return drafts

    def reviews(self, now: datetime, *, actor: str) -> int:
        """Re-tier customers whose review date has come (downgrades happen only here)."""
        changed = 0
        for account in self._accounts.find({"tier_review_at": {"$lte": now}}):
            try:
                self._crm.customers.get(account.customer_id)
            except NotFoundError:
                continue
            if self._loyalty.tiers.evaluate(account.customer_id, actor=actor, now=now):
                changed += 1
        return changed
