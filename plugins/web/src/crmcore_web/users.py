"""Workspace users: a name (the actor they act as), a role, and an argon2 password hash.

Users live in ``web.users``. Signing in as a user acts as the actor of that name with the
user's role (team and department from the directory or the user record), through the same
``crm_actor`` hook API keys use, so permissions and the audit trail name the person.
Managing users is an administrative action (``user.write``, ``user.read``).

Failed sign-ins for a user are counted on the user's record, so every worker process of
``crm serve --workers N`` sees the same count and the same hold (``locked_until``); a right
password clears the count.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.app import CRM
from crmcore.errors import ConflictError, NotFoundError, ValidationError
from crmcore.schema import to_utc, to_utc_or_none
from crmcore.security import Resource, Role, check_actor_name, is_system_actor

if TYPE_CHECKING:
    from argon2 import PasswordHasher

USERS = "web.users"
USER_ROLES = tuple(r.value for r in Role if r is not Role.SYSTEM)
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


def _created_at(value: datetime) -> datetime:
    return to_utc(value, "created_at")


def _disabled_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "disabled_at")


def _locked_until(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "locked_until")


def _failed_signins(values: Any) -> tuple[datetime, ...]:
    return tuple(to_utc(v, "failed_signins") for v in values or ())


@attrs.frozen
class User:
    """A person who signs in to the workspace (never the password: its argon2 hash)."""

    id: str
    name: str
    role: str
    password_hash: str
    created_at: datetime = attrs.field(converter=_created_at)
    created_by: str
    team: str | None = None
    department: str | None = None
    locale: str | None = None  # the language they chose (None: their browser's)
    disabled_at: datetime | None = attrs.field(default=None, converter=_disabled_at)
    disabled_by: str | None = None
    # failed sign-ins within the window, and until when signing in is held back (shared by
    # every worker: they are on the record)
    failed_signins: tuple[datetime, ...] = attrs.field(default=(), converter=_failed_signins)
    locked_until: datetime | None = attrs.field(default=None, converter=_locked_until)
    version: int = 0

    @property
    def active(self) -> bool:
        return self.disabled_at is None


_hasher_lock = threading.Lock()
_hasher: PasswordHasher | None = None


def hasher() -> PasswordHasher:
    """argon2id with the library's (RFC 9106 low-memory) parameters."""
    global _hasher
    with _hasher_lock:
        if _hasher is None:
            from argon2 import PasswordHasher

            _hasher = PasswordHasher()
        return _hasher


def check_password(password: str) -> str:
    """``password`` if it is acceptable, else a ``ValidationError`` saying what to fix."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(
            f"the password must be at least {MIN_PASSWORD} characters", field="password"
        )
    if len(password) > MAX_PASSWORD:
        raise ValidationError(
            f"the password must be at most {MAX_PASSWORD} characters", field="password"
        )
    if password != password.strip():
        raise ValidationError("the password must not start or end with spaces", field="password")
    try:
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("the password is not valid text", field="password") from None
    return password


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hasher().hash("not a password of anyone"))
    return _DUMMY_HASH[0]


class Users:
    """Add, list, disable and check the workspace's users of one CRM."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._records = crm.records(USERS, User)

    def add(
        self,
        name: str,
        password: str,
        *,
        actor: str,
        role: str | None = None,
        team: str | None = None,
        department: str | None = None,
    ) -> User:
        """A new user acting as ``name``; ``role`` defaults to the directory's for ``name``."""
        name = check_actor_name(name, "the user name")
        if is_system_actor(self._crm.config.security, name):
            raise ValidationError(
                f"{name!r} is a system actor ([security] system_actors); users are people",
                field="name",
            )
        known = self._crm.actor(name)
        if role is None:
            if known is None:
                raise ValidationError(
                    f"{name!r} is not a known actor; pass --role ({', '.join(USER_ROLES)})",
                    field="role",
                )
            role = known.role.value
        if role not in USER_ROLES:
            raise ValidationError(
                f"unknown role {role!r} (allowed: {', '.join(USER_ROLES)})", field="role"
            )
        check_password(password)
        self._crm.authorize(actor, "user.write", Resource("user", owner=name))
        if self.find(name) is not None:
            raise ValidationError(f"a user named {name!r} exists already", field="name")
        record = User(
            id=self._crm.new_id("usr_"),
            name=name,
            role=role,
            password_hash=hasher().hash(password),
            created_at=self._crm.now(),
            created_by=actor,
            team=team or (known.team if known else None),
            department=department or (known.department if known else None),
        )
        with self._crm.transaction(actor):
            return self._records.insert(record)

    def find(self, name: str) -> User | None:
        """The user called ``name`` (active or not), or None."""
        return self._records.find_one({"name": name})

    def get(self, name: str) -> User:
        user = self.find(name)
        if user is None:
            raise NotFoundError(f"no user named {name!r} (crm user list)")
        return user

    def list(self, *, actor: str, include_disabled: bool = False) -> list[User]:
        """Users by name (active ones unless ``include_disabled``)."""
        self._crm.authorize(actor, "user.read", Resource("user"))
        query = {} if include_disabled else {"disabled_at": None}
        return self._records.find(query, sort=[("name", 1)])

    def disable(self, name: str, *, actor: str) -> User:
        """Disable ``name`` at once: their sessions end, signing in is refused."""
        user = self.get(name)
        self._crm.authorize(actor, "user.write", Resource("user", owner=name))
        from crmcore_web.sessions import Sessions

        with self._crm.transaction(actor):
            Sessions(self._crm).end_all(name)
            if not user.active:
                return user
            return self._records.update(user, disabled_at=self._crm.now(), disabled_by=actor)

    def set_password(self, name: str, password: str, *, actor: str) -> User:
        """A new password for ``name`` (their sessions end; failed sign-ins counted against
        the name are forgotten, so a held-back user can sign in with it at once)."""
        user = self.get(name)
        check_password(password)
        self._crm.authorize(actor, "user.write", Resource("user", owner=name))
        from crmcore_web.sessions import Sessions

        with self._crm.transaction(actor):
            Sessions(self._crm).end_all(name)
            return self._records.update(
                user, password_hash=hasher().hash(password), failed_signins=(), locked_until=None
            )

    def set_locale(self, user: User, locale: str | None) -> User:
        """Remember the language ``user`` chose (their own setting: no permission asked)."""
        if user.locale == locale:
            return user
        with self._crm.transaction(user.name):
            return self._records.update(user, locale=locale)

    def verify(self, name: str, password: str) -> User | None:
        """The active user ``name`` if ``password`` is theirs, else None. Takes the same
        time whether the user exists or not."""
        from argon2.exceptions import InvalidHashError, VerificationError

        user = self.find(name) if name and len(name) <= 200 else None
        target = user.password_hash if user is not None else _dummy_hash()
        try:
            hasher().verify(target, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if user is None or not user.active:
            return None
        return user

    def held_until(self, name: str) -> datetime | None:
        """Until when sign-ins as ``name`` are held back after repeated failures, or None."""
        user = self.find(name) if name and len(name) <= 200 else None
        if user is None or user.locked_until is None:
            return None
        return user.locked_until if user.locked_until > self._crm.now() else None

    def signin_failed(self, name: str, *, limit: int, window: timedelta, hold: timedelta) -> None:
        """Count a failed sign-in as ``name`` (nothing for a name no user has): the
        ``limit``-th within ``window`` holds the name back for ``hold``. Written by the
        system actor (the person trying is not known)."""
        for _attempt in range(3):  # another worker may count a failure at the same moment
            user = self.find(name) if name and len(name) <= 200 else None
            if user is None:
                return
            now = self._crm.now()
            recent = (*(t for t in user.failed_signins if now - t < window), now)
            try:
                with self._crm.transaction(SYSTEM):
                    if len(recent) >= limit:
                        self._records.update(user, failed_signins=(), locked_until=now + hold)
                    else:
                        self._records.update(user, failed_signins=recent)
                return
            except ConflictError:
                continue

    def signin_succeeded(self, user: User) -> None:
        """A right password: forget the failures counted for ``user``."""
        if not user.failed_signins and user.locked_until is None:
            return
        try:
            with self._crm.transaction(SYSTEM):
                self._records.update(user, failed_signins=(), locked_until=None)
        except ConflictError:
            pass  # counted again meanwhile by another worker: the next success clears it


SYSTEM = "system"
DEMO_USER = "ann"


def demo_user(crm: CRM) -> tuple[str, str]:
    """For ``crm demo``: the user ``ann`` (a rep of team north, as the demo's staff are) with a
    fresh random password; ``(name, password)``."""
    import secrets

    password = secrets.token_urlsafe(9)
    users = Users(crm)
    known = crm.actor(DEMO_USER)
    if users.find(DEMO_USER) is None:
        users.add(
            DEMO_USER,
            password,
            actor="system",
            role=None if known is not None else "agent",
            team=None if known is not None else "north",
        )
    else:
        users.set_password(DEMO_USER, password, actor="system")
    return DEMO_USER, password
