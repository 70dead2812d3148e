"""The CRM: what host applications, the CLI and plugins use.

Open one with ``crmcore.open_crm(...)`` (a context manager). Every write names an ``actor``
(who did it), recorded on the record; every write and the plugin effects it causes run in one
store transaction where the backend supports it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs

from crmcore import names
from crmcore.audit import AuditedStore, load_audit_keys
from crmcore.clock import Clock, SystemClock
from crmcore.config import Config, resolve_config, structure_section
from crmcore.converter import iso
from crmcore.customers import Customers
from crmcore.effects import Effects
from crmcore.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    PluginError,
    StorageError,
    ValidationError,
)
from crmcore.hookcalls import EventCalls
from crmcore.interactions import Interactions
from crmcore.kernel import MAX_EFFECT_DEPTH, GatedCollection, Kernel, ReplayClock
from crmcore.logs import get_logger, register_personal_keys
from crmcore.plugins import PluginManager, allowed_from_env, make_plugin_manager
from crmcore.records import Record, Records
from crmcore.registry import Kinds, SettingsSpec
from crmcore.retry import retried
from crmcore.security import Actor, Resource
from crmcore.stash import Stash
from crmcore.storage import Collection, CollectionSpec, IndexSpec, StorageOptions, Store
from crmcore.storage.base import StoreLayer
from crmcore.storage.txcache import CachedStore
from crmcore.tasks import Tasks

T = TypeVar("T", bound=Record)
V = TypeVar("V")

__all__ = ["CRM", "MAX_EFFECT_DEPTH", "ReplayClock", "TickReport", "open_crm", "open_store"]


@attrs.frozen
class TickReport:
    """What one worker sweep did."""

    worker: str
    now: datetime
    tasks_created: int
    tasks_updated: int
    records_written: int


class CRM:
    """An open CRM: entities, plugins, storage, clock and configuration together.

    It composes a ``Kernel`` (store, clock, transactions, permissions, events) and the
    services built on it (``customers``, ``interactions``, ``tasks``), and is what hooks
    receive as ``crm``."""

    def __init__(
        self, *, store: Store, plugins: PluginManager, config: Config, clock: Clock
    ) -> None:
        self.store = store
        self.plugins = plugins
        self.config = config
        self.kernel = Kernel(store=store, config=config, plugins=plugins, clock=clock)
        self.kernel.host = self
        self.log = get_logger("core")
        self.stash = Stash()  # plugins' per-CRM state (``crmcore.stash``)
        self._settings = self._load_settings()
        self._task_labels: dict[str, str] = {}
        self.interaction_kinds, self.task_kinds = self._load_kinds()
        self._specs = self.kernel.specs = self._open_collections()
        self.tasks = Tasks(self.kernel, self.task_kinds)
        self.interactions = Interactions(self.kernel, self.interaction_kinds)
        self.customers = Customers(self.kernel, self.tasks)
        self._closed = False
        self.plugins.crm_configure(crm=self)

    @property
    def clock(self) -> Clock:
        """The injected clock (a ``ReplayClock`` while history is replayed)."""
        return self.kernel.clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self.kernel.clock = clock

    # -- set-up ----------------------------------------------------------------------------

    def _load_settings(self) -> dict[str, Any]:
        """Collect the plugins' settings sections; structure those the configuration sets
        now (so a mistake in one is reported when the CRM opens) and leave the others, which
        hold only defaults, to the first ``settings(section)`` that asks for them."""
        specs: dict[str, tuple[str, SettingsSpec]] = {}
        for plugin, spec in self.plugins.crm_settings():
            if not isinstance(spec, SettingsSpec):
                raise PluginError(
                    plugin, f"crm_settings returned {type(spec).__name__}, not SettingsSpec"
                )
            if spec.section in specs:
                raise _conflict(
                    f"settings section [{spec.section}]", specs[spec.section][0], plugin
                )
            specs[spec.section] = (plugin, spec)
        known_elsewhere = {i.name for i in self.plugins.infos() if i.status != "ok"}
        for section in self.config.sections:
            if section not in specs and section not in known_elsewhere:
                loaded = ", ".join(sorted(specs)) or "none"
                raise ConfigError(
                    f"[{section}]: no loaded plugin has a section of that name (sections: {loaded})"
                )
        self._settings_specs = specs
        return {
            name: self._structure_settings(name) for name in specs if name in self.config.sections
        }

    def _structure_settings(self, section: str) -> Any:
        plugin, spec = self._settings_specs[section]
        try:
            cls = spec.resolve()
        except Exception as exc:  # the plugin named a class that does not import
            raise PluginError(
                plugin, f"settings [{section}]: {spec.type} could not be loaded: {exc!r}"
            ) from exc
        return structure_section(self.config.sections.get(section, {}), cls, section)

    def _load_kinds(self) -> tuple[frozenset[str], frozenset[str]]:
        interactions: set[str] = set()
        tasks: set[str] = set()
        for _plugin, kinds in self.plugins.crm_kinds():
            if isinstance(kinds, Kinds):
                interactions.update(kinds.interactions)
                tasks.update(kinds.tasks)
                self._task_labels.update(
                    (k, v) for k, v in kinds.task_labels.items() if k in kinds.tasks
                )
        return frozenset(interactions), frozenset(tasks)

    def task_kind_label(self, kind: str) -> str:
        """How a task kind is shown, in English (a message id of the declaring plugin's
        catalog: translate it where it is shown); a kind without a label reads as its name."""
        return self._task_labels.get(kind) or kind.replace("_", " ").capitalize()

    def _open_collections(self) -> dict[str, CollectionSpec]:
        specs: dict[str, CollectionSpec] = {}
        owners: dict[str, str] = {}
        added: list[tuple[str, CollectionSpec]] = []  # plugins' indexes on the core's
        core_names = (names.CUSTOMERS, names.INTERACTIONS, names.TASKS)
        for plugin, spec in self.plugins.crm_collections():
            if plugin != "core" and spec.name in core_names:
                if (
                    spec.customer_key
                    or spec.record_type
                    or spec.sequence
                    or not (spec.indexes or spec.derived)
                ):
                    raise PluginError(
                        plugin,
                        f"collection {spec.name!r} is the core's: a plugin may only add "
                        "indexes or derived fields to it (CollectionSpec(name, indexes=..., "
                        "derived=...)), nothing else",
                    )
                own = f"ext.{plugin}"
                for path in spec.derived:
                    if path != own and not path.startswith(f"{own}."):
                        raise PluginError(
                            plugin,
                            f"derived field {path!r} of {spec.name!r}: a plugin may declare "
                            f"derived only its own fields of the core's records ({own}...)",
                        )
                added.append((plugin, spec))
                continue
            if plugin != "core" and not spec.name.startswith(f"{plugin}."):
                raise PluginError(
                    plugin, f"collection {spec.name!r} must be named '{plugin}.<name>'"
                )
            if spec.name in specs:
                raise _conflict(f"collection {spec.name!r}", owners[spec.name], plugin)
            specs[spec.name] = spec
            owners[spec.name] = plugin
        core_types = {
            names.CUSTOMERS: _entity("Customer"),
            names.INTERACTIONS: _entity("Interaction"),
            names.TASKS: _entity("Task"),
        }
        for name, cls in core_types.items():
            specs[name] = attrs.evolve(specs[name], record_type=cls)
        for _plugin, spec in added:
            core = specs[spec.name]
            have = {i.name for i in core.indexes}
            fresh = tuple(i for i in spec.indexes if i.name not in have)
            derived = (*core.derived, *(d for d in spec.derived if d not in core.derived))
            specs[spec.name] = attrs.evolve(core, indexes=(*core.indexes, *fresh), derived=derived)
        extra = []
        if self.config.core.unique_phone:
            extra.append(IndexSpec([("phone", 1)], unique=True, sparse=True))
        if self.config.core.unique_email:
            extra.append(IndexSpec([("email", 1)], unique=True, sparse=True))
        if extra:
            customers = specs[names.CUSTOMERS]
            specs[names.CUSTOMERS] = attrs.evolve(customers, indexes=(*customers.indexes, *extra))
        for spec in specs.values():
            self.store.ensure_collection(spec)
            personal = (*spec.personal_fields(), *spec.blind)
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
        return self.kernel.now()

    def wall_now(self) -> datetime:
        """The present, even while history is replayed (then ``now()`` is the event's time).
        Reactions that create work for people compare its window with this: a callback or a
        referral ask whose moment has passed is not created for an old event."""
        return self.kernel.wall_now()

    @property
    def replaying(self) -> bool:
        """True while a history import replays past events through the plugins' reactions:
        ``now()`` is the event's time (so grades, tiers and ledgers come out as if logged
        live) and ``wall_now()`` the present."""
        return self.kernel.replaying

    def replay_clock(self) -> contextlib.AbstractContextManager[ReplayClock]:
        """Replay history: within the block ``crm.clock`` is a ``ReplayClock`` whose ``set``
        moves ``now()`` to each event's time (one replay at a time per CRM)."""
        return self.kernel.replay_clock()

    def replay_at(self, when: datetime) -> contextlib.AbstractContextManager[None]:
        """During a history replay, ``now()`` reads ``when`` inside the block (what a
        ``crm_interactions_replayed`` fold uses to react to each event at its time); outside
        a replay the block runs unchanged."""
        return self.kernel.replay_at(when)

    def new_id(self, prefix: str) -> str:
        """A fresh time-ordered id such as ``cus_01JD…`` (prefix it with your record type)."""
        return self.kernel.new_id(prefix)

    def settings(self, section: str) -> Any:
        """The validated settings object of a plugin's ``[section]``."""
        try:
            return self._settings[section]
        except KeyError:
            pass
        if section not in self._settings_specs:
            raise ConfigError(f"no loaded plugin declares settings [{section}]")
        value = self._settings[section] = self._structure_settings(section)
        return value

    def settings_sections(self) -> list[str]:
        """The settings sections the loaded plugins declare, sorted."""
        return sorted(self._settings_specs)

    def has_plugin(self, name: str) -> bool:
        """Whether the plugin ``name`` is loaded (plugins never import each other)."""
        return self.plugins.status(name) == "ok"

    def collection_specs(self) -> list[CollectionSpec]:
        """Every declared collection, the core's included."""
        return list(self._specs.values())

    def collection(self, name: str) -> Collection:
        """The raw collection ``name`` (it must have been declared)."""
        if name not in self._specs:
            raise NotFoundError(
                f"no collection {name!r} is declared (declare it with crm_collections)"
            )
        return GatedCollection(self.store.collection(name), self.kernel)

    def records(self, name: str, cls: type[T], *, compact: bool = False) -> Records[T]:
        """Typed access to a declared collection holding attrs records of ``cls``
        (``compact``: new records stored without their blank fields, see ``Records``)."""
        return Records(self.collection(name), cls, compact=compact)

    def transaction(self, actor: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Group writes (atomic where ``store.capabilities.transactions``), attributing them
        to ``actor`` in the audit trail when given."""
        return self.kernel.transaction(actor)

    def in_transaction(self) -> bool:
        """Whether a ``transaction()`` is open on this thread."""
        return self.kernel.in_transaction()

    def remembered(self, collection: str, key: Hashable, compute: Callable[[], V]) -> V:
        """``compute()``, a query of ``collection`` that many reactions to one action ask
        (the rep roster), answered once per transaction: kept until anything in
        ``collection`` is written or the outermost transaction ends; outside a transaction
        (or on a backend without atomic transactions) computed each time. The answer is
        shared: do not change it."""
        layer: Any = self.store
        while isinstance(layer, StoreLayer) and not isinstance(layer, CachedStore):
            layer = layer.inner
        if not isinstance(layer, CachedStore):
            return compute()
        return layer.remembered(collection, key, compute)

    @property
    def audit(self) -> AuditedStore | None:
        """The audit trail, or None when ``[core] audit = false``."""
        return self.store if isinstance(self.store, AuditedStore) else None

    # -- permissions -----------------------------------------------------------------------

    def actor(self, name: str) -> Actor | None:
        """The actor called ``name``: from a plugin's ``crm_actor``, else the configuration."""
        return self.kernel.actor(name)

    def authorize(self, actor: str, action: str, resource: Resource) -> None:
        """Raise ``PermissionDenied`` (and audit the refusal) unless ``actor`` may do
        ``action`` on ``resource``. Does nothing while ``[security] enforce`` is false, nor
        for writes that react to an already authorised action (``reacting``)."""
        self.kernel.authorize(actor, action, resource)

    def readable_filter(
        self, actor: str, query: Mapping[str, Any], *, owner_field: str = "owner"
    ) -> dict[str, Any]:
        """Narrow a query to the records ``actor`` may read under enforced permissions:
        an agent's own and unowned ones; a shift lead's team's; a manager's department's
        (teams and departments as configured under ``[security.actors]``)."""
        return self.kernel.readable_filter(actor, query, owner_field=owner_field)

    # -- events and effects ----------------------------------------------------------------

    @property
    def events(self) -> EventCalls:
        """Fire an event hook by its typed method: ``crm.events.complaint_closed(actor=…,
        ticket=…)``, one per event hook of the core and of ``crmcore.contracts``. Each applies
        the ``Effects`` every plugin returned and returns them, as ``emit`` does."""
        return self.kernel.events

    def reacting(self) -> contextlib.AbstractContextManager[None]:
        """Writes inside are part of an action the caller was already authorised for (a
        complaint's resolution logging the refund it approved), so they are not checked again:
        the standing of a reaction applied by the core. Use it only after ``authorize``. It
        grants permission, not the right to write from inside an event hook (docs/hooks.md)."""
        return self.kernel.reacting()

    def emit(self, hook_name: str, *, actor: str, **kwargs: Any) -> Effects:
        """Call an event hook by name and apply the ``Effects`` every plugin returned.

        For the hooks a plugin declares itself (``crm_addhooks``), so their implementers'
        effects are applied in the same place; the core's events and those of
        ``crmcore.contracts`` are fired through ``crm.events`` instead. Returns what was
        applied. Refused from inside an event hook (return Effects instead); nested emits
        count toward ``MAX_EFFECT_DEPTH`` on their thread however they were reached.
        """
        return self.kernel.emit(hook_name, actor=actor, **kwargs)

    def apply(self, effects: Effects, *, actor: str) -> list[Any]:
        """Apply ``effects`` (``crmcore.effects.apply``): actions, then interactions, ext
        patches, plugin records, task updates and new tasks in one transaction. Returns the
        tasks created."""
        self.kernel.check_write()
        return self.kernel.apply(effects, actor=actor)

    @retried
    def tick(self, worker: str, now: datetime | None = None) -> TickReport:
        """One worker sweep: call ``crm_tick`` on every plugin and apply their effects (run
        again whole if a concurrent transaction rolled it back, as the API's writes are)."""
        when = now or self.clock.now()
        effects = self.kernel.call_event("crm_tick", now=when, worker=worker)
        applied: list[Effects] = []
        created = self.kernel.apply(effects, actor=f"worker:{worker}", applied=applied)
        self.log.debug("tick", worker=worker, now=iso(when), tasks=len(created))
        return TickReport(
            worker,
            when,
            len(created),
            sum(len(e.task_updates) for e in applied),
            sum(len(e.records) for e in applied),
        )

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
    return PluginError(
        second,
        f"{what} is provided by both plugin {first!r} and plugin {second!r}; disable one of them",
    )


def _entity(name: str) -> type:
    from crmcore import entities

    return getattr(entities, name)


def open_crm(
    config: Config | Mapping[str, Any] | str | Path | None = None,
    *,
    clock: Clock | None = None,
    plugins: list[str] | None = None,
    extra_plugins: list[tuple[str, object]] | None = None,
    load_entry_points: bool = True,
    schema_upgrade: bool = False,
    plugin_manager: PluginManager | None = None,
) -> CRM:
    """Open a CRM.

    ``config`` is a ``Config``, a mapping shaped like crm.toml, or a path to a TOML file (None:
    ``$CRM_CONFIG`` or ``./crm.toml`` if present, else defaults). ``plugins`` names the
    installed plugins to load (None: ``$CRMCORE_PLUGINS``, else ``[plugins] enabled``, else
    all); ``extra_plugins`` registers plugin objects directly; ``clock`` defaults to the system
    clock. ``schema_upgrade`` lets the backend build indexes and change validators on
    collections that hold data (``crm db upgrade``; see ``StorageOptions.schema_upgrade``).
    ``plugin_manager`` is one already made (the CLI's, which listed the commands): it is
    used when ``make_plugin_manager`` made it from entry points alone for the plugins this
    configuration loads; otherwise a new one is made.
    """
    cfg = resolve_config(config)
    allowed = plugins
    if allowed is None:
        env = allowed_from_env()
        allowed = sorted(env) if env is not None else cfg.plugins.enabled
    wanted = None if allowed is None else frozenset(allowed)
    if (
        plugin_manager is not None
        and plugin_manager.made_for == (wanted,)
        and load_entry_points
        and not extra_plugins
    ):
        pm = plugin_manager  # the same plugins, loaded the same way: no second loading
    else:
        pm = make_plugin_manager(
            allowed=None if wanted is None else set(wanted),
            load_entry_points=load_entry_points,
            extra=extra_plugins or (),
        )
    if allowed is not None:
        missing = sorted(set(allowed) - {i.name for i in pm.infos()})
        if missing:
            raise ConfigError(f"plugins.enabled: not installed: {', '.join(missing)}")
    the_clock = clock or SystemClock()
    store: Store = open_store(pm, cfg, the_clock, schema_upgrade=schema_upgrade)
    # Right on the backend: each record is read once per transaction by every layer above
    # (the audit trail's "before" of a write included), and what it holds is as stored.
    store = CachedStore(store)
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


def open_store(
    pm: PluginManager, cfg: Config, clock: Clock, *, schema_upgrade: bool = False
) -> Store:
    """Open the backend named in ``[storage]`` through the ``crm_storage_backends`` hook."""
    backends: dict[str, tuple[str, Any]] = {}
    for plugin, backend in pm.crm_storage_backends():
        if backend.name in backends:
            raise _conflict(f"storage backend {backend.name!r}", backends[backend.name][0], plugin)
        backends[backend.name] = (plugin, backend)
    name = cfg.storage.backend
    if name not in backends:
        available = ", ".join(sorted(backends)) or "none"
        raise ConfigError(
            f"storage.backend: no backend named {name!r} is installed (available: {available})"
        )
    plugin, backend = backends[name]
    options = StorageOptions(cfg.storage.location, dict(cfg.storage.options), clock, schema_upgrade)
    try:
        return backend.factory(options)
    except (ConfigError, StorageError, ValidationError, ConflictError):
        raise
    except Exception as exc:
        raise PluginError(
            plugin, f"opening storage {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
