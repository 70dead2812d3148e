"""Running spend totals for tier qualification, so that a purchase does not re-read history.

A tier's qualifying spend is the customer's purchases less refunds over the rolling window
``(now - window_days, now]`` (``tiers``). Instead of reading the customer's interactions in the
window at every purchase, loyalty keeps per customer one ``loyalty.totals`` record: the signed
amount of each purchase (+) and refund (-) in the window, ``[at, amount, interaction id]``,
ordered by time. A purchase adds its line (one write); the spend over a window is the sum of
the lines inside it. Lines that have left every window still asked about are dropped when the
record is written, and ``horizon`` says up to when they were: a window reaching back past it
(a replay going back in time, a longer ``window_days``) is answered by a rebuild.

Rebuild (``Totals.rebuild``): the record recomputed from the customer's stored interactions,
the way the tiers once read them. A purchase or refund rebuilds it when the customer has no
record yet (a store from before this module, a restored export) or the purchase kinds in the
settings changed since it was written; a merge rebuilds the kept customer's. Until then, and
for a window reaching past the horizon, ``spend`` reads the history as before (a read never
writes). ``rebuild_all`` rebuilds every customer's.

The pure functions (``line_of``, ``added``, ``window_sum``, ``pruned``) are the fold itself,
for code that folds many events before writing once (a history import).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmcore import ConflictError, Interaction, NotFoundError
from crmcore.converter import iso
from crmcore_loyalty.ledger import MAX_ATTEMPTS
from crmcore_loyalty.records import TOTALS, WindowTotals, totals_id

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_loyalty.settings import LoyaltySettings

#: One line: [when (stored ISO text, sortable), signed amount, interaction id].
Line = list[Any]


def kinds_key(settings: LoyaltySettings) -> str:
    """What the lines depend on in the settings: the purchase kinds (a change rebuilds)."""
    return ",".join(sorted(settings.earn.purchase_kinds))


def line_of(crm: CRM, interaction: Interaction, purchase_kinds: Iterable[str]) -> Line | None:
    """The line ``interaction`` adds to its customer's totals, or None (it does not count).

    A purchase counts its amount; a refund takes back its amount, or without one the whole
    purchase it names (``tiers.refund_amount``)."""
    if interaction.kind in purchase_kinds:
        if not interaction.amount:
            return None
        value = float(interaction.amount)
    elif interaction.kind == "refund":
        from crmcore_loyalty.tiers import refund_amount

        value = -refund_amount(crm, interaction.amount, interaction.ref)
        if not value:
            return None
    else:
        return None
    return [iso(interaction.occurred_at), value, interaction.id]


def added(lines: Sequence[Line], line: Line) -> list[Line]:
    """``lines`` with ``line`` in time order (a line of the same interaction is replaced)."""
    kept = [x for x in lines if x[2] != line[2]]
    at = bisect.bisect_right([x[0] for x in kept], line[0])
    return [*kept[:at], line, *kept[at:]]


def window_sum(lines: Sequence[Line], since: datetime, now: datetime) -> float:
    """Spend in ``(since, now]``: the lines inside, summed, rounded to cents, never below 0."""
    low, high = iso(since), iso(now)
    total = math.fsum(value for at, value, _id in lines if low < at <= high)  # order-free
    return round(max(0.0, total), 2)


def pruned(lines: Sequence[Line], horizon: datetime | None) -> list[Line]:
    """The lines after ``horizon`` (all of them without one)."""
    if horizon is None:
        return list(lines)
    edge = iso(horizon)
    return [x for x in lines if x[0] > edge]


class Totals:
    """Each customer's running spend lines, in ``loyalty.totals``."""

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

    def spend(self, customer_id: str, since: datetime, now: datetime) -> float:
        """Purchases less refunds in ``(since, now]``: from the record, or from the history
        when the record cannot answer (missing, written under other purchase kinds, or
        ``since`` past its horizon)."""
        record = self.of(customer_id)
        if record is not None and self._answers(record, since):
            return window_sum(record.lines, since, now)
        # read from the history; a read writes nothing (the next purchase rebuilds the record)
        return window_sum(self.recomputed(customer_id), since, now)

    def record(self, interaction: Interaction, *, now: datetime) -> None:
        """Add ``interaction``'s line (nothing if it does not count); drop the lines no
        window ending at ``now`` or later reaches."""
        self.record_all(interaction.customer_id, [interaction], now=now)

    def record_all(
        self, customer_id: str, interactions: Iterable[Interaction], *, now: datetime
    ) -> None:
        """Add the lines of several interactions of one customer with one write (a history
        import folding a customer's events); as ``record`` otherwise. Retries when another
        writer got there first (a replay racing a live event)."""
        paid = self.settings.earn.purchase_kinds
        new: list[Line] = []
        for interaction in interactions:
            if interaction.customer_id != customer_id:
                raise ValueError(f"interaction {interaction.id} is not of customer {customer_id}")
            line = line_of(self._crm, interaction, paid)
            if line is not None:
                new.append(line)
        if not new:
            return
        for _attempt in range(MAX_ATTEMPTS):
            try:
                self._record(customer_id, new, now)
                return
            except ConflictError:
                continue
        raise ConflictError(
            f"customer {customer_id}: the spend totals kept changing underneath "
            f"({MAX_ATTEMPTS} attempts); try again"
        )

    def _record(self, customer_id: str, new: list[Line], now: datetime) -> None:
        current = self.of(customer_id)
        if not self._answers(current, None):
            self._rebuilt(customer_id, current)  # the new lines are read with the rest
            return
        assert current is not None
        edge = iso(current.horizon) if current.horizon is not None else None
        lines = current.lines
        for line in new:
            if edge is None or line[0] > edge:  # else before every window still asked about
                lines = added(lines, line)
        if lines == current.lines:
            return  # nothing new (a replayed event)
        horizon = self._horizon(now, current.horizon)
        self._records.update(current, lines=pruned(lines, horizon), horizon=horizon)

    def rebuild(self, customer_id: str) -> WindowTotals:
        """Recompute the customer's record from their stored interactions, and store it."""
        return self._rebuilt(customer_id, self.of(customer_id))

    def _rebuilt(self, customer_id: str, current: WindowTotals | None) -> WindowTotals:
        lines = self.recomputed(customer_id)
        fields: dict[str, Any] = {
            "lines": lines,
            "horizon": None,
            "kinds": kinds_key(self.settings),
        }
        if current is None:
            return self._records.insert(
                WindowTotals(id=totals_id(customer_id), customer_id=customer_id, **fields)
            )
        return self._records.update(current, **fields)

    def recomputed(self, customer_id: str) -> list[Line]:
        """The customer's lines read from every stored purchase and refund (the full
        recomputation the record stands for)."""
        paid = self.settings.earn.purchase_kinds
        lines: list[Line] = []
        for interaction in self._crm.interactions.for_customer(
            customer_id, kinds=[*paid, "refund"], newest_first=False
        ):
            line = line_of(self._crm, interaction, paid)
            if line is not None:
                lines.append(line)
        lines.sort(key=lambda x: x[0])  # stable: ties keep the store's order
        return lines

    def rebuild_all(self) -> int:
        """Rebuild every customer's record (``crm loyalty rebuild-totals``); how many."""
        done = 0
        for customer in self._crm.customers.iter():
            self.rebuild(customer.id)
            done += 1
        return done

    def _answers(self, record: WindowTotals | None, since: datetime | None) -> bool:
        if record is None or record.kinds != kinds_key(self.settings):
            return False
        return since is None or record.horizon is None or since >= record.horizon

    def _horizon(self, now: datetime, current: datetime | None) -> datetime:
        """Lines at or before this no window ending at ``now`` or later reaches (it never
        moves back)."""
        edge = now - timedelta(days=self.settings.tiers.window_days)
        return edge if current is None or edge > current else current
