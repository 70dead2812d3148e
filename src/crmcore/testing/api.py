"""Call a plugin's JSON API routes in tests as the ``web`` plugin serves them, without HTTP.

::

    from crmcore.testing.api import ApiClient

    api = ApiClient(crm)
    answer = api.call("POST", "/loyalty/cus_1/redeem", actor="ann", body={"points": 50})
    assert answer.status == 200 and answer.json["balance"] == 150

For one request, :meth:`ApiClient.call` does what the server does: finds the route by method
and path (``{placeholders}`` filled), structures the body with ``crmcore.api.parse_body``
(unknown keys and wrong types refused), builds the request acting as ``actor``, calls the
handler and turns its result into plain JSON with ``crmcore.api.to_json`` (round-tripped
through a JSON encoder, so anything that would not serialise fails the test). crmcore's typed
errors are raised as they are, for ``pytest.raises``; ``crmcore.api.error_status`` gives the
HTTP status the server answers them with.

Every call that reaches a route is recorded, as ``(method, route path)``, in the client's
``called`` set and in the module's ``CALLS`` list, so a checker that every route has a test
(the web plugin's ``@pytest.mark.api_covers(METHOD, PATH)`` guard) can see what a test called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from crmcore.api import ApiCall, api_routes, match_path, parse_body, to_json
from crmcore.errors import NotFoundError, ValidationError
from crmcore.registry import ApiRoute

if TYPE_CHECKING:
    from crmcore.app import CRM

#: ``(method, route path)`` of every call that reached a route, in order, for coverage checks.
CALLS: list[tuple[str, str]] = []


@attrs.frozen
class ApiAnswer:
    """A handler's answer: the route's success status and the JSON body (None when empty)."""

    status: int
    json: Any
    route: ApiRoute


class ApiClient:
    """Every route the CRM's plugins declare, callable by method and path."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.routes = api_routes(crm)
        self.called: set[tuple[str, str]] = set()

    def route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]]:
        """The route answering ``method path`` and its placeholder values; ``NotFoundError``
        when no route has that path (a 404), ``ValidationError`` when none has that method."""
        path, methods = path.split("?", 1)[0], []
        for _plugin, route in self.routes:
            params = match_path(route.path, path)
            if params is None:
                continue
            if route.method == method.upper():
                return route, params
            methods.append(route.method)
        if methods:
            raise ValidationError(f"{method.upper()} is not allowed on {path} (allowed: "
                                  f"{', '.join(sorted(methods))})")
        raise NotFoundError(f"no API route {path}")

    def call(self, method: str, path: str, *, actor: str, body: Any = None,
             query: Mapping[str, Any] | None = None, if_match: int | None = None) -> ApiAnswer:
        """One request, acting as ``actor``; raises crmcore's typed errors as the handler does.

        ``body`` is the decoded JSON body (a dict for routes that take one); ``query`` maps
        parameter names to values (sent as text, as a query string would).
        """
        route, params = self.route(method, path)
        self.called.add((route.method, route.path))
        CALLS.append((route.method, route.path))
        if route.body is None:
            if body is not None:
                raise ValidationError(f"{route.method} {route.path} takes no request body")
            structured = None
        else:
            if body is None:
                raise ValidationError(f"{route.method} {route.path} needs a JSON body")
            structured = parse_body(route.body, orjson.loads(orjson.dumps(body)))
        text_query = {k: _as_text(v) for k, v in (query or {}).items() if v is not None}
        request = ApiCall(crm=self.crm, actor=actor, path=params, query=text_query,
                          body=structured, if_match=if_match)
        result = route.handler(request)
        encoded = None if result is None else orjson.loads(orjson.dumps(to_json(result)))
        return ApiAnswer(route.status, encoded, route)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
