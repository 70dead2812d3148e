"""The records this plugin keeps: orders, their transitions (the history every report reads)
and charges (fee settlements and charge adjustments, each a record of its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from crmcore.schema import field, non_empty, optional_text, utc_converter

ORDERS = "service.orders"
TRANSITIONS = "service.transitions"
CHARGES = "service.charges"


@attrs.frozen
class Order:
    """A service order: its type, the step it is at, the fields gathered so far, the SLA of
    the current step and how far it has been escalated."""

    id: str
    customer_id: str = field(validator=non_empty)
    type: str = field(validator=non_empty)
    state: str = field(validator=non_empty)
    opened_at: datetime = field(converter=utc_converter("opened_at"))
    opened_by: str = field(validator=non_empty)
    owner: str = field(validator=non_empty)  # first contact: tracks it to the end
    step_entered_at: datetime = field(converter=utc_converter("step_entered_at"))
    summary: str = field(personal=True, default="", validator=optional_text)
    fields: dict[str, Any] = field(personal=True, factory=dict)  # may hold numbers, names
    assignee: str | None = None  # who acts at the current step
    department: str | None = None  # the department of the current step
    visit: int = 0  # how many steps the order has entered (1 once opened); keys its tasks
    step_due_at: datetime | None = field(
        default=None, converter=utc_converter("step_due_at", optional=True)
    )
    step_clock: str = "calendar"
    step_breached: bool = False
    escalation_level: int = 0
    next_escalation_at: datetime | None = field(
        default=None, converter=utc_converter("next_escalation_at", optional=True)
    )
    advance_at: datetime | None = field(  # a waiting step moves on by itself then
        default=None, converter=utc_converter("advance_at", optional=True)
    )
    wake_at: datetime | None = field(
        default=None, converter=utc_converter("wake_at", optional=True)
    )
    breaches: int = 0
    escalations: int = 0
    closed_at: datetime | None = field(
        default=None, converter=utc_converter("closed_at", optional=True)
    )
    outcome: str | None = None  # done, cancelled, rejected once the order reached its end
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@attrs.frozen
class Transition:
    """One line of an order's history: a move between steps, a breach, an escalation, a note.
    ``hours_in_step`` is how long the order spent in ``from_state`` (calendar hours)."""

    id: str
    order_id: str = field(validator=non_empty)
    customer_id: str = field(validator=non_empty)
    order_type: str = field(validator=non_empty)
    at: datetime = field(converter=utc_converter("at"))
    actor: str = field(validator=non_empty)
    action: str = field(validator=non_empty)  # opened, advanced, breached, escalated, waited
    from_state: str | None = None
    to_state: str | None = None
    hours_in_step: float | None = None
    details: dict[str, Any] = attrs.field(factory=dict)
    note: str = field(personal=True, default="", validator=optional_text)
    version: int = 0


@attrs.frozen
class Charge:
    """Money settled on an order: a ``fee_settlement`` (cancellation, per the contract) or a
    ``charge_adjustment`` (a billing dispute's decision). Negative amounts are credits."""

    id: str
    kind: str = field(validator=non_empty)
    order_id: str = field(validator=non_empty)
    customer_id: str = field(validator=non_empty)
    amount: float = field()  # (a plain field after schema ``field``s: mypy wants one too)
    at: datetime = field(converter=utc_converter("at"))
    reason: str = field(personal=True, default="", validator=optional_text)
    reference: str | None = None  # the contract number or the disputed bill
    decided_by: str = field(default="", validator=optional_text)
    version: int = 0


CARE = "service.care"


@attrs.frozen
class CareTarget:
    """A customer a care campaign reached: when, their churn risk then, and the effect."""

    id: str
    campaign: str = field(validator=non_empty)
    customer_id: str = field(validator=non_empty)
    created_at: datetime = field(converter=utc_converter("created_at"))
    created_by: str = field(validator=non_empty)
    churn_before: str | None = None  # the grading plugin's churn level when targeted
    contacted_at: datetime | None = field(
        default=None, converter=utc_converter("contacted_at", optional=True)
    )
    contacted_by: str | None = None
    satisfaction: int | None = None  # of the care contact, 1-5
    offer_accepted: bool = False
    points_entry: str | None = None  # the loyalty ledger entry of the offer's points
    interaction_id: str | None = None
    version: int = 0


QA_REVIEWS = "service.qa_reviews"
STAFF_COMPLAINTS = "service.staff_complaints"


@attrs.frozen
class QaReview:
    """One contact of a rep sampled for quality review, and its scorecard once reviewed."""

    id: str
    month: str = field(validator=non_empty)  # "2026-01" in the business time zone
    rep: str = field(validator=non_empty)
    interaction_id: str = field(validator=non_empty)
    customer_id: str = field(validator=non_empty)
    sampled_at: datetime = field(converter=utc_converter("sampled_at"))
    reviewer: str | None = None
    reviewed_at: datetime | None = field(
        default=None, converter=utc_converter("reviewed_at", optional=True)
    )
    scores: dict[str, int] = attrs.field(factory=dict)
    score: float | None = None  # the mean of the scorecard
    comment: str = field(personal=True, default="", validator=optional_text)
    version: int = 0


@attrs.frozen
class StaffComplaint:
    """A complaint naming the staff member it is about."""

    id: str
    staff: str = field(validator=non_empty)
    interaction_id: str = field(validator=non_empty)
    customer_id: str = field(validator=non_empty)
    at: datetime = field(converter=utc_converter("at"))  # when the complaint was made
    named_by: str = field(validator=non_empty)
    version: int = 0
