"""The plugin's logger, fetched at each use.

``crmcore.logs.get_logger`` binds at once, which freezes structlog's configuration of that
moment; a module-level logger made at import (before the CLI configures logging) would ignore
``--log-level`` and write to stdout. Fetching it when logging keeps the CLI's configuration
(level, stderr, the personal-data masking processor).
"""

from __future__ import annotations

from typing import Any

from crmcore.logs import get_logger


def logger() -> Any:
    """A structlog logger bound with ``plugin="loyalty"`` under the current configuration."""
    return get_logger("loyalty")
