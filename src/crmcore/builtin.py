"""The core's built-in plugin: the in-memory backend, the core collections and kinds."""

from __future__ import annotations

from crmcore.hookspecs import hookimpl
from crmcore.markers import N_
from crmcore.names import CUSTOMER_KEYS, CUSTOMERS, INTERACTIONS, TASKS
from crmcore.registry import Kinds
from crmcore.searchkeys import FIELD as SEARCH_FIELD
from crmcore.storage import CollectionSpec, IndexSpec, StorageBackend, StorageOptions, Store

INTERACTION_KINDS = (
    "purchase",
    "refund",
    "consultation",
    "inquiry",
    "complaint",
    "callback",
    "follow_up",
    "care",
    "visit",
    "treatment",
    "business",
    "billing",
    "feedback",
    "event",
    "survey",
    "referral",
    "note",
    "other",
)
TASK_KINDS = ("follow_up", "first_contact", "callback", "care", "complaint", "retention", "other")
#: How the core's task kinds are shown (translated by the core's catalog).
TASK_LABELS = {
    "follow_up": N_("Follow-up"),
    "first_contact": N_("First contact"),
    "callback": N_("Callback"),
    "care": N_("Care"),
    "complaint": N_("Complaint"),
    "retention": N_("Retention"),
    "other": N_("Other"),
}


def _open_memory(options: StorageOptions) -> Store:
    from crmcore.storage.memory import MemoryStore  # only when the memory backend is opened

    # A location names a process-wide store (several opens share it); none gives a private one.
    return MemoryStore.shared(options.location) if options.location else MemoryStore()


@hookimpl
def crm_storage_backends() -> list[StorageBackend]:
    return [StorageBackend("memory", _open_memory, "in-process dictionaries; nothing is kept")]


@hookimpl
def crm_collections() -> list[CollectionSpec]:
    return [
        CollectionSpec(
            CUSTOMERS,
            (
                IndexSpec([("phone", 1)], sparse=True),
                IndexSpec([("email", 1)], sparse=True),
                IndexSpec([("owner", 1), ("status", 1)]),
                # the active customers counted as all less the merged and erased, by bisection
                IndexSpec([("status", 1)]),
                IndexSpec([(SEARCH_FIELD, 1)]),  # multikey: one entry per search key
                # the customers there were at a past instant (reports of a past period)
                IndexSpec([("created_at", 1)]),
            ),
            customer_key="id",
            blind=(SEARCH_FIELD,),
        ),
        CollectionSpec(
            CUSTOMER_KEYS, (IndexSpec([("customer_id", 1)]),), customer_key="customer_id"
        ),
        CollectionSpec(
            INTERACTIONS,
            (
                IndexSpec([("customer_id", 1), ("occurred_at", 1)]),
                IndexSpec([("kind", 1), ("occurred_at", 1)]),
                # a report's period: the contacts of a day, week or month without a scan
                IndexSpec([("occurred_at", 1)]),
            ),
            customer_key="customer_id",
        ),
        CollectionSpec(
            TASKS,
            (
                # one open task per dedupe key, enforced by the store across processes
                IndexSpec([("open_key", 1)], unique=True, sparse=True),
                IndexSpec([("assignee", 1), ("status", 1), ("due_at", 1)]),
                IndexSpec([("status", 1), ("due_at", 1)]),
                # claims and due queues: open tasks, most urgent first
                IndexSpec([("status", 1), ("priority", -1), ("due_at", 1)]),
                IndexSpec([("customer_id", 1), ("status", 1)]),
            ),
            customer_key="customer_id",
        ),
    ]


@hookimpl
def crm_kinds() -> Kinds:
    return Kinds(interactions=INTERACTION_KINDS, tasks=TASK_KINDS, task_labels=TASK_LABELS)
