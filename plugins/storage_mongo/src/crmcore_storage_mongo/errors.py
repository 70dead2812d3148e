"""pymongo's exceptions as crmcore's typed errors.

Messages never quote document values: a duplicate-key error from MongoDB carries the
duplicated value (a phone number, an e-mail address), so only the index's fields are named.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from bson.errors import BSONError, InvalidDocument
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    ExecutionTimeout,
    InvalidName,
    OperationFailure,
    PyMongoError,
    WriteConcernError,
    WriteError,
)
from pymongo.errors import (
    DuplicateKeyError as MongoDuplicateKeyError,
)

from crmcore.errors import (
    CrmError,
    DuplicateKeyError,
    StorageError,
    TransientConflict,
    ValidationError,
)

DUPLICATE_KEY_CODES = frozenset({11000, 11001, 12582})
VALIDATION_FAILED = 121
TRANSIENT = "TransientTransactionError"


def duplicate_message(
    collection: str,
    details: Mapping[str, Any] | None,
    index_fields: Mapping[str, tuple[str, ...]] | None = None,
) -> str:
    """Which unique key a duplicate hit, by field names only."""
    details = details or {}
    pattern = details.get("keyPattern")
    fields: tuple[str, ...] | None = tuple(pattern) if isinstance(pattern, Mapping) else None
    if fields is None and index_fields:
        message = str(details.get("errmsg", ""))
        for name, fs in index_fields.items():
            if f"index: {name} " in message:
                fields = fs
    if fields == ("_id",):
        return f"{collection}: a record with this id already exists"
    if fields:
        shown = ", ".join("id" if f == "_id" else f for f in fields)
        return f"{collection}: another record already has this value of ({shown})"
    return f"{collection}: a unique index already holds this value"


def validation_message(collection: str, details: Mapping[str, Any] | None) -> str:
    """A schema-validator refusal, naming the properties MongoDB reported (not their values)."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key in ("propertyName", "missingProperties"):
                value = node.get(key)
                if isinstance(value, str):
                    names.append(value)
                elif isinstance(value, list):
                    names.extend(str(v) for v in value)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk((details or {}).get("errInfo"))
    where = f" ({', '.join(dict.fromkeys(names))})" if names else ""
    return f"{collection}: refused by the collection's schema validator{where}"


@contextlib.contextmanager
def mapped(
    collection: str, action: str, index_fields: Mapping[str, tuple[str, ...]] | None = None
) -> Iterator[None]:
    """Run a pymongo call; turn what it raises into the matching crmcore error."""
    try:
        yield
    except (PyMongoError, BSONError, OverflowError, UnicodeEncodeError) as exc:
        raise as_crm_error(exc, collection, action, index_fields) from exc


def as_crm_error(
    exc: BaseException,
    collection: str,
    action: str,
    index_fields: Mapping[str, tuple[str, ...]] | None = None,
) -> CrmError:
    """The crmcore error for an exception raised by pymongo or bson."""
    if isinstance(exc, MongoDuplicateKeyError) or (
        isinstance(exc, OperationFailure) and exc.code in DUPLICATE_KEY_CODES
    ):
        return DuplicateKeyError(duplicate_message(collection, exc.details, index_fields))
    if isinstance(exc, WriteError) and exc.code == VALIDATION_FAILED:
        return ValidationError(validation_message(collection, exc.details))
    if isinstance(
        exc, InvalidDocument | BSONError | OverflowError | UnicodeEncodeError | DocumentTooLarge
    ):
        return ValidationError(
            f"{collection}: the document cannot be stored in MongoDB: {_first_line(exc)}"
        )
    if isinstance(exc, InvalidName):
        return ValidationError(f"{collection!r}: not a valid MongoDB name: {_first_line(exc)}")
    if isinstance(exc, PyMongoError) and exc.has_error_label(TRANSIENT):
        return TransientConflict(
            f"{collection}: a concurrent transaction changed the same records; retry the operation"
        )
    if isinstance(exc, WriteConcernError):
        return StorageError(
            f"{collection}: {action} was not confirmed by the write concern in "
            f"time (it may or may not be applied): {_first_line(exc)}"
        )
    if isinstance(exc, ConnectionFailure):
        return StorageError(
            f"{collection}: MongoDB is unreachable during {action}: {_first_line(exc)}"
        )
    if isinstance(exc, ExecutionTimeout):
        return StorageError(f"{collection}: {action} took longer than the server allows")
    if isinstance(exc, PyMongoError):
        return StorageError(
            f"{collection}: {action} failed: {type(exc).__name__}: {_first_line(exc)}"
        )
    return StorageError(f"{collection}: {action} failed: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
