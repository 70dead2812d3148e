"""``[nps]`` in crm.toml. Every key has a default; bad values are refused with their key path."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
from crmcore import ValidationError

ASSIGN_TO = ("rep", "owner", "none")


def _hours(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= 24 * 365):
        raise ValidationError(
            f"expected more than 0 and at most 8760 hours, got {value!r}", field=attribute.name
        )


def _at_least(low: int) -> Callable[[object, attrs.Attribute, Any], None]:
    def check(_inst: object, attribute: attrs.Attribute, value: int) -> None:
        if value < low:
            raise ValidationError(f"expected {low} or more, got {value!r}", field=attribute.name)

    return check


def _one_of(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value not in ASSIGN_TO:
        raise ValidationError(
            f"expected one of {', '.join(ASSIGN_TO)}, got {value!r}", field=attribute.name
        )


@attrs.frozen
class NpsSettings:
    """How surveys are sent, deduplicated, expired and reported."""

    delay_hours: float = attrs.field(default=24.0, validator=_hours)
    """Hours after the callback that the survey task falls due."""
    period_days: int = attrs.field(default=90, validator=_at_least(0))
    """At most one survey per customer in any window of this many days (0: no limit)."""
    expire_days: int = attrs.field(default=14, validator=_at_least(1))
    """An open survey this many days overdue is cancelled by the worker; an answer still
    counts for a survey task completed (sent) this many days ago."""
    assign_to: str = attrs.field(default="rep", validator=_one_of)
    """Who gets the survey task: the callback's ``rep``, the customer's ``owner``, or ``none``."""
    skip_do_not_contact: bool = True
    """Never survey customers marked do-not-contact."""
    report_days: int = attrs.field(default=90, validator=_at_least(1))
    """The window ``crm report`` and ``crm nps report`` measure."""
