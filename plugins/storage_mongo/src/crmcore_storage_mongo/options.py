"""``[storage.options]`` for the MongoDB backend, and the URI helpers around it.

Precedence, strongest first: options written in the URI's query string (the URI is what
``CRM_STORAGE_LOCATION`` replaces, so an environment can tune its own connection), then
``[storage.options]``, then the defaults below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import attrs

from crmcore.errors import ConfigError, ValidationError

DEFAULT_DATABASE = "crm"
SCHEMES = ("mongodb://", "mongodb+srv://")
MOCK_SCHEME = "mongomock://"  # the in-process imitation (optional extra ``[mock]``)

# Tenant names join the database name after "__"; no "_" inside them keeps the join unambiguous.
_TENANT = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_DATABASE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_WRITE_CONCERN = re.compile(r"^(majority|[1-9][0-9]?)$")


def _between(low: int, high: int, unit: str = "") -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: int) -> None:
        if not low <= value <= high:
            raise ValidationError(
                f"expected {unit or 'a number'} from {low} to {high}, got {value}",
                field=attribute.name,
            )

    return check


def _ms(low: int, high: int) -> Any:
    return _between(low, high, "milliseconds")


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and not pattern.match(value):
            raise ValidationError(f"{value!r} is not {what}", field=attribute.name)

    return check


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValidationError(
                f"unknown value {value!r} (allowed: {', '.join(allowed)})", field=attribute.name
            )

    return check


def _database_name(inst: MongoOptions, attribute: attrs.Attribute, value: str | None) -> None:
    _matches(_DATABASE, "a database name (letters, digits, '_' and '-', at most 40)")(
        inst, attribute, value
    )
    if value is not None and "__" in value:
        raise ValidationError(
            "must not contain '__' (it separates the tenant)", field=attribute.name
        )


def _shard_keys(_inst: object, attribute: attrs.Attribute, value: dict[str, list[str]]) -> None:
    for name, fields in value.items():
        if (
            not fields
            or len(set(fields)) != len(fields)
            or any(not f or f.startswith("$") or f in ("_id", "id", "version") for f in fields)
        ):
            raise ValidationError(
                f"{name}: expected a list of distinct field names (not id or "
                f"version), got {fields!r}",
                field=attribute.name,
            )


@attrs.frozen
class MongoOptions:
    """``[storage.options]`` of ``backend = "mongodb"``; every field has a safe default."""

    # Database to use; None: the one named in the URI path, else "crm".
    database: str | None = attrs.field(default=None, validator=_database_name)
    # One client company of a multi-tenant deployment: its data lives in "<database>__<tenant>".
    tenant: str | None = attrs.field(
        default=None,
        validator=_matches(
            _TENANT, "a tenant name (lower-case letters, digits and '-', at most 32)"
        ),
    )
    server_selection_timeout_ms: int = attrs.field(default=5000, validator=_ms(50, 120_000))
    connect_timeout_ms: int = attrs.field(default=5000, validator=_ms(50, 120_000))
    socket_timeout_ms: int = attrs.field(default=60_000, validator=_ms(100, 3_600_000))
    # "majority" (default: a write survives the loss of the primary) or a number of members.
    write_concern: str = attrs.field(
        default="majority",
        validator=_matches(
            _WRITE_CONCERN, "'majority' or a number of members from 1 (0 would hide errors)"
        ),
    )
    wtimeout_ms: int = attrs.field(default=10_000, validator=_ms(100, 600_000))
    journal: bool = True
    retry_writes: bool = True
    max_pool_size: int = attrs.field(default=50, validator=_between(1, 10_000))
    # "auto": multi-document transactions where the server is a replica set or sharded cluster.
    transactions: str = attrs.field(default="auto", validator=_one_of("auto", "off"))
    # $jsonSchema validators from the record types, where the server enforces them.
    schema_validation: str = attrs.field(
        default="moderate", validator=_one_of("moderate", "strict", "off")
    )
    app_name: str = "crmcore"
    # Whose clock leases run on: "server" ($$NOW: skewed worker clocks cannot steal a live
    # lease), "caller" (the time the core passes), "auto": server time when the CRM runs on
    # the system clock, the caller's when it runs on an injected clock (a simulation or test:
    # one clock, no skew, and the server's time would not follow the simulated one).
    lease_clock: str = attrs.field(default="auto", validator=_one_of("auto", "server", "caller"))
    # Shard keys of sharded collections, e.g. {interactions = ["customer_id", "occurred_at"]}:
    # every single-document write names the document's full shard key (MongoDB before 7.1
    # requires it). On a sharded cluster the keys are also read from config.collections.
    shard_keys: dict[str, list[str]] = attrs.field(factory=dict, validator=_shard_keys)
    # Commands slower than this are logged as warnings ("slow operation"); 0 logs every one.
    slow_operation_ms: int = attrs.field(default=500, validator=_between(0, 3_600_000))

    def database_name(self, uri: str) -> str:
        """The database holding this store's collections (tenant included)."""
        base = self.database or uri_database(uri) or DEFAULT_DATABASE
        return f"{base}__{self.tenant}" if self.tenant else base

    def client_kwargs(self, uri: str) -> dict[str, Any]:
        """Keyword arguments for ``MongoClient``; options already in the URI are left to it."""
        given = uri_options(uri)
        wanted: dict[str, Any] = {
            "serverSelectionTimeoutMS": self.server_selection_timeout_ms,
            "connectTimeoutMS": self.connect_timeout_ms,
            "socketTimeoutMS": self.socket_timeout_ms,
            "w": int(self.write_concern) if self.write_concern.isdigit() else self.write_concern,
            "wTimeoutMS": self.wtimeout_ms,
            "journal": self.journal,
            "retryWrites": self.retry_writes,
            "maxPoolSize": self.max_pool_size,
            "appname": self.app_name,
        }
        return {k: v for k, v in wanted.items() if k.lower() not in given}


def check_uri(location: str | None) -> str:
    """The MongoDB URI from ``[storage] location``, or a ``ConfigError`` saying what to write."""
    if not location or not location.startswith((*SCHEMES, MOCK_SCHEME)):
        shown = "nothing" if not location else repr(redact(location))
        raise ConfigError(
            "storage.location: the mongodb backend needs a MongoDB URI such as "
            f"'mongodb://localhost:27017', or 'mongomock://' to try it without a "
            f"server (set [storage] location or CRM_STORAGE_LOCATION), got {shown}"
        )
    return location


def uri_options(uri: str) -> dict[str, str]:
    """Query-string options of a MongoDB URI, keys lower-cased (as MongoDB treats them)."""
    if uri.startswith(MOCK_SCHEME):
        return {}
    query = uri.split("?", 1)[1] if "?" in uri else ""
    return {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}


def uri_database(uri: str) -> str | None:
    """The database named in the URI's path (``mongodb://host/<db>``), if any."""
    if uri.startswith(MOCK_SCHEME):
        return None  # its path names a file
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    rest = rest.split("?", 1)[0]
    if "/" not in rest:
        return None
    name = unquote(rest.split("/", 1)[1])
    return name or None


def redact(uri: str) -> str:
    """The URI without credentials or query options (which may hold secrets), for humans."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return "<not a URI>"
    rest = rest.split("?", 1)[0]
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"


def hosts(uri: str) -> str:
    """The host list of a URI (``a:27017,b:27017``), for error messages."""
    try:
        return urlsplit(redact(uri)).netloc.replace("***@", "")
    except ValueError:
        return redact(uri)


def parse_options(options: Mapping[str, Any]) -> MongoOptions:
    """Validate ``[storage.options]``; errors name the full key path."""
    from crmcore.config import structure_section

    return structure_section(dict(options), MongoOptions, "storage.options")
