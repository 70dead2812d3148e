"""What the plugin stores: answers in ``nps.answers``, survey tasks of kind ``nps_survey``."""

from __future__ import annotations

from datetime import datetime

import attrs
from crmcore.schema import field, in_range, utc_converter

SURVEY_TASK = "nps_survey"
ANSWERS = "nps.answers"


@attrs.frozen
class Answer:
    """One customer's answer to "how likely are you to recommend us?" (0-10)."""

    id: str
    customer_id: str
    score: int = attrs.field(validator=in_range(0, 10))
    answered_at: datetime = attrs.field(converter=utc_converter("answered_at"))
    recorded_by: str
    comment: str | None = field(personal=True, default=None)
    survey_task_id: str | None = None  # the survey task it answers, if any
    interaction_id: str | None = None  # the "survey" interaction logged with it
    version: int = 0


def survey_key(customer_id: str) -> str:
    """The dedupe key of a customer's open survey task: one open survey per customer."""
    return f"nps:{customer_id}"
