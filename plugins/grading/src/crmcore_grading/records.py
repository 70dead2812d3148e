"""The plugin's collections: grade history and a small state collection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from crmcore.messages import restored
from crmcore.schema import non_empty, to_utc
from crmcore.storage import CollectionSpec, IndexSpec

HISTORY = "grading.history"
STATE = "grading.state"
POPULATION = "population"  # state record: cut-offs of the last population run, worker lease
SINCE = "since"  # state record: when grading first ran on this store
WATERMARK = "watermark"  # state record: what the last grade_all's signals reflect


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


#: Indexes on the core's customers for the churn watch: the customers holding a tier of a
#: built-in scheme are found without reading the others (a scheme configured otherwise is
#: found by a filter alone).
TIER_INDEXES = tuple(
    IndexSpec([(f"ext.grading.grades.{scheme}", 1), ("status", 1)])
    for scheme in ("rfm", "pyramid", "hospital")
)
#: An index on the core's tasks: the report reads grading's retention tasks through it
#: rather than matching every task.
TASK_KIND_INDEX = IndexSpec([("kind", 1), ("source", 1)])


def collections() -> list[CollectionSpec]:
    return [
        # the signals mirror is computed from the interactions (``crm grade all --rebuild``):
        # the trail records its changes by digest
        CollectionSpec("customers", TIER_INDEXES, derived=("ext.grading.signals",)),
        CollectionSpec("tasks", (TASK_KIND_INDEX,)),
        CollectionSpec(
            HISTORY,
            (
                IndexSpec([("customer_id", 1), ("at", 1)]),
                IndexSpec([("scheme", 1), ("at", 1)]),
            ),
            customer_key="customer_id",
            record_type=HistoryRecord,
        ),
        CollectionSpec(STATE),
    ]
