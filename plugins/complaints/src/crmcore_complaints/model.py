"""The records this plugin keeps: tickets, their traces, outbox notifications, improvement
actions; and the ticket status machine."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from crmcore.converter import converter
from crmcore.entities import Channel, Priority, title_message
from crmcore.schema import (
    enum_converter,
    field,
    name_text,
    non_empty,
    optional_text,
    to_utc,
    utc_converter,
)

TICKETS = "complaints.tickets"
TRACES = "complaints.traces"
OUTBOX = "complaints.outbox"
ACTIONS = "complaints.actions"


class Status(enum.StrEnum):
    """Where a ticket is. A ``StrEnum``: ``ticket.status == "closed"`` holds."""

    REGISTERED = "registered"  # received and written down; validity not yet judged
    VALID = "valid"  # judged valid; waits to be dispatched
    DISPATCHED = "dispatched"  # a department has it
    IN_PROGRESS = "in_progress"  # the department is working on it
    RESOLVED = "resolved"  # fed back to the customer; awaiting their answer
    CLOSED = "closed"  # archived (an invalid complaint is closed when judged)


#: Still being handled: SLA timers and the escalation ladder run.
UNRESOLVED = frozenset({Status.REGISTERED, Status.VALID, Status.DISPATCHED, Status.IN_PROGRESS})
#: Not yet archived.
OPEN = UNRESOLVED | {Status.RESOLVED}


class Claim(enum.StrEnum):
    """What the customer asks for (DOMAIN §5)."""

    COMPENSATION = "compensation"
    REPAIR_REPLACE_REDO = "repair_replace_redo"
    NON_MATERIAL_COMPENSATION = "non_material_compensation"


class Emotion(enum.StrEnum):
    """Emotional state noted at intake (DOMAIN §5)."""

    ANGRY = "angry"
    ANXIOUS = "anxious"
    SAD = "sad"
    LOUD = "loud"
    CALM = "calm"


class Validity(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"


class ProposalState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def _emotions(value: Iterable[str] | str) -> tuple[Emotion, ...]:
    values = [value] if isinstance(value, str) else value
    convert = enum_converter(Emotion, "emotions")
    return tuple(sorted({convert(v) for v in values}, key=lambda e: e.value))


# Named converters given to ``attrs.field``: mypy then types the constructor's arguments as
# what they accept (a name or a member), not as the field's type.
_CHANNEL = enum_converter(Channel, "channel")
_CLAIM = enum_converter(Claim, "claim", optional=True)


def _channel(value: Channel | str) -> Channel:
    return _CHANNEL(value)


def _claim(value: Claim | str | None) -> Claim | None:
    return _CLAIM(value)


def _amount(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    from crmcore.errors import ValidationError

    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValidationError(
            f"expected an amount of zero or more, got {value!r}", field=attribute.name
        )


def _plain_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _start(value: datetime) -> datetime:
    return to_utc(value, "start")  # named converters: mypy checks their types


def _end(value: datetime) -> datetime:
    return to_utc(value, "end")


@attrs.frozen
class Pause:
    """A stretch spent waiting on the customer; SLA clocks stop during it."""

    start: datetime = attrs.field(converter=_start)
    end: datetime = attrs.field(converter=_end)
    reason: str = ""


@attrs.frozen
class Proposal:
    """A proposed solution; a manager approves or rejects it."""

    number: int
    solution: str = field(personal=True, validator=non_empty)
    proposed_by: str = field(validator=name_text)
    proposed_at: datetime = field(converter=utc_converter("proposed_at"))
    compensation: float | None = field(default=None, validator=_amount)
    refund: float | None = field(default=None, validator=_amount)  # money back, not goodwill
    purchase_id: str | None = None  # the purchase interaction the refund returns
    state: ProposalState = field(
        default=ProposalState.PENDING, converter=enum_converter(ProposalState, "state")
    )
    decided_by: str | None = None
    decided_at: datetime | None = field(
        default=None, converter=utc_converter("decided_at", optional=True)
    )
    reason: str = ""


@attrs.frozen
class Ticket:
    """A complaint (the complaint form of DOMAIN §5 plus its handling state)."""

    id: str
    customer_id: str = field(validator=name_text)
    category: str = field(validator=name_text)
    content: str = field(personal=True, validator=non_empty)
    registered_by: str = field(validator=name_text)
    owner: str = field(validator=name_text)  # first-contact responsibility: owns it to the end
    opened_at: datetime = field(converter=utc_converter("opened_at"))
    channel: Channel = attrs.field(default=Channel.OTHER, converter=_channel)
    complainant: str | None = field(personal=True, default=None, validator=optional_text)
    contact: str | None = field(personal=True, default=None, validator=optional_text)
    claim: Claim | None = attrs.field(default=None, converter=_claim)
    emotions: tuple[Emotion, ...] = attrs.field(default=(), converter=_emotions)
    priority: Priority = field(
        default=Priority.NORMAL, converter=enum_converter(Priority, "priority")
    )
    status: Status = field(default=Status.REGISTERED, converter=enum_converter(Status, "status"))
    tier: str | None = None  # the customer's tier when registered (SLA policy matching)
    perks: tuple[str, ...] = field(default=(), converter=tuple)  # their perks then (loyalty)
    interaction_id: str | None = None  # the "complaint" interaction it came from / logged
    # judging
    validity: Validity | None = field(
        default=None, converter=enum_converter(Validity, "validity", optional=True)
    )
    judged_by: str | None = None
    judged_at: datetime | None = field(
        default=None, converter=utc_converter("judged_at", optional=True)
    )
    explanation: str | None = field(personal=True, default=None, validator=optional_text)
    # dispatching and handling
    department: str | None = None
    handler: str | None = None
    dispatched_by: str | None = None
    dispatched_at: datetime | None = field(
        default=None, converter=utc_converter("dispatched_at", optional=True)
    )
    first_response_at: datetime | None = field(
        default=None, converter=utc_converter("first_response_at", optional=True)
    )
    chases: int = 0
    proposals: tuple[Proposal, ...] = field(default=(), converter=tuple)
    # outcome
    resolution: str | None = field(personal=True, default=None, validator=optional_text)
    cause: str | None = None
    compensation: float | None = field(default=None, validator=_amount)
    refund: float | None = field(default=None, validator=_amount)  # refunded at resolution
    refund_interaction_id: str | None = None  # the "refund" interaction logged for it
    resolved_by: str | None = None
    resolved_at: datetime | None = field(
        default=None, converter=utc_converter("resolved_at", optional=True)
    )
    closed_by: str | None = None
    closed_at: datetime | None = field(
        default=None, converter=utc_converter("closed_at", optional=True)
    )
    satisfaction: int | None = None
    satisfied: bool | None = None
    reopen_count: int = 0
    # SLA and escalation (the worker's schedule)
    sla_policy: str = "standard"
    sla_clock: str = "calendar"
    cycle: int = 0  # 0 at first; +1 at every reopen
    cycle_started_at: datetime | None = field(
        default=None, converter=utc_converter("cycle_started_at", optional=True)
    )
    waiting_since: datetime | None = field(
        default=None, converter=utc_converter("waiting_since", optional=True)
    )
    pauses: tuple[Pause, ...] = field(default=(), converter=tuple)
    first_response_due_at: datetime | None = field(
        default=None, converter=utc_converter("first_response_due_at", optional=True)
    )
    resolution_due_at: datetime | None = field(
        default=None, converter=utc_converter("resolution_due_at", optional=True)
    )
    first_response_breached: bool = False
    resolution_breached: bool = False  # in the current cycle
    resolution_breaches: int = 0  # over all cycles
    escalation_level: int = 0  # levels reached in the current cycle
    escalations: int = 0  # over all cycles
    next_escalation_at: datetime | None = field(
        default=None, converter=utc_converter("next_escalation_at", optional=True)
    )
    auto_close_at: datetime | None = field(
        default=None, converter=utc_converter("auto_close_at", optional=True)
    )
    wake_at: datetime | None = field(
        default=None, converter=utc_converter("wake_at", optional=True)
    )
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_unresolved(self) -> bool:
        return self.status in UNRESOLVED

    @property
    def pending_proposal(self) -> Proposal | None:
        return next((p for p in reversed(self.proposals) if p.state is ProposalState.PENDING), None)

    @property
    def approved_proposal(self) -> Proposal | None:
        return next(
            (p for p in reversed(self.proposals) if p.state is ProposalState.APPROVED), None
        )


@attrs.frozen
class Trace:
    """One thing that happened to a ticket: a status change, chase, escalation or note."""

    id: str
    ticket_id: str
    customer_id: str
    at: datetime = field(converter=utc_converter("at"))
    actor: str = field(validator=name_text)
    action: str = field(validator=non_empty)
    from_status: str | None = attrs.field(default=None, converter=_plain_text)
    to_status: str | None = attrs.field(default=None, converter=_plain_text)
    details: dict[str, Any] = attrs.field(factory=dict)  # structured, never personal
    note: str = field(personal=True, default="")
    #: A note the plugin wrote (``msg(...)``): its message id and parameters, so the trail
    #: reads in the reader's language; ``note`` keeps the English. None for people's notes.
    note_key: str | None = None
    note_args: dict[str, Any] = attrs.field(factory=dict)
    version: int = 0

    @property
    def note_message(self) -> str:
        """The note as a :class:`crmcore.i18n.Message` when the plugin wrote it (translated
        where shown), else as written (a person's words are shown as they typed them)."""
        if not self.note_key:
            return self.note
        return title_message(self.note, self.note_key, self.note_args)


@attrs.frozen
class Notification:
    """A message to staff about a ticket (escalation, SLA breach, chase, approval request)."""

    id: str
    kind: str
    ticket_id: str
    customer_id: str
    created_at: datetime = field(converter=utc_converter("created_at"))
    # (``field`` from crmcore.schema, which mypy takes for a default: so are the next three)
    recipient: str | None = field()  # a person, or None when no one holds the role
    role: str = field()  # why they get it: owner, handler, shift_lead, department_manager …
    subject: str = field()
    body: str = ""
    delivered_by: str = "outbox"
    version: int = 0


class ActionStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


@attrs.frozen
class ImprovementAction:
    """A PDCA improvement measure born of complaint analysis, tracked to closure."""

    id: str
    what: str = field(validator=non_empty)
    owner: str = field(validator=name_text)
    due_at: datetime = field(converter=utc_converter("due_at"))
    created_at: datetime = field(converter=utc_converter("created_at"))
    created_by: str = field(validator=name_text)
    category: str | None = None  # the complaint category it addresses, if one
    cause: str | None = None  # the root cause it addresses, if one
    status: ActionStatus = field(
        default=ActionStatus.OPEN, converter=enum_converter(ActionStatus, "status")
    )
    closed_at: datetime | None = field(
        default=None, converter=utc_converter("closed_at", optional=True)
    )
    closed_by: str | None = None
    effect: str = ""  # the measured effect, as the owner states it at closure
    baseline_per_week: float | None = None  # complaints/week addressed, before the action
    version: int = 0


# StrEnum members are str subclasses that cattrs passes through as they are; store plain values
# (the storage layer accepts only exact JSON types).
for _enum in (Status, Claim, Emotion, Validity, ProposalState, ActionStatus):
    converter.register_unstructure_hook(_enum, lambda member: member.value)

#: status -> (action, statuses it may be done from). Illegal moves name the current status.
ALLOWED_FROM: dict[str, frozenset[Status]] = {
    "judge": frozenset({Status.REGISTERED}),
    "dispatch": frozenset({Status.VALID, Status.DISPATCHED, Status.IN_PROGRESS}),
    "respond": frozenset({Status.REGISTERED, Status.VALID, Status.DISPATCHED, Status.IN_PROGRESS}),
    "chase": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "propose": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "approve": frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    "resolve": frozenset({Status.IN_PROGRESS}),
    "close": frozenset({Status.RESOLVED}),
    "reopen": frozenset({Status.RESOLVED, Status.CLOSED}),
    "wait": frozenset(UNRESOLVED),
    "resume": frozenset(UNRESOLVED),
    "note": frozenset(Status),
}
