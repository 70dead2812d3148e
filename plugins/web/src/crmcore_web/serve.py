"""Running the API under uvicorn: one process, or a supervisor and ``workers`` processes.

Each worker process opens its own CRM on the shared store (the embedded store takes a file
lock per write and re-reads what other processes appended; MongoDB is shared by nature), so an
acknowledged write is on the store before the answer leaves, and a worker that dies loses
nothing acknowledged; uvicorn's supervisor starts a replacement.
"""

from __future__ import annotations

import os
import sys
import threading

import uvicorn
from starlette.applications import Starlette

from crmcore.logs import configure_logging
from crmcore_web.app import create_app

CONFIG_ENV = "CRM_CONFIG"
LOG_ENV = "CRM_SERVE_LOG"  # "level format", handed to worker processes


class WholeLines:
    """Standard error for a worker process: each log line leaves in one ``write`` call, so
    the lines of several workers sharing stderr never interleave."""

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending.append(text)
            if text.endswith("\n"):
                self._emit()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._emit()

    def _emit(self) -> None:
        if self._pending:
            data = "".join(self._pending).encode("utf-8", "replace")
            self._pending = []
            os.write(sys.stderr.fileno(), data)


def app_from_env() -> Starlette:
    """The app a worker process serves: the configuration named by ``$CRM_CONFIG`` (else
    ``./crm.toml``), plugins as ``$CRMCORE_PLUGINS`` or ``[plugins] enabled`` choose, logging
    (to stderr, personal data masked) as ``crm serve`` was told."""
    level, _, fmt = os.environ.get(LOG_ENV, "warning console").partition(" ")
    configure_logging(level or "warning", fmt or "console", stream=WholeLines())
    return create_app(os.environ.get(CONFIG_ENV) or None)


def run(
    config_path: str | None,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str = "warning",
    log_format: str = "console",
) -> None:
    """Serve until SIGINT or SIGTERM (requests in flight finish, then each CRM closes)."""
    if config_path:
        os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    # worker processes start afresh: they configure logging from this, as the CLI did here
    os.environ[LOG_ENV] = f"{log_level} {log_format}"
    where = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    print(
        f"crm serve: listening on {where} with {workers} worker(s); "
        f"OpenAPI at {where}/api/openapi.json",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        "crmcore_web.serve:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
