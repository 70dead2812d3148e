"""The kernel: what the services (customers, tasks, interactions) use of an open CRM.

Store, clock, configuration, transactions, permission checks and events, nothing else: a
service holds a ``Kernel`` and the services it calls, never the whole CRM. The CRM builds one
kernel and hands it to each service; plugins keep using the CRM (``crm.transaction()``,
``crm.events.task_created(...)`` …), which passes these calls on.

The rule for reactions (docs/hooks.md) is kept here: an event hook returns ``Effects``; while
one is being called, any write on this thread (a transaction, an emit) is refused with
``DirectWriteError``, and every emit, however it was reached, counts toward
``MAX_EFFECT_DEPTH`` on its thread.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from crmcore.audit import AuditedStore, acting_as, reset_actor, set_actor
from crmcore.clock import Clock, ensure_aware
from crmcore.config import Config
from crmcore.effects import NOTHING, Effects, Target, apply
from crmcore.errors import CrmError, PermissionDenied, PluginError, ValidationError
from crmcore.hookcalls import EventCalls
from crmcore.ids import new_id
from crmcore.security import Actor, Resource, Role, default_policy, directory_actor
from crmcore.storage import BulkResult, Collection, CollectionSpec, IndexSpec, SortSpec, Store
from crmcore.storage.base import CollectionLayer, Doc, Filter

#: Emits nested on one thread before the kernel calls it a loop (a reaction that triggers
#: itself); every emit counts, whether reached through Effects or an Action.
MAX_EFFECT_DEPTH = 8


class Hooks(Protocol):
    """What the kernel calls on the plugin manager (``crmcore.plugins.PluginManager``)."""

    @property
    def hook(self) -> Any: ...

    def implemented(self, hook_name: str) -> bool: ...

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]: ...

    def culprit(self, exc: BaseException) -> str: ...

    def crm_actor(self, *, crm: Any, name: str) -> Actor | None: ...

    def crm_authorize(
        self, *, crm: Any, actor: Actor, action: str, resource: Resource
    ) -> bool | None: ...

    def crm_customer_adding(self, *, crm: Any, customer: Any, actor: str) -> list[Any]: ...

    def crm_customer_adding_by_plugin(
        self, *, crm: Any, customer: Any, actor: str
    ) -> list[tuple[str, Any]]: ...


class DirectWriteError(RuntimeError):
    """A write from inside an event-hook call. Not a ``CrmError`` on purpose: the plugin
    manager reports it as a ``PluginError`` naming the plugin whose code wrote."""


class Kernel:
    """Store, clock, configuration, transactions, permissions and events of one open CRM."""

    def __init__(self, *, store: Store, config: Config, plugins: Hooks, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.plugins = plugins
        self.clock = clock
        #: What hooks receive as ``crm`` and Effects are applied to (the CRM sets itself).
        self.host: Any = None
        #: The declared collections by name (set by the CRM when it opens them).
        self.specs: dict[str, CollectionSpec] = {}
        self.local = threading.local()
        self._replay: ReplayClock | None = None
        #: One typed method per event hook, each through ``emit`` (``crm.events``).
        self.events = EventCalls(self.emit, plugins.implemented)
        self._finishers: list[Callable[[bool], None]] = []
        #: Per collection, what a read by id shows on top of the stored document: writes
        #: kept until the transaction commits (``Customers.patch_ext``).
        self.read_overlays: dict[str, Callable[[Doc], Doc]] = {}

    # -- time and ids -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The clock's current time (UTC); during a history replay, the replayed event's."""
        return self.clock.now()

    def wall_now(self) -> datetime:
        """The present, even while history is replayed."""
        return self._replay.wall.now() if self._replay is not None else self.clock.now()

    @property
    def replaying(self) -> bool:
        """True while a history import replays past events."""
        return self._replay is not None

    @contextlib.contextmanager
    def replay_clock(self) -> Iterator[ReplayClock]:
        """Within the block the clock is a ``ReplayClock`` (one replay at a time)."""
        if self._replay is not None:
            raise ValidationError("a history replay is already running on this CRM")
        clock = ReplayClock(self.clock)
        previous, self.clock, self._replay = self.clock, clock, clock
        try:
            yield clock
        finally:
            self.clock, self._replay = previous, None

    @contextlib.contextmanager
    def replay_at(self, when: datetime) -> Iterator[None]:
        """During a history replay, ``now()`` is ``when`` inside the block (a batch fold
        reacting to each event at its time); outside a replay, the block runs unchanged."""
        clock = self._replay
        if clock is None:
            yield
            return
        previous = clock.now()
        clock.set(when)
        try:
            yield
        finally:
            clock.set(previous)

    def new_id(self, prefix: str) -> str:
        """A fresh time-ordered id such as ``cus_01JD…``."""
        return new_id(prefix, self.clock.now())

    # -- transactions ----------------------------------------------------------------------

    def transaction(self, actor: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Group writes (atomic where the backend can), attributed to ``actor`` if given."""
        return _Transaction(self, actor)

    def in_transaction(self) -> bool:
        """Whether a transaction is open on this thread (``retry`` leaves it to its opener)."""
        return getattr(self.local, "depth", 0) > 0

    def at_transaction_end(self, finisher: Callable[[bool], None]) -> None:
        """Call ``finisher(committing)`` as each outermost transaction of a thread ends:
        ``True`` just before it commits (what it writes joins the transaction, and an
        exception rolls the whole transaction back), ``False`` when it rolls back (drop what
        was kept for it). For writes deferred to the end (``Customers.patch_ext``)."""
        self._finishers.append(finisher)

    def overlaid(self, collection: str, doc: Doc) -> Doc:
        """``doc``, read by id from ``collection``, as this thread's transaction sees it."""
        overlay = self.read_overlays.get(collection)
        return doc if overlay is None else overlay(doc)

    def _finish(self, committing: bool) -> None:
        for finisher in self._finishers:
            finisher(committing)

    # -- events and effects ----------------------------------------------------------------

    def calling_hook(self) -> str | None:
        """The event hook being called on this thread, if any (writes are refused then)."""
        return getattr(self.local, "hook", None)

    def check_write(self) -> None:
        """Refuse a write made while an event hook is being called on this thread."""
        hook = getattr(self.local, "hook", None)
        if hook is not None:
            raise DirectWriteError(
                f"a plugin wrote directly from inside the event hook {hook}; an event hook "
                "returns Effects (an Action for a write through a plugin's own API) and the "
                "core applies them"
            )

    @contextlib.contextmanager
    def refusing_writes(self, hook_name: str) -> Iterator[None]:
        """Inside: every write on this thread is refused (``DirectWriteError`` naming
        ``hook_name``), as while an event hook is called."""
        local = self.local
        previous = getattr(local, "hook", None)
        local.hook = hook_name
        try:
            yield
        finally:
            local.hook = previous

    def call_event(
        self, hook_name: str, *, _via: Callable[..., list[Any]] | None = None, **kwargs: Any
    ) -> Effects:
        """Call an event hook with writes refused for the duration; its combined Effects.
        ``_via`` calls a subset of its implementations instead of all of them."""
        with self.refusing_writes(hook_name):
            if _via is None:
                results = self.plugins.call(hook_name, crm=self.host, **kwargs)
            else:
                results = _via(crm=self.host, **kwargs)
        return Effects.combine(results)

    def emit(
        self,
        hook_name: str,
        *,
        actor: str,
        _via: Callable[..., list[Any]] | None = None,
        **kwargs: Any,
    ) -> Effects:
        """Call an event hook and apply the ``Effects`` every plugin returned; returns them.
        ``_via`` (a subset of the hook's implementations, ``PluginManager.without``) is
        called instead of every implementation."""
        self.check_write()
        if not self.plugins.implemented(hook_name):
            return NOTHING  # every write emits an event: most have no listener
        local = self.local
        depth = getattr(local, "emits", 0)
        if depth > MAX_EFFECT_DEPTH:
            raise PluginError(
                "core",
                f"effects kept triggering {hook_name} more than "
                f"{MAX_EFFECT_DEPTH} levels deep; a plugin loops",
            )
        local.emits = depth + 1
        local.reacting = getattr(local, "reacting", 0) + 1
        try:
            effects = self.call_event(hook_name, actor=actor, _via=_via, **kwargs)
            self.apply(effects, actor=actor)
        finally:
            local.reacting -= 1
            local.emits = depth
        return effects

    def apply(
        self, effects: Effects, *, actor: str, applied: list[Effects] | None = None
    ) -> list[Any]:
        """Apply ``effects`` to the CRM (``effects.apply``); the tasks created."""
        target: Target = self.host
        try:
            return apply(effects, actor=actor, to=target, applied=applied)
        except CrmError:
            raise
        except Exception as exc:  # an action's code failed: name its plugin, as hooks are
            culprit = self.plugins.culprit(exc)
            if culprit == "unknown":
                raise
            raise PluginError(culprit, f"a reaction failed: {type(exc).__name__}: {exc}") from exc

    @contextlib.contextmanager
    def reacting(self) -> Iterator[None]:
        """Writes inside are part of an action already authorised: not checked again."""
        local = self.local
        local.reacting = getattr(local, "reacting", 0) + 1
        try:
            yield
        finally:
            local.reacting -= 1

    # -- permissions -----------------------------------------------------------------------

    def actor(self, name: str) -> Actor | None:
        """The actor called ``name``: from a plugin's ``crm_actor``, else the configuration."""
        found = self.plugins.crm_actor(crm=self.host, name=name)
        return found if found is not None else directory_actor(self.config.security, name)

    def authorize(self, actor: str, action: str, resource: Resource) -> None:
        """Raise ``PermissionDenied`` (audited) unless ``actor`` may do ``action``."""
        reacting: int = getattr(self.local, "reacting", 0)
        if not self.config.security.enforce or reacting:
            return  # plugins reacting to an event act under the authorised action's permission
        who = self.actor(actor)
        if who is None:
            allowed, why = False, f"unknown actor {actor!r} (add it under [security.actors])"
        else:
            decided = self.plugins.crm_authorize(
                crm=self.host, actor=who, action=action, resource=resource
            )
            if decided is None:
                allowed, why = default_policy(self.host, who, action, resource)
            else:
                allowed, why = bool(decided), "refused by a plugin's policy"
        if allowed:
            return
        role = f" ({who.role.value})" if who else ""
        article = "an" if resource.kind[:1] in "aeiou" else "a"
        target = f"{resource.kind} {resource.id}" if resource.id else f"{article} {resource.kind}"
        message = f"{actor}{role} may not {action.rsplit('.', 1)[-1]} {target}: {why}"
        denied = PermissionDenied(message)
        denied.audit = (actor, action, resource)  # type: ignore[attr-defined]
        if getattr(self.local, "depth", 0) == 0:
            self.audit_denial(denied)
        raise denied

    def audit_denial(self, exc: PermissionDenied) -> None:
        """Record a refusal in the audit trail once (outside the rolled-back transaction)."""
        pending = getattr(exc, "audit", None)
        if pending is None or not isinstance(self.store, AuditedStore):
            return
        exc.audit = None  # type: ignore[attr-defined]  # record it once
        actor, action, resource = pending
        with acting_as(actor):
            self.store.record_denial(action, resource, str(exc))

    def readable_filter(
        self, actor: str, query: Mapping[str, Any], *, owner_field: str = "owner"
    ) -> dict[str, Any]:
        """Narrow ``query`` to the records ``actor`` may read under enforced permissions."""
        if not self.config.security.enforce:
            return dict(query)
        who = self.actor(actor)
        if who is None:
            self.authorize(actor, "record.read", Resource("record"))  # refuses, audited
            return dict(query)
        directory = self.config.security.actors
        if who.role is Role.AGENT:
            names = {actor}
        elif who.role is Role.SHIFT_LEAD:
            names = {n for n, a in directory.items() if who.team and a.team == who.team}
        elif who.role is Role.MANAGER:
            names = {
                n for n, a in directory.items() if who.department and a.department == who.department
            }
        else:
            return dict(query)  # admin, auditor, system: everything
        scope = {"$or": [{owner_field: {"$in": sorted(names | {actor})}}, {owner_field: None}]}
        return {"$and": [dict(query), scope]} if query else scope


class ReplayClock:
    """The clock during a history replay: ``now()`` is the event being replayed (``set``),
    ``wall`` the real clock."""

    def __init__(self, wall: Clock) -> None:
        self.wall = wall
        self._at = wall.now()

    def now(self) -> datetime:
        return self._at

    def set(self, when: datetime) -> None:
        self._at = ensure_aware(when)


class _Transaction:
    """``Kernel.transaction()`` (a class, not a generator: every write goes through it)."""

    __slots__ = ("_actor", "_inner", "_kernel", "_token")

    def __init__(self, kernel: Kernel, actor: str | None) -> None:
        self._kernel = kernel
        self._actor = actor
        self._token: contextvars.Token[str | None] | None = None
        self._inner: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        kernel = self._kernel
        kernel.check_write()
        local = kernel.local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            inner = kernel.store.transaction()
            inner.__enter__()
        except BaseException:
            local.depth -= 1
            raise
        self._inner = inner
        if self._actor is not None:
            self._token = set_actor(self._actor)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        kernel = self._kernel
        local = kernel.local
        failed: BaseException | None = None
        if local.depth == 1 and kernel._finishers:
            try:
                kernel._finish(kind is None)
            except BaseException as raised:  # a deferred write failed: roll everything back
                failed, kind, exc, tb = raised, type(raised), raised, raised.__traceback__
                kernel._finish(False)
        try:
            try:
                if self._token is not None:
                    reset_actor(self._token)
            finally:
                assert self._inner is not None
                self._inner.__exit__(kind, exc, tb)
        except PermissionDenied as raised:
            # The refused transaction rolled back; its audit entry must not roll back with it.
            if local.depth == 1:
                self._kernel.audit_denial(raised)
            raise
        else:
            if isinstance(exc, PermissionDenied) and local.depth == 1:
                self._kernel.audit_denial(exc)
        finally:
            local.depth -= 1
        if failed is not None:
            raise failed


class GatedCollection(CollectionLayer):
    """A collection as ``crm.collection()`` hands it to plugins: every call goes to the store's
    collection, and writes are refused while an event hook is being called on this thread
    (``Kernel.check_write``), so a raw write from a hook fails like an API write does. ``get``
    applies the read overlays; the queries are the store's own (``PASSED_READS``)."""

    PASSED_READS = ("find", "find_one", "iter", "count", "sum", "last", "indexes")

    def __init__(self, inner: Collection, kernel: Kernel) -> None:
        super().__init__(inner)
        self._inner = inner
        self._check = kernel.check_write
        self._overlays = kernel.read_overlays

    # -- writes ------------------------------------------------------------------------------

    def insert(self, doc: Doc) -> Doc:
        self._check()
        return self._inner.insert(doc)

    def insert_encoded(self, doc: Doc, text: str) -> None:
        self._check()
        self._inner.insert_encoded(doc, text)

    def append(self, doc: Doc, text: str, *, sequence: str) -> None:
        self._check()
        self._inner.append(doc, text, sequence=sequence)

    def insert_many(self, docs: Iterable[Doc]) -> BulkResult:
        self._check()
        return self._inner.insert_many(docs)

    def upsert_many(self, docs: Iterable[Doc]) -> BulkResult:
        self._check()
        return self._inner.upsert_many(docs)

    def update(self, id: str, changes: Mapping[str, Any], *, expected_version: int) -> Doc:
        self._check()
        return self._inner.update(id, changes, expected_version=expected_version)

    def delete(self, id: str, *, expected_version: int | None = None) -> None:
        self._check()
        self._inner.delete(id, expected_version=expected_version)

    def claim(
        self,
        filter: Filter,
        *,
        owner: str,
        until: datetime,
        now: datetime,
        sort: SortSpec | None = None,
    ) -> Doc | None:
        self._check()
        return self._inner.claim(filter, owner=owner, until=until, now=now, sort=sort)

    def release(self, id: str, *, owner: str) -> None:
        self._check()
        self._inner.release(id, owner=owner)

    def import_raw(self, docs: Iterable[Doc]) -> BulkResult:
        self._check()
        return self._inner.import_raw(docs)

    def ensure_index(self, spec: IndexSpec) -> None:
        self._check()
        self._inner.ensure_index(spec)

    # -- reads -------------------------------------------------------------------------------

    def get(self, id: str) -> Doc:
        doc = self._inner.get(id)
        overlay = self._overlays.get(self._inner.name)
        return doc if overlay is None else overlay(doc)
