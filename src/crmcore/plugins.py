"""The plugin manager: loads plugins from the ``crmcore`` entry-point group and calls hooks.

Modelled on pytest, tox and conda: a typed facade over pluggy (``hookcalls.HookCalls``, one
method per hook); the core's hookspecs and the contracts between plugins are always declared, so
``check_pending`` makes a misspelt hook an error; each plugin's load failure or hook failure is
reported with its name and never takes the others (or the CLI) down. ``CRM_TRACE_HOOKS=1``
prints every hook call on stderr (``hooktrace``).
"""

from __future__ import annotations

import os
import types
from collections.abc import Callable, Iterable, Iterator
from importlib import metadata
from typing import Any

import attrs
import pluggy

from crmcore import hooktrace
from crmcore.contracts import CONTRACT_SPECS
from crmcore.errors import CrmError, PluginError
from crmcore.hookcalls import HookCalls
from crmcore.hookspecs import PROJECT, CrmHookSpecs
from crmcore.logs import get_logger

ENTRY_POINT_GROUP = "crmcore"
ENV_PLUGINS = "CRMCORE_PLUGINS"

log = get_logger("plugins")


@attrs.frozen
class PluginInfo:
    """What ``crm plugins`` shows for one plugin."""

    name: str
    status: str  # "ok", "failed" or "disabled"
    distribution: str | None = None
    version: str | None = None
    hooks: tuple[str, ...] = ()
    error: str | None = None


def allowed_from_env(environ: dict[str, str] | None = None) -> set[str] | None:
    """The allowlist in ``CRMCORE_PLUGINS`` (comma-separated); empty means none; unset, all."""
    env = os.environ if environ is None else environ
    if ENV_PLUGINS not in env:
        return None
    return {p.strip() for p in env[ENV_PLUGINS].split(",") if p.strip()}


class PluginManager(HookCalls):
    """Typed facade over ``pluggy.PluginManager`` for the ``crm_*`` hooks."""

    def __init__(self, *, trace: bool | None = None) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(CrmHookSpecs)
        for contract in CONTRACT_SPECS:  # always: a drifted implementation fails at load
            self._pm.add_hookspecs(contract)
        if hooktrace.enabled() if trace is None else trace:
            hooktrace.install(self._pm)
        self._infos: dict[str, PluginInfo] = {}
        self._packages: dict[str, str] = {}  # module-name prefix -> plugin name
        self._implemented: dict[str, bool] = {}  # hook name -> any implementation (see below)
        # (allowlist,) when made by ``make_plugin_manager`` from entry points alone: what
        # ``open_crm`` checks before it uses this manager instead of making another
        self.made_for: tuple[frozenset[str] | None] | None = None
        # Historic: every plugin registered from now on gets the call as it registers.
        self.crm_addhooks()

    @property
    def hook(self) -> pluggy.HookRelay:
        """pluggy's relay (``pm.hook.<name>(...)``): no error wrapping; use the typed methods."""
        return self._pm.hook

    def add_hookspecs(self, specs: types.ModuleType | type) -> None:
        """Add a plugin's own hook specifications (call from ``crm_addhooks``)."""
        self._pm.add_hookspecs(specs)
        self._implemented.clear()

    def declares(self, hook_name: str) -> bool:
        """Whether some loaded plugin (or the core) declares ``hook_name``."""
        caller = getattr(self._pm.hook, hook_name, None)
        return caller is not None and caller.has_spec()

    # -- loading ---------------------------------------------------------------------------

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> bool:
        """Register a plugin object (a module or an instance). Returns False if it failed."""
        if name in self._infos and self._infos[name].status == "ok":
            raise PluginError(
                name,
                f"a plugin named {name!r} is already registered "
                f"(from {self._infos[name].distribution or 'code'})",
            )
        self._implemented.clear()
        try:
            self._pm.register(plugin, name=name)
        except Exception as exc:
            self._fail(name, exc, distribution, version)
            return False
        module = (
            plugin.__name__ if isinstance(plugin, types.ModuleType) else type(plugin).__module__
        )
        top = module.split(".")[0]
        self._packages[module if top == "crmcore" else top] = name
        self._infos[name] = PluginInfo(name, "ok", distribution, version, self._hooks_of(name))
        return True

    def mark_failed(self, name: str, exc: BaseException) -> None:
        """Record that a loaded plugin failed later (e.g. adding CLI commands)."""
        info = self._infos.get(name)
        self._fail(name, exc, info.distribution if info else None, info.version if info else None)

    def _fail(
        self,
        name: str,
        exc: BaseException,
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self._infos[name] = PluginInfo(name, "failed", distribution, version, (), message)
        log.warning("plugin failed to load", plugin=name, error=message)

    def _hooks_of(self, name: str) -> tuple[str, ...]:
        plugin = self._pm.get_plugin(name)
        if plugin is None:
            return ()
        return tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ()))

    def load_entry_points(self, allowed: set[str] | None = None) -> None:
        """Load every plugin in the ``crmcore`` entry-point group, or those in ``allowed``."""
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist, version = name_and_version(ep.dist) if ep.dist else (None, None)
            if allowed is not None and ep.name not in allowed:
                self._infos.setdefault(ep.name, PluginInfo(ep.name, "disabled", dist, version))
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self._fail(ep.name, exc, dist, version)
                continue
            self.register(plugin, ep.name, distribution=dist, version=version)
        self.check_pending()

    def check_pending(self) -> None:
        """Fail (and unregister) every plugin that implements a hook nobody declared."""
        while True:
            try:
                self._pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self._pm.get_name(exc.plugin) or "?"
                self._pm.unregister(exc.plugin)
                self._implemented.clear()
                info = self._infos.get(name)
                self._fail(
                    name,
                    CrmError(f"implements an unknown hook ({exc})"),
                    info.distribution if info else None,
                    info.version if info else None,
                )

    # -- introspection ---------------------------------------------------------------------

    def infos(self) -> list[PluginInfo]:
        """Every plugin seen: loaded, failed or disabled, by name."""
        return [self._infos[k] for k in sorted(self._infos)]

    def names(self) -> list[str]:
        """Names of the plugins that loaded."""
        return [i.name for i in self.infos() if i.status == "ok"]

    def status(self, name: str) -> str | None:
        info = self._infos.get(name)
        return info.status if info else None

    # -- calling ---------------------------------------------------------------------------

    def _caller(self, hook_name: str) -> pluggy.HookCaller:
        caller = getattr(self._pm.hook, hook_name, None)
        if caller is None:
            raise PluginError(
                "core",
                f"no hook named {hook_name!r} is declared (is the plugin that offers it loaded?)",
            )
        return caller

    def implemented(self, hook_name: str) -> bool:
        """Whether any loaded plugin implements the hook (``PluginError`` if none declares
        it). Remembered until plugins are registered or unregistered: every write asks."""
        found = self._implemented.get(hook_name)
        if found is None:
            found = self._implemented[hook_name] = bool(self._caller(hook_name).get_hookimpls())
        return found

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook; a plugin's unexpected exception becomes a ``PluginError`` naming it.

        ``CrmError`` raised on purpose (validation, conflicts …) passes through unchanged.
        """
        caller = self._caller(hook_name)
        if not self.implemented(hook_name):  # skip pluggy's machinery: every write emits one
            return [None] if caller.spec is not None and caller.spec.opts["firstresult"] else []
        try:
            result = caller(**kwargs)
        except CrmError:
            raise
        except Exception as exc:
            culprit = self._culprit(exc)
            raise PluginError(culprit, f"{hook_name} failed: {type(exc).__name__}: {exc}") from exc
        return list(result) if isinstance(result, list) else [result]

    def flat(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a hook whose implementations return lists (or one item, or None); flatten."""
        out: list[Any] = []
        for part in self.call(hook_name, **kwargs):
            if part is None:
                continue
            if isinstance(part, list | tuple):
                out.extend(part)
            else:
                out.append(part)
        return out

    def each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Callable[[], Any]]]:
        """``(plugin name, call)`` for every implementation, in pluggy's call order: ``call()``
        runs that one plugin's implementation through pluggy (every wrapper, monitoring) and
        returns its answer (None when it returned None)."""
        caller = self._caller(hook_name)
        impls = [i for i in caller.get_hookimpls() if not (i.hookwrapper or i.wrapper)]
        plugins = [impl.plugin for impl in impls]
        for impl in reversed(impls):
            others = [p for p in plugins if p is not impl.plugin]
            one = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
            yield impl.plugin_name, _single(one, kwargs)

    def contributions(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call a registration hook plugin by plugin: ``(plugin name, item)`` pairs, flattened.

        Used where a conflict must name the plugins involved (conda's pattern). A plugin that
        raises here is reported by name.
        """
        out: list[tuple[str, Any]] = []
        for plugin, call in self.each(hook_name, **kwargs):
            try:
                result = call()
            except CrmError:
                raise
            except Exception as exc:
                raise PluginError(
                    plugin, f"{hook_name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            items = result if isinstance(result, list | tuple) else [result]
            out.extend((plugin, item) for item in items if item is not None)
        return out

    def without(self, hook_name: str, implementers_of: str) -> Callable[..., list[Any]] | None:
        """A call of ``hook_name`` on the plugins that do not implement ``implementers_of``
        (errors wrapped as ``call`` wraps them); None when there are none."""
        others = [impl.plugin for impl in self._caller(implementers_of).get_hookimpls()]
        caller = (
            self._pm.subset_hook_caller(hook_name, remove_plugins=others)
            if others
            else self._caller(hook_name)
        )
        if not caller.get_hookimpls():
            return None

        def call(**kwargs: Any) -> list[Any]:
            try:
                result = caller(**kwargs)
            except CrmError:
                raise
            except Exception as exc:
                culprit = self._culprit(exc)
                raise PluginError(
                    culprit, f"{hook_name} failed: {type(exc).__name__}: {exc}"
                ) from exc
            return list(result) if isinstance(result, list) else [result]

        return call

    def culprit(self, exc: BaseException) -> str:
        """The plugin whose code raised ``exc`` ("unknown" when no plugin's code is in its
        traceback); the kernel names it when a reaction's action fails."""
        return self._culprit(exc)

    def _culprit(self, exc: BaseException) -> str:
        """The plugin whose code raised: the deepest traceback frame inside a plugin's module."""
        culprit = "unknown"
        tb = exc.__traceback__
        while tb is not None:
            module = tb.tb_frame.f_globals.get("__name__", "")
            for prefix, name in self._packages.items():
                if module == prefix or module.startswith(prefix + "."):
                    culprit = name
            tb = tb.tb_next
        return culprit


def _single(caller: pluggy.HookCaller, kwargs: dict[str, Any]) -> Callable[[], Any]:
    """Call a hook caller that holds one implementation; its answer (not a list of it)."""

    def call() -> Any:
        result = caller(**kwargs)
        if caller.spec is not None and caller.spec.opts.get("firstresult"):
            return result
        return result[0] if result else None

    return call


def builtin_plugins() -> Iterable[tuple[str, object]]:
    """The core's own plugins (registered like any other, and listed by ``crm plugins``)."""
    from crmcore import builtin

    return [("core", builtin)]


def make_plugin_manager(
    *,
    allowed: set[str] | None = None,
    load_entry_points: bool = True,
    extra: Iterable[tuple[str, object]] = (),
) -> PluginManager:
    """A plugin manager with the core's builtins, entry-point plugins and ``extra`` ones.

    ``allowed`` restricts entry-point plugins by name (None: all). ``extra`` registers plugin
    objects directly, for tests and host applications.
    """
    pm = PluginManager()
    for name, plugin in builtin_plugins():
        pm.register(plugin, name, distribution="crmcore", version=_version("crmcore"))
    for name, plugin in extra:
        pm.register(plugin, name)
    if load_entry_points:
        pm.load_entry_points(allowed)
    else:
        pm.check_pending()
    if load_entry_points and not extra:
        pm.made_for = (None if allowed is None else frozenset(allowed),)
    return pm


def _version(dist: str) -> str | None:
    try:
        return name_and_version(metadata.distribution(dist))[1]
    except metadata.PackageNotFoundError:
        return None


def name_and_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's name and version from the head of its metadata file.

    ``dist.name`` and ``dist.version`` each parse the whole file with the e-mail parser, long
    description included; every ``crm`` start asks for each plugin's, so read only the header
    lines up to the first blank one (``Name`` and ``Version`` are required to be there)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, colon, value = line.partition(":")
        if colon and key in ("Name", "Version") and key not in found:
            found[key] = value.strip()
    if len(found) < 2:  # not the usual layout: let importlib.metadata read it
        return dist.name, dist.version
    return found["Name"], found["Version"]


__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_PLUGINS",
    "PluginInfo",
    "PluginManager",
    "allowed_from_env",
    "make_plugin_manager",
]
