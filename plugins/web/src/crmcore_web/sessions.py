"""Workspace sessions, kept server-side in ``web.sessions``.

The browser holds a random token (cookie ``crm_session``: HttpOnly, SameSite=Lax, Secure over
TLS). The store holds only a SHA-256 of it, so a copy of the store opens no session. The form
token (``csrf_token``) is derived from the token as well, so it too is never stored. Signing
out, disabling a user or changing their password deletes the records: the session ends at
once, in every worker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import attrs

from crmcore.app import CRM
from crmcore.errors import NotFoundError
from crmcore.schema import to_utc

SESSIONS = "web.sessions"
COOKIE = "crm_session"
PRE_COOKIE = "crm_pre"  # before signing in: the sign-in form's token (double submit)


def _created_at(value: datetime) -> datetime:
    return to_utc(value, "created_at")


def _expires_at(value: datetime) -> datetime:
    return to_utc(value, "expires_at")


@attrs.frozen
class Session:
    """A signed-in browser: whose, since when, until when (never the token itself)."""

    id: str  # SHA-256 of the token, hex
    user: str
    created_at: datetime = attrs.field(converter=_created_at)
    expires_at: datetime = attrs.field(converter=_expires_at)
    version: int = 0


def session_id(token: str) -> str:
    return hashlib.sha256(b"session:" + token.encode("utf-8", "replace")).hexdigest()


def csrf_for(token: str) -> str:
    """The form token of the session (or pre-sign-in cookie) ``token``."""
    return hashlib.sha256(b"csrf:" + token.encode("utf-8", "replace")).hexdigest()[:43]


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two tokens (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8", "replace"), b.encode("utf-8", "replace"))


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Sessions:
    """Start, find and end the sessions of one CRM."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._records = crm.records(SESSIONS, Session)

    def start(self, user: str, lifetime: timedelta) -> str:
        """A new session for ``user`` (their expired ones are deleted meanwhile); returns the
        token for the cookie."""
        token = new_token()
        now = self._crm.now()
        with self._crm.transaction(user):
            for old in self._records.find({"user": user}):
                if old.expires_at <= now:
                    self._records.delete(old)
            self._records.insert(Session(session_id(token), user, now, now + lifetime))
        return token

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token``, or None (unknown, ended or expired)."""
        if not token or len(token) > 200:
            return None
        try:
            record = self._records.get(session_id(token))
        except NotFoundError:
            return None
        if record.expires_at <= self._crm.now():
            return None
        return record

    def end(self, token: str | None) -> None:
        """End the session of ``token`` (signing out); nothing if there is none."""
        record = self.find(token)
        if record is None:
            return
        try:
            with self._crm.transaction(record.user):
                self._records.delete(record)
        except NotFoundError:
            pass

    def end_all(self, user: str) -> int:
        """End every session of ``user`` (inside the caller's transaction)."""
        ended = 0
        for record in self._records.find({"user": user}):
            self._records.delete(record)
            ended += 1
        return ended
