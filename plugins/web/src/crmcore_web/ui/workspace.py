"""The workspace's routes: sign-in and out, the language switch, vendored assets, and every
page plugins contribute (the web plugin's own included), behind sessions and CSRF checks.

A page handler runs in the app's thread pool as the signed-in user's actor (so the role
policy and the audit trail name the person); a POST runs in one store transaction after its
``csrf_token`` was checked against the session's, and a refusal writes nothing.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from crmcore import i18n
from crmcore.app import CRM
from crmcore.errors import (
    ConflictError,
    NotFoundError,
    PermissionDenied,
    ValidationError,
)
from crmcore.i18n import LazyText, lazy
from crmcore.logs import get_logger
from crmcore.registry import Redirect, Render, WebPage
from crmcore.retry import retrying
from crmcore_web import context
from crmcore_web.apikeys import Brake
from crmcore_web.sessions import COOKIE, PRE_COOKIE, Sessions, csrf_for, new_token, same
from crmcore_web.settings import WebSettings
from crmcore_web.threads import HandlerThreads
from crmcore_web.ui.contributions import gather
from crmcore_web.ui.request import WebRequest
from crmcore_web.ui.templating import TEMPLATES, Clock, environment, render
from crmcore_web.users import User, Users

log = get_logger("web")
STATIC = TEMPLATES.parent / "static"
LOCALE_COOKIE = "crm_locale"
NOTICE_COOKIE = "crm_notice"
LANGUAGES = (("en", "English"), ("zh_CN", "中文"))
SECURITY_HEADERS = {
    # inline SVG charts may carry style attributes; scripts only from this server
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show customer data: never kept by the browser
}


ROLE_LABELS = {
    "agent": i18n.lazy("Rep"),
    "shift_lead": i18n.lazy("Shift lead"),
    "manager": i18n.lazy("Manager"),
    "auditor": i18n.lazy("Auditor"),
    "admin": i18n.lazy("Administrator"),
}


def role_label(role: str) -> str:
    """A role as people call it, in the page's language."""
    label = ROLE_LABELS.get(role)
    return str(label) if label is not None else role


def said(exc: Exception) -> str:
    """What a typed error says: the message it was raised with when that is a
    :class:`crmcore.i18n.Message` (shown in the page's language), else its text."""
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, i18n.Message) else str(exc)


class Workspace:
    """Builds the workspace's routes for one CRM (see the module's docstring)."""

    def __init__(self, crm: CRM, settings: WebSettings, threads: HandlerThreads) -> None:
        self.crm = crm
        self.settings = settings
        self.threads = threads
        self.contributions = gather(crm)
        self.env = environment(self.contributions.folders)
        self.users = Users(crm)
        self.sessions = Sessions(crm)
        self.zone = crm.config.core.timezone
        self.default_locale = i18n.default_locale(crm.config)
        self.by_address = Brake(
            settings.max_failures, settings.failure_window_seconds, settings.block_seconds
        )
        self.by_user = Brake(
            settings.signin_failures_per_user,
            settings.failure_window_seconds,
            settings.block_seconds,
        )
        self.lifetime = timedelta(hours=settings.session_hours)
        self.env.globals["languages"] = LANGUAGES
        self.env.globals["role_label"] = role_label

    # -- routes ------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        table: list[BaseRoute] = [
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/locale", self.switch_locale, methods=["POST"]),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ]
        by_path: dict[str, dict[str, WebPage]] = {}
        for _plugin, page in self.contributions.pages:
            for method in page.methods:
                by_path.setdefault(page.path, {})[method] = page
        for path, methods in by_path.items():
            table.append(Route(path, self.endpoint(methods), methods=sorted(methods)))
        return table

    def endpoint(self, methods: dict[str, WebPage]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            page = methods["GET" if request.method == "HEAD" else request.method]
            started = time.perf_counter()
            form = await self.read_form(request) if request.method == "POST" else None
            response = await self.threads.run(self.serve, page, request, form)
            log.info(
                "page",
                method=request.method,
                route=page.path,
                status=response.status_code,
                ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return response

        return handle

    # -- identity, language, forms -------------------------------------------------------------

    def identify(self, request: Request) -> tuple[User, str] | None:
        """The signed-in user and their session token, or None."""
        token = request.cookies.get(COOKIE)
        session = self.sessions.find(token)
        if session is None or token is None:
            return None
        user = self.users.find(session.user)
        if user is None or not user.active:
            return None
        return user, token

    def locale_of(self, request: Request, user: User | None) -> str:
        """The user's setting, else the language cookie, else Accept-Language, else the
        store's default."""
        for choice in (user.locale if user else None, request.cookies.get(LOCALE_COOKIE)):
            locale = i18n.normalize_locale(choice)
            if locale is not None:
                return locale
        return i18n.negotiate(request.headers.get("accept-language")) or self.default_locale

    def translations(self, locale: str) -> Any:
        return i18n.translations(locale, self.crm.plugins)

    async def read_form(self, request: Request) -> dict[str, list[str]]:
        """A urlencoded form body, at most ``max_body_bytes``, as name -> values."""
        limit = self.settings.max_body_bytes
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return {"__too_large__": ["1"]}
            chunks.append(chunk)
        text = b"".join(chunks).decode("utf-8", "replace")
        fields: dict[str, list[str]] = {}
        for name, value in urllib.parse.parse_qsl(text, keep_blank_values=True):
            fields.setdefault(name, []).append(value.replace("\r\n", "\n"))
        return fields

    # -- pages -------------------------------------------------------------------------------

    def serve(self, page: WebPage, request: Request, form: dict[str, list[str]] | None) -> Response:
        """Run ``page`` for ``request`` (in a worker thread) and answer."""
        found = self.identify(request)
        if found is None:
            if request.method == "POST":
                return self.error(
                    request,
                    None,
                    403,
                    lazy("Your session has ended"),
                    lazy("Sign in again, then repeat what you were doing."),
                )
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return self.redirect("/login?" + urllib.parse.urlencode({"next": target}))
        user, token = found
        csrf = csrf_for(token)
        fields = form or {}
        if request.method == "POST":
            if "__too_large__" in fields:
                return self.error(
                    request,
                    user,
                    413,
                    lazy("The form is too large"),
                    lazy("Send less text at once."),
                )
            if not same((fields.get("csrf_token") or [""])[-1], csrf):
                return self.csrf_refused(request, user)
        locale = self.locale_of(request, user)
        trans = self.translations(locale)
        now = self.crm.now()
        web = WebRequest(
            crm=self.crm,
            actor=user.name,
            role=user.role,
            team=user.team,
            locale=locale,
            method=request.method,
            path=dict(request.path_params),
            query=dict(request.query_params),
            form={k: v[-1] for k, v in fields.items() if k != "csrf_token"},
            now=now,
            url_path=request.url.path,
            csrf_token=csrf,
            clock=Clock(self.zone, locale, now, trans.gettext),
            workspace=self,
            lists=fields,
            gettext=trans.gettext,
        )
        token_var = context.CURRENT.set(
            context.KeyActor(user.name, user.role, user.team, user.department)
        )
        try:
            with i18n.activate(trans):
                result = self.run(page, web)
                return self.answer(request, web, result)
        except PermissionDenied as exc:
            return self.error(request, user, 403, lazy("Not allowed"), said(exc), web=web)
        except NotFoundError as exc:
            return self.error(request, user, 404, lazy("Not found"), said(exc), web=web)
        except ConflictError as exc:
            return self.error(
                request, user, 409, lazy("Changed by someone else"), said(exc), web=web
            )
        except ValidationError as exc:
            return self.error(
                request, user, 422, lazy("Please check what you entered"), exc.message, web=web
            )
        except Exception as exc:
            incident = uuid.uuid4().hex[:12]
            log.error(
                "page failed",
                incident=incident,
                route=page.path,
                error=type(exc).__name__,
                exc_info=exc,
            )
            return self.error(
                request,
                user,
                500,
                lazy("Something went wrong"),
                web.gettext("Incident %(incident)s: the server's log has the details.")
                % {"incident": incident},
                web=web,
            )
        finally:
            context.CURRENT.reset(token_var)

    def run(self, page: WebPage, web: WebRequest) -> Render | Redirect:
        if web.method == "GET":
            return page.handler(web)

        def write() -> Render | Redirect:
            with self.crm.transaction(web.actor):
                return page.handler(web)

        return retrying(self.crm, write)

    def answer(self, request: Request, web: WebRequest, result: Render | Redirect) -> Response:
        if isinstance(result, Redirect):
            secure = request.url.scheme == "https"
            return self.redirect(result.location, notice=result.notice, secure=secure)
        if not isinstance(result, Render):
            raise TypeError(
                f"a page handler returned {type(result).__name__}, expected Render or Redirect"
            )
        html = self.render_template(
            web, result.template, dict(result.context), notice=request.cookies.get(NOTICE_COOKIE)
        )
        response = self.html(html, result.status)
        if NOTICE_COOKIE in request.cookies:
            response.delete_cookie(NOTICE_COOKIE, path="/")
        return response

    def base_context(self, web: WebRequest, notice: str | None = None) -> dict[str, Any]:
        """What every template sees: the user, the navigation, the form token, the language,
        the notice of the last POST, the search box's text and the time helpers."""
        nav = [
            entry
            for _plugin, entry in self.contributions.nav
            if not entry.roles or web.role in entry.roles
        ]
        clock = web.clock
        return {
            "request": web,
            "user": {"name": web.actor, "role": web.role, "team": web.team},
            "nav": nav,
            "csrf_token": web.csrf_token,
            "csrf_field": csrf_field(web.csrf_token),
            "locale": web.locale,
            "current_path": web.url_path,
            "notice": urllib.parse.unquote(notice) if notice else "",
            "search_text": web.query.get("q", ""),
            "clock": clock,
            "when": clock.when,
            "relative": clock.relative,
            "ago": clock.ago,
            "day": clock.day,
        }

    def render_template(
        self, web: WebRequest, name: str, page_context: dict[str, Any], notice: str | None = None
    ) -> str:
        trans = self.translations(web.locale)
        return render(
            self.env, name, {**self.base_context(web, notice), **page_context}, trans=trans
        )

    # -- answers -------------------------------------------------------------------------------

    @staticmethod
    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    @staticmethod
    def redirect(location: str, *, notice: str = "", secure: bool = False) -> RedirectResponse:
        """A 303 to ``location``; ``notice`` (a task title may name a customer) rides in a
        cookie shown once, as private as the session's: HttpOnly, SameSite, Secure over TLS."""
        response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
        if notice:
            response.set_cookie(
                NOTICE_COOKIE,
                urllib.parse.quote(notice[:300]),
                path="/",
                httponly=True,
                samesite="lax",
                secure=secure,
            )
        return response

    def error(
        self,
        request: Request,
        user: User | None,
        status: int,
        title: str | LazyText,
        message: str | LazyText,
        *,
        web: WebRequest | None = None,
    ) -> Response:
        """An error page in the reader's language (the layout when signed in)."""
        locale = web.locale if web else self.locale_of(request, user)
        trans = self.translations(locale)
        _ = trans.gettext
        ctx = {
            "status": status,
            "title": _(str(getattr(title, "message", title))),
            "message": i18n.translate(message, _)
            if isinstance(message, i18n.Message)
            else _(str(getattr(message, "message", message))),
        }
        if web is None:
            token = request.cookies.get(COOKIE) if user else None
            ctx.update(self.anonymous_context(request, locale, trans, token))
            ctx["signed_in"] = user is not None
            ctx["user"] = (
                {"name": user.name, "role": user.role, "team": user.team} if user else None
            )
            ctx["nav"] = []
            return self.html(render(self.env, "error.html", ctx, trans=trans), status)
        html = self.render_template(web, "error.html", {**ctx, "signed_in": True})
        return self.html(html, status)

    async def missing(self, request: Request, status: int) -> Response:
        """The HTML answer for a path no page serves (404) or a method it does not (405)."""

        def page() -> Response:
            found = self.identify(request)
            user = found[0] if found else None
            if status == 405:
                return self.error(
                    request,
                    user,
                    405,
                    lazy("Not available"),
                    lazy("This page cannot be used that way."),
                )
            return self.error(
                request,
                user,
                404,
                lazy("Not found"),
                lazy("There is no such page in the workspace."),
            )

        return await self.threads.run(page)

    def csrf_refused(self, request: Request, user: User | None) -> Response:
        return self.error(
            request,
            user,
            403,
            lazy("This form has expired"),
            lazy(
                "The form was not sent from this workspace, or your "
                "session changed. Go back, reload the page and try again."
            ),
        )

    def anonymous_context(
        self, request: Request, locale: str, trans: Any, token: str | None
    ) -> dict[str, Any]:
        now = self.crm.now()
        clock = Clock(self.zone, locale, now, trans.gettext)
        csrf = csrf_for(token) if token else ""
        return {
            "csrf_token": csrf,
            "csrf_field": csrf_field(csrf),
            "locale": locale,
            "current_path": request.url.path,
            "notice": "",
            "search_text": "",
            "clock": clock,
            "when": clock.when,
            "relative": clock.relative,
            "ago": clock.ago,
            "day": clock.day,
            "user": None,
            "nav": [],
            "signed_in": False,
        }

    # -- sign-in, sign-out, language -------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        form = await self.read_form(request) if request.method == "POST" else None
        return await self.threads.run(self._login, request, form)

    def _login(self, request: Request, form: dict[str, list[str]] | None) -> Response:
        pre = request.cookies.get(PRE_COOKIE)
        next_path = _local(
            (form or {}).get("next", [""])[-1] if form else request.query_params.get("next", "")
        )
        if form is None:
            if self.identify(request) is not None:
                return self.redirect(next_path or "/")
            return self.login_page(request, pre, next_path)
        if "__too_large__" in form or not same(
            form.get("csrf_token", [""])[-1], csrf_for(pre) if pre else None
        ):
            return self.csrf_refused(request, None)
        username = form.get("username", [""])[-1].strip()
        password = form.get("password", [""])[-1]
        address = request.client.host if request.client else "unknown"
        held = (
            self.by_address.retry_after(address)
            or self.by_user.retry_after(username)
            or self.users.held_until(username) is not None
        )
        user = self.users.verify(username, password)  # the same work, held back or not
        if held or user is None:
            self.by_address.failed(address)
            if username:
                self.by_user.failed(username)  # names no user has: counted in this process
                self.users.signin_failed(  # users: counted on the record, for every worker
                    username,
                    limit=self.settings.signin_failures_per_user,
                    window=timedelta(seconds=self.settings.failure_window_seconds),
                    hold=timedelta(seconds=self.settings.block_seconds),
                )
            log.info("sign-in refused", address=address)
            return self.login_page(request, pre, next_path, failed=True, username=username)
        self.users.signin_succeeded(user)
        token = self.sessions.start(user.name, self.lifetime)
        log.info("signed in", actor=user.name)
        response = self.redirect(next_path or "/")
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.lifetime.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        response.delete_cookie(PRE_COOKIE, path="/")
        return response

    def login_page(
        self,
        request: Request,
        pre: str | None,
        next_path: str,
        *,
        failed: bool = False,
        username: str = "",
    ) -> Response:
        token = pre or new_token()
        locale = self.locale_of(request, None)
        trans = self.translations(locale)
        ctx = self.anonymous_context(request, locale, trans, token)
        ctx.update({"failed": failed, "username": username, "next": next_path})
        response = self.html(
            render(self.env, "login.html", ctx, trans=trans), 401 if failed else 200
        )
        if pre is None:
            response.set_cookie(
                PRE_COOKIE,
                token,
                path="/",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response

    async def logout(self, request: Request) -> Response:
        form = await self.read_form(request)
        return await self.threads.run(self._logout, request, form)

    def _logout(self, request: Request, form: dict[str, list[str]]) -> Response:
        found = self.identify(request)
        if found is None:
            return self.redirect("/login")
        user, token = found
        if not same(form.get("csrf_token", [""])[-1], csrf_for(token)):
            return self.csrf_refused(request, user)
        self.sessions.end(token)
        response = self.redirect("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    async def switch_locale(self, request: Request) -> Response:
        form = await self.read_form(request)
        return await self.threads.run(self._switch_locale, request, form)

    def _switch_locale(self, request: Request, form: dict[str, list[str]]) -> Response:
        found = self.identify(request)
        token = found[1] if found else request.cookies.get(PRE_COOKIE)
        if not same(form.get("csrf_token", [""])[-1], csrf_for(token) if token else None):
            return self.csrf_refused(request, found[0] if found else None)
        locale = i18n.normalize_locale(form.get("locale", [""])[-1])
        if locale is None:
            return self.error(
                request,
                found[0] if found else None,
                422,
                lazy("Unknown language"),
                lazy("Choose English or 中文."),
            )
        if found is not None:
            self.users.set_locale(found[0], locale)
        response = self.redirect(_local(form.get("next", [""])[-1]) or "/")
        response.set_cookie(
            LOCALE_COOKIE, locale, max_age=365 * 86400, path="/", httponly=True, samesite="lax"
        )
        return response


def _local(path: str) -> str:
    """``path`` if it is a path of this site (no scheme, no host), else ''."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return ""
    parsed = urllib.parse.urlsplit(path)
    if parsed.scheme or parsed.netloc:
        return ""
    return path


def csrf_field(token: str) -> Markup:
    """The hidden ``csrf_token`` field every form carries (``{{ csrf_field }}``)."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % token
