"""A Django project (ASGI) with the crmcore API mounted under ``/crm``.

Django serves everything else; requests under ``/crm/`` go to the crmcore app, which sees
``/crm`` as its ``root_path`` (ASGI's way of saying where an app is mounted).
Run it with ``CRM_CONFIG=crm.toml uvicorn django_host:application``.
"""

from __future__ import annotations

from typing import Any

import django
from crmcore_web import create_app
from django.conf import settings
from django.http import JsonResponse
from django.urls import path

from crmcore import CRM

PREFIX = "/crm"


def hello(_request: Any) -> JsonResponse:
    return JsonResponse({"hello": "from django"})


urlpatterns = [path("hello", hello)]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="example-only-not-secret",
        MIDDLEWARE=[],
    )
    django.setup()


def build(crm_or_config: CRM | str | None) -> Any:
    """An ASGI application: crmcore's API under ``/crm``, Django for the rest. Given a
    configuration (a path, or None for ``$CRM_CONFIG``/``./crm.toml``) rather than an open
    CRM, the API opens its own and closes it when the server shuts down."""
    from django.core.asgi import get_asgi_application

    django_app = get_asgi_application()
    crm_app = create_app(crm_or_config)

    async def application(scope: dict, receive: Any, send: Any) -> None:
        path_ = scope.get("path", "")
        if scope["type"] == "http" and (path_ == PREFIX or path_.startswith(PREFIX + "/")):
            scope = {**scope, "root_path": scope.get("root_path", "") + PREFIX}
            await crm_app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await crm_app(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return application


def app_from_env() -> Any:
    """For ``uvicorn --factory django_host:app_from_env``: the CRM of ``$CRM_CONFIG`` (else
    ``./crm.toml``) with the role policy enforced; it closes when the server shuts down."""
    return build(None)
