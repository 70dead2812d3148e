"""Small typed objects that registration hooks return (conda's pattern)."""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from crmcore.charts import Chart, chart_tuple
from crmcore.schema import str_tuple

if TYPE_CHECKING:
    from crmcore.app import CRM


@attrs.frozen
class SettingsSpec:
    """A plugin's configuration section: ``[section]`` in crm.toml, structured into ``type``.

    ``type`` is the attrs class, or ``"module:Class"`` naming it: then the module is imported
    only when the section is first structured (a section the configuration does not mention is
    structured, from its defaults, the first time ``crm.settings(section)`` asks for it), so
    registering the plugin stays cheap for commands that never read its settings.
    """

    section: str
    type: builtins.type | str = attrs.field()

    @type.validator
    def _check_type(
        self, _attribute: attrs.Attribute[builtins.type | str], value: builtins.type | str
    ) -> None:
        if isinstance(value, str):
            module, colon, name = value.partition(":")
            if not (module and colon and name):
                raise ValueError(
                    f"SettingsSpec [{self.section}]: type {value!r} is not 'module:Class'"
                )

    def resolve(self) -> builtins.type:
        """The settings class (importing its module when ``type`` names it)."""
        if not isinstance(self.type, str):
            return self.type
        module, _, name = self.type.partition(":")
        found = getattr(importlib.import_module(module), name)
        if not isinstance(found, type):
            raise TypeError(f"{self.type} is {found!r}, not a class")
        return found


def _str_map(value: Mapping[str, str]) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}


@attrs.frozen
class Kinds:
    """Interaction and task kinds a plugin adds to the core's. ``task_labels`` says how each
    task kind is shown (English, marked with ``N_`` so the plugin's catalog translates it):
    ``Kinds(tasks=("referral_ask",), task_labels={"referral_ask": N_("Referral ask")})``."""

    interactions: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    tasks: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    task_labels: Mapping[str, str] = attrs.field(factory=dict, converter=_str_map)


@attrs.frozen
class LazyCommand:
    """A ``crm`` command that is imported only when it runs (or its own ``--help`` is asked).

    ``crm_cli_commands`` may return a list of these instead of adding commands itself:
    ``LazyCommand("loyalty", "crmcore_loyalty.cli:loyalty_group", "Points and tiers.")``.
    ``target`` names the click command or group as ``"module:attribute"``; ``help`` is the
    line ``crm --help`` shows, so the module is not imported to list it.
    """

    name: str
    target: str = attrs.field()
    help: str = ""

    @target.validator
    def _check_target(self, _attribute: attrs.Attribute[str], value: str) -> None:
        module, colon, attr = value.partition(":")
        if not (module and colon and attr):
            raise ValueError(
                f"LazyCommand {self.name!r}: target {value!r} is not 'module:attribute'"
            )


@attrs.frozen
class SummaryLine:
    """One labelled line on ``crm customer show``."""

    label: str
    text: str


def _columns(columns: Iterable[str]) -> tuple[str, ...]:
    return tuple(columns)


@attrs.frozen
class ReportSection:
    """A section of ``crm report``: a title, a table, and optionally charts.

    ``rows`` are tuples matching ``columns``. ``charts`` (:class:`crmcore.charts.Chart`) are
    drawn in the HTML report and on the dashboard, with axes and units, and as bars in the
    terminal: give one where a trend or a comparison says more than the table. ``chart``, the
    older form (``{label: number}``), is drawn in the terminal only.
    """

    title: str
    columns: tuple[str, ...] = attrs.field(converter=_columns)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(converter=lambda rs: tuple(map(tuple, rs)))
    chart: dict[str, float] | None = None
    note: str = ""
    order: int = 100  # lower comes first
    charts: tuple[Chart, ...] = attrs.field(default=(), converter=chart_tuple)


@attrs.frozen
class ReportWindow:
    """What ``crm report`` looks at: a period [``since``, ``until``) (None: from the start /
    up to now) and a team or a rep (None: everyone). Sections count what happened in the
    period; a rep's team is what ``crm.actor(rep).team`` says.

    ``brief``: only what the dashboard shows is wanted, the figures of a source's first
    two-column table (its key figures) and its charts; a source may then leave out its other
    sections and compute the rest by cheaper means. The figures it gives stay those of the
    full report."""

    since: datetime | None = None
    until: datetime | None = None
    team: str | None = None
    rep: str | None = None
    brief: bool = False

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` falls in the period."""
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until
        )

    @property
    def everyone(self) -> bool:
        return self.team is None and self.rep is None

    def rep_filter(self, crm: CRM) -> Callable[[str | None], bool]:
        """``counts(rep)``: whether work done by (or owned by) ``rep`` belongs to the window:
        the window's rep, or a rep of its team (``crm.actor(rep).team``, looked up once per
        rep); everyone's when the window names neither. Unowned work (None) belongs only to
        everyone."""
        teams: dict[str, str | None] = {}

        def counts(rep: str | None) -> bool:
            if self.rep is not None and rep != self.rep:
                return False
            if self.team is None:
                return True
            if rep is None:
                return False
            if rep not in teams:
                actor = crm.actor(rep)
                teams[rep] = actor.team if actor is not None else None
            return teams[rep] == self.team

        return counts

    def reps(self, crm: CRM) -> list[str] | None:
        """The reps whose work the window counts, listed (sorted), for indexed counts:
        ``[rep]`` for a rep (none if they are not of the window's team), a team's members
        (the known actors ``crm.actor`` places in it: ``[security.actors]`` and every
        plugin's ``crm_actor_names``). None for everyone, and for a team while a plugin that
        describes actors cannot list them: count with :meth:`rep_filter` then."""
        if self.rep is not None:
            return [self.rep] if self.rep_filter(crm)(self.rep) else []
        if self.team is None:
            return None
        names = crm.plugins.crm_actor_names(crm=crm)
        if names is None:
            return None
        known = set(names) | set(crm.config.security.actors)
        members = []
        for name in sorted(known):
            actor = crm.actor(name)
            if actor is not None and actor.team == self.team:
                members.append(name)
        return members

    def label(self) -> str:
        """One line saying what the window is, for notes."""
        parts = []
        if self.since or self.until:
            parts.append(
                f"{self.since.isoformat()[:16] if self.since else 'start'} to "
                f"{self.until.isoformat()[:16] if self.until else 'now'}"
            )
        if self.team:
            parts.append(f"team {self.team}")
        if self.rep:
            parts.append(f"rep {self.rep}")
        return ", ".join(parts) or "everything"


HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class ApiRequest(Protocol):
    """What an :class:`ApiRoute` handler receives: the open CRM, the authenticated actor and the
    request's parameters, already parsed. Handlers never see the HTTP toolkit underneath."""

    # Read-only members: a frozen attrs class (``crmcore.api.ApiCall``) provides them.
    @property
    def crm(self) -> CRM: ...

    @property
    def actor(self) -> str:
        """The actor the API key or session belongs to; no header chooses it."""

    @property
    def path(self) -> Mapping[str, str]:
        """The ``{name}`` placeholders of the route's path."""

    @property
    def query(self) -> Mapping[str, str]:
        """Query-string parameters (the last value of a repeated name)."""

    @property
    def body(self) -> Any:
        """An instance of ``ApiRoute.body``, or None for a route without a body."""

    @property
    def if_match(self) -> int | None:
        """The record version named by an ``If-Match`` header, if any."""


@attrs.frozen
class ApiParam:
    """A documented query-string parameter of an :class:`ApiRoute`."""

    name: str
    description: str
    type: str = attrs.field(
        default="string", validator=attrs.validators.in_(("string", "integer", "number", "boolean"))
    )
    required: bool = False


def _api_params(value: Iterable[ApiParam]) -> tuple[ApiParam, ...]:
    return tuple(value)  # typed: ``converter=tuple`` leaves mypy without the element type


def _http_method(value: str) -> str:
    method = value.upper()
    if method not in HTTP_METHODS:
        raise ValueError(f"method must be one of {sorted(HTTP_METHODS)}, not {value!r}")
    return method


def _api_path(_instance: Any, _attribute: Any, value: str) -> None:
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError(f"path must start with one '/': {value!r}")


@attrs.frozen
class ApiRoute:
    """An endpoint of the JSON API, served by the ``web`` plugin under ``/api/v1``.

    - ``path`` is relative to ``/api/v1`` with ``{name}`` placeholders
      (``/complaints/{ticket_id}/judge``); the first segment should be the plugin's name.
    - ``handler(request: ApiRequest)`` calls the plugin's public API acting as
      ``request.actor`` (so the role policy applies as it does on the CLI) and returns what to
      send: attrs instances, dicts, lists and scalars (datetimes become ISO 8601), or None for
      an empty body. It raises crmcore's typed errors: ``ValidationError`` is answered 422
      naming the field, ``NotFoundError`` 404, ``ConflictError`` 409, ``PermissionDenied`` 403.
    - ``body`` is an attrs class: the JSON body is structured into it (unknown keys refused,
      the failing field named) before the handler runs; None means the route takes no body.
    - ``response`` is the type of what the handler returns (an attrs class, ``list[Cls]`` or
      ``dict``), for the OpenAPI document; ``status`` the success status (201 for a create).
    """

    method: str = attrs.field(converter=_http_method)
    path: str = attrs.field(validator=_api_path)
    handler: Callable[[ApiRequest], Any]
    summary: str
    body: type | None = None
    response: Any = None
    status: int = 200
    query: tuple[ApiParam, ...] = attrs.field(default=(), converter=_api_params)
    tag: str = ""


# -- the web workspace: what plugins contribute (served by the ``web`` plugin) ---------------
# The core defines the shapes only; it never imports the web toolkit (Starlette, Jinja2).


class PageRequest(Protocol):
    """What a workspace page, panel or card receives: the open CRM, the signed-in person and
    the request, already parsed (the CSRF token of a POST already checked).

    Everything the handler does goes through the CRM's public API acting as ``actor``, so the
    role policy and the audit trail apply exactly as on the CLI.
    """

    crm: CRM
    actor: str  # the signed-in user's name: the actor every call acts as
    role: str  # their role (``agent``, ``shift_lead``, ``manager``, ``auditor``, ``admin``)
    locale: str  # ``en`` or ``zh_CN``: the language the page is shown in
    method: str  # ``GET`` or ``POST``
    path: Mapping[str, str]  # the ``{name}`` placeholders of the page's path
    query: Mapping[str, str]  # query-string parameters (the last value of a repeated name)
    form: Mapping[str, str]  # the POSTed fields (the last value of a repeated name); {} on GET
    now: datetime  # the CRM's clock, read once per request

    def form_list(self, name: str) -> list[str]:
        """Every value POSTed under ``name`` (checkboxes, multiple selects)."""

    def gettext(self, message: str) -> str:
        """``message`` translated into the page's language (``_`` in templates)."""


@attrs.frozen
class Render:
    """A page's answer: render ``template`` (a Jinja2 template name, ``<plugin>/<file>.html``)
    with ``context``. Page templates extend ``base.html``; panel and card templates are
    fragments. ``status`` is the HTTP status (422 for a form shown again with errors)."""

    template: str
    context: Mapping[str, Any] = attrs.field(factory=dict)
    status: int = 200


@attrs.frozen
class Redirect:
    """A page's answer: go to ``location`` (a path in the workspace, 303 See Other), showing
    ``notice`` once on the page it lands on (what a POST did: "Task completed")."""

    location: str = attrs.field(validator=lambda _i, _a, v: _local_path(v))
    notice: str = ""


def _local_path(value: str) -> None:
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        raise ValueError(f"a redirect goes to a path of the workspace ('/…'), not {value!r}")


PageHandler = Callable[[PageRequest], "Render | Redirect"]


@attrs.frozen
class WebPage:
    """A page of the workspace at ``path`` (``/complaints/{ticket_id}``; the first segment
    should be the plugin's name), served to signed-in people only.

    ``handler(request)`` returns a :class:`Render` or a :class:`Redirect`; it raises crmcore's
    typed errors for the rest (``PermissionDenied`` → 403 page, ``NotFoundError`` → 404,
    ``ConflictError`` → 409, ``ValidationError`` → 422 naming the field). A POST runs in one
    store transaction (an error leaves nothing written) after its ``csrf_token`` was checked.
    """

    path: str = attrs.field(validator=_api_path)
    handler: PageHandler
    methods: tuple[str, ...] = attrs.field(
        default=("GET",), converter=lambda ms: tuple(_http_method(m) for m in ms)
    )
    name: str = ""  # for links (``url_for(name, **params)`` in templates); unique if given


@attrs.frozen
class CustomerPanel:
    """A panel on the customer page, below the core's own (ordered by ``order``, then name).

    ``render(request, customer)`` returns a :class:`Render` of a fragment template, or None
    when the plugin has nothing to show for this customer. ``title`` may be a lazy string
    (``crmcore.i18n.lazy``) so it is translated per request.
    """

    name: str
    title: Any  # str or crmcore.i18n.LazyText
    render: Callable[[PageRequest, Any], Render | None]
    order: int = 100


@attrs.frozen
class DashboardCard:
    """A card on the manager dashboard. ``render(request)`` returns a :class:`Render` of a
    fragment template (``request.query`` carries the dashboard's period and team or rep:
    ``period``, ``since``, ``until``, ``team``, ``rep``), or None to show nothing."""

    name: str
    title: Any  # str or crmcore.i18n.LazyText
    render: Callable[[PageRequest], Render | None]
    order: int = 100


@attrs.frozen
class NavEntry:
    """An entry of the workspace's navigation bar, linking to ``path`` (a page of the
    workspace). ``roles`` limits who sees it (empty: everyone signed in); the page itself
    must still check permissions through the CRM's API."""

    path: str = attrs.field(validator=_api_path)
    label: Any  # str or crmcore.i18n.LazyText
    order: int = 100
    roles: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class TemplateFolder:
    """A folder of Jinja2 templates a plugin ships. Put them under a sub-folder named for the
    plugin (``<folder>/complaints/desk.html``, named ``complaints/desk.html``) so names never
    collide; ``base.html`` and ``macros.html`` are the web plugin's."""

    path: Any  # str or pathlib.Path


@attrs.frozen
class TranslationCatalog:
    """A plugin's gettext catalogs: ``<folder>/<locale>/LC_MESSAGES/<domain>.po``, compiled
    in memory on first use and merged into each locale's translations
    (``crmcore.i18n.translations``)."""

    folder: Any  # str or pathlib.Path
    domain: str


@attrs.frozen
class Badge:
    """A short mark shown beside a customer's name in queues and search results (a grade
    ``A``, a tier ``VIP``), with why it was given. ``rank`` orders customers in a queue at
    equal due time: lower comes first (an A customer before a D)."""

    label: Any  # what it is: "Grade", "Tier" (str or crmcore.i18n.LazyText)
    value: str  # the mark itself: "A", "VIP" (a message, ``term(N_("vip"))``, is translated)
    reason: str = ""  # text, or a message (``crmcore.i18n.msg``) shown in the reader's language
    rank: int = 100
