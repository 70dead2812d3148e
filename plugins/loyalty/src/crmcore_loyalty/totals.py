"""Running spend totals for tier qualification: a purchase costs the same whatever the history.

A tier's qualifying spend is the customer's purchases less refunds over the rolling window
``(now - window_days, now]`` (``tiers``). Loyalty keeps per customer a few fields on their
``loyalty.accounts`` record (``Account.spend_*``, read as a ``WindowTotals``) instead of
reading the customer's interactions at every purchase:

- ``micros``: the sum, in millionths of the currency, of the *lines* (a purchase's amount, a
  refund's amount taken back) of the customer's stored interactions with
  ``edge < occurred_at <= top``;
- ``edge``: moves with the window's start (never back); ``top``: the latest line counted;
- ``first``: no line counted lies before it (so a window's start below it needs no read);
- ``kinds``: the purchase kinds (and this record's form) it was written under.

A purchase logged now (after ``top``) adds its line; when the window's start passes
``first``, the lines it leaves behind are read back through the interactions' ``(customer,
occurred_at)`` index and taken off. The record never grows with the history, and nothing is
read in the common case. A line at or before ``top`` (a back-dated purchase, a replayed
event, a history import) rebuilds the record from the interactions in the window, which also
makes a replay change nothing. A purchase that earns points counts its line in the same
account write as its points (``account_changes``, the earn's ``also``): one loyalty record
read and written per purchase. The spend over ``(since, now]`` is ``micros`` less the lines
in ``(edge, since]`` and ``(now, top]`` (read only when ``first`` or ``top`` says there may
be any); a window reaching before ``edge`` (a longer ``window_days``, a past instant) is
read from the history.

Rebuild (``Totals.rebuild``): the totals recomputed from the interactions in the window. A
purchase or refund rebuilds them when the customer has none (a store from before them, whose
totals were records of their own in ``loyalty.totals``: no longer read; a restored export),
or the purchase kinds in the settings changed; a merge rebuilds the kept customer's. Until
then ``spend`` reads the history (a read never writes). ``rebuild_all`` rebuilds every
customer's and deletes the old ``loyalty.totals`` records (``crm loyalty rebuild``, which
``crm db upgrade`` points to).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import ConflictError, Interaction, NotFoundError
from crmcore_loyalty.ledger import MAX_ATTEMPTS
from crmcore_loyalty.records import (
    ACCOUNTS,
    SPEND_FIELDS,
    TOTALS,
    Account,
    WindowTotals,
    account_id,
)

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_loyalty.settings import LoyaltySettings

#: The totals' form (part of ``kinds``): totals of another form are rebuilt.
FORM = "2"
MICROS = 1_000_000


def kinds_key(settings: LoyaltySettings) -> str:
    """What the record depends on: its form and the purchase kinds (a change rebuilds)."""
    return FORM + "|" + ",".join(sorted(settings.earn.purchase_kinds))


def micros_of(crm: CRM, interaction: Interaction, purchase_kinds: Iterable[str]) -> int:
    """What ``interaction`` adds to its customer's spend, in millionths (0: it does not count).

    A purchase counts its amount; a refund takes back its amount, or without one the whole
    purchase it names (``tiers.refund_amount``)."""
    if interaction.kind in purchase_kinds:
        value = float(interaction.amount or 0.0)
    elif interaction.kind == "refund":
        from crmcore_loyalty.tiers import refund_amount

        value = -refund_amount(crm, interaction.amount, interaction.ref)
    else:
        return 0
    return round(value * MICROS)


def view(account: Account | None) -> WindowTotals | None:
    """The spend totals ``account`` keeps (None: none kept yet)."""
    if account is None or not account.spend_kinds:
        return None
    return WindowTotals(
        id=account.id,
        customer_id=account.customer_id,
        micros=account.spend_micros,
        edge=account.spend_edge,
        top=account.spend_top,
        first=account.spend_first,
        kinds=account.spend_kinds,
        version=account.version,
    )


def _on_account(fields: dict[str, Any]) -> dict[str, Any]:
    """``WindowTotals`` fields as the ``Account`` fields that hold them."""
    return {SPEND_FIELDS[k]: v for k, v in fields.items()}


def spend_of(micros: int) -> float:
    """Micros as the spend tiers compare: rounded to cents, never below 0."""
    return round(max(0.0, micros / MICROS), 2)


class Totals:
    """Each customer's running spend, on their ``loyalty.accounts`` record (``spend_*``)."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._accounts = crm.records(ACCOUNTS, Account)

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    def _account(self, customer_id: str) -> Account | None:
        try:
            return self._accounts.get(account_id(customer_id))
        except NotFoundError:
            return None

    def of(self, customer_id: str) -> WindowTotals | None:
        """The customer's totals, or None (none kept yet)."""
        return view(self._account(customer_id))

    def of_many(self, customer_ids: Iterable[str]) -> dict[str, WindowTotals]:
        """The totals of several customers, by customer id (one query)."""
        ids = sorted({account_id(c) for c in customer_ids})
        found = self._accounts.find({"id": {"$in": ids}}) if ids else []
        return {a.customer_id: t for a in found if (t := view(a)) is not None}

    # -- reading ---------------------------------------------------------------------------

    def _lines(
        self, customer_id: str, after: datetime | None, upto: datetime | None, *, limit: int = 0
    ) -> list[Interaction]:
        """The customer's purchases and refunds with ``after < occurred_at <= upto``, oldest
        first (through the ``(customer_id, occurred_at)`` index)."""
        when: dict[str, Any] = {}
        if after is not None:
            when["$gt"] = after
        if upto is not None:
            when["$lte"] = upto
        query: dict[str, Any] = {
            "customer_id": customer_id,
            "kind": {"$in": [*self.settings.earn.purchase_kinds, "refund"]},
        }
        if when:
            query["occurred_at"] = when
        return self._crm.interactions.find(query, sort=[("occurred_at", 1)], limit=limit or None)

    def _sum(self, interactions: Iterable[Interaction]) -> int:
        paid = self.settings.earn.purchase_kinds
        return sum(micros_of(self._crm, i, paid) for i in interactions)

    def spend(self, customer_id: str, since: datetime, now: datetime) -> float:
        """Purchases less refunds in ``(since, now]``: from the totals, or from the history
        when they cannot answer (none kept, kept under other purchase kinds, or ``since``
        before their edge)."""
        record = self.of(customer_id)
        if record is None or not self._answers(record, since):
            return spend_of(self._sum(self._lines(customer_id, since, now)))
        micros = record.micros
        if record.first is not None and record.first <= since:  # lines left the window
            micros -= self._sum(self._lines(customer_id, record.edge, since))
        if record.top is not None and record.top > now:  # lines after ``now``
            micros -= self._sum(self._lines(customer_id, max(now, since), record.top))
        return spend_of(micros)

    # -- writing ---------------------------------------------------------------------------

    def record(self, interaction: Interaction, *, now: datetime) -> None:
        """Count ``interaction``'s line (nothing if it does not count) and move the window's
        start to ``now``'s."""
        self.record_all(interaction.customer_id, [interaction], now=now)

    def record_all(
        self,
        customer_id: str,
        interactions: Iterable[Interaction],
        *,
        now: datetime,
        create: bool = True,
    ) -> None:
        """Count the lines of several stored interactions of one customer with one write (a
        history import folding a customer's events); as ``record`` otherwise. ``create``:
        False leaves a customer without totals without them (their next purchase builds them).
        Retries when another writer got there first (a replay racing a live event)."""
        events = self._counted(customer_id, interactions)
        if not events:
            return
        for _attempt in range(MAX_ATTEMPTS):
            try:
                self._record(customer_id, events, now, create)
                return
            except ConflictError:
                continue
        raise ConflictError(
            f"customer {customer_id}: the spend totals kept changing underneath "
            f"({MAX_ATTEMPTS} attempts); try again"
        )

    def account_changes(
        self, account: Account, interaction: Interaction, *, now: datetime
    ) -> dict[str, Any]:
        """The ``Account`` fields that count ``interaction`` on top of the totals ``account``
        holds, for a posting that writes the account anyway (a purchase's earn: one write);
        empty when there is nothing to count or the totals must be rebuilt from the history
        (none kept, other kinds, a back-dated or replayed line): ``record`` then does it."""
        events = self._counted(account.customer_id, [interaction])
        current = view(account)
        if not events or current is None:
            return {}
        moved = self._advance(account.customer_id, current, events, now)
        return {} if moved is None else _on_account(moved)

    def _counted(self, customer_id: str, interactions: Iterable[Interaction]) -> list[Interaction]:
        paid = self.settings.earn.purchase_kinds
        events = []
        for interaction in interactions:
            if interaction.customer_id != customer_id:
                raise ValueError(f"interaction {interaction.id} is not of customer {customer_id}")
            if interaction.kind in paid or interaction.kind == "refund":
                events.append(interaction)
        return events

    def _record(
        self, customer_id: str, events: list[Interaction], now: datetime, create: bool
    ) -> None:
        account = self._account(customer_id)
        current = view(account)
        if current is None and not create:
            return
        moved = None if current is None else self._advance(customer_id, current, events, now)
        if moved is None:
            # new, stale, or a line that may be counted already (a replay) or falls among
            # counted ones (back-dated): recomputed from the window's interactions
            self._rebuilt(customer_id, account, now)
            return
        assert account is not None
        self._accounts.update(account, **_on_account(moved))

    def _advance(
        self, customer_id: str, current: WindowTotals, events: list[Interaction], now: datetime
    ) -> dict[str, Any] | None:
        """``current`` with ``events`` counted and the window's start moved to ``now``'s
        (``micros``, ``edge``, ``top``, ``first``); None when it must be rebuilt instead."""
        edge = self._edge(now, current.edge)
        if not self._answers(current, edge) or (
            current.top is not None and any(e.occurred_at <= current.top for e in events)
        ):
            return None
        paid = self.settings.earn.purchase_kinds
        micros, first, top = current.micros, current.first, current.top
        assert current.edge is not None  # ``_answers``
        for event in events:
            if event.occurred_at > current.edge:
                micros += micros_of(self._crm, event, paid)
                first = event.occurred_at if first is None else min(first, event.occurred_at)
            top = event.occurred_at if top is None else max(top, event.occurred_at)
        if first is not None and first <= edge:  # the window's start passed lines: off
            assert top is not None
            micros -= self._sum(self._lines(customer_id, current.edge, min(edge, top)))
            nxt = self._lines(customer_id, edge, top, limit=1)
            first = nxt[0].occurred_at if nxt else None
        return {"micros": micros, "edge": edge, "top": top, "first": first}

    def rebuild(self, customer_id: str, *, now: datetime | None = None) -> WindowTotals:
        """Recompute the customer's totals from their stored interactions, and store them."""
        return self._rebuilt(customer_id, self._account(customer_id), now or self._crm.now())

    def _rebuilt(self, customer_id: str, account: Account | None, now: datetime) -> WindowTotals:
        edge = now - timedelta(days=self.settings.tiers.window_days)
        lines = self._lines(customer_id, edge, None)
        fields: dict[str, Any] = {
            "micros": self._sum(lines),
            "edge": edge,
            "top": max((i.occurred_at for i in lines), default=None),
            "first": min((i.occurred_at for i in lines), default=None),
            "kinds": kinds_key(self.settings),
        }
        current = view(account)
        if account is None:
            account = self._accounts.insert(
                Account(id=account_id(customer_id), customer_id=customer_id, **_on_account(fields))
            )
        elif current is None or any(getattr(current, k) != v for k, v in fields.items()):
            account = self._accounts.update(account, **_on_account(fields))
        # else: nothing changed (a replayed event): no write
        made = view(account)
        assert made is not None
        return made

    def rebuild_all(self) -> int:
        """Rebuild every customer's totals (``crm loyalty rebuild``), and delete the records
        of the earlier stores' own ``loyalty.totals`` collection; how many customers."""
        done = 0
        for customer in self._crm.customers.iter():
            self.rebuild(customer.id)
            done += 1
        old = self._crm.collection(TOTALS)
        for doc in list(old.iter()):
            old.delete(doc["id"])
        return done

    def _answers(self, record: WindowTotals, since: datetime | None) -> bool:
        if record.kinds != kinds_key(self.settings) or record.edge is None:
            return False
        return since is None or since >= record.edge

    def _edge(self, now: datetime, current: datetime | None) -> datetime:
        """The window's start at ``now``; it never moves back."""
        edge = now - timedelta(days=self.settings.tiers.window_days)
        return edge if current is None or edge > current else current
