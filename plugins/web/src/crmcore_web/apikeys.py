"""API keys: one per client, acting as one actor with one role; stored as scrypt hashes.

A key reads ``crm.<key id>.<secret>``. The id finds the record; the secret is checked against
its scrypt hash with a constant-time comparison. The key itself is shown once, when it is
created, and never stored, logged or shown again.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import attrs

from crmcore.app import CRM
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.schema import to_utc, to_utc_or_none
from crmcore.security import Resource, Role

KEYS = "web.apikeys"
PREFIX = "crm"
# scrypt cost: about 16 MiB and some tens of milliseconds per check; a verified key is then
# remembered in memory (by a digest of the whole key) so requests do not pay it again.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}
KEY_ROLES = tuple(r.value for r in Role if r is not Role.SYSTEM)


# Named converters (mypy checks their types), one per field: its name is in the error.
def _created_at(value: datetime) -> datetime:
    return to_utc(value, "created_at")


def _last_used_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "last_used_at")


def _revoked_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "revoked_at")


@attrs.frozen
class ApiKey:
    """A stored API key (never the key itself: its salted scrypt hash)."""

    id: str
    actor: str
    role: str
    salt: str
    hash: str
    created_at: datetime = attrs.field(converter=_created_at)
    created_by: str
    label: str = ""
    last_used_at: datetime | None = attrs.field(default=None, converter=_last_used_at)
    revoked_at: datetime | None = attrs.field(default=None, converter=_revoked_at)
    revoked_by: str | None = None
    version: int = 0

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@attrs.frozen
class KeyInfo:
    """What ``crm apikey list`` shows of a key."""

    id: str
    actor: str
    role: str
    label: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(secret: str, salt: bytes) -> str:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, **SCRYPT).hex()


def _split(key: str) -> tuple[str, str] | None:
    parts = key.split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


_DUMMY_SALT = secrets.token_bytes(16)


class Keyring:
    """Create, list, revoke and check the API keys of one CRM."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._records = crm.records(KEYS, ApiKey)
        self._verified: dict[bytes, str] = {}  # digest of a whole key -> key id
        self._lock = threading.Lock()

    # -- administration ----------------------------------------------------------------------

    def create(
        self, owner: str, *, actor: str, role: str | None = None, label: str = ""
    ) -> tuple[ApiKey, str]:
        """A new key for ``owner``: ``(record, key)``. The key is returned only here."""
        owner = owner.strip()
        if not owner:
            raise ValidationError("the actor must not be empty", field="actor")
        security = self._crm.config.security
        if any(fnmatch.fnmatchcase(owner, p) for p in security.system_actors):
            raise ValidationError(
                f"{owner!r} is a system actor ([security] system_actors); "
                "API keys act for people and applications",
                field="actor",
            )
        if role is None:
            known = self._crm.actor(owner)
            if known is None:
                raise ValidationError(
                    f"{owner!r} is not a known actor; pass --role ({', '.join(KEY_ROLES)})",
                    field="role",
                )
            role = known.role.value
        if role not in KEY_ROLES:
            raise ValidationError(
                f"unknown role {role!r} (allowed: {', '.join(KEY_ROLES)})", field="role"
            )
        self._crm.authorize(actor, "apikey.create", Resource("apikey", owner=owner))
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ApiKey(
            id=self._crm.new_id("key_"),
            actor=owner,
            role=role,
            salt=salt.hex(),
            hash=_hash(secret, salt),
            created_at=self._crm.now(),
            created_by=actor,
            label=label,
        )
        with self._crm.transaction(actor):
            stored = self._records.insert(record)
        return stored, f"{PREFIX}.{stored.id}.{secret}"

    def list(self, *, actor: str, include_revoked: bool = False) -> list[KeyInfo]:
        """Keys (active ones unless ``include_revoked``), oldest first, without secrets; under
        enforced permissions, those of the actors ``actor`` may see (an agent: their own)."""
        self._crm.authorize(actor, "apikey.read", Resource("apikey", owner=actor))
        query = self._crm.readable_filter(
            actor, {} if include_revoked else {"revoked_at": None}, owner_field="actor"
        )
        return [
            KeyInfo(
                k.id,
                k.actor,
                k.role,
                k.label,
                k.created_at,
                k.created_by,
                k.last_used_at,
                k.revoked_at,
            )
            for k in self._records.find(query, sort=[("id", 1)])
        ]

    def revoke(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke a key at once (every worker checks the record on every request)."""
        key = self._records.get(key_id)
        self._crm.authorize(actor, "apikey.revoke", Resource("apikey", key.id, key.actor))
        if not key.active:
            return key
        with self._crm.transaction(actor):
            return self._records.update(key, revoked_at=self._crm.now(), revoked_by=actor)

    # -- checking ----------------------------------------------------------------------------

    def verify(self, key: str) -> ApiKey | None:
        """The active key record that ``key`` opens, or None (unknown, wrong or revoked)."""
        digest = hashlib.sha256(key.encode("utf-8", "replace")).digest()
        with self._lock:
            key_id = self._verified.get(digest)
        if key_id is not None:
            record = self._get(key_id)
            return record if record is not None and record.active else None
        parts = _split(key)
        record = self._get(parts[0]) if parts else None
        if record is None or parts is None:
            _hash(key, _DUMMY_SALT)  # the same work whether the id exists or not
            return None
        if not hmac.compare_digest(_hash(parts[1], bytes.fromhex(record.salt)), record.hash):
            return None
        if not record.active:
            return None
        with self._lock:
            if len(self._verified) >= 10_000:
                self._verified.clear()
            self._verified[digest] = record.id
        return record

    def _get(self, key_id: str) -> ApiKey | None:
        try:
            return self._records.get(key_id)
        except NotFoundError:
            return None

    def touch(self, record: ApiKey, every: timedelta) -> None:
        """Note that ``record`` was used now, at most once per ``every``."""
        now = self._crm.now()
        if record.last_used_at is not None and now - record.last_used_at < every:
            return
        try:
            with self._crm.transaction(record.actor):
                self._records.update(record, last_used_at=now)
        except ConflictError:
            pass  # another request or worker noted it a moment ago


class Brake:
    """Slows down guessing: too many failed authentications from one client address within a
    window block that address for a while. Kept in memory, per process (each worker brakes on
    its own, so ``workers * max_failures`` is the real allowance)."""

    def __init__(
        self,
        max_failures: int,
        window: float,
        block: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.block = block
        self._now = now
        self._failures: dict[str, list[float]] = {}
        self._blocked: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds ``client`` must still wait, or 0."""
        with self._lock:
            until = self._blocked.get(client)
            if until is None:
                return 0.0
            left = until - self._now()
            if left <= 0:
                del self._blocked[client]
                return 0.0
            return left

    def failed(self, client: str) -> None:
        now = self._now()
        with self._lock:
            recent = [t for t in self._failures.get(client, ()) if now - t < self.window]
            recent.append(now)
            if len(recent) >= self.max_failures:
                self._blocked[client] = now + self.block
                self._failures.pop(client, None)
            else:
                self._failures[client] = recent
            if len(self._failures) > 100_000:  # bounded: forget the quiet ones
                self._failures = {
                    c: ts for c, ts in self._failures.items() if now - ts[-1] < self.window
                }
