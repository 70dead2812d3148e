"""Goodwill points when a complaint is resolved with compensation; taken back if it reopens.

- ``ticket.compensation`` (currency) * ``[loyalty.compensation] points_per_currency`` points,
  rounded down, credited once per resolution (source ``compensation:<ticket id>:<round>``).
- Capped per customer: goodwill points credited in the last ``cap_days``, less what was taken
  back, never exceed ``cap_points``; a resolution over the cap gets what is left (possibly none).
- Reopening the ticket claws the goodwill back; resolving it again later credits a new round.
- Replaying either event changes nothing.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore_loyalty.ledger import Ledger, LedgerState
from crmcore_loyalty.records import EARN, LedgerEntry, entry_key
from crmcore_loyalty.settings import LoyaltySettings

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore.contracts import Ticket

REASON = "compensation"


def _ticket_lots(state: LedgerState, ticket_id: str) -> list[LedgerEntry]:
    return [
        e for e in state.entries if e.kind == EARN and e.reason == REASON and e.ref == ticket_id
    ]


class Compensation:
    """Goodwill points for resolved complaints."""

    def __init__(self, crm: CRM, ledger: Ledger) -> None:
        self._crm = crm
        self._ledger = ledger

    @property
    def settings(self) -> LoyaltySettings:
        return self._crm.settings("loyalty")

    def used(self, state: LedgerState, now: datetime) -> int:
        """Goodwill points counted against the cap at ``now``."""
        since = now - timedelta(days=self.settings.compensation.cap_days)
        credited = sum(
            e.points
            for e in state.entries
            if e.kind == EARN and e.reason == REASON and e.at > since
        )
        return max(0, credited - self._ledger.requested_clawback(state, [REASON], since))

    def on_resolved(
        self, ticket: Ticket, *, actor: str, now: datetime | None = None
    ) -> LedgerEntry | None:
        """Credit goodwill for a resolved ``ticket`` (None: no compensation, capped, or done)."""
        amount = ticket.compensation
        customer_id = ticket.customer_id
        ticket_id = ticket.id
        if not amount or amount <= 0 or not customer_id or not ticket_id:
            return None
        when = now or self._crm.now()
        wanted = math.floor(round(amount * self.settings.compensation.points_per_currency, 6))
        cap = self.settings.compensation.cap_points

        def plan(state: LedgerState) -> list[LedgerEntry]:
            lots = _ticket_lots(state, ticket_id)
            if any(state.lots[e.id].requested < e.points for e in lots):
                return []  # this resolution was credited already (a replay)
            points = min(wanted, cap - self.used(state, when))
            source = f"{REASON}:{ticket_id}:{len(lots) + 1}"
            if points <= 0 or entry_key(EARN, source) in state.keys:
                return []
            note = f"goodwill for complaint {ticket_id}"
            if points < wanted:
                note += f" (capped: {wanted} asked, {points} left under the cap)"
            return [
                self._ledger.entry(
                    state,
                    kind=EARN,
                    points=points,
                    source=source,
                    reason=REASON,
                    actor=actor,
                    now=when,
                    expires_at=self._ledger.lifetime(when),
                    ref=ticket_id,
                    note=note,
                )
            ]

        written = self._ledger.post(customer_id, plan)
        return written[0] if written else None

    def on_reopened(
        self, ticket: Ticket, *, actor: str, now: datetime | None = None
    ) -> list[LedgerEntry]:
        """Claw back the goodwill credited for ``ticket``'s last resolution."""
        customer_id = ticket.customer_id
        ticket_id = ticket.id
        if not customer_id or not ticket_id:
            return []
        state = self._ledger.state(customer_id)
        taken = []
        for lot in _ticket_lots(state, ticket_id):
            entry = self._ledger.clawback(
                customer_id,
                lot.source,
                cause="reopened",
                actor=actor,
                now=now,
                note=f"complaint {ticket_id} was reopened",
            )
            if entry is not None:
                taken.append(entry)
        return taken
