"""Typed errors. The CLI maps each to one line and a non-zero exit code."""

from __future__ import annotations


class CrmError(Exception):
    """Base of every error crmcore raises on purpose."""

    exit_code = 1


class ValidationError(CrmError, ValueError):
    """Input that does not satisfy the schema or a business rule. Nothing was written."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message  # without the field (a message: translated where shown)


class ConfigError(CrmError):
    """Invalid configuration; the message names the key's full path."""

    exit_code = 2


class NotFoundError(CrmError, LookupError):
    """A record that does not exist (or no longer exists)."""

    exit_code = 3


class ConflictError(CrmError):
    """A stale version, or a write that would break a unique index."""

    exit_code = 4


class DuplicateKeyError(ConflictError):
    """A unique index (or record id) already holds this value."""


class TransientConflict(ConflictError):
    """A concurrent transaction collided with this one (MongoDB replica sets: both wrote the
    same document or index key, such as the audit trail's next entry) and this one was rolled
    back whole, so running the same operation again is safe. The core's API methods do that
    themselves (``crmcore.retry``); wrap your own multi-call transactions in ``retrying``."""


class PermissionDenied(CrmError, PermissionError):
    """The actor may not perform this action on this resource."""

    exit_code = 5


class StorageError(CrmError):
    """The storage backend failed or found damaged data."""

    exit_code = 6


class PluginError(CrmError):
    """A plugin failed to load or raised while handling a hook."""

    exit_code = 7

    def __init__(self, plugin: str, message: str) -> None:
        super().__init__(f"plugin {plugin!r}: {message}")
        self.plugin = plugin
