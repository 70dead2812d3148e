"""Improvement actions (plan-do-check-act): measures planned against a kind of complaint,
each with an owner's task, a baseline and, when closed, its measured effect."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.customers import require_actor
from crmcore.i18n import msg
from crmcore_complaints.model import ACTIONS, ActionStatus, ImprovementAction
from crmcore_complaints.names import TASK_SOURCE, cause_label, improvement_key
from crmcore_complaints.tickets import TicketBook


class ImprovementActions:
    """Plan, track and close improvement actions (``complaints.actions``)."""

    def __init__(self, crm: CRM, book: TicketBook) -> None:
        self.crm = crm
        self.book = book
        self.records = crm.records(ACTIONS, ImprovementAction)

    def add(
        self,
        *,
        actor: str,
        what: str,
        owner: str,
        due_at: datetime,
        category: str | None = None,
        cause: str | None = None,
    ) -> ImprovementAction:
        """Plan an improvement measure; its owner gets a task due at ``due_at``. The baseline
        (complaints per week it addresses, over the four weeks before) is kept to measure it."""
        actor = require_actor(actor)
        if category is not None:
            self.book.known_category(category)
        now = self.crm.now()
        action = ImprovementAction(
            id=self.crm.new_id("act_"),
            what=(what or "").strip(),
            owner=(owner or "").strip(),
            due_at=due_at,
            created_at=now,
            created_by=actor,
            category=category,
            cause=cause_label(cause) if cause else None,
        )
        action = attrs.evolve(
            action, baseline_per_week=self.weekly_rate(action, now - timedelta(weeks=4), now)
        )
        with self.crm.transaction(actor):
            stored = self.records.insert(action)
            self.crm.tasks.create(
                actor=actor,
                kind="improvement",
                due_at=due_at,
                title=msg("Improvement action: %(what)s", what=stored.what[:180]),
                assignee=stored.owner,
                dedupe_key=improvement_key(stored.id),
                source=TASK_SOURCE,
                ref=stored.id,
            )
        return stored

    def close(self, action_id: str, *, actor: str, effect: str) -> ImprovementAction:
        """Close an improvement action with its measured effect (tracked to closure)."""
        actor = require_actor(actor)
        if not (effect or "").strip():
            raise ValidationError("state the measured effect", field="effect")
        try:
            action = self.records.get(action_id)
        except NotFoundError:
            raise NotFoundError(f"no improvement action {action_id!r}") from None
        if action.status is ActionStatus.DONE:
            raise ValidationError(f"improvement action {action_id} is already done")
        with self.crm.transaction(actor):
            done = self.records.update(
                action,
                status=ActionStatus.DONE,
                closed_at=self.crm.now(),
                closed_by=actor,
                effect=effect.strip(),
            )
            task = self.crm.tasks.open_by_key(improvement_key(action_id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome="done")
        return done

    def weekly_rate(self, action: ImprovementAction, since: datetime, until: datetime) -> float:
        """Complaints per week in ``[since, until)`` matching the action's category/cause."""
        query: dict[str, Any] = {"opened_at": {"$gte": since, "$lt": until}}
        if action.category:
            query["category"] = action.category
        if action.cause:
            query["cause"] = action.cause
        weeks = max((until - since) / timedelta(weeks=1), 1 / 7)
        return round(self.book.tickets.count(query) / weeks, 2)
