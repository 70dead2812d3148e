"""What event hooks return: the changes a plugin wants, and ``apply``, which makes them.

An event hook never writes while it is called (the kernel refuses it): it returns ``Effects``
and the core applies them in one place (docs/hooks.md), in this order:

1. ``interactions``: logged as ``crm.interactions.log`` does (each fires
   ``crm_interaction_logged``);
2. ``actions``: writes through a plugin's own API, in the order the hooks returned them;
   Effects an action returns are applied at once.
   Both run inside whatever transaction the event was emitted in (none for ``crm_tick``: a
   sweep batches its own);
3. in one transaction: ``ext`` patches, plugin ``records``, ``task_updates``, new ``tasks``;
   then ``crm_task_cancelled`` and ``crm_task_created`` for what changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import attrs

from crmcore.entities import Interaction, Priority, Task
from crmcore.schema import enum_converter, to_utc, to_utc_or_none, utc_converter
from crmcore.storage import Collection

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
    however often events or workers repeat (enforced by a unique index, across processes).
    A ``title`` made with ``crmcore.i18n.msg`` is stored with its message id and parameters
    and shown in the reader's language (docs/plugins.md); plain text is shown as written."""

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


_OCCURRED_AT = utc_converter("occurred_at", optional=True)


def _occurred_at(value: Any) -> datetime | None:
    when: datetime | None = _OCCURRED_AT(value)
    return when


@attrs.frozen
class InteractionDraft:
    """An interaction to log, as ``crm.interactions.log`` would (it fires
    ``crm_interaction_logged`` in turn): a completed follow-up becomes a contact."""

    customer_id: str
    kind: str
    occurred_at: datetime | None = attrs.field(default=None, converter=_occurred_at)
    fields: Mapping[str, Any] = attrs.field(factory=dict)  # summary, rep, ref, ext …


@attrs.frozen
class Action:
    """A write through the plugin's own API (a re-grade, a ledger posting, a ticket
    registered), run by the core after every implementation of the hook has returned: in the
    triggering write's transaction, its own emits counted one reaction deeper. ``run`` takes
    no argument (close over what it needs); if it returns ``Effects`` they are applied next,
    any other result is ignored."""

    run: Callable[[], object]
    label: str = ""

    def describe(self) -> str:
        return self.label or getattr(self.run, "__qualname__", repr(self.run))


def _as_tuple(items: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(items)


@attrs.frozen
class Effects:
    """Everything one hook call wants done. Combine several with ``Effects.combine``."""

    tasks: tuple[TaskDraft, ...] = attrs.field(default=(), converter=_as_tuple)
    task_updates: tuple[TaskUpdate, ...] = attrs.field(default=(), converter=_as_tuple)
    ext: tuple[ExtPatch, ...] = attrs.field(default=(), converter=_as_tuple)
    records: tuple[RecordWrite, ...] = attrs.field(default=(), converter=_as_tuple)
    interactions: tuple[InteractionDraft, ...] = attrs.field(default=(), converter=_as_tuple)
    actions: tuple[Action, ...] = attrs.field(default=(), converter=_as_tuple)

    def __bool__(self) -> bool:
        return self is not NOTHING and bool(
            self.tasks
            or self.task_updates
            or self.ext
            or self.records
            or self.interactions
            or self.actions
        )

    @classmethod
    def run(cls, fn: Callable[[], object], label: str = "") -> Effects:
        """Effects holding one ``Action``: ``return Effects.run(lambda: api.regrade(id))``."""
        return cls(actions=(Action(fn, label),))

    @classmethod
    def combine(cls, parts: Iterable[Effects | None]) -> Effects:
        """One ``Effects`` holding all of ``parts`` in order (None entries skipped)."""
        parts = [p for p in parts if p is not None and p is not NOTHING]
        if cls is Effects and len(parts) <= 1:
            # the usual answers: nobody acts (NOTHING), or one plugin does (its Effects,
            # frozen, so handing it on as it is changes nothing)
            if not parts:
                return NOTHING
            if isinstance(parts[0], Effects):
                return parts[0]
        tasks: list[TaskDraft] = []
        updates: list[TaskUpdate] = []
        ext: list[ExtPatch] = []
        records: list[RecordWrite] = []
        interactions: list[InteractionDraft] = []
        actions: list[Action] = []
        for part in parts:
            if not isinstance(part, Effects):
                raise TypeError(f"an event hook returned {type(part).__name__}, not Effects")
            tasks += part.tasks
            updates += part.task_updates
            ext += part.ext
            records += part.records
            interactions += part.interactions
            actions += part.actions
        return cls(tasks, updates, ext, records, interactions, actions)


NOTHING = Effects()  # frozen, so one shared instance serves every empty answer


# -- applying ---------------------------------------------------------------------------------


class _ExtPatcher(Protocol):
    def patch_ext(
        self, id: str, namespace: str, values: Mapping[str, Any], *, actor: str
    ) -> Any: ...


class _TaskWriter(Protocol):
    def apply_update(self, update: TaskUpdate, *, actor: str) -> Task | None: ...

    def create_from(self, draft: TaskDraft, *, actor: str) -> tuple[Task, bool]: ...


class _InteractionLogger(Protocol):
    def log(
        self,
        *,
        actor: str,
        customer_id: str,
        kind: str,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> Interaction: ...


class _TaskEvents(Protocol):
    """The events ``apply`` fires (``crmcore.hookcalls.EventCalls``, as ``crm.events``)."""

    def task_created(self, *, task: Task, actor: str) -> Effects: ...

    def task_cancelled(self, *, task: Task, actor: str) -> Effects: ...


class Target(Protocol):
    """What ``apply`` writes through: the CRM, as far as Effects reach it."""

    @property
    def customers(self) -> _ExtPatcher: ...

    @property
    def tasks(self) -> _TaskWriter: ...

    @property
    def interactions(self) -> _InteractionLogger: ...

    def collection(self, name: str) -> Collection: ...

    def transaction(self, actor: str | None = None) -> contextlib.AbstractContextManager[None]: ...

    @property
    def events(self) -> _TaskEvents: ...


def apply(
    effects: Effects, *, actor: str, to: Target, applied: list[Effects] | None = None
) -> list[Task]:
    """Apply ``effects`` to the CRM ``to`` in the order the module describes; the tasks that
    were created (a dedupe key already open creates none). ``applied`` collects ``effects``
    and every ``Effects`` an action returned (what a worker sweep reports)."""
    if not effects:
        return []
    if applied is not None:
        applied.append(effects)
    created: list[Task] = []
    for draft in effects.interactions:
        to.interactions.log(
            actor=actor,
            customer_id=draft.customer_id,
            kind=draft.kind,
            occurred_at=draft.occurred_at,
            **draft.fields,
        )
    for action in effects.actions:
        more = action.run()
        if isinstance(more, Effects):  # anything else an API call returns is its own business
            created += apply(more, actor=actor, to=to, applied=applied)
    if not (effects.ext or effects.records or effects.task_updates or effects.tasks):
        return created
    cancelled = []
    with to.transaction(actor):
        for patch in effects.ext:
            to.customers.patch_ext(patch.customer_id, patch.namespace, patch.values, actor=actor)
        for write in effects.records:
            coll = to.collection(write.collection)
            if write.expected_version is None:
                coll.insert(write.doc)
            else:
                fields = {k: v for k, v in write.doc.items() if k not in ("id", "version")}
                coll.update(write.doc["id"], fields, expected_version=write.expected_version)
        for update in effects.task_updates:
            changed = to.tasks.apply_update(update, actor=actor)
            if update.cancel and changed is not None:
                cancelled.append(changed)
        new: list[Task] = []
        for task_draft in effects.tasks:
            task, is_new = to.tasks.create_from(task_draft, actor=actor)
            if is_new:
                new.append(task)
        for task in cancelled:
            to.events.task_cancelled(actor=actor, task=task)
        for task in new:
            to.events.task_created(actor=actor, task=task)
    return created + new
