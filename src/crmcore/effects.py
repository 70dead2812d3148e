"""What event hooks return: the changes a plugin wants, applied by the core in one place."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from crmcore.entities import Priority
from crmcore.schema import enum_converter, to_utc, to_utc_or_none

_priority = enum_converter(Priority, "priority")
_priority_or_none = enum_converter(Priority, "priority", optional=True)


def _due_at(value: datetime) -> datetime:
    return to_utc(value, "due_at")


def _optional_due_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "due_at")


def _as_priority(value: Priority | int) -> Priority:
    return _priority(value)


def _optional_priority(value: Priority | int | None) -> Priority | None:
    return _priority_or_none(value)


@attrs.frozen
class TaskDraft:
    """A task to create. With a ``dedupe_key``, it is skipped while an open task has that key,
    however often events or workers repeat (enforced by a unique index, across processes)."""

    kind: str
    title: str
    due_at: datetime = attrs.field(converter=_due_at)
    customer_id: str | None = None
    assignee: str | None = None
    priority: Priority = attrs.field(default=Priority.NORMAL, converter=_as_priority)
    dedupe_key: str | None = None
    source: str | None = None
    ref: str | None = None
    notes: str = ""
    ext: dict[str, dict[str, Any]] = attrs.field(factory=dict)


@attrs.frozen
class TaskUpdate:
    """Change or cancel an open task, found by ``task_id`` or by its open ``dedupe_key``.
    No open task found is not an error (someone completed it meanwhile)."""

    task_id: str | None = None
    dedupe_key: str | None = None
    due_at: datetime | None = attrs.field(default=None, converter=_optional_due_at)
    assignee: str | None = None
    priority: Priority | None = attrs.field(default=None, converter=_optional_priority)
    cancel: bool = False
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if (self.task_id is None) == (self.dedupe_key is None):
            raise ValueError("TaskUpdate names exactly one of task_id and dedupe_key")


@attrs.frozen
class ExtPatch:
    """Merge ``values`` into ``customer.ext[namespace]`` (top-level keys replaced). Applying it
    does not fire ``crm_customer_updated``; announce plugin-level changes with your own hook."""

    customer_id: str
    namespace: str
    values: dict[str, Any]


@attrs.frozen
class RecordWrite:
    """Write a plugin record: insert when ``expected_version`` is None, else update it."""

    collection: str
    doc: dict[str, Any]
    expected_version: int | None = None


# Typed converters (``converter=tuple`` would leave mypy without the element type).
def _drafts(value: Iterable[TaskDraft]) -> tuple[TaskDraft, ...]:
    return tuple(value)


def _updates(value: Iterable[TaskUpdate]) -> tuple[TaskUpdate, ...]:
    return tuple(value)


def _patches(value: Iterable[ExtPatch]) -> tuple[ExtPatch, ...]:
    return tuple(value)


def _writes(value: Iterable[RecordWrite]) -> tuple[RecordWrite, ...]:
    return tuple(value)


@attrs.frozen
class Effects:
    """Everything one hook call wants done. Combine several with ``Effects.combine``."""

    tasks: tuple[TaskDraft, ...] = attrs.field(default=(), converter=_drafts)
    task_updates: tuple[TaskUpdate, ...] = attrs.field(default=(), converter=_updates)
    ext: tuple[ExtPatch, ...] = attrs.field(default=(), converter=_patches)
    records: tuple[RecordWrite, ...] = attrs.field(default=(), converter=_writes)

    def __bool__(self) -> bool:
        return self is not NOTHING and bool(self.tasks or self.task_updates or self.ext
                                            or self.records)

    @classmethod
    def combine(cls, parts: Iterable[Effects | None]) -> Effects:
        """One ``Effects`` holding all of ``parts`` in order (None entries skipped)."""
        parts = [p for p in parts if p is not None]
        if not parts and cls is Effects:
            return NOTHING  # the usual answer to an event nobody acts on
        tasks: list[TaskDraft] = []
        updates: list[TaskUpdate] = []
        ext: list[ExtPatch] = []
        records: list[RecordWrite] = []
        for part in parts:
            if not isinstance(part, Effects):
                raise TypeError(f"an event hook returned {type(part).__name__}, not Effects")
            tasks += part.tasks
            updates += part.task_updates
            ext += part.ext
            records += part.records
        return cls(tasks, updates, ext, records)


NOTHING = Effects()  # frozen, so one shared instance serves every empty answer
