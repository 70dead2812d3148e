"""``crm.tasks``: create, queue, claim, assign, reschedule and complete tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from crmcore import names
from crmcore.compactdocs import without_defaults
from crmcore.converter import from_doc, from_docs, to_doc
from crmcore.customers import check_present, require_actor
from crmcore.effects import TaskDraft, TaskUpdate
from crmcore.entities import Priority, Task, TaskStatus
from crmcore.errors import ConflictError, DuplicateKeyError, ValidationError
from crmcore.kernel import Kernel
from crmcore.messages import from_message_doc, message_doc
from crmcore.retry import retried
from crmcore.security import Resource
from crmcore.storage import SortSpec

URGENCY: SortSpec = [("priority", -1), ("due_at", 1)]
# The changes that cancel a task, with an ``outcome`` saying why (a cancelled task is nobody's).
_CANCELLED: dict[str, Any] = {
    "status": TaskStatus.CANCELLED,
    "lease_owner": None,
    "lease_until": None,
}


def resource(task: Task) -> Resource:
    """A task as a permission resource: its assignee is responsible for it."""
    return Resource("task", task.id, task.assignee, task.customer_id)


def task_doc(task: Task) -> dict[str, Any]:
    """A task as stored: ``open_key`` carries the dedupe key while the task is open, so a
    sparse unique index keeps one open task per key on every backend; an open task does not
    store it again as ``dedupe_key`` (since 2026-12-07 22:00 UTC; ``with_title`` gives it
    back, ``dedupe_filter`` finds it), a closed one holds it there."""
    doc = to_doc(task)
    if task.status is TaskStatus.OPEN:
        doc["open_key"] = doc.pop("dedupe_key", None)
    else:
        doc["open_key"] = None
    return doc


def dedupe_filter(filter: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A query of tasks as written against ``Task`` fields, as the stored documents answer
    it: a ``dedupe_key`` condition holds on ``dedupe_key`` (closed tasks, and open ones
    stored before 2026-12-07 22:00 UTC) or on ``open_key`` (open tasks)."""
    if not filter or "dedupe_key" not in filter:
        return filter
    rest = dict(filter)
    cond = rest.pop("dedupe_key")
    either: dict[str, Any] = {"$or": [{"dedupe_key": cond}, {"open_key": cond}]}
    if cond is None:  # no key at all: missing (or null) in both fields
        either = {"dedupe_key": None, "open_key": None}
    if "$or" in rest:
        return {"$and": [rest, either]}
    return {**rest, **either}


def english_title(key: str, args: Mapping[str, Any] | None) -> str:
    """The English of a title given as a message id and its parameters."""
    return str(from_message_doc({"key": key, "args": dict(args or {})}))


def new_task_doc(task: Task) -> dict[str, Any]:
    """``task_doc`` as a new task is inserted: without the fields holding their blank default
    (null, empty), and without ``title`` where ``title_key`` and ``title_args`` give it back
    (``loaded`` puts both back)."""
    doc = without_defaults(Task, task_doc(task))
    if doc["open_key"] is None:
        del doc["open_key"]
    if task.title_key and task.title == english_title(task.title_key, task.title_args):
        del doc["title"]
    return doc


def with_title(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored task's document with its title given back from its message id if it was left
    out, and its ``dedupe_key`` from ``open_key`` where an open task holds it only there
    (what ``from_doc(Task, ...)`` needs; ``crm check`` validates tasks through it)."""
    if "dedupe_key" not in doc and doc.get("open_key") is not None:
        doc = {**doc, "dedupe_key": doc["open_key"]}
    if "title" not in doc and doc.get("title_key"):
        return {**doc, "title": english_title(doc["title_key"], doc.get("title_args"))}
    return doc


def loaded(doc: dict[str, Any]) -> Task:
    """A stored task as a ``Task`` (``with_title``)."""
    return from_doc(Task, with_title(doc))


class Tasks:
    """Things someone must do by a time."""

    def __init__(self, kernel: Kernel, kinds: frozenset[str]) -> None:
        self._kernel = kernel
        self._kinds = kinds
        self._coll = kernel.store.collection(names.TASKS)
        self._customers = kernel.store.collection(names.CUSTOMERS)

    # -- creating --------------------------------------------------------------------------

    @retried
    def create(self, *, actor: str, kind: str, title: str, due_at: datetime, **fields: Any) -> Task:
        """Create a task; fires ``crm_task_created``. With a ``dedupe_key`` that an open task
        already holds, returns that task instead and creates nothing."""
        actor = require_actor(actor)
        draft = TaskDraft(kind=kind, title=title, due_at=due_at, **fields)
        self._kernel.authorize(
            actor, "task.create", Resource("task", None, draft.assignee, draft.customer_id)
        )
        with self._kernel.transaction(actor):
            task, is_new = self.create_from(draft, actor=actor)
            if is_new and self._kernel.events.task_created(actor=actor, task=task):
                task = self.get(task.id)  # effects (an assignment, say) may have changed it
        return task

    @retried
    def create_from(self, draft: TaskDraft, *, actor: str) -> tuple[Task, bool]:
        """Store a draft without firing events; ``(task, False)`` if its dedupe key is taken."""
        if draft.kind not in self._kinds:
            allowed = ", ".join(sorted(self._kinds))
            raise ValidationError(
                f"unknown task kind {draft.kind!r} (allowed: {allowed})", field="kind"
            )
        if draft.customer_id is not None:
            check_present(self._customers, draft.customer_id)
        now = self._kernel.now()
        fields = attrs.asdict(draft, recurse=False)
        fields["title"] = str(draft.title)  # the English; a Message's id and parameters too:
        doc = message_doc(draft.title)  # shown in the reader's language (docs/plugins.md)
        if doc is not None and "key" in doc:
            fields.update(title_key=doc["key"], title_args=doc.get("args") or {})
        task = Task(
            id=self._kernel.new_id("tsk_"),
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
            **fields,
        )
        if draft.dedupe_key is not None:
            existing = self.open_by_key(draft.dedupe_key)
            if existing is not None:
                return existing, False
        try:
            return loaded(self._coll.insert(new_task_doc(task))), True
        except DuplicateKeyError:
            existing = self.open_by_key(draft.dedupe_key) if draft.dedupe_key else None
            if existing is None:
                raise
            return existing, False  # another worker created it a moment ago

    def open_by_key(self, dedupe_key: str) -> Task | None:
        """The open task holding ``dedupe_key``, if any."""
        doc = self._coll.find_one({"open_key": dedupe_key})
        return None if doc is None else loaded(doc)

    # -- reading ---------------------------------------------------------------------------

    def get(self, id: str, *, actor: str | None = None) -> Task:
        """The task with this id (the read checked for ``actor`` if given)."""
        task = loaded(self._coll.get(id))
        if actor is not None:
            self._kernel.authorize(actor, "task.read", resource(task))
        return task

    def due(
        self,
        *,
        now: datetime | None = None,
        within: timedelta | None = None,
        assignee: str | None = None,
        kinds: list[str] | None = None,
        customer_id: str | None = None,
        overdue: bool = False,
        limit: int | None = None,
        actor: str | None = None,
    ) -> list[Task]:
        """Open tasks due by ``now`` (plus ``within``), most urgent first.

        ``overdue`` keeps only those whose due time has passed.
        """
        for name, value in (("assignee", assignee), ("customer_id", customer_id)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValidationError("must not be empty (pass None for any)", field=name)
        when = now or self._kernel.now()
        horizon = when if overdue or within is None else when + within
        query: dict[str, Any] = {
            "status": TaskStatus.OPEN.value,
            "due_at": {"$lt" if overdue else "$lte": horizon},
        }
        if assignee is not None:
            query["assignee"] = assignee
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        if customer_id is not None:
            query["customer_id"] = customer_id
        if actor is not None:
            query = self._kernel.readable_filter(actor, query, owner_field="assignee")
        return self.find(query, sort=URGENCY, limit=limit)

    def open_for(self, customer_id: str, *, kind: str | None = None) -> list[Task]:
        """A customer's open tasks, soonest first."""
        query: dict[str, Any] = {"customer_id": customer_id, "status": TaskStatus.OPEN.value}
        if kind is not None:
            query["kind"] = kind
        return self.find(query, sort=[("due_at", 1)])

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        *,
        sort: SortSpec | None = None,
        limit: int | None = None,
        skip: int = 0,
    ) -> list[Task]:
        docs = self._coll.find(dedupe_filter(filter), sort=sort, limit=limit, skip=skip)
        return from_docs(Task, [with_title(d) for d in docs])

    def iter(self, filter: Mapping[str, Any] | None = None) -> Iterator[Task]:
        for doc in self._coll.iter(dedupe_filter(filter)):
            yield loaded(doc)

    def count(self, filter: Mapping[str, Any] | None = None) -> int:
        return self._coll.count(dedupe_filter(filter))

    # -- changing --------------------------------------------------------------------------

    def _change(
        self,
        id: str,
        actor: str,
        expected_version: int | None,
        action: str | None = None,
        **changes: Any,
    ) -> tuple[Task, Task]:
        before = self.get(id)
        if action is not None:
            self._kernel.authorize(actor, action, resource(before))
        if expected_version is not None and before.version != expected_version:
            raise ConflictError(
                f"task {id} changed since you read it (version "
                f"{before.version}, you read {expected_version}); reload"
            )
        if not before.is_open:
            raise ValidationError(f"task {id} is {before.status.value}; only open tasks change")
        after = attrs.evolve(before, **changes, updated_at=self._kernel.now(), updated_by=actor)
        doc = task_doc(after)
        # a field that keeps its value is not written (one left out as blank stays so)
        fields = {k: doc[k] for k in changes if getattr(before, k) != getattr(after, k)}
        fields.update(updated_at=doc["updated_at"], updated_by=doc["updated_by"])
        if after.dedupe_key is not None:
            fields["open_key"] = doc["open_key"]  # null once closed: the key is free again
            if not after.is_open:  # kept as ``dedupe_key`` from now on
                fields["dedupe_key"] = after.dedupe_key
        with self._kernel.transaction(actor):
            stored = loaded(self._coll.update(id, fields, expected_version=before.version))
        return before, stored

    @retried
    def complete(
        self,
        id: str,
        *,
        actor: str,
        outcome: str | None = None,
        expected_version: int | None = None,
    ) -> Task:
        """Mark a task done; fires ``crm_task_completed``."""
        actor = require_actor(actor)
        with self._kernel.transaction(actor):
            _before, done = self._change(
                id,
                actor,
                expected_version,
                "task.complete",
                status=TaskStatus.DONE,
                outcome=outcome,
                completed_at=self._kernel.now(),
                completed_by=actor,
                lease_owner=None,
                lease_until=None,
            )
            self._kernel.events.task_completed(actor=actor, task=done)
        return done

    @retried
    def assign(
        self, id: str, assignee: str | None, *, actor: str, expected_version: int | None = None
    ) -> Task:
        """Give a task to ``assignee`` (None: unassign)."""
        return self._change(
            id, require_actor(actor), expected_version, "task.update", assignee=assignee
        )[1]

    @retried
    def reschedule(
        self, id: str, due_at: datetime, *, actor: str, expected_version: int | None = None
    ) -> Task:
        """Move a task's due time."""
        return self._change(
            id, require_actor(actor), expected_version, "task.update", due_at=due_at
        )[1]

    @retried
    def set_priority(self, id: str, priority: Priority | int, *, actor: str) -> Task:
        return self._change(id, require_actor(actor), None, "task.update", priority=priority)[1]

    @retried
    def cancel(
        self, id: str, *, actor: str, reason: str = "", expected_version: int | None = None
    ) -> Task:
        """Cancel an open task, noting why; fires ``crm_task_cancelled``."""
        actor = require_actor(actor)
        with self._kernel.transaction(actor):
            _before, cancelled = self._change(
                id,
                actor,
                expected_version,
                "task.update",
                outcome=reason or "cancelled",
                **_CANCELLED,
            )
            self._kernel.events.task_cancelled(actor=actor, task=cancelled)
        return cancelled

    def apply_update(self, update: TaskUpdate, *, actor: str) -> Task | None:
        """Apply a ``TaskUpdate`` from ``Effects``; None when no open task matched. (The
        caller, ``CRM.apply``, fires ``crm_task_cancelled`` for a cancellation.)"""
        task: Task | None
        if update.task_id is not None:
            task = self.get(update.task_id)
            if not task.is_open:
                return None
        else:
            task = self.open_by_key(update.dedupe_key or "")
            if task is None:
                return None
        # Effects run on behalf of the triggering write, which was authorised already.
        if update.cancel:
            return self._change(
                task.id, actor, None, outcome=update.reason or "cancelled", **_CANCELLED
            )[1]
        changes = {
            k: getattr(update, k)
            for k in ("due_at", "assignee", "priority")
            if getattr(update, k) is not None
        }
        if not changes:
            return task
        return self._change(task.id, actor, None, **changes)[1]

    def cancel_deduped_for(self, customer_id: str, *, actor: str, reason: str) -> int:
        """Cancel a customer's open tasks that carry a dedupe key (used by merge and forget);
        fires ``crm_task_cancelled`` for each."""
        count = 0
        for task in self.open_for(customer_id):
            if task.dedupe_key is not None:
                cancelled = self._change(task.id, actor, None, outcome=reason, **_CANCELLED)[1]
                self._kernel.events.task_cancelled(actor=actor, task=cancelled)
                count += 1
        return count

    # -- leasing ---------------------------------------------------------------------------

    def claim(
        self,
        *,
        worker: str,
        lease: timedelta,
        filter: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Task | None:
        """Lease the most urgent open, due task matching ``filter`` to ``worker``; None if none.

        Atomic on every backend: two workers never hold the same task at once.
        """
        when = now or self._kernel.now()
        query = {
            **dict(dedupe_filter(filter) or {}),
            "status": TaskStatus.OPEN.value,
            "due_at": {"$lte": when},
        }
        doc = self._coll.claim(query, owner=worker, until=when + lease, now=when, sort=URGENCY)
        return None if doc is None else loaded(doc)

    def release(self, id: str, *, worker: str) -> None:
        self._coll.release(id, owner=worker)
