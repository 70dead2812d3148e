"""crmcore-web: the JSON HTTP API of crmcore (Starlette on uvicorn).

``create_app(config_or_crm)`` builds the ASGI application; ``crm serve`` runs it;
``crm apikey create|list|revoke`` manages the keys clients authenticate with.
"""

from crmcore_web.app import create_app

__all__ = ["create_app"]
