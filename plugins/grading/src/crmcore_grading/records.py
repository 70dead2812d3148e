"""The plugin's records: grade history (its collections are declared in ``storage``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from crmcore.messages import restored
from crmcore.schema import non_empty, to_utc
from crmcore_grading.storage import (
    HISTORY,
    POPULATION,
    SINCE,
    STATE,
    TASK_KIND_INDEX,
    TIER_INDEXES,
    WATERMARK,
    collections,
)


def _at(value: datetime) -> datetime:
    return to_utc(value, "at")  # a named converter: mypy checks its type


@attrs.frozen
class HistoryRecord:
    """One stored change: a scheme's grade (or the churn level, scheme "churn") went from
    ``old`` to ``new`` at ``at`` because of ``reason``, through ``actor``'s action."""

    id: str
    customer_id: str = attrs.field(validator=non_empty)
    scheme: str = attrs.field(validator=non_empty)
    old: str | None
    new: str | None
    at: datetime = attrs.field(converter=_at)
    #: Why, as a ``str``: a :class:`crmcore.i18n.Message` (shown in the reader's language) for
    #: a reason stored with its message id (``crmcore.i18n.stored``), else the text as stored.
    reason: Any = attrs.field(default="", converter=restored)
    actor: str = attrs.field(default="system", validator=non_empty)
    version: int = 0


__all__ = [
    "HISTORY",
    "POPULATION",
    "SINCE",
    "STATE",
    "TASK_KIND_INDEX",
    "TIER_INDEXES",
    "WATERMARK",
    "HistoryRecord",
    "collections",
]
