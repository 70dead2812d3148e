"""The CRM: what host applications, the CLI and plugins use.

Open one with ``crmcore.open_crm(...)`` (a context manager). Every write names an ``actor``
(who did it), recorded on the record; every write and the plugin effects it causes run in one
store transaction where the backend supports it.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs

from crmcore import builtin
from crmcore.audit import AuditedStore, acting_as, load_audit_keys, reset_actor, set_actor
from crmcore.clock import Clock, SystemClock, ensure_aware
from crmcore.config import Config, resolve_config, structure_section
from crmcore.converter import iso
from crmcore.customers import Customers
from crmcore.effects import NOTHING, Effects
from crmcore.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    PluginError,
    StorageError,
    ValidationError,
)
from crmcore.ids import new_id
from crmcore.interactions import Interactions
from crmcore.logs import get_logger, register_personal_keys
from crmcore.plugins import PluginManager, allowed_from_env, make_plugin_manager
from crmcore.records import Records
from crmcore.registry import Kinds, SettingsSpec
from crmcore.retry import retried
from crmcore.schema import personal_fields
from crmcore.security import Actor, Resource, Role, default_policy, directory_actor
from crmcore.stash import Stash
from crmcore.storage import Collection, CollectionSpec, IndexSpec, StorageOptions, Store
from crmcore.storage.base import StoreLayer
from crmcore.tasks import Tasks

T = TypeVar("T")

MAX_EFFECT_DEPTH = 8


@attrs.frozen
class TickReport:
    """What one worker sweep did."""

    worker: str
    now: datetime
    tasks_created: int
    tasks_updated: int
    records_written: int


class CRM:
    """An open CRM: entities, plugins, storage, clock and configuration together."""

    def __init__(self, *, store: Store, plugins: PluginManager, config: Config,
                 clock: Clock) -> None:
        self.store = store
        self.plugins = plugins
        self.config = config
        self.clock = clock
        self.log = get_logger("core")
        self.stash = Stash()  # plugins' per-CRM state (``crmcore.stash``)
        self._settings = self._load_settings()
        self.interaction_kinds, self.task_kinds = self._load_kinds()
        self._specs = self._open_collections()
        self.customers = Customers(self)
        self.interactions = Interactions(self)
        self.tasks = Tasks(self)
        self._closed = False
        self._local = threading.local()
        self._replay: ReplayClock | None = None
        self.plugins.crm_configure(crm=self)

    # -- set-up ----------------------------------------------------------------------------

    def _load_settings(self) -> dict[str, Any]:
        specs: dict[str, tuple[str, SettingsSpec]] = {}
        for plugin, spec in self.plugins.crm_settings():
            if not isinstance(spec, SettingsSpec):
                raise PluginError(plugin, f"crm_settings returned {type(spec).__name__}, "
                                  "not SettingsSpec")
            if spec.section in specs:
                raise _conflict(f"settings section [{spec.section}]", specs[spec.section][0],
                                plugin)
            specs[spec.section] = (plugin, spec)
        known_elsewhere = {i.name for i in self.plugins.infos() if i.status != "ok"}
        for section in self.config.sections:
            if section not in specs and section not in known_elsewhere:
                loaded = ", ".join(sorted(specs)) or "none"
                raise ConfigError(f"[{section}]: no loaded plugin has a section of that name "
                                  f"(sections: {loaded})")
        return {name: structure_section(self.config.sections.get(name, {}), spec.type, name)
                for name, (_plugin, spec) in specs.items()}

    def _load_kinds(self) -> tuple[frozenset[str], frozenset[str]]:
        interactions: set[str] = set()
        tasks: set[str] = set()
        for _plugin, kinds in self.plugins.crm_kinds():
            if isinstance(kinds, Kinds):
                interactions.update(kinds.interactions)
                tasks.update(kinds.tasks)
        return frozenset(interactions), frozenset(tasks)

    def _open_collections(self) -> dict[str, CollectionSpec]:
        specs: dict[str, CollectionSpec] = {}
        owners: dict[str, str] = {}
        for plugin, spec in self.plugins.crm_collections():
            if plugin != "core" and not spec.name.startswith(f"{plugin}."):
                raise PluginError(plugin, f"collection {spec.name!r} must be named "
                                  f"'{plugin}.<name>'")
            if spec.name in specs:
                raise _conflict(f"collection {spec.name!r}", owners[spec.name], plugin)
            specs[spec.name] = spec
            owners[spec.name] = plugin
        core_types = {builtin.CUSTOMERS: _entity("Customer"),
                      builtin.INTERACTIONS: _entity("Interaction"), builtin.TASKS: _entity("Task")}
        for name, cls in core_types.items():
            specs[name] = attrs.evolve(specs[name], record_type=cls)
        extra = []
        if self.config.core.unique_phone:
            extra.append(IndexSpec([("phone", 1)], unique=True, sparse=True))
        if self.config.core.unique_email:
            extra.append(IndexSpec([("email", 1)], unique=True, sparse=True))
        if extra:
            customers = specs[builtin.CUSTOMERS]
            specs[builtin.CUSTOMERS] = attrs.evolve(customers,
                                                    indexes=(*customers.indexes, *extra))
        for spec in specs.values():
            self.store.ensure_collection(spec)
            personal = personal_fields(spec.record_type) if spec.record_type else ()
            register_personal_keys(personal)
            layer = self.store
            while isinstance(layer, StoreLayer):  # the audit and encryption layers
                layer.declare(spec, personal)
                layer = layer.inner
        return specs

    # -- plumbing for plugins and host apps ------------------------------------------------

    def now(self) -> datetime:
        """The injected clock's current time (UTC). While history is replayed (``replaying``),
        the time of the event being replayed."""
        return self.clock.now()

    def wall_now(self) -> datetime:
        """The present, even while history is replayed (then ``now()`` is the event's time).
        Reactions that create work for people compare its window with this: a callback or a
        referral ask whose moment has passed is not created for an old event."""
        return self._replay.wall.now() if self._replay is not None else self.clock.now()

    @property
    def replaying(self) -> bool:
        """True while a history import replays past events through the plugins' reactions:
        ``now()`` is the event's time (so grades, tiers and ledgers come out as if logged
        live) and ``wall_now()`` the present."""
        return self._replay is not None

    @contextlib.contextmanager
    def replay_clock(self) -> Iterator[ReplayClock]:
        """Replay history: within the block ``crm.clock`` is a ``ReplayClock`` whose ``set``
        moves ``now()`` to each event's time (one replay at a time per CRM)."""
        if self._replay is not None:
            raise ValidationError("a history replay is already running on this CRM")
        clock = ReplayClock(self.clock)
        previous, self.clock, self._replay = self.clock, clock, clock
        try:
            yield clock
        finally:
            self.clock, self._replay = previous, None

    def new_id(self, prefix: str) -> str:
        """A fresh time-ordered id such as ``cus_01JD…`` (prefix it with your record type)."""
        return new_id(prefix, self.clock.now())

    def settings(self, section: str) -> Any:
        """The validated settings object of a plugin's ``[section]``."""
        try:
            return self._settings[section]
        except KeyError:
            raise ConfigError(f"no loaded plugin declares settings [{section}]") from None

    def has_plugin(self, name: str) -> bool:
        """Whether the plugin ``name`` is loaded (plugins never import each other)."""
        return self.plugins.status(name) == "ok"

    def collection_specs(self) -> list[CollectionSpec]:
        """Every declared collection, the core's included."""
        return list(self._specs.values())

    def collection(self, name: str) -> Collection:
        """The raw collection ``name`` (it must have been declared)."""
        if name not in self._specs:
            raise NotFoundError(f"no collection {name!r} is declared (declare it with "
                                "crm_collections)")
        return self.store.collection(name)

    def records(self, name: str, cls: type[T]) -> Records[T]:
        """Typed access to a declared collection holding attrs records of ``cls``."""
        return Records(self.collection(name), cls)

    def transaction(self, actor: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Group writes (atomic where ``store.capabilities.transactions``), attributing them
        to ``actor`` in the audit trail when given."""
        return _Transaction(self, actor)

    @property
    def audit(self) -> AuditedStore | None:
        """The audit trail, or None when ``[core] audit = false``."""
        return self.store if isinstance(self.store, AuditedStore) else None

    # -- permissions -----------------------------------------------------------------------

    def actor(self, name: str) -> Actor | None:
        """The actor called ``name``: from a plugin's ``crm_actor``, else the configuration."""
        found = self.plugins.crm_actor(crm=self, name=name)
        return found if found is not None else directory_actor(self.config.security, name)

    def authorize(self, actor: str, action: str, resource: Resource) -> None:
        """Raise ``PermissionDenied`` (and audit the refusal) unless ``actor`` may do
        ``action`` on ``resource``. Does nothing while ``[security] enforce`` is false."""
        if not self.config.security.enforce or getattr(self._local, "reacting", 0):
            return  # plugins reacting to an event act under the authorised action's permission
        who = self.actor(actor)
        if who is None:
            allowed, why = False, f"unknown actor {actor!r} (add it under [security.actors])"
        else:
            decided = self.plugins.crm_authorize(crm=self, actor=who, action=action,
                                                 resource=resource)
            if decided is None:
                allowed, why = default_policy(self, who, action, resource)
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
        if getattr(self._local, "depth", 0) == 0:
            self._audit_denial(denied)
        raise denied

    def _audit_denial(self, exc: PermissionDenied) -> None:
        pending = getattr(exc, "audit", None)
        if pending is None or self.audit is None:
            return
        exc.audit = None  # type: ignore[attr-defined]  # record it once
        actor, action, resource = pending
        with acting_as(actor):
            self.audit.record_denial(action, resource, str(exc))

    def readable_filter(self, actor: str, query: Mapping[str, Any], *,
                        owner_field: str = "owner") -> dict[str, Any]:
        """Narrow a query to the records ``actor`` may read under enforced permissions:
        an agent's own and unowned ones; a shift lead's team's; a manager's department's
        (teams and departments as configured under ``[security.actors]``)."""
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
            names = {n for n, a in directory.items()
                     if who.department and a.department == who.department}
        else:
            return dict(query)  # admin, auditor, system: everything
        scope = {"$or": [{owner_field: {"$in": sorted(names | {actor})}}, {owner_field: None}]}
        return {"$and": [dict(query), scope]} if query else scope

    # -- events and effects ----------------------------------------------------------------

    @contextlib.contextmanager
    def reacting(self) -> Iterator[None]:
        """Writes inside are part of an action the caller was already authorised for (a
        complaint's resolution logging the refund it approved), so they are not checked again:
        the same standing as plugins reacting to an event. Use it only after ``authorize``."""
        local = self._local
        local.reacting = getattr(local, "reacting", 0) + 1
        try:
            yield
        finally:
            local.reacting -= 1

    def emit(self, hook_name: str, *, actor: str, _depth: int = 0, **kwargs: Any) -> Effects:
        """Call an event hook and apply the ``Effects`` every plugin returned.

        Plugins that offer hooks of their own call this for them too, so their implementers'
        effects are applied in the same place. Returns what was applied.
        """
        if _depth > MAX_EFFECT_DEPTH:
            raise PluginError("core", f"effects kept triggering {hook_name} more than "
                              f"{MAX_EFFECT_DEPTH} levels deep; a plugin loops")
        if not self.plugins.implemented(hook_name):
            return NOTHING  # every write emits an event: most have no listener
        local = self._local
        local.reacting = getattr(local, "reacting", 0) + 1
        try:
            effects = Effects.combine(self.plugins.call(hook_name, crm=self, actor=actor,
                                                        **kwargs))
            self.apply(effects, actor=actor, _depth=_depth)
        finally:
            local.reacting -= 1
        return effects

    def apply(self, effects: Effects, *, actor: str, _depth: int = 0) -> list[Any]:
        """Apply ``effects``: ext patches, plugin records, task updates, then new tasks."""
        if not effects:
            return []
        created = []
        with self.transaction(actor):
            for patch in effects.ext:
                self.customers.patch_ext(patch.customer_id, patch.namespace, patch.values,
                                         actor=actor)
            for write in effects.records:
                coll = self.collection(write.collection)
                if write.expected_version is None:
                    coll.insert(write.doc)
                else:
                    fields = {k: v for k, v in write.doc.items() if k not in ("id", "version")}
                    coll.update(write.doc["id"], fields, expected_version=write.expected_version)
            cancelled = []
            for update in effects.task_updates:
                changed = self.tasks.apply_update(update, actor=actor)
                if update.cancel and changed is not None:
                    cancelled.append(changed)
            for draft in effects.tasks:
                task, is_new = self.tasks.create_from(draft, actor=actor)
                if is_new:
                    created.append(task)
            for task in cancelled:
                self.emit("crm_task_cancelled", actor=actor, task=task, _depth=_depth + 1)
            for task in created:
                self.emit("crm_task_created", actor=actor, task=task, _depth=_depth + 1)
        return created

    @retried
    def tick(self, worker: str, now: datetime | None = None) -> TickReport:
        """One worker sweep: call ``crm_tick`` on every plugin and apply their effects (run
        again whole if a concurrent transaction rolled it back, as the API's writes are)."""
        when = now or self.clock.now()
        effects = Effects.combine(self.plugins.crm_tick(crm=self, now=when, worker=worker))
        created = self.apply(effects, actor=f"worker:{worker}")
        self.log.debug("tick", worker=worker, now=iso(when), tasks=len(created))
        return TickReport(worker, when, len(created), len(effects.task_updates),
                          len(effects.records))

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self.store.close()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _conflict(what: str, one: str, other: str) -> PluginError:
    first, second = sorted((one, other))
    return PluginError(second, f"{what} is provided by both plugin {first!r} and plugin "
                       f"{second!r}; disable one of them")


def _entity(name: str) -> type:
    from crmcore import entities

    return getattr(entities, name)


def open_crm(config: Config | Mapping[str, Any] | str | Path | None = None, *,
             clock: Clock | None = None, plugins: list[str] | None = None,
             extra_plugins: list[tuple[str, object]] | None = None,
             load_entry_points: bool = True, schema_upgrade: bool = False) -> CRM:
    """Open a CRM.

    ``config`` is a ``Config``, a mapping shaped like crm.toml, or a path to a TOML file (None:
    ``$CRM_CONFIG`` or ``./crm.toml`` if present, else defaults). ``plugins`` names the
    installed plugins to load (None: ``$CRMCORE_PLUGINS``, else ``[plugins] enabled``, else
    all); ``extra_plugins`` registers plugin objects directly; ``clock`` defaults to the system
    clock. ``schema_upgrade`` lets the backend build indexes and change validators on
    collections that hold data (``crm db upgrade``; see ``StorageOptions.schema_upgrade``).
    """
    cfg = resolve_config(config)
    allowed = plugins
    if allowed is None:
        env = allowed_from_env()
        allowed = sorted(env) if env is not None else cfg.plugins.enabled
    pm = make_plugin_manager(allowed=None if allowed is None else set(allowed),
                             load_entry_points=load_entry_points, extra=extra_plugins or ())
    if allowed is not None:
        missing = sorted(set(allowed) - {i.name for i in pm.infos()})
        if missing:
            raise ConfigError(f"plugins.enabled: not installed: {', '.join(missing)}")
    the_clock = clock or SystemClock()
    store: Store = open_store(pm, cfg, the_clock, schema_upgrade=schema_upgrade)
    if cfg.core.encrypt_personal:
        from crmcore.encryption import EncryptedStore, FieldCipher, load_key, load_previous_keys

        try:
            key = load_key(cfg.core.encryption_key_file)
            previous = load_previous_keys(cfg.core.encryption_previous_key_files, key)
            store = EncryptedStore(store, FieldCipher(key, previous))
        except BaseException:
            store.close()
            raise
    if cfg.core.audit:
        try:
            audit_keys = load_audit_keys(cfg.core)
        except BaseException:
            store.close()
            raise
        store = AuditedStore(store, the_clock, audit_keys)
    try:
        return CRM(store=store, plugins=pm, config=cfg, clock=the_clock)
    except BaseException:
        store.close()
        raise


def open_store(pm: PluginManager, cfg: Config, clock: Clock, *,
               schema_upgrade: bool = False) -> Store:
    """Open the backend named in ``[storage]`` through the ``crm_storage_backends`` hook."""
    backends: dict[str, tuple[str, Any]] = {}
    for plugin, backend in pm.crm_storage_backends():
        if backend.name in backends:
            raise _conflict(f"storage backend {backend.name!r}", backends[backend.name][0],
                            plugin)
        backends[backend.name] = (plugin, backend)
    name = cfg.storage.backend
    if name not in backends:
        available = ", ".join(sorted(backends)) or "none"
        raise ConfigError(f"storage.backend: no backend named {name!r} is installed "
                          f"(available: {available})")
    plugin, backend = backends[name]
    options = StorageOptions(cfg.storage.location, dict(cfg.storage.options), clock,
                             schema_upgrade)
    try:
        return backend.factory(options)
    except (ConfigError, StorageError, ValidationError, ConflictError):
        raise
    except Exception as exc:
        raise PluginError(plugin, f"opening storage {name!r} failed: "
                          f"{type(exc).__name__}: {exc}") from exc


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
    """``CRM.transaction()`` (a class, not a generator: every write goes through it)."""

    __slots__ = ("_actor", "_crm", "_inner", "_token")

    def __init__(self, crm: CRM, actor: str | None) -> None:
        self._crm = crm
        self._actor = actor
        self._token: contextvars.Token[str | None] | None = None
        self._inner: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> None:
        local = self._crm._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            inner = self._crm.store.transaction()
            inner.__enter__()
        except BaseException:
            local.depth -= 1
            raise
        self._inner = inner
        if self._actor is not None:
            self._token = set_actor(self._actor)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        local = self._crm._local
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
                self._crm._audit_denial(raised)
            raise
        else:
            if isinstance(exc, PermissionDenied) and local.depth == 1:
                self._crm._audit_denial(exc)
        finally:
            local.depth -= 1
