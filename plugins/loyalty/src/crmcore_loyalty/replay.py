"""History replayed in batches (``crm_interactions_replayed``): loyalty's fold.

A batch of imported interactions gives the same ledger, accounts, tiers and asks as the
per-row path (``earning.on_interaction`` once per row, in time order), with fewer reads and
writes:

- A customer whose batch is *simple* is folded in memory: their ledger and account are read
  once; each purchase earns at the tier the account holds at that moment, each flat-point
  kind earns likewise, and the tier is evaluated after each event as ``Tiers.evaluate`` does
  (qualifying value over the rolling window ending at the event, upgrades at once, downgrades
  at the review date). Writes wait for the end of the batch and go into the batch's own
  transaction: every folded customer's entries in one bulk insert, then each account (its
  running balance, sequence and tier) and the tier mirrored into ``customer.ext["loyalty"]``
  once per customer; a tier change is announced
  (``crm_tier_changed``) when it happens, at the event's time, with the customer as it is
  then (its ``ext["loyalty"]`` holding the new tier, which its perks are read from).
- Everyone else is named in ``crm_replay_per_row`` and goes through ``on_interaction`` (and
  every other plugin) row by row, as live: customers with a refund in the batch, customers
  taking part in a referral linked to someone in the batch (a first purchase qualifying a
  referral, the referrer's reward and its cap), events recent enough to draft a referral
  ask, and every customer when ``[loyalty.tiers] from_grades`` is set (a tier then also
  follows grading).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import Customer, Interaction
from crmcore.converter import to_doc
from crmcore_loyalty.earning import on_interaction, points_for
from crmcore_loyalty.records import (
    EARN,
    LINKED,
    REFERRALS,
    Account,
    LedgerEntry,
    Referral,
    account_id,
    entry_key,
)
from crmcore_loyalty.tiers import NAMESPACE, ext_values, qualifying_points, refund_amount

if TYPE_CHECKING:
    from crmcore_loyalty.api import Loyalty


def per_row(
    loyalty: Loyalty, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """``crm_replay_per_row``: the customers whose rows go through ``on_interaction`` one by
    one (module docstring)."""
    return sorted(_per_event(loyalty, events, customers))


def fold(
    loyalty: Loyalty,
    events: Sequence[Interaction],
    customers: Mapping[str, Customer],
    *,
    actor: str,
) -> None:
    """React to a batch of replayed ``events`` (whole customers' histories, each in time
    order) as ``on_interaction`` would. What the fold reads is read once for the batch."""
    by_customer: dict[str, list[Interaction]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    position = {e.id: i for i, e in enumerate(events)}
    ledger = loyalty.ledger
    accounts = {
        a.customer_id: a
        for a in ledger.accounts({"id": {"$in": [account_id(c) for c in sorted(by_customer)]}})
    }
    folds = []
    for customer_id, mine in by_customer.items():
        one = _Fold(
            loyalty, customers[customer_id], mine, position, actor, accounts.get(customer_id)
        )
        one.run()
        folds.append(one)
    # Written once for the batch, in the batch's transaction (a transaction of its own when
    # called outside one): every customer's new entries in one bulk insert, then each
    # account (with the version read) and each ``ext`` mirror (coalesced by the core).
    # A customer with spend totals has this batch's purchases counted in them (a customer
    # without builds them at their next purchase, from every stored interaction).
    totals = loyalty.totals.of_many(by_customer)
    now = loyalty.crm.now()
    with loyalty.crm.transaction(actor):
        ledger.insert_entries([doc for one in folds for doc in one.new_docs])
        for one in folds:
            one.flush()
        for customer_id in sorted(totals):
            loyalty.totals.record_all(customer_id, by_customer[customer_id], now=now, create=False)


def _per_event(
    loyalty: Loyalty, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> set[str]:
    """The customers whose events go through ``on_interaction`` one by one (module doc)."""
    crm = loyalty.crm
    settings = loyalty.settings
    if settings.tiers.from_grades:
        return set(customers)
    wall = crm.wall_now()
    window = timedelta(hours=max(settings.asks.after_purchase_due_hours, 24))
    out = set()
    for event in events:
        if event.kind == "refund" or event.occurred_at + window >= wall:
            out.add(event.customer_id)
    if settings.referral.reward_stage == "first_purchase":
        ids = sorted(customers)
        for referral in crm.records(REFERRALS, Referral).find({"referred_id": {"$in": ids}}):
            if referral.status == LINKED:
                out.update((referral.referred_id, referral.referrer_id))
    return out


class _Fold:
    """One simple customer's batch, folded in memory (see the module docstring)."""

    def __init__(
        self,
        loyalty: Loyalty,
        customer: Customer,
        mine: list[Interaction],
        position: Mapping[str, int],
        actor: str,
        account: Account | None,
    ) -> None:
        self.loyalty = loyalty
        self.crm = loyalty.crm
        self.settings = loyalty.settings
        self.customer = customer
        self.customer_id = customer.id
        self.mine = mine
        self.actor = actor
        self.position = position
        self.stored = account is not None
        if account is None:  # every posting writes the account: no account, no entries
            account = Account(id=account_id(customer.id), customer_id=customer.id)
            entries: list[LedgerEntry] = []
        else:
            entries = loyalty.ledger.find({"customer_id": customer.id})
        self.stored_account = self.account = account
        self.entries = sorted(entries, key=lambda e: (e.seq, e.at, e.id))
        if self.entries and self.entries[-1].seq > account.seq:  # joined by a merge
            self.account = attrs.evolve(account, seq=self.entries[-1].seq)
        self.keys = {e.key for e in entries}
        self.balance = sum(e.points for e in entries)  # the running balance, from the ledger
        self.new_docs: list[dict[str, Any]] = []
        # only loyalty writes ext["loyalty"]: as before the batch, it is as now
        self.ext = dict(customer.ext.get(NAMESPACE, {}))
        self.ext_at: datetime | None = None  # when the mirror last changed
        self._spend_rows: list[Interaction] | None = None
        # a batch committed on the account but not fully inserted (a crash on a backend
        # without transactions): rolled forward by the careful path
        self.unflushed = any(doc["key"] not in self.keys for doc in account.pending)

    @property
    def spend_rows(self) -> list[Interaction]:
        """The customer's purchases and refunds, newest first (as ``for_customer``): this
        batch's own when nothing else of theirs is stored, else read."""
        if self._spend_rows is None:
            kinds = [*self.settings.earn.purchase_kinds, "refund"]
            crm = self.crm
            if crm.interactions.count({"customer_id": self.customer_id}) == len(self.mine):
                mine = [e for e in self.mine if e.kind in kinds]
                self._spend_rows = sorted(mine, key=lambda e: e.occurred_at, reverse=True)
            else:
                first = self.mine[0].occurred_at - timedelta(days=self.settings.tiers.window_days)
                self._spend_rows = crm.interactions.for_customer(
                    self.customer_id, kinds=kinds, since=first
                )
        return self._spend_rows

    # -- the events ------------------------------------------------------------------------

    def run(self) -> None:
        if self.unflushed:  # a crashed batch to roll forward first: the careful path
            for event in self.mine:
                with self.crm.replay_at(event.occurred_at):
                    customer = self.crm.customers.get(event.customer_id)
                    effects = on_interaction(
                        self.loyalty, event, customer, actor=self.actor, now=event.occurred_at
                    )
                    self.crm.apply(effects, actor=self.actor)
            self.new_docs = []
            self.stored_account = self.account  # written by the careful path itself
            return
        paid = self.settings.earn.purchase_kinds
        flat = self.settings.earn.kind_points
        for event in self.mine:
            when = event.occurred_at
            moved = False
            if event.kind in paid:
                if event.amount:
                    moved = self._earn(
                        event,
                        f"purchase:{event.id}",
                        event.amount,
                        self.settings.earn.points_per_currency,
                        "purchase",
                        f"purchase of {event.amount:.2f}",
                    )
            elif event.kind in flat:
                moved = self._earn(
                    event, f"{event.kind}:{event.id}", flat[event.kind], 1.0, event.kind, ""
                )
            if moved or event.kind in paid:
                self._evaluate(event, when)

    def _earn(
        self, event: Interaction, source: str, value: float, rate: float, reason: str, note: str
    ) -> bool:
        key = entry_key(EARN, source)
        if key in self.keys:
            return False
        credit = points_for(value, rate, self.loyalty.tiers.multiplier_of(self.account))
        if credit <= 0:
            return False
        when = event.occurred_at
        with self.crm.replay_at(when):
            entry_id = self.crm.new_id("lpe_")
        entry = LedgerEntry(
            id=entry_id,
            customer_id=self.customer_id,
            kind=EARN,
            points=credit,
            source=source,
            key=key,
            reason=reason,
            at=when,
            actor=self.actor,
            seq=self.account.seq + 1,
            expires_at=self.loyalty.ledger.lifetime(when),
            ref=event.id,
            note=note,
        )
        doc = to_doc(entry)
        self.entries.append(entry)
        self.keys.add(key)
        self.new_docs.append(doc)
        self.balance += credit
        self.account = attrs.evolve(
            self.account,
            seq=entry.seq,
            pending=self.loyalty.ledger.pending_of([doc]),
            balance=self.balance,
        )
        return True

    # -- tiers (``Tiers.evaluate`` on the account in memory) ---------------------------------

    def _qualifying(self, event: Interaction, now: datetime) -> float:
        since = now - timedelta(days=self.settings.tiers.window_days)
        if self.settings.tiers.basis == "spend":
            return self._spend(event, since, now)
        return qualifying_points(self.entries, since, now)

    def _spend(self, event: Interaction, since: datetime, now: datetime) -> float:
        paid = self.settings.earn.purchase_kinds
        here = self.position[event.id]
        spend = 0.0
        for i in self.spend_rows:
            if i.occurred_at <= since or i.occurred_at > now:
                continue
            if self.position.get(i.id, -1) > here:
                continue  # stored with this batch, but not yet logged at this event
            if i.kind in paid:
                spend += i.amount or 0.0
            else:
                spend -= refund_amount(self.crm, i.amount, i.ref)
        return round(max(0.0, spend), 2)

    def _evaluate(self, event: Interaction, when: datetime) -> None:
        tiers = self.loyalty.tiers
        review = timedelta(days=self.settings.tiers.review_days)
        account = self.account
        level = tiers.target(self._qualifying(event, when))
        new = level.name if level else None
        current_rank = self.settings.rank(account.tier)
        known = account.tier is None or current_rank > 0
        target_rank = self.settings.rank(new)
        review_due = account.tier_review_at is None or when >= account.tier_review_at
        changes: dict[str, Any] = {}
        if target_rank > current_rank or not known or (target_rank < current_rank and review_due):
            changes = {
                "tier": new,
                "tier_since": when if new else None,
                "tier_review_at": when + review if new else None,
            }
        elif account.tier is not None and review_due:
            changes = {"tier_review_at": when + review}
        if changes:
            self.account = attrs.evolve(account, **changes)
        self._mirror(when)
        if changes and self.account.tier != account.tier:
            events = self.crm.events
            if not events.listened(events.tier_changed):
                return
            # listeners get the customer with the tier in ext (its perks), as live
            ext = {**self.customer.ext, NAMESPACE: dict(self.ext)}
            with self.crm.replay_at(when):
                events.tier_changed(
                    actor=self.actor,
                    customer=attrs.evolve(self.customer, ext=ext),
                    old=account.tier,
                    new=self.account.tier,
                )

    def _mirror(self, when: datetime) -> None:
        values = ext_values(self.account)
        if all(self.ext.get(k) == v for k, v in values.items()):
            return
        if self.account.tier is None and "tier" not in self.ext:
            return
        self.ext.update(values)
        self.ext_at = when

    # -- writing ---------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the account and the ext mirror the fold holds (its new entries are inserted
        by ``fold`` with every other customer's of the batch, in the same transaction)."""
        if self.account != self.stored_account:
            fields = {
                k: v
                for k, v in attrs.asdict(self.account, recurse=False).items()
                if k not in ("id", "version", "customer_id")
            }
            self.stored_account = self.loyalty.ledger.update_account(
                self.stored_account, self.stored, **fields
            )
            self.stored = True
            self.account = self.stored_account
        self.new_docs = []
        self._flush_ext()

    def _flush_ext(self) -> None:
        crm = self.crm
        if self.ext_at is not None:
            with crm.replay_at(self.ext_at):
                crm.customers.patch_ext(
                    self.customer_id,
                    NAMESPACE,
                    {k: self.ext[k] for k in ("tier", "tier_since", "tier_review_at")},
                    actor=self.actor,
                )
            self.ext_at = None


__all__ = ["fold"]
