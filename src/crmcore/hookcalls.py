"""The typed hook facade: one method per hook the core calls (tox's and conda's pattern).

``PluginManager`` inherits these methods; code everywhere else calls ``crm.plugins.crm_tick(
crm=…, now=…, worker=…)`` and never names a hook in a string (a test checks that ``src`` and
``plugins/*/src`` do not). Every method goes through pluggy, so hook-call monitoring
(``CRM_TRACE_HOOKS=1``) sees every call.

Adding a hook: declare it in ``hookspecs.py`` (or ``contracts/``) and add its method here, in
the section of its kind; ``tests/test_facade.py`` fails until both exist.

Event hooks (those an actor fires, returning ``Effects``) have their typed methods on
``EventCalls`` instead, reached as ``crm.events``: ``crm.events.complaint_escalated(actor=…,
ticket=…, level=…, target=…)``. Each goes through the kernel's ``emit``, so the Effects rule,
the re-entry guard and the write check apply as they always did. ``CRM.emit`` by name stays
for the hooks a third-party plugin declares itself (``crm_addhooks``).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from crmcore.app import CRM
    from crmcore.contracts import (
        BusinessClock,
        Notification,
        SchemeRegistration,
        ServiceOrder,
        Ticket,
    )
    from crmcore.effects import Effects
    from crmcore.entities import Customer, Interaction, Task
    from crmcore.registry import (
        ApiRoute,
        Badge,
        CustomerPanel,
        DashboardCard,
        Kinds,
        LazyCommand,
        NavEntry,
        ReportSection,
        ReportWindow,
        SettingsSpec,
        SummaryLine,
        TemplateFolder,
        TranslationCatalog,
        WebPage,
    )
    from crmcore.security import Actor, Resource
    from crmcore.storage import CollectionSpec, StorageBackend


class HookCalls:
    """One typed method per ``crm_*`` hook (keyword arguments, as pluggy takes them)."""

    _pm: pluggy.PluginManager

    # -- provided by PluginManager ---------------------------------------------------------

    def call(self, hook_name: str, **kwargs: Any) -> list[Any]:
        raise NotImplementedError

    def flat(self, hook_name: str, **kwargs: Any) -> list[Any]:
        raise NotImplementedError

    def contributions(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        raise NotImplementedError

    def each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Callable[[], Any]]]:
        raise NotImplementedError

    def mark_failed(self, name: str, exc: BaseException) -> None:
        raise NotImplementedError

    def without(self, hook_name: str, implementers_of: str) -> Callable[..., list[Any]] | None:
        raise NotImplementedError

    def _first(self, hook_name: str, **kwargs: Any) -> Any:
        """The result of a ``firstresult`` hook (None when no plugin answers)."""
        return self.call(hook_name, **kwargs)[0]

    # -- start-up --------------------------------------------------------------------------

    def crm_addhooks(self) -> None:
        """Offer ``crm_addhooks`` to every plugin, now and as each registers (historic)."""
        self._pm.hook.crm_addhooks.call_historic(kwargs={"pluginmanager": self})

    def crm_storage_backends(self) -> list[tuple[str, StorageBackend]]:
        """Every backend, with the plugin that provides it."""
        return self.contributions("crm_storage_backends")

    def crm_collections(self) -> list[tuple[str, CollectionSpec]]:
        """Every declared collection, with the plugin that declares it."""
        return self.contributions("crm_collections")

    def crm_settings(self) -> list[tuple[str, SettingsSpec]]:
        """Every settings section, with the plugin that declares it."""
        return self.contributions("crm_settings")

    def crm_kinds(self) -> list[tuple[str, Kinds]]:
        """Every plugin's added interaction and task kinds."""
        return self.contributions("crm_kinds")

    def crm_configure(self, *, crm: CRM) -> None:
        self.call("crm_configure", crm=crm)

    # -- events without Effects of their own -----------------------------------------------

    def crm_tick(self, *, crm: CRM, now: datetime, worker: str) -> list[Effects | None]:
        """What every plugin's sweep returned (``CRM.tick`` applies it)."""
        return self.call("crm_tick", crm=crm, now=now, worker=worker)

    def crm_interaction_logged_per_row(self) -> Callable[..., list[Effects | None]] | None:
        """``crm_interaction_logged`` as a history replay calls it for each row of a folded
        customer: only the plugins that do not implement ``crm_interactions_replayed``
        (those get the batch); None when every implementation has the batch hook."""
        return self.without("crm_interaction_logged", "crm_interactions_replayed")

    def crm_replay_per_row(
        self, *, crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
    ) -> dict[str, set[str]]:
        """Per plugin, the customers of a history batch it wants row by row (they then go
        row by row through every plugin)."""
        wanted: dict[str, set[str]] = {}
        for plugin, ids in self.contributions(
            "crm_replay_per_row", crm=crm, events=events, customers=customers
        ):
            wanted.setdefault(plugin, set()).update([ids] if isinstance(ids, str) else ids)
        return wanted

    # -- who may do what -------------------------------------------------------------------

    def crm_actor(self, *, crm: CRM, name: str) -> Actor | None:
        found: Actor | None = self._first("crm_actor", crm=crm, name=name)
        return found

    def crm_actor_names(self, *, crm: CRM) -> list[str] | None:
        """Every name the plugins' ``crm_actor`` can describe, or None while a plugin that
        implements ``crm_actor`` does not list its names (``crm_actor_names``)."""
        if self.without("crm_actor", "crm_actor_names") is not None:
            return None
        return self.flat("crm_actor_names", crm=crm)

    def crm_authorize(
        self, *, crm: CRM, actor: Actor, action: str, resource: Resource
    ) -> bool | None:
        decided: bool | None = self._first(
            "crm_authorize", crm=crm, actor=actor, action=action, resource=resource
        )
        return decided

    # -- faces -----------------------------------------------------------------------------

    def crm_cli_commands(self, *, cli: click.Group) -> list[tuple[str, list[LazyCommand]]]:
        """Let each plugin add commands (``cli.add_command``) or return ``LazyCommand``s: the
        lazy ones, with the plugin that returns them. A plugin that fails here, or returns
        anything but ``LazyCommand``s, is marked failed, not fatal, and none of its lazy
        commands is listed."""
        from crmcore.registry import LazyCommand

        found: list[tuple[str, list[LazyCommand]]] = []
        for plugin, call in self.each("crm_cli_commands", cli=cli):
            try:
                returned = call()
                specs = [] if returned is None else list(returned)
                for spec in specs:
                    if not isinstance(spec, LazyCommand):
                        raise TypeError(
                            f"crm_cli_commands returned {type(spec).__name__}, not LazyCommand"
                        )
            except Exception as exc:
                self.mark_failed(plugin, exc)
                continue
            found.append((plugin, specs))
        return found

    def crm_report_sections(
        self, *, crm: CRM, now: datetime, window: ReportWindow
    ) -> list[ReportSection]:
        return self.flat("crm_report_sections", crm=crm, now=now, window=window)

    def crm_report_sections_by_plugin(
        self, *, crm: CRM, now: datetime, window: ReportWindow
    ) -> list[tuple[str, ReportSection]]:
        """``crm_report_sections`` with the plugin that wrote each section (the dashboard
        shows one card per plugin)."""
        return self.contributions("crm_report_sections", crm=crm, now=now, window=window)

    def crm_customer_summary(self, *, crm: CRM, customer: Customer) -> list[SummaryLine]:
        return self.flat("crm_customer_summary", crm=crm, customer=customer)

    def crm_simulate(self, *, crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
        self.call("crm_simulate", crm=crm, now=now, rng=rng, actor=actor)

    def crm_api_routes(self, *, crm: CRM) -> list[tuple[str, ApiRoute]]:
        """Every JSON API route, with the plugin that adds it."""
        return self.contributions("crm_api_routes", crm=crm)

    def crm_config_warnings(self, *, crm: CRM) -> list[str]:
        return self.flat("crm_config_warnings", crm=crm)

    def crm_customer_records(self, *, crm: CRM, customer: Customer) -> list[dict[str, Any]]:
        """Each plugin's extra export data (None answers left out)."""
        return [
            part for part in self.call("crm_customer_records", crm=crm, customer=customer) if part
        ]

    def crm_customer_summary_by_plugin(
        self, *, crm: CRM, customer: Customer
    ) -> list[tuple[str, SummaryLine]]:
        """``crm_customer_summary`` with the plugin that wrote each line (the workspace
        leaves out the lines of plugins that show a panel instead)."""
        return self.contributions("crm_customer_summary", crm=crm, customer=customer)

    def crm_demo_ready(self, *, crm: CRM, config_path: str) -> list[str]:
        return self.flat("crm_demo_ready", crm=crm, config_path=config_path)

    # -- the workspace (served by the web plugin) ------------------------------------------

    def crm_translations(self) -> list[tuple[str, TranslationCatalog]]:
        """Every plugin's gettext catalogs, with the plugin that ships them."""
        return self.contributions("crm_translations")

    def crm_web_templates(self) -> list[tuple[str, TemplateFolder]]:
        return self.contributions("crm_web_templates")

    def crm_web_pages(self, *, crm: CRM) -> list[tuple[str, WebPage]]:
        return self.contributions("crm_web_pages", crm=crm)

    def crm_customer_panels(self, *, crm: CRM) -> list[tuple[str, CustomerPanel]]:
        return self.contributions("crm_customer_panels", crm=crm)

    def crm_dashboard_cards(self, *, crm: CRM) -> list[tuple[str, DashboardCard]]:
        return self.contributions("crm_dashboard_cards", crm=crm)

    def crm_nav_entries(self, *, crm: CRM) -> list[tuple[str, NavEntry]]:
        return self.contributions("crm_nav_entries", crm=crm)

    def crm_customer_badges(self, *, crm: CRM, customer: Customer) -> list[Badge]:
        return self.flat("crm_customer_badges", crm=crm, customer=customer)

    def crm_customers_badges(
        self, *, crm: CRM, customers: Sequence[Customer]
    ) -> dict[str, list[Badge]]:
        """Every plugin's marks for each of ``customers`` by id, in one call per plugin:
        the batch hook where a plugin has it, else its ``crm_customer_badges`` per customer."""
        marks: dict[str, list[Badge]] = {c.id: [] for c in customers}
        for part in self.call("crm_customers_badges", crm=crm, customers=customers):
            for cid, found in (part or {}).items():
                if cid in marks:
                    marks[cid].extend(found)
        single = self.without("crm_customer_badges", "crm_customers_badges")
        if single is not None:
            for customer in customers:
                for part in single(crm=crm, customer=customer):
                    if part:
                        marks[customer.id].extend(part if isinstance(part, list) else [part])
        return marks

    def crm_quiet_until(self, *, crm: CRM, customer: Customer, now: datetime) -> datetime | None:
        until: datetime | None = self._first("crm_quiet_until", crm=crm, customer=customer, now=now)
        return until

    # -- contracts between plugins (crmcore.contracts) -------------------------------------

    def crm_grading_schemes(self) -> list[tuple[str, SchemeRegistration]]:
        """Every registered grading scheme, with the plugin that registers it."""
        return self.contributions("crm_grading_schemes")

    def crm_complaint_notify(self, *, crm: CRM, notification: Notification) -> bool | None:
        delivered: bool | None = self._first(
            "crm_complaint_notify", crm=crm, notification=notification
        )
        return delivered

    def crm_business_clock(self, *, crm: CRM) -> BusinessClock | None:
        clock: BusinessClock | None = self._first("crm_business_clock", crm=crm)
        return clock

    def crm_customer_perks(self, *, crm: CRM, customer: Customer) -> list[str]:
        """Every plugin's perks for ``customer``, joined."""
        return self.flat("crm_customer_perks", crm=crm, customer=customer)

    def crm_award_points(
        self, *, crm: CRM, customer_id: str, points: int, source: str, reason: str, actor: str
    ) -> str | None:
        entry: str | None = self._first(
            "crm_award_points",
            crm=crm,
            customer_id=customer_id,
            points=points,
            source=source,
            reason=reason,
            actor=actor,
        )
        return entry

    def crm_rep_left(self, *, crm: CRM, rep: str, successor: str, actor: str) -> int:
        """How many records other plugins moved from ``rep`` (summed)."""
        moved = self.call("crm_rep_left", crm=crm, rep=rep, successor=successor, actor=actor)
        return sum(n or 0 for n in moved)

    def crm_customer_adding(self, *, crm: CRM, customer: Customer, actor: str) -> list[Any]:
        """Every plugin's ``ext`` values by namespace (None from those giving none)."""
        return self.call("crm_customer_adding", crm=crm, customer=customer, actor=actor)

    def crm_customer_adding_by_plugin(
        self, *, crm: CRM, customer: Customer, actor: str
    ) -> list[tuple[str, Any]]:
        """``crm_customer_adding`` with the plugin that gave each answer (to name one that
        answered wrongly; slower: one call per plugin)."""
        return self.contributions("crm_customer_adding", crm=crm, customer=customer, actor=actor)


class Emit(Protocol):
    """``Kernel.emit``: call an event hook, apply the Effects returned, return them."""

    def __call__(self, hook_name: str, *, actor: str, **kwargs: Any) -> Effects: ...


class EventCalls:
    """One typed method per event hook (``crm.events``), named as the hook without ``crm_``.

    Every method fires its hook through the kernel's ``emit`` and returns the ``Effects``
    that were applied (empty when no plugin listens). Refused from inside an event hook
    (return ``Effects`` instead), like every write.
    """

    __slots__ = ("_emit", "_implemented")

    def __init__(self, emit: Emit, implemented: Callable[[str], bool]) -> None:
        self._emit = emit
        self._implemented = implemented

    def listened(self, event: Callable[..., Effects]) -> bool:
        """Whether any loaded plugin implements ``event`` (one of this object's methods:
        ``crm.events.listened(crm.events.grade_changed)``), to skip building its arguments
        when nobody listens."""
        name = getattr(event, "__name__", "")
        if getattr(event, "__self__", None) is not self or not hasattr(EventCalls, name):
            raise TypeError(f"{event!r} is not an event of crm.events")
        return self._implemented(f"crm_{name}")

    # -- customers, interactions, tasks (crmcore.hookspecs) --------------------------------

    def customer_created(self, *, customer: Customer, actor: str) -> Effects:
        return self._emit("crm_customer_created", actor=actor, customer=customer)

    def customer_updated(self, *, before: Customer, after: Customer, actor: str) -> Effects:
        return self._emit("crm_customer_updated", actor=actor, before=before, after=after)

    def customers_merged(self, *, kept: Customer, merged: Customer, actor: str) -> Effects:
        return self._emit("crm_customers_merged", actor=actor, kept=kept, merged=merged)

    def customer_forgotten(self, *, customer: Customer, actor: str) -> Effects:
        return self._emit("crm_customer_forgotten", actor=actor, customer=customer)

    def interaction_logged(
        self, *, interaction: Interaction, customer: Customer, actor: str
    ) -> Effects:
        return self._emit(
            "crm_interaction_logged", actor=actor, interaction=interaction, customer=customer
        )

    def interactions_replayed(
        self, *, events: Sequence[Interaction], customers: Mapping[str, Customer], actor: str
    ) -> Effects:
        return self._emit(
            "crm_interactions_replayed", actor=actor, events=events, customers=customers
        )

    def replayed_row(
        self,
        via: Callable[..., list[Any]],
        *,
        interaction: Interaction,
        customer: Customer,
        actor: str,
    ) -> Effects:
        """``crm_interaction_logged`` for one row of a history replay, through ``via`` (the
        plugins without ``crm_interactions_replayed``: ``crm_interaction_logged_per_row``)."""
        return self._emit(
            "crm_interaction_logged",
            actor=actor,
            _via=via,
            interaction=interaction,
            customer=customer,
        )

    def task_created(self, *, task: Task, actor: str) -> Effects:
        return self._emit("crm_task_created", actor=actor, task=task)

    def task_completed(self, *, task: Task, actor: str) -> Effects:
        return self._emit("crm_task_completed", actor=actor, task=task)

    def task_cancelled(self, *, task: Task, actor: str) -> Effects:
        return self._emit("crm_task_cancelled", actor=actor, task=task)

    # -- complaints (crmcore.contracts.complaints) -----------------------------------------

    def complaint_registered(self, *, ticket: Ticket, actor: str) -> Effects:
        return self._emit("crm_complaint_registered", actor=actor, ticket=ticket)

    def complaint_escalated(
        self, *, ticket: Ticket, level: int, target: str, actor: str
    ) -> Effects:
        return self._emit(
            "crm_complaint_escalated", actor=actor, ticket=ticket, level=level, target=target
        )

    def complaint_resolved(self, *, ticket: Ticket, actor: str) -> Effects:
        return self._emit("crm_complaint_resolved", actor=actor, ticket=ticket)

    def complaint_reopened(self, *, ticket: Ticket, actor: str) -> Effects:
        return self._emit("crm_complaint_reopened", actor=actor, ticket=ticket)

    def complaint_closed(self, *, ticket: Ticket, actor: str) -> Effects:
        return self._emit("crm_complaint_closed", actor=actor, ticket=ticket)

    def complaint_sla_breached(
        self, *, ticket: Ticket, target: str, due_at: datetime, actor: str
    ) -> Effects:
        return self._emit(
            "crm_complaint_sla_breached", actor=actor, ticket=ticket, target=target, due_at=due_at
        )

    # -- grading (crmcore.contracts.grading) -----------------------------------------------

    def grade_changed(
        self,
        *,
        customer: Customer,
        scheme: str,
        old: str | None,
        new: str | None,
        reason: str,
        actor: str,
    ) -> Effects:
        return self._emit(
            "crm_grade_changed",
            actor=actor,
            customer=customer,
            scheme=scheme,
            old=old,
            new=new,
            reason=reason,
        )

    def churn_risk_changed(
        self, *, customer: Customer, old: str | None, new: str, reasons: list[str], actor: str
    ) -> Effects:
        return self._emit(
            "crm_churn_risk_changed",
            actor=actor,
            customer=customer,
            old=old,
            new=new,
            reasons=reasons,
        )

    # -- loyalty (crmcore.contracts.loyalty) -----------------------------------------------

    def tier_changed(
        self, *, customer: Customer, old: str | None, new: str | None, actor: str
    ) -> Effects:
        return self._emit("crm_tier_changed", actor=actor, customer=customer, old=old, new=new)

    # -- service orders (crmcore.contracts.service) ----------------------------------------

    def service_step_entered(
        self, *, order: ServiceOrder, from_state: str | None, actor: str
    ) -> Effects:
        return self._emit(
            "crm_service_step_entered", actor=actor, order=order, from_state=from_state
        )

    def service_order_ended(self, *, order: ServiceOrder, actor: str) -> Effects:
        return self._emit("crm_service_order_ended", actor=actor, order=order)

    def service_order_escalated(
        self, *, order: ServiceOrder, level: int, target: str, actor: str
    ) -> Effects:
        return self._emit(
            "crm_service_order_escalated", actor=actor, order=order, level=level, target=target
        )


__all__ = ["EventCalls", "HookCalls"]
