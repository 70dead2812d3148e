"""Where a ticket stands against its SLA targets and its escalation ladder, at a moment
(``Complaints.state``): what ``crm complaints show`` and the JSON API report."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.frozen
class SlaTarget:
    """One SLA target of the current cycle: when it falls due, when it was met, and whether it
    was missed (``breached``) or is missed now and not yet met (``overdue``). While the ticket
    waits on the customer no target is due (``due_at`` None)."""

    target: str  # "first_response" or "resolution"
    due_at: datetime | None
    met_at: datetime | None
    breached: bool
    overdue: bool


@attrs.frozen
class SlaState:
    """The ticket's SLA policy and targets; hours count on the policy's clock (calendar, or
    business hours), pauses waiting on the customer excluded."""

    policy: str
    clock: str
    cycle: int  # 0 at first, +1 at every reopen
    cycle_started_at: datetime | None
    waiting_since: datetime | None
    elapsed_hours: float  # unresolved time in the current cycle, on the policy's clock
    first_response: SlaTarget
    resolution: SlaTarget
    resolution_breaches: int  # over all cycles


@attrs.frozen
class LadderStep:
    """One level of the escalation ladder in the current cycle: reached (when, to whom) or
    still ahead (``due_at`` for the next one while the ticket is unresolved and not waiting)."""

    level: int
    after_hours: float
    target: str  # the configured role (shift_lead, department_manager …) or person:<id>
    reached: bool
    escalated_at: datetime | None = None
    assignee: str | None = None
    due_at: datetime | None = None


@attrs.frozen
class LadderState:
    """The escalation ladder: the level reached in this cycle and every level's state."""

    level: int
    next_escalation_at: datetime | None
    escalations: int  # over all cycles
    steps: tuple[LadderStep, ...]


@attrs.frozen
class TicketState:
    """A ticket's SLA and escalation standing at ``at``."""

    at: datetime
    sla: SlaState
    escalation: LadderState
