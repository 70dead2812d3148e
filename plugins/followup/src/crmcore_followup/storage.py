"""Where follow-up keeps its records, and the indexes it adds to the core's collections.

The record classes (``records``, ``handovers``) are named, not imported, so that opening a CRM
does not define them; their personal fields are spelt out beside them (``CollectionSpec``
checks them against the classes when they are resolved).
"""

from __future__ import annotations

from crmcore.storage import CollectionSpec, IndexSpec

SCHEDULE = "followup.schedule"
REPS = "followup.reps"
STATE = "followup.state"
HANDOVERS = "followup.handovers"

#: Where grading keeps a customer's pipeline grade (its written contract), and the index the
#: report counts customers per grade by, without reading them.
PIPELINE_PATH = "ext.grading.grades.pipeline"
GRADE_INDEX = IndexSpec([(PIPELINE_PATH, 1), ("status", 1), ("owner", 1)])
#: An index on the core's tasks: the report reads the callback tasks through it rather than
#: matching every task.
TASK_KIND_INDEX = IndexSpec([("kind", 1), ("source", 1)])


def collections() -> list[CollectionSpec]:
    """What ``crm_collections`` declares."""
    return [
        CollectionSpec("customers", (GRADE_INDEX,)),  # an index on the core's collection
        CollectionSpec("tasks", (TASK_KIND_INDEX,)),
        CollectionSpec(
            SCHEDULE,
            (
                IndexSpec([("check_at", 1)]),
                IndexSpec([("customer_id", 1)]),
                IndexSpec([("route_vip", 1)]),
            ),
            customer_key="customer_id",
            record_type="crmcore_followup.records:Schedule",
            personal=(),
        ),
        CollectionSpec(
            REPS,
            (
                IndexSpec([("name", 1)], unique=True),
                IndexSpec([("team", 1)]),
            ),
            record_type="crmcore_followup.records:Rep",
            personal=(),
        ),
        CollectionSpec(STATE, (), record_type="crmcore_followup.records:SweepState", personal=()),
        CollectionSpec(
            HANDOVERS,
            (
                IndexSpec([("to_rep", 1), ("status", 1)]),
                IndexSpec([("from_rep", 1), ("created_at", -1)]),
            ),
            record_type="crmcore_followup.handovers:ShiftHandover",
            personal=("note",),
        ),
    ]
