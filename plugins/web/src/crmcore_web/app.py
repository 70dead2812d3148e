"""``create_app``: the ASGI application (Starlette) serving the JSON API under ``/api/v1``
and the workspace's pages (``crmcore_web.ui``) everywhere else.

Every ``/api/v1`` request carries ``Authorization: Bearer <API key>`` and acts as the key's
actor with the key's role under the core's role policy; nothing in the request chooses the
actor. Handlers run in a thread pool (the core's API is synchronous) and every write runs in one
store transaction, so an error leaves nothing written.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import orjson
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from crmcore import i18n
from crmcore.api import ApiCall, api_routes, error_status, parse_body, to_json
from crmcore.app import CRM, open_crm
from crmcore.config import Config, resolve_config
from crmcore.errors import ConfigError, CrmError, ValidationError
from crmcore.logs import configure_logging, get_logger
from crmcore.registry import ApiRoute
from crmcore.retry import retrying
from crmcore_web import context
from crmcore_web.apikeys import ApiKey, Brake, Keyring
from crmcore_web.errors import HttpError
from crmcore_web.openapi import build_document
from crmcore_web.settings import WebSettings
from crmcore_web.threads import HandlerThreads
from crmcore_web.ui.workspace import Workspace

API_PREFIX = "/api/v1"
log = get_logger("web")


def enforcing(config: Config) -> Config:
    """``config`` with the role policy switched on (the API always enforces it)."""
    return attrs.evolve(config, security=attrs.evolve(config.security, enforce=True))


def open_for_api(config: Config | Mapping[str, Any] | str | Path | None, **kwargs: Any) -> CRM:
    """Open a CRM as the API serves it: ``config`` as ``open_crm`` takes it, the role policy
    enforced."""
    return open_crm(enforcing(resolve_config(config)), **kwargs)


def create_app(
    config_or_crm: CRM | Config | Mapping[str, Any] | str | Path | None = None, **open_kwargs: Any
) -> Starlette:
    """The API as an ASGI application.

    Given an open ``CRM`` (whose ``[security] enforce`` must be true), the app uses it and
    leaves closing it to you. Given a configuration (a ``Config``, a mapping shaped like
    crm.toml, a path, or None for ``$CRM_CONFIG``/``./crm.toml``), it opens its own CRM with
    the role policy enforced (``open_kwargs`` go to ``open_crm``) and closes it on shutdown.
    If the process has configured no logging, crmcore's (stderr, personal data masked) is set.
    """
    if not structlog.is_configured():  # never log unmasked: crmcore's processors mask
        configure_logging()
    if isinstance(config_or_crm, CRM):
        crm, owned = config_or_crm, False
        if not crm.has_plugin("web"):
            raise ConfigError(
                "plugins.enabled: the CRM given to create_app must load the "
                "'web' plugin (its API keys and settings live there)"
            )
        if not crm.config.security.enforce:
            raise ConfigError(
                "security.enforce: the HTTP API acts under the role policy; "
                "open the CRM with [security] enforce = true"
            )
    else:
        crm, owned = open_for_api(config_or_crm, **open_kwargs), True
    try:
        return _build(crm, owned)
    except BaseException:
        if owned:
            crm.close()
        raise


def _build(crm: CRM, owned: bool) -> Starlette:
    settings: WebSettings = crm.settings("web")
    api = Api(crm, settings)
    routes = api_routes(crm)  # the core's endpoints come through this plugin's hook
    public = [
        ("GET", "/health", "Liveness: 200 while the store answers (no key needed)"),
        ("GET", "/api/openapi.json", "This OpenAPI 3.1 document (no key needed)"),
    ]
    document = build_document(routes, title="crmcore API", version=_version(), public=public)
    openapi_body = orjson.dumps(document)

    async def openapi(_request: Request) -> Response:
        return Response(openapi_body, media_type="application/json")

    async def health(_request: Request) -> Response:
        ok = await api.threads.run(api.healthy)
        return json_response({"status": "ok" if ok else "unavailable"}, 200 if ok else 503)

    table: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"]),
    ]
    by_path: dict[str, dict[str, ApiRoute]] = {}
    for _plugin, route in routes:
        by_path.setdefault(API_PREFIX + route.path, {})[route.method] = route
    for path, methods in by_path.items():
        table.append(Route(path, api.endpoint(methods), methods=sorted(methods)))
    workspace = Workspace(crm, settings, api.threads)  # the pages share the handler threads
    table.extend(workspace.routes())

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            api.threads.close()  # requests in flight finish first
            if owned:
                crm.close()

    app = Starlette(
        routes=table,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
    )
    app.state.crm = crm
    app.state.api = api
    app.state.openapi = document
    app.state.workspace = workspace
    return app


def _logs_requests() -> bool:
    """Whether a request's line would be written (checked per request: the level may change).
    Skipping the call when it would not saves building and masking the line (a few µs)."""
    if not hasattr(structlog.get_config()["wrapper_class"], "is_enabled_for"):
        return True  # a host's own set-up that does not filter by level here
    return bool(structlog.get_logger("crmcore").bind().is_enabled_for(logging.INFO))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crmcore-web")
    except PackageNotFoundError:  # pragma: no cover: running from a source tree
        return "0"


class Api:
    """Authentication, body parsing, dispatch and error mapping for the ``/api/v1`` routes."""

    def __init__(self, crm: CRM, settings: WebSettings) -> None:
        self.crm = crm
        self.settings = settings
        self.keys = Keyring(crm)
        self.brake = Brake(
            settings.max_failures, settings.failure_window_seconds, settings.block_seconds
        )
        self._touch_every = timedelta(seconds=settings.last_used_every_seconds)
        self.threads = HandlerThreads()

    def healthy(self) -> bool:
        try:
            self.crm.customers.count({"id": "cus_health"})
        except CrmError:
            return False
        return True

    def endpoint(self, methods: dict[str, ApiRoute]) -> Any:
        async def handle(request: Request) -> Response:
            route = methods["GET" if request.method == "HEAD" else request.method]
            started = time.perf_counter()
            try:
                response = await self.handle(route, request)
            except HttpError as exc:
                response = error_response(exc.status, exc.type, str(exc), exc.field, exc.headers)
            # the route's template, never the query or a header: no key, no personal data
            if _logs_requests():
                log.info(
                    "request",
                    method=request.method,
                    route=route.path,
                    status=response.status_code,
                    ms=round((time.perf_counter() - started) * 1000, 2),
                )
            return response

        return handle

    async def handle(self, route: ApiRoute, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self.brake.retry_after(client)
        if wait:
            raise HttpError(
                429,
                "too_many_failures",
                "too many failed authentications from your address; wait and "
                "retry with a valid key",
                headers={"Retry-After": str(int(wait) + 1)},
            )
        locale = self.reader_locale(request)
        raw = await self.read_body(request) if route.body is not None else None
        # one trip to the thread pool for the key, the body and the handler (each trip costs)
        try:
            status, payload = await self.threads.run(self.serve, route, request, raw, client)
        except HttpError as exc:
            said = exc.said
            if said is not None and locale is not None and locale != i18n.FALLBACK:
                gettext = i18n.translations(locale, self.crm.plugins).gettext
                raise HttpError(
                    exc.status,
                    exc.type,
                    i18n.translate(said, gettext),
                    field=exc.field,
                    headers=exc.headers,
                ) from None
            raise
        headers = {}
        version = getattr(payload, "version", None)
        if attrs.has(type(payload)) and isinstance(version, int):
            headers["ETag"] = f'"{version}"'
        if payload is None and route.status == 204:
            return Response(status_code=204)
        if locale is None or locale == i18n.FALLBACK:
            return json_response(to_json(payload), status, headers)
        with i18n.activate(i18n.translations(locale, self.crm.plugins)):
            return json_response(to_json(payload), status, headers)

    def reader_locale(self, request: Request) -> str | None:
        """The language text written as data is answered in (task titles, reasons): ``?lang=``,
        else the ``Accept-Language`` header, else None (as stored: English)."""
        lang = request.query_params.get("lang")
        if lang is None:
            return i18n.negotiate(request.headers.get("accept-language"))
        locale = i18n.normalize_locale(lang)
        if locale is None:
            raise HttpError(
                400,
                "bad_lang",
                f"lang must be one of {', '.join(i18n.LOCALES)}, got {lang!r}",
                field="lang",
            )
        return locale

    def serve(
        self, route: ApiRoute, request: Request, raw: bytes | None, client: str
    ) -> tuple[int, Any]:
        """Authenticate, structure the body, run the handler (in a worker thread)."""
        key = self.authenticate(request.headers.get("authorization"))
        if key is None:
            self.brake.failed(client)
            raise HttpError(
                401,
                "unauthorized",
                "send a valid API key as 'Authorization: Bearer <key>' (crm apikey create ACTOR)",
                headers={"WWW-Authenticate": 'Bearer realm="crmcore"'},
            )
        if_match = parse_if_match(request.headers.get("if-match"))
        body = None
        if route.body is not None:
            body = self.parse(route, raw or b"", request.headers.get("content-type", ""))
        call = ApiCall(
            self.crm,
            key.actor,
            dict(request.path_params),
            dict(request.query_params),
            body,
            if_match,
        )
        return self.run(route, call, key)

    def authenticate(self, header: str | None) -> ApiKey | None:
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.keys.verify(token.strip())

    async def read_body(self, request: Request) -> bytes:
        """The raw body, refused (413) once it exceeds the limit, before it is read whole."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, "too_large", f"the body is larger than {limit} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, "too_large", f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def parse(self, route: ApiRoute, raw: bytes, content_type: str) -> Any:
        """The body as an instance of the route's attrs class (415, 400 or 422 otherwise)."""
        if not raw.strip():
            doc: Any = {}
        else:
            media = content_type.split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                raise HttpError(
                    415,
                    "unsupported_media_type",
                    "send the body as JSON with 'Content-Type: application/json'",
                    field="Content-Type",
                )
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise HttpError(
                    400, "malformed_json", f"the body is not valid JSON: {exc}"
                ) from None
        try:
            return parse_body(route.body, doc)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise HttpError(422, "validation", _message(exc), field=exc.field) from None

    def run(self, route: ApiRoute, call: ApiCall, key: ApiKey) -> tuple[int, Any]:
        token = context.CURRENT.set(context.KeyActor(key.actor, key.role))
        try:
            self.keys.touch(key, self._touch_every)
            if route.method == "GET":
                return route.status, route.handler(call)

            def write() -> Any:
                with self.crm.transaction(call.actor):
                    return route.handler(call)

            return route.status, retrying(self.crm, write)
        except HttpError:
            raise
        except CrmError as exc:
            status = error_status(exc)
            if status == 500:
                raise self.internal(route, exc) from None
            error = HttpError(
                status,
                _ERROR_TYPES[status],
                _message(exc) if isinstance(exc, ValidationError) else str(exc),
                field=getattr(exc, "field", None),
            )
            # a refusal raised as a message is answered in the reader's language (``handle``)
            said = getattr(exc, "message", None)
            error.said = said if isinstance(said, i18n.Message) else None
            raise error from None
        except Exception as exc:
            raise self.internal(route, exc) from None
        finally:
            context.CURRENT.reset(token)

    @staticmethod
    def internal(route: ApiRoute, exc: Exception) -> HttpError:
        """A 500 naming an incident the log holds (the answer tells nothing more)."""
        incident = uuid.uuid4().hex[:12]
        log.error(
            "request failed",
            incident=incident,
            route=f"{route.method} {route.path}",
            error=type(exc).__name__,
            exc_info=exc,
        )
        return HttpError(
            500,
            "internal",
            f"internal error (incident {incident}); the server's log has the details",
        )


#: The ``type`` of the error answer for each status ``crmcore.api.error_status`` gives.
_ERROR_TYPES = {422: "validation", 403: "forbidden", 404: "not_found", 409: "conflict"}


def _message(exc: ValidationError) -> str:
    message = str(exc)
    if exc.field and message.startswith(f"{exc.field}: "):
        return message[len(exc.field) + 2 :]
    return message


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: "3"`` (or ``W/"3"``, or ``3``) -> 3; ``*`` or absent -> None."""
    if value is None or value.strip() == "*":
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isdigit():
        raise HttpError(
            400,
            "bad_if_match",
            f'If-Match must be a record version as the ETag gave it ("3"), got {value!r}',
            field="If-Match",
        )
    return int(text)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def error_response(
    status: int,
    type: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    return json_response(
        {"error": {"status": status, "type": type, "message": message, "field": field}},
        status,
        headers,
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    workspace = getattr(request.app.state, "workspace", None)
    root = request.scope.get("root_path") or ""
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]  # mounted under a prefix by a host application
    if workspace is not None and not path.startswith("/api/"):
        return await workspace.missing(request, exc.status_code)
    types = {404: "not_found", 405: "method_not_allowed"}
    message = {
        404: f"no such endpoint: {request.url.path} (see /api/openapi.json)",
        405: f"{request.method} is not allowed here",
    }.get(exc.status_code, exc.detail)
    return error_response(
        exc.status_code, types.get(exc.status_code, "http"), message, headers=exc.headers
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    incident = uuid.uuid4().hex[:12]
    log.error("request failed", incident=incident, error=type(exc).__name__, exc_info=exc)
    return error_response(
        500, "internal", f"internal error (incident {incident}); the server's log has the details"
    )
