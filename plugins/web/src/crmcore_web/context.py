"""The API key or signed-in user of the request being handled, for the ``crm_actor`` hook
(their role applies)."""

from __future__ import annotations

import contextvars

import attrs


@attrs.frozen
class KeyActor:
    """Who the current request acts as, and with which role (from the API key or the
    workspace user)."""

    actor: str
    role: str
    team: str | None = None  # a signed-in user's, used when the directory does not know them
    department: str | None = None


CURRENT: contextvars.ContextVar[KeyActor | None] = contextvars.ContextVar(
    "crmcore_web_current_key", default=None
)
