"""What plugins contribute to the JSON API and the web workspace (served by the ``web``
plugin): the shapes ``crm_api_routes``, ``crm_web_pages`` and their kin return (exported by
``crmcore.registry`` too). The core defines the shapes only; it never imports the web toolkit
(Starlette, Jinja2)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from crmcore.app import CRM


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


# -- the web workspace ----------------------------------------------------------------------


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
