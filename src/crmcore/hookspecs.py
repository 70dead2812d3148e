"""The ``crm_*`` hook specifications: everything a plugin can provide or react to.

Implement a hook with ``@crmcore.hookimpl`` on a function of the same name in your plugin module.
Registration hooks return small typed objects (conda's pattern) instead of acting; event hooks
return ``Effects`` that the core applies in one place (one transaction where the backend can).
No hook here relies on the order plugins were registered in.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from crmcore.app import CRM
    from crmcore.effects import Effects
    from crmcore.entities import Customer, Interaction, Task
    from crmcore.plugins import PluginManager
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

PROJECT = "crmcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class CrmHookSpecs:
    """The core's hooks. Plugins may add their own with ``crm_addhooks``."""

    # -- start-up: declare what the plugin brings ------------------------------------------

    @hookspec(historic=True)
    def crm_addhooks(self, pluginmanager: PluginManager) -> None:
        """Add hook specifications of this plugin's own, for other plugins to implement.

        Called once when the plugin is registered (historic: late registrations are called
        too). Call ``pluginmanager.add_hookspecs(MySpecs)``. Implementers of such a hook mark
        it ``@hookimpl(optionalhook=True)`` so a stack without its provider loads; the hooks
        the bundled plugins offer each other are declared always (``crmcore.contracts``).
        """

    @hookspec
    def crm_storage_backends(self) -> list[StorageBackend]:
        """Return the storage backends this plugin provides (``StorageBackend(name, factory)``).

        Called when a store is opened; every plugin contributes. Two backends with one name
        are an error naming both plugins.
        """

    @hookspec
    def crm_collections(self) -> list[CollectionSpec]:
        """Return the collections this plugin keeps, with their indexes.

        Called when a CRM opens; every plugin contributes. Names must be prefixed with the
        plugin's name and a dot (``complaints.tickets``); the core creates them and their
        indexes idempotently on every backend.
        """

    @hookspec
    def crm_settings(self) -> SettingsSpec | None:
        """Return this plugin's configuration section: ``SettingsSpec(section, type)``.

        ``type`` is an attrs class with defaults for every field. The ``[section]`` table of
        ``crm.toml`` is structured into it with unknown keys refused and errors naming the full
        key path; attrs validators check values. Read it with ``crm.settings(section)``.
        """

    @hookspec
    def crm_kinds(self) -> Kinds | None:
        """Return the interaction and task kinds this plugin adds (``Kinds(interactions=…,
        tasks=…)``); logging or creating an undeclared kind is a validation error."""

    @hookspec
    def crm_configure(self, crm: CRM) -> None:
        """The CRM is open: check what depends on other plugins (a scheme another plugin
        registers, an interaction kind it declares) and raise ``ConfigError`` naming the key.

        Called once per CRM, after settings, kinds and collections are set up; every plugin.
        """

    # -- events: react by returning Effects ------------------------------------------------

    @hookspec
    def crm_customer_created(self, crm: CRM, customer: Customer, actor: str) -> Effects | None:
        """A customer was added. Every plugin is called; return ``Effects`` or None."""

    @hookspec
    def crm_customer_updated(
        self, crm: CRM, before: Customer, after: Customer, actor: str
    ) -> Effects | None:
        """A customer's core fields changed through the API (not through ``Effects.ext``
        patches, which never fire this hook). Every plugin is called."""

    @hookspec
    def crm_customers_merged(
        self, crm: CRM, kept: Customer, merged: Customer, actor: str
    ) -> Effects | None:
        """``merged`` was folded into ``kept``. Records of collections that declare a
        ``customer_key`` were already re-pointed; react for anything else. Every plugin."""

    @hookspec
    def crm_customer_forgotten(self, crm: CRM, customer: Customer, actor: str) -> Effects | None:
        """A customer's personal data was erased on request (``crm customer forget``).

        The core already blanked the personal fields of the customer and of every record in
        collections with a ``customer_key``; erase anything else you hold. Every plugin.
        """

    @hookspec
    def crm_interaction_logged(
        self, crm: CRM, interaction: Interaction, customer: Customer, actor: str
    ) -> Effects | None:
        """An interaction was logged for ``customer``. Every plugin is called."""

    @hookspec
    def crm_interactions_replayed(
        self,
        crm: CRM,
        events: Sequence[Interaction],
        customers: Mapping[str, Customer],
        actor: str,
    ) -> Effects | None:
        """A batch of past interactions was imported as history (``crm interaction import``):
        ``events`` of whole customers' histories (each customer's in time order; customers
        are independent of each other, see ``crm_replay_per_row``), all stored already, and
        ``customers`` by id as they were before the batch.

        A plugin implementing this hook folds the batch at once and gets no
        ``crm_interaction_logged`` for these rows; every other plugin gets one per row as each
        row is stored, before this hook is called. The result must be what the per-row calls
        would have made: react to each event as of its time (``crm.replay_at(when)`` sets the
        clock an API call reads), never to a later event of the customer, and announce
        changes (``crm_tier_changed`` …) as they happen. Every implementing plugin is called.
        """

    @hookspec
    def crm_replay_per_row(
        self, crm: CRM, events: Sequence[Interaction], customers: Mapping[str, Customer]
    ) -> list[str] | None:
        """Before history is stored (``events``: every row of the import in time order, not
        stored yet; ``customers`` by id): the ids of the customers whose rows this plugin
        cannot fold independently of other customers or of another plugin's per-row reaction
        (a referral links two customers; a ticket's priority reads the loyalty tier). Their
        rows go first, in time order, through ``crm_interaction_logged`` for every plugin, as
        live; the other customers' rows come to ``crm_interactions_replayed`` in batches of
        whole customers. Every implementing plugin is called."""

    @hookspec
    def crm_task_created(self, crm: CRM, task: Task, actor: str) -> Effects | None:
        """A task was created (through the API or by another plugin's ``Effects``)."""

    @hookspec
    def crm_task_completed(self, crm: CRM, task: Task, actor: str) -> Effects | None:
        """A task was marked done (``task.outcome`` holds the result). Every plugin."""

    @hookspec
    def crm_task_cancelled(self, crm: CRM, task: Task, actor: str) -> Effects | None:
        """An open task was cancelled (``task.outcome`` holds the reason): through the API,
        by a plugin's ``TaskUpdate(cancel=True)``, or by a merge or an erasure. Every plugin."""

    @hookspec
    def crm_tick(self, crm: CRM, now: datetime, worker: str) -> Effects | None:
        """A worker sweep at ``now``: create what has come due, expire what has lapsed.

        Several workers may tick at once: use ``Task.dedupe_key`` or ``crm.claim`` so that the
        same work is never done twice. Every plugin is called.
        """

    # -- who may do what ---------------------------------------------------------------------

    @hookspec(firstresult=True)
    def crm_actor(self, crm: CRM, name: str) -> Actor | None:
        """Describe the actor called ``name`` (role, team, department), or None if unknown.

        Stops at the first non-None result; without one, ``[security.actors]`` decides.
        """

    @hookspec
    def crm_actor_names(self, crm: CRM) -> list[str]:
        """The names of the actors this plugin's ``crm_actor`` can describe (a roster's reps,
        the workspace's users), so that a team's members can be listed: reports then count a
        team's work through indexes instead of asking who each record's rep is. A plugin that
        implements ``crm_actor`` should implement this too; while one does not, team reports
        read every record. Every plugin."""

    @hookspec(firstresult=True)
    def crm_authorize(self, crm: CRM, actor: Actor, action: str, resource: Resource) -> bool | None:
        """Allow (True) or refuse (False) ``actor`` doing ``action`` (``"customer.update"``) on
        ``resource``; None leaves the decision to the next plugin, then to the default policy.

        Called only when ``[security] enforce = true``. Stops at the first non-None result.
        """

    @hookspec(firstresult=True)
    def crm_quiet_until(self, crm: CRM, customer: Customer, now: datetime) -> datetime | None:
        """If ``now`` is inside ``customer``'s quiet hours (when they rest and must not be
        called), the moment they end; None when the customer may be contacted now.

        Stops at the first non-None result; without one, nobody is ever quiet.
        """

    # -- faces: CLI, reports, the customer page --------------------------------------------

    @hookspec
    def crm_cli_commands(self, cli: click.Group) -> list[LazyCommand] | None:
        """Commands for the ``crm`` command line: return ``LazyCommand``s (name,
        ``"module:attribute"``, help line), imported only when they run; or add commands
        yourself (``cli.add_command(...)``) and return nothing.

        Called once when the CLI starts. Commands get the CRM through
        ``crmcore.cli.context.open_crm_from(ctx)``.
        """

    @hookspec
    def crm_report_sections(
        self, crm: CRM, now: datetime, window: ReportWindow
    ) -> list[ReportSection]:
        """Contribute sections to ``crm report`` (title, rows, optional chart). Every plugin.
        ``window`` is the period and the team or rep asked for (``crm report --since/--until
        /--period --team/--rep``); take it as an argument to honour it."""

    @hookspec
    def crm_customer_summary(self, crm: CRM, customer: Customer) -> list[SummaryLine]:
        """Lines shown by ``crm customer show`` (e.g. a grade with its reason). Every plugin."""

    @hookspec
    def crm_simulate(self, crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
        """Act out one simulated day of this plugin's workflow for ``crm demo``.

        Called once per simulated day, after the day's interactions are logged and before the
        worker sweep; do what staff would do (judge and resolve tickets, answer callbacks …)
        through your own API, drawing every random choice from ``rng`` so runs repeat.
        """

    @hookspec
    def crm_demo_ready(self, crm: CRM, config_path: str) -> list[str]:
        """``crm demo`` has made its store (configuration at ``config_path``): return lines
        telling the user how to go on with what this plugin offers (the web plugin makes a
        demo user and says how to open the workspace). You may write to the store. Every
        plugin; the lines end the demo's summary (``next_steps`` with ``--json``)."""

    @hookspec
    def crm_api_routes(self, crm: CRM) -> list[ApiRoute]:
        """Return the JSON API endpoints this plugin adds (``ApiRoute(method, path, handler,
        summary, …)``), served by the ``web`` plugin under ``/api/v1`` and listed in its OpenAPI
        document. Called once when the app is built; every plugin contributes. Two routes with
        the same method and path are an error naming both plugins.
        """

    @hookspec
    def crm_config_warnings(self, crm: CRM) -> list[str]:
        """Settings that load but leave a rule unable to act (an empty rota the escalation
        ladder needs …): one line each, saying what to fill in. ``crm check`` prints them on
        stderr. Every plugin."""

    @hookspec
    def crm_customer_badges(self, crm: CRM, customer: Customer) -> list[Badge]:
        """Short marks for ``customer`` shown in the workspace's queues and search results
        (``Badge(label, value, reason, rank)``: a grade, a tier). Every plugin; keep it cheap
        (it runs for every row of a queue)."""

    @hookspec
    def crm_customers_badges(
        self, crm: CRM, customers: Sequence[Customer]
    ) -> dict[str, list[Badge]]:
        """``crm_customer_badges`` for a page's worth of ``customers`` at once: each
        customer's marks by id (a customer with none may be left out). A plugin implementing
        this gets no ``crm_customer_badges`` call where a page asks for many (a queue's rows);
        the marks must be those ``crm_customer_badges`` gives. Every plugin."""

    @hookspec
    def crm_customer_records(self, crm: CRM, customer: Customer) -> dict[str, Any]:
        """Extra data held about a customer outside declared collections, for export.

        Declared collections with a ``customer_key`` are exported by the core already.
        """

    # -- the web workspace and translations --------------------------------------------------

    @hookspec
    def crm_translations(self) -> list[TranslationCatalog]:
        """Return this plugin's gettext catalogs (``TranslationCatalog(folder, domain)``).

        ``crmcore.i18n`` merges them with the core's into one set of translations per locale,
        used by the workspace's pages and ``crm report --html``. Every plugin contributes.
        """

    @hookspec
    def crm_web_templates(self) -> list[TemplateFolder]:
        """Return the folders of Jinja2 templates this plugin ships (``TemplateFolder(path)``),
        searched after the web plugin's own. Every plugin contributes."""

    @hookspec
    def crm_web_pages(self, crm: CRM) -> list[WebPage]:
        """Return the workspace pages this plugin adds (``WebPage(path, handler, methods)``),
        served by the ``web`` plugin to signed-in people. Called once when the app is built;
        every plugin contributes. Two pages with one method and path are an error naming both
        plugins."""

    @hookspec
    def crm_customer_panels(self, crm: CRM) -> list[CustomerPanel]:
        """Return the panels this plugin adds to the workspace's customer page
        (``CustomerPanel(name, title, render)``). Called once when the app is built."""

    @hookspec
    def crm_dashboard_cards(self, crm: CRM) -> list[DashboardCard]:
        """Return the cards this plugin adds to the workspace's manager dashboard
        (``DashboardCard(name, title, render)``). Called once when the app is built."""

    @hookspec
    def crm_nav_entries(self, crm: CRM) -> list[NavEntry]:
        """Return the navigation entries this plugin adds to every workspace page
        (``NavEntry(path, label, order, roles)``). Called once when the app is built."""

    @hookspec
    def crm_customer_adding(
        self, crm: CRM, customer: Customer, actor: str
    ) -> dict[str, dict[str, Any]] | None:
        """A customer is about to be added (``crm.customers.add``): return ``ext`` values by
        namespace to store with it (``{"loyalty": {"referral_code": "K7QX2M"}}``), or None.

        Called inside the add's transaction just before the insert, so the values are part of
        the customer's one write (an ``ExtPatch`` from ``crm_customer_created`` costs a second
        write). They merge over the caller's ``ext`` of that namespace, are checked as ``ext``
        is, and ``crm_customer_created`` sees the customer with them. Nothing may be written
        here (``DirectWriteError``) and the customer cannot be read back yet. Every plugin.
        """
