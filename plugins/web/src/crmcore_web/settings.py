"""``[web]`` settings: body limit, the brake on failed authentications, key bookkeeping,
workspace sessions."""

from __future__ import annotations

import attrs

from crmcore.errors import ValidationError


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValidationError(f"must be greater than 0, got {value!r}", field=attribute.name)


@attrs.frozen
class WebSettings:
    """``[web]`` in crm.toml.

    - ``max_body_bytes``: a larger request body is refused with 413 before it is read whole.
    - ``max_failures`` failed authentications from one client address within
      ``failure_window_seconds`` make that address wait ``block_seconds`` (429, Retry-After).
    - ``last_used_every_seconds``: how often a key's ``last_used_at`` is written at most (a
      write per request would make every read a write).
    - ``max_page``: the largest ``limit`` a list endpoint accepts.
    - ``signin_failures_per_user``: failed sign-ins for one user name within
      ``failure_window_seconds`` that hold that name back for ``block_seconds`` (counted
      on the user's record, so shared by every worker; a failed sign-in also counts against
      the address, as a failed key does).
    - ``session_hours``: how long a workspace session lasts after signing in.
    """

    max_body_bytes: int = attrs.field(default=1 << 20, validator=_positive)
    max_failures: int = attrs.field(default=10, validator=_positive)
    failure_window_seconds: float = attrs.field(default=60.0, validator=_positive)
    block_seconds: float = attrs.field(default=60.0, validator=_positive)
    last_used_every_seconds: float = attrs.field(default=60.0, validator=_positive)
    max_page: int = attrs.field(default=500, validator=_positive)
    signin_failures_per_user: int = attrs.field(default=5, validator=_positive)
    session_hours: float = attrs.field(default=12.0, validator=_positive)
