"""Call the JSON API's routes in tests as a server serves them.

::

    from crmcore.testing.api import ApiClient

    api = ApiClient(crm)
    answer = api.call("POST", "/loyalty/cus_1/redeem", actor="ann", body={"points": 50})
    assert answer.status == 200 and answer.json["balance"] == 150

Where an HTTP server of the API is installed (the ``web`` plugin registers one with
:func:`register_transport` from its pytest plugin) and the CRM loads it, every call goes over
that server's real application: an API key for ``actor``, the JSON body encoded, the answer
decoded. Otherwise :meth:`ApiClient.call` serves the request in process, the way every server
does it with ``crmcore.api``: the route found by method and path (``{placeholders}`` filled),
the body structured with ``parse_body`` (unknown keys and wrong types refused; no body is an
empty object), the handler called acting as ``actor``, its result turned into JSON with
``to_json``. Either way an error answer is raised as crmcore's typed error (422
``ValidationError`` with its ``field``, 404 ``NotFoundError``, 409 ``ConflictError``, 403
``PermissionDenied``), for ``pytest.raises``; ``ApiAnswer.http`` says which way it went.

Every call that reaches a route is recorded, as ``(method, route path)``, in the client's
``called`` set and in the module's ``CALLS`` list; calls served over HTTP also in ``served``
and ``HTTP_CALLS``, which the web plugin's ``@pytest.mark.api_covers(METHOD, PATH)`` guard
reads: a route counts as tested only when a test called it as it is served.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

import attrs
import orjson

from crmcore.api import ApiCall, api_routes, match_path, parse_body, to_json
from crmcore.errors import (
    ConflictError,
    CrmError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from crmcore.registry import ApiRoute

if TYPE_CHECKING:
    from crmcore.app import CRM

#: ``(method, route path)`` of every call that reached a route, in order, for coverage checks.
CALLS: list[tuple[str, str]] = []
#: The same for the calls served over HTTP (through a registered transport).
HTTP_CALLS: list[tuple[str, str]] = []


class Transport(Protocol):
    """Sends one request to a real server of the API and returns ``(status, JSON or None)``."""

    def send(
        self,
        method: str,
        path: str,
        *,
        actor: str,
        body: Any,
        query: Mapping[str, str],
        if_match: int | None,
    ) -> tuple[int, Any]: ...


#: Makes a transport for a CRM, or None when it cannot serve that CRM (see register_transport).
_transports: list[Callable[[CRM], Transport | None]] = []
_servers: list[str] = []


def register_transport(factory: Callable[[CRM], Transport | None], *, plugin: str) -> None:
    """Have :class:`ApiClient` serve its calls over HTTP: ``factory(crm)`` returns a
    transport, or None when it cannot serve that CRM (the client then serves in process);
    ``plugin`` is the crmcore plugin the CRM must load for that. A server plugin calls this
    from its pytest plugin; the core names no server."""
    if factory not in _transports:
        _transports.append(factory)
        _servers.append(plugin)


def with_server(plugins: list[Any]) -> list[Any]:
    """``plugins`` plus the plugin of each registered HTTP server, for a test CRM whose
    routes :class:`ApiClient` should call as served (``make_crm(with_server(["loyalty"]))``)."""
    return [*plugins, *(name for name in _servers if name not in plugins)]


@attrs.frozen
class ApiAnswer:
    """A handler's answer: the route's success status and the JSON body (None when empty)."""

    status: int
    json: Any
    route: ApiRoute
    http: bool = False


class ApiClient:
    """Every route the CRM's plugins declare, callable by method and path."""

    def __init__(self, crm: CRM, *, http: bool | None = None) -> None:
        """``http``: None serves over HTTP when a registered transport can (else in
        process); True requires HTTP; False serves in process."""
        self.crm = crm
        self.routes = api_routes(crm)
        self.called: set[tuple[str, str]] = set()
        self.served: set[tuple[str, str]] = set()
        self.transport: Transport | None = None
        if http is not False:
            for factory in _transports:
                self.transport = factory(crm)
                if self.transport is not None:
                    break
        if http and self.transport is None:
            raise RuntimeError(
                "no HTTP server of the API can serve this CRM (install and "
                "load a server plugin such as crmcore-web)"
            )

    def route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]]:
        """The route answering ``method path`` and its placeholder values; ``NotFoundError``
        when no route has that path (a 404), ``ValidationError`` when none has that method."""
        path, methods = path.split("?", 1)[0], []
        for _plugin, route in self.routes:
            params = match_path(route.path, path)
            if params is None:
                continue
            if route.method == method.upper() or (method.upper(), route.method) == ("HEAD", "GET"):
                return route, params
            methods.append(route.method)
        if methods:
            raise ValidationError(
                f"{method.upper()} is not allowed on {path} (allowed: {', '.join(sorted(methods))})"
            )
        raise NotFoundError(f"no API route {path}")

    def call(
        self,
        method: str,
        path: str,
        *,
        actor: str,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        if_match: int | None = None,
    ) -> ApiAnswer:
        """One request, acting as ``actor``; raises crmcore's typed errors as the handler does.
        ``HEAD`` runs a ``GET`` route and answers without a body, as the server does.

        ``body`` is the decoded JSON body (None sends none: an empty object for routes that
        take one); ``query`` maps parameter names to values (sent as text, as a query string
        would), on top of any ``?name=value`` in ``path``.
        """
        path, _, raw_query = path.partition("?")
        route, params = self.route(method, path)
        head = method.upper() == "HEAD"  # answered like GET, without a body
        if route.body is None and body is not None:
            raise ValidationError(f"{route.method} {route.path} takes no request body")
        self.called.add((route.method, route.path))
        CALLS.append((route.method, route.path))
        text_query = {
            **dict(parse_qsl(raw_query, keep_blank_values=True)),
            **{k: _as_text(v) for k, v in (query or {}).items() if v is not None},
        }
        if self.transport is not None:
            self.served.add((route.method, route.path))
            HTTP_CALLS.append((route.method, route.path))
            status, answer = self.transport.send(
                method.upper() if head else route.method,
                path,
                actor=actor,
                body=body,
                query=text_query,
                if_match=if_match,
            )
            if status >= 400:
                raise _typed_error(status, answer)
            return ApiAnswer(status, answer, route, http=True)
        structured: Any = None
        if route.body is not None:
            structured = parse_body(
                route.body, orjson.loads(orjson.dumps({} if body is None else body))
            )
        request = ApiCall(
            crm=self.crm,
            actor=actor,
            path=params,
            query=text_query,
            body=structured,
            if_match=if_match,
        )
        result = route.handler(request)
        encoded = None if result is None else orjson.loads(orjson.dumps(to_json(result)))
        return ApiAnswer(route.status, None if head else encoded, route)


_ERRORS: dict[int, type[CrmError]] = {404: NotFoundError, 409: ConflictError, 403: PermissionDenied}


def _typed_error(status: int, answer: Any) -> CrmError:
    """An HTTP error answer as the typed error the handler raised (``HttpAnswerError`` for
    the statuses no typed error answers: 400, 401, 413, 415, 428, 429, 500)."""
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    message = error.get("message") or f"HTTP {status}"
    if status == 422:
        return ValidationError(message, field=error.get("field"))
    kind = _ERRORS.get(status)
    if kind is not None:
        return kind(message)
    return HttpAnswerError(status, error.get("type", ""), message, error.get("field"))


class HttpAnswerError(CrmError):
    """An HTTP error answer no typed error stands for: ``status``, ``type``, ``field``."""

    def __init__(self, status: int, type: str, message: str, field: str | None) -> None:
        super().__init__(f"HTTP {status} {type}: {message}")
        self.status = status
        self.type = type
        self.field = field


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
