"""Where grading keeps its records: the collections it declares.

The history record class (``records.HistoryRecord``) is named, not imported, so that opening a
CRM does not define it; it holds no personal fields.
"""

from __future__ import annotations

from crmcore.storage import CollectionSpec, IndexSpec

HISTORY = "grading.history"
STATE = "grading.state"
POPULATION = "population"  # state record: cut-offs of the last population run, worker lease
SINCE = "since"  # state record: when grading first ran on this store
WATERMARK = "watermark"  # state record: what the last grade_all's signals reflect

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
    """The collections ``crm_collections`` declares."""
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
            record_type="crmcore_grading.records:HistoryRecord",
            personal=(),
        ),
        CollectionSpec(STATE),
    ]
