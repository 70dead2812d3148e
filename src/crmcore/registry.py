"""Small typed objects that registration hooks return (conda's pattern)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from crmcore.schema import str_tuple

if TYPE_CHECKING:
    from crmcore.app import CRM


@attrs.frozen
class SettingsSpec:
    """A plugin's configuration section: ``[section]`` in crm.toml, structured into ``type``."""

    section: str
    type: type


@attrs.frozen
class Kinds:
    """Interaction and task kinds a plugin adds to the core's."""

    interactions: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)
    tasks: tuple[str, ...] = attrs.field(default=(), converter=str_tuple)


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
            raise ValueError(f"LazyCommand {self.name!r}: target {value!r} is not "
                             "'module:attribute'")


@attrs.frozen
class SummaryLine:
    """One labelled line on ``crm customer show``."""

    label: str
    text: str


@attrs.frozen
class ReportSection:
    """A section of ``crm report``: a title, a table, and optionally a bar chart.

    ``rows`` are tuples matching ``columns``; ``chart`` maps labels to numbers and is drawn as
    bars in the terminal and as an inline SVG in the HTML report.
    """

    title: str
    columns: tuple[str, ...] = attrs.field(converter=str_tuple)
    rows: tuple[tuple[Any, ...], ...] = attrs.field(converter=lambda rs: tuple(map(tuple, rs)))
    chart: dict[str, float] | None = None
    note: str = ""
    order: int = 100  # lower comes first


@attrs.frozen
class ReportWindow:
    """What ``crm report`` looks at: a period [``since``, ``until``) (None: from the start /
    up to now) and a team or a rep (None: everyone). Sections count what happened in the
    period; a rep's team is what ``crm.actor(rep).team`` says."""

    since: datetime | None = None
    until: datetime | None = None
    team: str | None = None
    rep: str | None = None

    def contains(self, when: datetime) -> bool:
        """Whether ``when`` falls in the period."""
        return (self.since is None or when >= self.since) and (
            self.until is None or when < self.until)

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

    def label(self) -> str:
        """One line saying what the window is, for notes."""
        parts = []
        if self.since or self.until:
            parts.append(f"{self.since.isoformat()[:16] if self.since else 'start'} to "
                         f"{self.until.isoformat()[:16] if self.until else 'now'}")
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
    type: str = attrs.field(default="string",
                            validator=attrs.validators.in_(("string", "integer", "number",
                                                            "boolean")))
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
