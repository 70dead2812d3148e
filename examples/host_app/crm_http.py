"""A small JSON HTTP service that embeds crmcore through its Python API.

Standard library only (``http.server``). The CRM is opened once at start and shared by every
request; each request acts on behalf of the user named in its ``X-Actor`` header. crmcore's
errors become HTTP status codes:

=====================  ====  =========================================================
``ValidationError``    400   bad input; nothing was written
``PermissionDenied``   403   crmcore's permissions (``[security] enforce``) or the
                             host's own ``authorize`` policy refused the actor
``NotFoundError``      404   no such customer or task
``ConflictError``      409   ``If-Match`` names a version that is no longer current,
                             or a unique value is taken
anything else          500   ``{"error": {"type": "internal", "incident": …}}``; the
                             details go to the log only
=====================  ====  =========================================================

Run it::

    python crm_http.py --config crm.toml --port 8080

Embed it::

    with crmcore.open_crm("crm.toml") as crm:
        server = make_server(create_app(crm), "127.0.0.1", 8080)
        server.serve_forever()
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import crmcore
from crmcore import (
    CRM,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    Task,
    ValidationError,
)
from crmcore.converter import to_doc
from crmcore.logs import configure_logging, get_logger

MAX_BODY = 1 << 20  # 1 MiB
ACTOR_HEADER = "x-actor"

# ``authorize(actor, action, resource)`` raises PermissionDenied to refuse. Actions:
# customer.create, customer.read, customer.update, interaction.log, interaction.read,
# task.read, task.complete. ``resource`` is the Customer or Task acted on (None to create/list).
Authorize = Callable[[str, str, Any], None]


@dataclass
class Response:
    """What the service answers: a status, a JSON body and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """A request the service refuses before crmcore sees it (bad JSON, unknown route …)."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class AssigneeOnly:
    """An example policy: only a task's assignee (or a manager) may complete it."""

    def __init__(self, managers: set[str] | frozenset[str] = frozenset()) -> None:
        self.managers = frozenset(managers)

    def __call__(self, actor: str, action: str, resource: Any) -> None:
        if (action == "task.complete" and isinstance(resource, Task)
                and resource.assignee not in (None, actor) and actor not in self.managers):
            raise PermissionDenied(f"task {resource.id} is assigned to {resource.assignee}; "
                                   "only they or a manager may complete it")


class CrmApp:
    """The service without sockets: ``handle(method, target, headers, body) -> Response``."""

    def __init__(self, crm: CRM, *, authorize: Authorize | None = None) -> None:
        self.crm = crm
        self.authorize = authorize or (lambda actor, action, resource: None)
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = [
            ("GET", re.compile(r"/health"), self.health),
            ("POST", re.compile(r"/customers"), self.add_customer),
            ("GET", re.compile(r"/customers/(?P<id>[^/]+)"), self.get_customer),
            ("PATCH", re.compile(r"/customers/(?P<id>[^/]+)"), self.update_customer),
            ("POST", re.compile(r"/customers/(?P<id>[^/]+)/interactions"), self.log_interaction),
            ("GET", re.compile(r"/customers/(?P<id>[^/]+)/interactions"), self.interactions),
            ("GET", re.compile(r"/tasks/due"), self.due_tasks),
            ("POST", re.compile(r"/tasks/(?P<id>[^/]+)/done"), self.complete_task),
        ]

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes = b"") -> Response:
        """Answer one request; never raises."""
        request = Request(method.upper(), target, {k.lower(): v for k, v in headers.items()},
                          body)
        try:
            handler, params = self._route(request)
            return handler(request, **params)
        except HttpError as exc:
            return _error(exc.status, "request", str(exc), headers=exc.headers)
        except ValidationError as exc:
            return _error(400, "validation", str(exc), field=exc.field)
        except PermissionDenied as exc:
            return _error(403, "permission", str(exc))
        except NotFoundError as exc:
            return _error(404, "not_found", str(exc))
        except ConflictError as exc:
            return _error(409, "conflict", str(exc))
        except Exception:
            incident = uuid.uuid4().hex[:12]
            get_logger("http").exception("request failed", incident=incident,
                                         method=request.method, path=request.path)
            return _error(500, "internal", "internal error; the service log has the details",
                          incident=incident)

    def _route(self, request: Request) -> tuple[Callable[..., Response], dict[str, str]]:
        allowed = []
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.path)
            if match:
                if method == request.method:
                    return handler, match.groupdict()
                allowed.append(method)
        if allowed:
            raise HttpError(405, f"{request.method} is not allowed on {request.path}",
                            headers={"Allow": ", ".join(sorted(allowed))})
        raise HttpError(404, f"no such endpoint: {request.path}")

    # -- endpoints ---------------------------------------------------------------------------

    def health(self, request: Request) -> Response:
        return Response(200, {"status": "ok", "store": self.crm.store.describe()})

    def add_customer(self, request: Request) -> Response:
        actor = request.actor()
        fields = request.json_object()
        if "name" not in fields:
            raise ValidationError("is required", field="name")
        self.authorize(actor, "customer.create", None)
        customer = self.crm.customers.add(actor=actor, **_no_reserved(fields))
        return Response(201, to_doc(customer), {"Location": f"/customers/{customer.id}",
                                                **_etag(customer.version)})

    def get_customer(self, request: Request, id: str) -> Response:
        actor = request.actor()
        customer = self.crm.customers.get(id, actor=actor)
        self.authorize(actor, "customer.read", customer)
        summary = self.crm.plugins.flat("crm_customer_summary", crm=self.crm, customer=customer)
        return Response(200, {
            "customer": to_doc(customer),
            "summary": [{"label": s.label, "text": s.text} for s in summary],
            "open_tasks": [to_doc(t) for t in self.crm.tasks.open_for(id)],
        }, _etag(customer.version))

    def update_customer(self, request: Request, id: str) -> Response:
        actor = request.actor()
        changes = _no_reserved(request.json_object())
        if not changes:
            raise ValidationError("nothing to change")
        self.authorize(actor, "customer.update", self.crm.customers.get(id, actor=actor))
        customer = self.crm.customers.update(id, actor=actor,
                                             expected_version=request.if_match(), **changes)
        return Response(200, to_doc(customer), _etag(customer.version))

    def log_interaction(self, request: Request, id: str) -> Response:
        actor = request.actor()
        fields = _no_reserved(request.json_object(), also=("customer_id",))
        kind = fields.pop("kind", None)
        if kind is None:
            raise ValidationError("is required", field="kind")
        if "occurred_at" in fields:
            fields["occurred_at"] = self._when(fields["occurred_at"], "occurred_at")
        self.authorize(actor, "interaction.log", self.crm.customers.get(id, actor=actor))
        logged = self.crm.interactions.log(actor=actor, customer_id=id, kind=kind, **fields)
        return Response(201, to_doc(logged))

    def interactions(self, request: Request, id: str) -> Response:
        actor = request.actor()
        self.authorize(actor, "interaction.read", self.crm.customers.get(id, actor=actor))
        found = self.crm.interactions.for_customer(id, limit=request.int_arg("limit", 50),
                                                   actor=actor)
        return Response(200, [to_doc(i) for i in found])

    def due_tasks(self, request: Request) -> Response:
        actor = request.actor()
        self.authorize(actor, "task.read", None)
        within = request.arg("within_hours")
        found = self.crm.tasks.due(
            assignee=request.arg("rep"), kinds=request.args("kind") or None,
            customer_id=request.arg("customer"), overdue=request.flag("overdue"),
            within=None if within is None else timedelta(hours=_number(within, "within_hours")),
            limit=request.int_arg("limit", 50), actor=actor)
        return Response(200, [to_doc(t) for t in found])

    def complete_task(self, request: Request, id: str) -> Response:
        actor = request.actor()
        outcome = request.json_object().get("outcome")
        if outcome is not None and not isinstance(outcome, str):
            raise ValidationError("expected text", field="outcome")
        self.authorize(actor, "task.complete", self.crm.tasks.get(id, actor=actor))
        task = self.crm.tasks.complete(id, actor=actor, outcome=outcome,
                                       expected_version=request.if_match())
        return Response(200, to_doc(task), _etag(task.version))

    def _when(self, value: Any, name: str) -> datetime:
        """An ISO 8601 time; one without an offset is read in the business time zone."""
        if not isinstance(value, str):
            raise ValidationError("expected an ISO 8601 date and time", field=name)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"expected an ISO 8601 date and time, got {value!r}",
                                  field=name) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(self.crm.config.core.timezone))
        return parsed


def create_app(crm: CRM, *, authorize: Authorize | None = None) -> CrmApp:
    """The service over an open CRM (testable without a socket: ``app.handle(...)``)."""
    return CrmApp(crm, authorize=authorize)


@dataclass
class Request:
    """One parsed request."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    path: str = field(init=False)
    query: dict[str, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.target)
        self.path = parts.path.rstrip("/") or "/"
        self.query = parse_qs(parts.query, keep_blank_values=True)

    def actor(self) -> str:
        """Who is acting: the ``X-Actor`` header, required on every endpoint but /health."""
        actor = self.headers.get(ACTOR_HEADER, "").strip()
        if not actor:
            raise HttpError(400, "the X-Actor header is required: name the user you act for")
        return actor

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``)."""
        if not self.body.strip():
            return {}
        kind = self.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind != "application/json":
            raise HttpError(415, f"send JSON (Content-Type: application/json), not {kind}")
        try:
            data = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise HttpError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise HttpError(400, "the body must be a JSON object")
        return data

    def if_match(self) -> int | None:
        """The version named by ``If-Match`` (``3``, ``"3"`` or ``W/"3"``); None if absent."""
        value = self.headers.get("if-match")
        if value is None or value.strip() == "*":
            return None
        text = value.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise HttpError(400, f"If-Match must name a version such as \"3\", got {value!r}")
        return int(text)

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def int_arg(self, name: str, default: int) -> int:
        value = self.arg(name)
        if value is None:
            return default
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise ValidationError(f"expected a whole number from 1 to 1000, got {value!r}",
                                  field=name)
        return int(value)

    def flag(self, name: str) -> bool:
        value = self.arg(name)
        if value in (None, "", "false", "0"):
            return False
        if value in ("true", "1"):
            return True
        raise ValidationError(f"expected true or false, got {value!r}", field=name)


def _no_reserved(fields: dict[str, Any], also: tuple[str, ...] = ()) -> dict[str, Any]:
    for key in ("actor", "expected_version", *also):
        if key in fields:
            where = {"actor": "the X-Actor header", "expected_version": "the If-Match header"}
            raise ValidationError(f"set it through {where.get(key, 'the URL')}, not the body",
                                  field=key)
    return fields


def _number(value: str, name: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"expected a number, got {value!r}", field=name) from None
    if not 0 <= number <= 24 * 366:
        raise ValidationError(f"expected 0 to 8784, got {value!r}", field=name)
    return number


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def _error(status: int, kind: str, message: str, *, headers: dict[str, str] | None = None,
           **extra: Any) -> Response:
    detail = {"type": kind, "message": message,
              **{k: v for k, v in extra.items() if v is not None}}
    return Response(status, {"error": detail}, headers or {})


# -- the socket side -------------------------------------------------------------------------


class CrmHttpServer(ThreadingHTTPServer):
    """A threading HTTP server around a ``CrmApp``.

    Request threads are not daemons, so ``server_close()`` waits for requests in flight:
    close the CRM only after it.
    """

    daemon_threads = False
    request_queue_size = 64  # the listen backlog (socketserver's default of 5 drops bursts)

    def __init__(self, address: tuple[str, int], app: CrmApp) -> None:
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: CrmHttpServer
    server_version = "crm-http/0.1"

    def do_GET(self) -> None:
        self._answer()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _answer(self) -> None:
        try:
            body = self._body()
        except HttpError as exc:
            response = _error(exc.status, "request", str(exc))
        else:
            response = self.server.app.handle(self.command, self.path, dict(self.headers), body)
        payload = json.dumps(response.body, ensure_ascii=False).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not length.isdigit():
            raise HttpError(400, "Content-Length must be a number")
        if int(length) > MAX_BODY:
            raise HttpError(413, f"the body is larger than {MAX_BODY} bytes")
        return self.rfile.read(int(length))

    def log_message(self, format: str, *args: Any) -> None:
        get_logger("http").info("request", line=format % args, client=self.client_address[0])


def make_server(app: CrmApp, host: str = "127.0.0.1", port: int = 8080) -> CrmHttpServer:
    """Bind the service (port 0 picks a free port: read ``server.server_address``)."""
    return CrmHttpServer((host, port), app)


def serve(config: Any = None, *, host: str = "127.0.0.1", port: int = 8080,
          plugins: list[str] | None = None, authorize: Authorize | None = None,
          ready: Callable[[CrmHttpServer], None] | None = None) -> None:
    """Open the CRM once, serve until SIGTERM or Ctrl-C, then stop cleanly.

    ``config`` is what ``crmcore.open_crm`` takes (a crm.toml path, a mapping, or None for
    ``$CRM_CONFIG`` / ``./crm.toml``). On SIGTERM the server stops accepting, finishes the
    requests in flight, then closes the CRM. ``ready`` is called with the bound server.
    """
    crm = crmcore.open_crm(config, plugins=plugins)
    try:
        server = make_server(create_app(crm, authorize=authorize), host, port)
    except BaseException:
        crm.close()
        raise
    previous = None
    if threading.current_thread() is threading.main_thread():
        def stop(_signum: int, _frame: FrameType | None) -> None:
            # shutdown() waits for serve_forever() to return: call it from another thread
            threading.Thread(target=server.shutdown, daemon=True).start()

        previous = signal.signal(signal.SIGTERM, stop)
    try:
        if ready is not None:
            ready(server)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # waits for requests in flight
        crm.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A JSON HTTP service over crmcore.")
    parser.add_argument("--config", metavar="PATH",
                        help="crm.toml (default: $CRM_CONFIG, else ./crm.toml)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--manager", action="append", default=None, metavar="ACTOR",
                        help="Only a task's assignee or a manager may complete it "
                             "(repeatable; without it, any actor may).")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="console", choices=["console", "json"])
    options = parser.parse_args(argv)
    configure_logging(options.log_level, options.log_format)  # to stderr, personal data masked
    policy = AssigneeOnly(set(options.manager)) if options.manager else None

    def announce(server: CrmHttpServer) -> None:
        host, port = server.server_address[:2]
        print(f"listening on http://{host}:{port}", file=sys.stderr, flush=True)

    try:
        serve(Path(options.config) if options.config else None, host=options.host,
              port=options.port, authorize=policy, ready=announce)
    except crmcore.CrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: cannot listen on {options.host}:{options.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
