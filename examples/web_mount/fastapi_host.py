"""A FastAPI application with the crmcore API mounted under ``/crm``.

The host owns the CRM: it opens it in its lifespan (with the ``web`` plugin loaded and
``[security] enforce = true``) and closes it at shutdown; ``create_app(crm)`` only serves it.
Run it with ``CRM_CONFIG=crm.toml uvicorn fastapi_host:app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from crmcore_web import create_app
from crmcore_web.app import open_for_api
from fastapi import FastAPI

from crmcore import CRM


def hello() -> dict[str, str]:
    """One of the host's own routes."""
    return {"hello": "from the host"}


def build(crm: CRM) -> FastAPI:
    """The host app over an open CRM: its own routes, and the CRM API at ``/crm``."""
    host = FastAPI(title="Shop back office")
    host.get("/hello")(hello)
    host.mount("/crm", create_app(crm))
    return host


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    crm = open_for_api(None)  # $CRM_CONFIG or ./crm.toml, the role policy enforced
    app.mount("/crm", create_app(crm))
    try:
        yield
    finally:
        crm.close()


app = FastAPI(title="Shop back office", lifespan=_lifespan)
app.get("/hello")(hello)
