"""Running spend totals for tier qualification: a purchase costs the same whatever the history.

A tier's qualifying spend is the customer's purchases less refunds over the rolling window
``(now - window_days, now]`` (``tiers``). Loyalty keeps per customer one small
``loyalty.totals`` record instead of reading the customer's interactions at every purchase:

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
makes a replay change nothing. The spend over ``(since, now]`` is ``micros`` less the lines
in ``(edge, since]`` and ``(now, top]`` (read only when ``first`` or ``top`` says there may
be any); a window reaching before ``edge`` (a longer ``window_days``, a past instant) is
read from the history.

Rebuild (``Totals.rebuild``): the record recomputed from the interactions in the window. A
purchase or refund rebuilds it when the customer has none (a store from before it, a
restored export), the purchase kinds in the settings changed, or the record has another form
(``lines``, before this one); a merge rebuilds the kept customer's. Until then ``spend`` reads
the history (a read never writes). ``rebuild_all`` rebuilds every customer's (``crm loyalty
rebuild``, which ``crm db upgrade`` points to).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import ConflictError, Interaction, NotFoundError
from crmcore.converter import from_doc, to_doc
from crmcore_loyalty.ledger import MAX_ATTEMPTS
from crmcore_loyalty.records import TOTALS, WindowTotals, totals_id

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_loyalty.settings import LoyaltySettings

#: The record's form: records of another form (``lines``) are rebuilt.
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


def spend_of(micros: int) -> float:
    """Micros as the spend tiers compare: rounded to cents, never below 0."""
    return round(max(0.0, micros / MICROS), 2)


class Totals:
    """Each customer's running spend, in ``loyalty.totals``."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._records = crm.records(TOTALS, WindowTotals)

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    def of(self, customer_id: str) -> WindowTotals | None:
        """The customer's record, or None."""
        try:
            return self._records.get(totals_id(customer_id))
        except NotFoundError:
            return None

    def of_many(self, customer_ids: Iterable[str]) -> dict[str, WindowTotals]:
        """The records of several customers, by customer id (one query)."""
        ids = sorted({totals_id(c) for c in customer_ids})
        return {r.customer_id: r for r in self._records.find({"id": {"$in": ids}})} if ids else {}

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
        """Purchases less refunds in ``(since, now]``: from the record, or from the history
        when the record cannot answer (missing, of another form or purchase kinds, or
        ``since`` before its edge)."""
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
        False leaves a customer without a record without one (their next purchase builds it).
        Retries when another writer got there first (a replay racing a live event)."""
        paid = self.settings.earn.purchase_kinds
        events = []
        for interaction in interactions:
            if interaction.customer_id != customer_id:
                raise ValueError(f"interaction {interaction.id} is not of customer {customer_id}")
            if interaction.kind in paid or interaction.kind == "refund":
                events.append(interaction)
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

    def _record(
        self, customer_id: str, events: list[Interaction], now: datetime, create: bool
    ) -> None:
        current = self.of(customer_id)
        if current is None and not create:
            return
        edge = self._edge(now, current.edge if current is not None else None)
        if (
            current is None
            or not self._answers(current, edge)
            or (current.top is not None and any(e.occurred_at <= current.top for e in events))
        ):
            # new, stale, or a line that may be counted already (a replay) or falls among
            # counted ones (back-dated): recomputed from the window's interactions
            self._rebuilt(customer_id, current, now)
            return
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
        self._records.update(current, micros=micros, edge=edge, top=top, first=first)

    def rebuild(self, customer_id: str, *, now: datetime | None = None) -> WindowTotals:
        """Recompute the customer's record from their stored interactions, and store it."""
        return self._rebuilt(customer_id, self.of(customer_id), now or self._crm.now())

    def _rebuilt(
        self, customer_id: str, current: WindowTotals | None, now: datetime
    ) -> WindowTotals:
        edge = now - timedelta(days=self.settings.tiers.window_days)
        lines = self._lines(customer_id, edge, None)
        fields: dict[str, Any] = {
            "micros": self._sum(lines),
            "edge": edge,
            "top": max((i.occurred_at for i in lines), default=None),
            "first": min((i.occurred_at for i in lines), default=None),
            "kinds": kinds_key(self.settings),
        }
        if current is None:
            return self._records.insert(
                WindowTotals(id=totals_id(customer_id), customer_id=customer_id, **fields)
            )
        if all(getattr(current, k) == v for k, v in fields.items()):
            return current  # nothing changed (a replayed event): no write
        if not current.kinds.startswith(FORM + "|"):  # the earlier form: its lines go
            doc = to_doc(attrs.evolve(current, **fields))
            changes = {**{k: doc[k] for k in fields}, "lines": None, "horizon": None}
            stored = self._records.collection.update(
                current.id, changes, expected_version=current.version
            )
            return from_doc(WindowTotals, stored)
        return self._records.update(current, **fields)

    def rebuild_all(self) -> int:
        """Rebuild every customer's record (``crm loyalty rebuild``); how many."""
        done = 0
        for customer in self._crm.customers.iter():
            self.rebuild(customer.id)
            done += 1
        return done

    def _answers(self, record: WindowTotals, since: datetime | None) -> bool:
        if record.kinds != kinds_key(self.settings) or record.edge is None:
            return False
        return since is None or since >= record.edge

    def _edge(self, now: datetime, current: datetime | None) -> datetime:
        """The window's start at ``now``; it never moves back."""
        edge = now - timedelta(days=self.settings.tiers.window_days)
        return edge if current is None or edge > current else current
