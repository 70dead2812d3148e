"""The plugin's names: its settings section, the source of the tasks it creates and their
dedupe keys, and the label a root cause is filed under."""

from __future__ import annotations

from crmcore.contracts import callback_key
from crmcore_complaints.model import Ticket

__all__ = [
    "SECTION",
    "TASK_SOURCE",
    "approval_key",
    "callback_key",
    "escalation_key",
    "improvement_key",
]

SECTION = "complaints"
TASK_SOURCE = "complaints"


def escalation_key(ticket: Ticket, level: int) -> str:
    """The dedupe key of the task for ``level`` of the ticket's current ladder cycle."""
    return f"complaint-escalation:{ticket.id}:{ticket.cycle}:{level}"


def approval_key(ticket_id: str, number: int) -> str:
    """The dedupe key of the manager's task to decide on proposal ``number``."""
    return f"complaint-approval:{ticket_id}:{number}"


def improvement_key(action_id: str) -> str:
    """The dedupe key of an improvement action's task for its owner."""
    return f"improvement:{action_id}"


def cause_label(text: str) -> str:
    """A cause as a stable label: ``"Late Delivery "`` → ``"late_delivery"``."""
    return "_".join(text.strip().lower().split())
