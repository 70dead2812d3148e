"""The API key of the request being handled, for the ``crm_actor`` hook (its role applies)."""

from __future__ import annotations

import contextvars

import attrs


@attrs.frozen
class KeyActor:
    """Who the current request acts as, and with which role (from the API key)."""

    actor: str
    role: str


CURRENT: contextvars.ContextVar[KeyActor | None] = contextvars.ContextVar(
    "crmcore_web_current_key", default=None)
