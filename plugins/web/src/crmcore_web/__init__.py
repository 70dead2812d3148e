"""crmcore-web: the JSON HTTP API of crmcore (Starlette on uvicorn).

``create_app(config_or_crm)`` builds the ASGI application; ``crm serve`` runs it;
``crm apikey create|list|revoke`` manages the keys clients authenticate with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore_web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``create_app`` imported on first use: Starlette is not loaded by every ``crm`` start."""
    if name == "create_app":
        from crmcore_web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
