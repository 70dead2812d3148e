"""Running the API under uvicorn: one process, or a supervisor and ``workers`` processes.

Each worker process opens its own CRM on the shared store (the embedded store takes a file
lock per write and re-reads what other processes appended; MongoDB is shared by nature), so an
acknowledged write is on the store before the answer leaves, and a worker that dies loses
nothing acknowledged; uvicorn's supervisor starts a replacement.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from starlette.applications import Starlette

from crmcore_web.app import create_app

CONFIG_ENV = "CRM_CONFIG"


def app_from_env() -> Starlette:
    """The app a worker process serves: the configuration named by ``$CRM_CONFIG`` (else
    ``./crm.toml``), plugins as ``$CRMCORE_PLUGINS`` or ``[plugins] enabled`` choose."""
    return create_app(os.environ.get(CONFIG_ENV) or None)


def run(config_path: str | None, *, host: str, port: int, workers: int) -> None:
    """Serve until SIGINT or SIGTERM (requests in flight finish, then each CRM closes)."""
    if config_path:
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    print(f"crm serve: listening on {where} with {workers} worker(s); "
          f"OpenAPI at {where}/api/openapi.json", file=sys.stderr, flush=True)
    uvicorn.run("crmcore_web.serve:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="warning", access_log=False, server_header=False,
                proxy_headers=False, timeout_graceful_shutdown=10)
