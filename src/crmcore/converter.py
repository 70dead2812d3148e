"""The one cattrs converter that turns entities and plugin records into JSON documents and back.

Datetimes are stored as fixed-width UTC ISO 8601 strings (``2026-11-23T18:57:01.000000Z``), so
string order is time order on every backend; dates as ``YYYY-MM-DD``; enums as their value.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import cattrs

from crmcore.clock import ensure_aware
from crmcore.errors import StorageError

T = TypeVar("T")

_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(value: datetime) -> str:
    """A datetime as the stored string form (UTC, fixed width, sortable)."""
    return ensure_aware(value).strftime(_ISO)


def parse_iso(value: str) -> datetime:
    """The inverse of ``iso``; also accepts any ISO 8601 string with an offset."""
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"stored datetime {value!r} has no time zone")
    return parsed.astimezone(UTC)


def storable(value: Any) -> Any:
    """Turn a query value into its stored form (datetimes to ISO strings, enums to values)."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    return value


def _make() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_unstructure_hook(datetime, iso)
    conv.register_structure_hook(datetime, lambda v, _t: v if isinstance(v, datetime)
                                 else parse_iso(v))
    conv.register_unstructure_hook(date, lambda d: d.isoformat())
    # Every enum is stored as its plain value. StrEnum and IntEnum are registered by name so
    # they win over the str/int pass-through that comes earlier in their MRO.
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum, enum.IntFlag):
        conv.register_unstructure_hook(base, lambda v: v.value)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda v: v.value)
    conv.register_structure_hook(date, lambda v, _t: v if isinstance(v, date)
                                 else date.fromisoformat(v))
    return conv


converter = _make()


def to_doc(obj: Any) -> dict[str, Any]:
    """Unstructure an attrs record into a JSON-compatible document."""
    return converter.unstructure(obj)


def from_doc(cls: type[T], doc: dict[str, Any]) -> T:
    """Structure a stored document into ``cls``; damaged data becomes a ``StorageError``."""
    try:
        return converter.structure(doc, cls)
    except Exception as exc:  # cattrs raises several exception types
        raise StorageError(f"stored {cls.__name__} {doc.get('id')!r} does not load: "
                           f"{_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)
