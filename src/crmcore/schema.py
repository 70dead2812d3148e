"""Field helpers shared by the core entities and plugin record types.

A field declared with ``personal=True`` holds personal data: it is masked in logs and audit diffs,
included in a customer's export and erased by ``forget``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import attrs

from crmcore.clock import ensure_aware
from crmcore.errors import ValidationError
from crmcore.text import check_encodable, check_free_text, check_name

PERSONAL = "crmcore.personal"


def field(*, personal: bool = False, **kwargs: Any) -> Any:
    """``attrs.field`` that can mark the field as personal data."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    if personal:
        metadata[PERSONAL] = True
    return attrs.field(metadata=metadata, **kwargs)


def str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """Attrs converter: any iterable of strings as a tuple (typed, so mypy checks callers:
    ``converter=tuple`` leaves the element type unknown)."""
    return tuple(value)


def personal_fields(cls: type) -> tuple[str, ...]:
    """Names of the fields of attrs class ``cls`` declared personal."""
    return tuple(a.name for a in attrs.fields(cls) if a.metadata.get(PERSONAL))


# -- validators that raise ValidationError naming the field ---------------------------------


# Text rules (``crmcore.text``, ``docs/text.md``): free text refuses lone surrogates and control
# characters other than tab and line breaks; names are one line without bidi controls.


def non_empty(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """Free text that must not be blank."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must not be empty", field=attribute.name)
    check_free_text(value, attribute.name)


def optional_text(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """Free text, or None."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(f"expected text, got {type(value).__name__}", field=attribute.name)
    check_free_text(value, attribute.name)


def free_text(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """Free text, possibly empty."""
    if not isinstance(value, str):
        raise ValidationError(f"expected text, got {type(value).__name__}", field=attribute.name)
    check_free_text(value, attribute.name)


def name_text(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A one-line name that must not be blank (see ``crmcore.text``)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("must not be empty", field=attribute.name)
    check_name(value, attribute.name)


def optional_name(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """A one-line name, or None."""
    if value is None:
        return
    if not isinstance(value, str):
        raise ValidationError(f"expected text, got {type(value).__name__}", field=attribute.name)
    check_name(value, attribute.name)


def encodable(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    """Any value whose text (at any depth, keys included) UTF-8 can encode."""
    check_encodable(value, attribute.name)


def non_negative(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"expected a number, got {value!r}", field=attribute.name)
    if value < 0:
        raise ValidationError(f"must not be negative, got {value}", field=attribute.name)


def in_range(low: int, high: int) -> Callable[[object, attrs.Attribute, object], None]:
    def check(_inst: object, attribute: attrs.Attribute, value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValidationError(
                f"expected a whole number from {low} to {high}, got {value!r}", field=attribute.name
            )

    return check


def enum_converter(
    enum_type: type[enum.Enum], name: str, *, optional: bool = False
) -> Callable[[Any], Any]:
    """Attrs converter: accept a member of ``enum_type`` or its value; else name allowed ones."""

    def convert(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, enum_type):
            return value
        try:
            return enum_type(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in enum_type)
            raise ValidationError(
                f"unknown value {value!r} (allowed: {allowed})", field=name
            ) from None

    return convert


def to_utc(value: Any, name: str) -> datetime:
    """``value`` (an aware datetime) in UTC, else ``ValidationError`` naming field ``name``.
    For a typed attrs converter: ``def _due_at(value: datetime) -> datetime: return
    to_utc(value, "due_at")`` (mypy checks named converters, not ``utc_converter(...)``)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"expected a date and time, got {value!r}", field=name)
    try:
        return ensure_aware(value)
    except ValueError as exc:
        raise ValidationError(str(exc), field=name) from None


def to_utc_or_none(value: Any, name: str) -> datetime | None:
    """``to_utc``, letting None through."""
    return None if value is None else to_utc(value, name)


def utc_converter(name: str, *, optional: bool = False) -> Callable[[Any], Any]:
    """Attrs converter: require an aware datetime and store it in UTC."""

    def convert(value: Any) -> datetime | None:
        return to_utc_or_none(value, name) if optional else to_utc(value, name)

    return convert
