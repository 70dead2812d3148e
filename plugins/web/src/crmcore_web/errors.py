"""Errors of the HTTP layer itself (crmcore's typed errors cover the rest)."""

from __future__ import annotations

from crmcore.errors import CrmError


class HttpError(CrmError):
    """An answer other than crmcore's typed errors: ``status``, a ``type`` and a message."""

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.field = field
        self.headers = headers or {}
        #: the refusal as raised, when a message (``crmcore.i18n.msg``): the answer gives it in
        #: the reader's language (``?lang=`` or ``Accept-Language``), else in English
        self.said: str | None = None


class PreconditionRequired(HttpError):
    """A change that must name the version it read (``If-Match``) did not."""

    def __init__(self, what: str) -> None:
        super().__init__(
            428,
            "precondition_required",
            f"changing {what} needs an If-Match header with the version you read "
            "(the ETag of your GET)",
            field="If-Match",
        )
