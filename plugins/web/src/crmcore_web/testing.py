"""pytest plugin shipped with crmcore-web (entry point ``pytest11``): test the JSON API in
process, and prove every endpoint has a test.

- ``api_client``: ``client = api_client(crm)`` is a Starlette test client over
  ``create_app(crm)`` (the CRM must load the ``web`` plugin and enforce the role policy);
  ``client.key(actor, role)`` creates an API key and returns the headers that carry it.
  Every request it makes is recorded by route (``("POST", "/customers/{customer_id}/merge")``).
- ``crmcore.testing.api.ApiClient(crm)`` serves its calls over this app (through
  :class:`HttpTransport`, registered when pytest loads this plugin) whenever the CRM loads the
  ``web`` plugin with the role policy enforced: a key per actor, the body sent as JSON, the
  answer decoded and error answers raised as crmcore's typed errors. A plugin's route tests
  written with that client are thereby tests of the routes as served.
- ``@pytest.mark.api_covers("POST", "/customers/{customer_id}/merge")`` on a test says which
  endpoint (path relative to ``/api/v1``) it exercises; the test fails unless it called it
  over HTTP (either client). The web plugin's guard test requires such a mark for every
  operation in the OpenAPI document, plugins' routes included: put the marks on your
  plugin's API tests.
- ``workspace_server`` and ``browser`` (``crmcore_web.browser``): a real ``crm serve`` over a
  retail store and a headless chromium, for browser tests of workspace pages (skipped, saying
  why, without chromium); a failing test's screenshot is kept.
- ``SignedIn(crm, name, token_page=...)``: a signed-in browser stand-in over the workspace
  (Starlette test client), for plugins' page tests: it makes the user if need be, signs in,
  and posts forms with the page's ``csrf_token``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
import pytest

from crmcore.app import CRM
from crmcore.errors import ValidationError
from crmcore.testing.api import register_transport
from crmcore_web.apikeys import Keyring
from crmcore_web.app import API_PREFIX, create_app
from crmcore_web.browser import browser, workspace_server

__all__ = ["SignedIn", "api_client", "browser", "workspace_server"]

TEST_PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class SignedIn:
    """A signed-in browser stand-in: GETs pages and POSTs their forms with the token taken
    from ``token_page`` after signing in as ``name`` (made a user with ``password`` if it is
    not one yet, by ``admin``)."""

    def __init__(
        self, crm: CRM, name: str, *, token_page: str = "/", password: str = TEST_PASSWORD
    ) -> None:
        from starlette.testclient import TestClient

        from crmcore_web.users import Users

        self.crm = crm
        if Users(crm).find(name) is None:
            Users(crm).add(name, password, actor="admin")
        self.client = TestClient(create_app(crm), follow_redirects=False)
        page = self.client.get("/login")
        answer = self.client.post(
            "/login",
            data={"username": name, "password": password, "csrf_token": self.token(page.text)},
        )
        assert answer.status_code == 303, answer.text
        self.csrf = self.token(self.client.get(token_page).text)

    @staticmethod
    def token(html: str) -> str:
        """The page's ``csrf_token`` field."""
        found = _TOKEN.search(html)
        assert found, "no csrf_token field on the page"
        return found.group(1)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, csrf: bool = True, **kwargs: Any) -> Any:
        """POST a form (with the page's ``csrf_token`` unless ``csrf=False``); ``kwargs`` go
        to the test client (``headers={"Accept-Language": "zh-CN"}``)."""
        token = {"csrf_token": self.csrf} if csrf else {}
        return self.client.post(path, data={**data, **token}, **kwargs)


def client_class() -> type:
    """``ApiClient``, built on first use (the test extras, httpx among them, are imported
    only by tests that use it)."""
    global _client_cls
    if _client_cls is None:
        from starlette.routing import Match

        with warnings.catch_warnings():  # Starlette suggests httpx2; httpx works the same
            warnings.simplefilter("ignore")
            from starlette.testclient import TestClient

        class ApiClient(TestClient):
            """A test client that remembers which API routes it called."""

            def __init__(self, crm: CRM, **kwargs: Any) -> None:
                self.crm = crm
                self.app_ = create_app(crm)
                super().__init__(self.app_, **kwargs)
                self.called: set[tuple[str, str]] = set()

            def key(self, actor: str, role: str | None = None) -> dict[str, str]:
                """Headers carrying a fresh API key for ``actor`` (created by the system actor)."""
                _record, key = Keyring(self.crm).create(actor, actor="system", role=role)
                return {"Authorization": f"Bearer {key}"}

            def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
                path = str(url).split("?", 1)[0]
                scope = {"type": "http", "path": path, "method": method.upper()}
                for route in self.app_.routes:
                    match, _child = route.matches(scope)
                    route_path = getattr(route, "path", "")  # Route and Mount have one
                    if match is Match.FULL and route_path.startswith(API_PREFIX):
                        self.called.add((method.upper(), route_path[len(API_PREFIX) :]))
                        break
                return super().request(method, url, *args, **kwargs)

        _client_cls = ApiClient
    return _client_cls


_client_cls: type | None = None
_clients: list[Any] = []  # the clients of the running test (their calls count for its marks)
_transports: list[HttpTransport] = []  # made during the running test, closed after it


class HttpTransport:
    """``crmcore.testing.api.ApiClient``'s way to the real app: each call is an HTTP request
    to ``create_app(crm)`` with an API key for its actor (made on first use)."""

    def __init__(self, crm: CRM) -> None:
        self.client = client_class()(crm)
        self.headers: dict[str, dict[str, str]] = {}
        _clients.append(self.client)
        _transports.append(self)

    def send(
        self,
        method: str,
        path: str,
        *,
        actor: str,
        body: Any,
        query: Mapping[str, str],
        if_match: int | None,
    ) -> tuple[int, Any]:
        headers = dict(self._key(actor))
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        answer = self.client.request(
            method, API_PREFIX + path, params=dict(query), headers=headers, content=content
        )
        return answer.status_code, (orjson.loads(answer.content) if answer.content else None)

    def _key(self, actor: str) -> dict[str, str]:
        """Headers with a key for ``actor``; none for an actor who can have no key (unknown
        or a system actor), whose request is then answered 401 as the server would."""
        if actor not in self.headers:
            try:
                self.headers[actor] = self.client.key(actor)
            except ValidationError:
                self.headers[actor] = {}
        return self.headers[actor]

    def close(self) -> None:
        self.client.close()


def http_transport(crm: CRM) -> HttpTransport | None:
    """A transport for a CRM the app can serve (it loads ``web`` and enforces the role
    policy); None otherwise, and the core's client serves in process."""
    if not crm.has_plugin("web") or not crm.config.security.enforce:
        return None
    return HttpTransport(crm)


register_transport(http_transport, plugin="web")


@pytest.fixture
def api_client() -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def factory(crm: CRM, **kwargs: Any) -> Any:
        client = client_class()(crm, **kwargs)
        made.append(client)
        _clients.append(client)
        return client

    yield factory
    for client in made:
        client.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "api_covers(method, path): the JSON API endpoint (relative to /api/v1) this test exercises",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _clients.clear()  # before the test's fixtures make clients


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    marks = [m.args for m in item.iter_markers("api_covers")]
    if marks:
        called = set().union(*(c.called for c in _clients)) if _clients else set()
        missing = [f"{m} {p}" for m, p in marks if (m.upper(), p) not in called]
        if missing:
            pytest.fail(
                f"marked api_covers but never called over HTTP: {', '.join(missing)} "
                "(call it with the api_client fixture, or with crmcore.testing.api."
                "ApiClient on a CRM that loads 'web' with [security] enforce = true)"
            )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.crm_call_report = report  # type: ignore[attr-defined]  # for the browser fixture
    return report


def pytest_runtest_teardown(item: pytest.Item) -> None:
    while _transports:
        _transports.pop().close()
