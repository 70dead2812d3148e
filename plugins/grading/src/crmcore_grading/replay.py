"""History replayed in batches (``crm_interactions_replayed``): grading's fold.

A customer's events of a batch are graded one after the other exactly as ``Engine.regrade``
grades each logged interaction (signals folded, a lost customer won back by a purchase, every
scheme and the churn watch assessed at the event's time), but the customer is read once and
``ext["grading"]`` and the history records are written when something is announced (a grade
or churn change, a retention task) and once at the end, instead of per event. Changes are
announced (``crm_grade_changed``, ``crm_churn_risk_changed``) at the event's time, with the
customer as stored at that moment, as live.

Customers with a ``complaint`` or ``callback`` interaction in the batch go row by row
(``crm_replay_per_row``): the complaints plugin reacts to those (a ticket registered, an
answer recorded) and grading's re-grade for them must see that first, as live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmcore import Customer, Effects, ExtPatch, Interaction, NotFoundError, RecordWrite
from crmcore_grading.engine import CUSTOMERS, INTERACTIONS, NAMESPACE
from crmcore_grading.outcomes import win_back
from crmcore_grading.records import HISTORY
from crmcore_grading.signals import Acc

if TYPE_CHECKING:
    from crmcore_grading.engine import Engine

ROW_BY_ROW_KINDS = frozenset({"complaint", "callback"})


def per_row(
    engine: Engine, events: Sequence[Interaction], customers: Mapping[str, Customer]
) -> list[str]:
    """``crm_replay_per_row``: customers with a complaint or callback in the batch."""
    return sorted({e.customer_id for e in events if e.kind in ROW_BY_ROW_KINDS})


def fold(
    engine: Engine,
    events: Sequence[Interaction],
    *,
    actor: str,
    to_doc: Callable[[Interaction], dict[str, Any]],
) -> None:
    """Grade each customer's events of the batch as ``regrade`` would, one write per change."""
    position = {e.id: i for i, e in enumerate(events)}
    by_customer: dict[str, list[Interaction]] = {}
    for event in events:
        by_customer.setdefault(event.customer_id, []).append(event)
    # the stored cut-offs change only with a population run, never inside a replay batch:
    # what ``regrade`` reads per event is read once
    cutoffs = engine.cutoffs(events[0].occurred_at) if events else {}
    for customer_id, mine in by_customer.items():
        _Fold(engine, customer_id, position, actor, to_doc, cutoffs).run(mine)


class _Fold:
    def __init__(
        self,
        engine: Engine,
        customer_id: str,
        position: Mapping[str, int],
        actor: str,
        to_doc: Callable[[Interaction], dict[str, Any]],
        cutoffs: Mapping[str, Any],
    ) -> None:
        self.engine = engine
        self.cutoffs = cutoffs
        self.crm = engine.crm
        self.customer_id = customer_id
        self.position = position
        self.actor = actor
        self.to_doc = to_doc
        self.patch: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.patched_at: datetime | None = None

    def run(self, mine: list[Interaction]) -> None:
        engine, crm = self.engine, self.crm
        try:
            doc = crm.collection(CUSTOMERS).get(self.customer_id)
        except NotFoundError:
            return
        if doc.get("status", "active") != "active":
            return  # regrade grades active customers only
        ext = doc.get("ext") or {}
        stored: dict[str, Any] = dict(ext.get(NAMESPACE) or {})
        spend_kinds = engine.settings.signals.spend_kinds
        for event in mine:
            when = event.occurred_at
            window = engine.window(when)
            folded = self.to_doc(event)
            grading = dict(stored)
            if event.kind in spend_kinds:
                win_back(grading, folded["occurred_at"])
            kept = stored.get("signals")
            if kept is None and doc.get("created_at", "") < engine.since(when):
                acc = self._rebuild(event, window)
            else:
                acc = Acc.from_stored(kept)
                acc.fold(folded, engine.folder, window)
            signals = acc.stored(window)
            facts = engine.facts(
                self.customer_id,
                doc.get("timezone"),
                doc.get("owner"),
                {**ext, NAMESPACE: stored},
                grading,
                signals,
                when,
                window,
            )
            outcome = engine.assess(
                facts,
                stored,
                grading,
                signals,
                self.cutoffs,
                window,
                keep_unfitted=True,
            )
            if not outcome.patch:
                continue
            outcome.patch["next"] = window.today  # as regrade marks it: the worker looks again
            stored = {**stored, **outcome.patch}
            self.patch.update(outcome.patch)
            self.patched_at = when
            with crm.replay_at(when):
                self.history += engine.history_docs(outcome, self.actor, when)
            retention = engine.retention(outcome, when)
            events = crm.events
            announces = (bool(outcome.changes) and events.listened(events.grade_changed)) or (
                outcome.churn_rose and events.listened(events.churn_risk_changed)
            )
            if retention or announces:
                self._flush()  # what listeners read is stored as live at this moment
                with crm.replay_at(when), crm.transaction(self.actor):
                    crm.apply(retention, actor=self.actor)
                    engine.announce(outcome, self.actor)
        self._flush()

    def _rebuild(self, event: Interaction, window: Any) -> Acc:
        """``Engine.rebuild_signals`` as of ``event``: rows of the batch after it left out."""
        here = self.position[event.id]
        acc = Acc()
        for doc in self.crm.collection(INTERACTIONS).iter({"customer_id": self.customer_id}):
            if self.position.get(doc["id"], -1) <= here:
                acc.fold(doc, self.engine.folder, window)
        return acc

    def _flush(self) -> None:
        if not (self.patch or self.history) or self.patched_at is None:
            return
        effects = Effects(
            ext=[ExtPatch(self.customer_id, NAMESPACE, self.patch)] if self.patch else [],
            records=[RecordWrite(HISTORY, d) for d in self.history],
        )
        with self.crm.replay_at(self.patched_at):
            self.crm.apply(effects, actor=self.actor)
        self.patch, self.history = {}, []


__all__ = ["fold", "per_row"]
