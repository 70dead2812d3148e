"""JSON request bodies structured into attrs classes: exact JSON types, unknown keys refused,
and the failing field named (``ValidationError(field=…)``, answered 422)."""

from __future__ import annotations

import enum
import re
import types
import typing
from collections import abc
from datetime import date, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from crmcore.converter import converter as store_converter
from crmcore.converter import parse_iso
from crmcore.errors import ValidationError

T = TypeVar("T")
_ATTRS_MESSAGE = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' must ")


def _text(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_json_type(value)}")
    return value


def _integer(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_json_type(value)}")
    return value


def _number(value: Any, _type: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_json_type(value)}")
    return float(value)


def _boolean(value: Any, _type: type) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_json_type(value)}")
    return value


def _datetime(value: Any, _type: type) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"expected a date and time as text, got {_json_type(value)}")
    try:
        return parse_iso(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date and time with an offset "
                         f"(2026-01-05T09:30:00+08:00 or …Z), got {value!r}") from None


def _date(value: Any, _type: type) -> date:
    if not isinstance(value, str):
        raise ValueError(f"expected a date as text, got {_json_type(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from None


def _enum(value: Any, type_: type[enum.Enum]) -> enum.Enum:
    try:
        return type_(value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in type_)
        raise ValueError(f"{value!r} is not one of {allowed}") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _make() -> cattrs.Converter:
    conv = store_converter.copy(forbid_extra_keys=True)
    conv.register_structure_hook(str, _text)
    conv.register_structure_hook(int, _integer)
    conv.register_structure_hook(float, _number)
    conv.register_structure_hook(bool, _boolean)
    conv.register_structure_hook(datetime, _datetime)
    conv.register_structure_hook(date, _date)
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), _enum)
    return conv


body_converter = _make()


def parse_body(cls: type[T], doc: Any) -> T:
    """``doc`` (parsed JSON) as an instance of the attrs class ``cls``; raises
    ``ValidationError`` naming the first failing field (``items[2].amount``)."""
    if not isinstance(doc, dict):
        raise ValidationError(f"the body must be a JSON object, not {_json_type(doc)}")
    _check_arrays(cls, doc, "")
    try:
        return body_converter.structure(doc, cls)
    except Exception as exc:  # cattrs raises groups of several exception types
        field, message = _first_error(exc, "")
        raise ValidationError(message, field=field or None) from None


_SEQUENCES = (list, tuple, set, frozenset, abc.Sequence, abc.Set, abc.MutableSequence)


def _check_arrays(tp: Any, value: Any, path: str) -> None:
    """Where the type is a list, the JSON must hold an array (cattrs would take the letters of
    a string as items); recursing into attrs classes, arrays and optional types."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is not None:
            for arm in typing.get_args(tp):
                if arm is not type(None):
                    _check_arrays(arm, value, path)
        return
    if origin in _SEQUENCES:
        if not isinstance(value, list):
            raise ValidationError(f"expected a list, got {_json_type(value)}", field=path)
        args = typing.get_args(tp)
        if args:
            for i, item in enumerate(value):
                _check_arrays(args[0], item, f"{path}[{i}]")
        return
    if isinstance(tp, type) and attrs.has(tp) and isinstance(value, dict):
        hints = typing.get_type_hints(tp)
        for field in attrs.fields(tp):
            if field.name in value:
                _check_arrays(hints.get(field.name), value[field.name], _join(path, field.name))


def _first_error(exc: BaseException, path: str) -> tuple[str, str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        field = _join(path, extra[0])
        return field, f"unknown field{'s' if len(extra) > 1 else ''}: {', '.join(extra)}"
    if isinstance(exc, cattrs.BaseValidationError):
        # attribute errors first: they name a field; a bare class-level error names none
        for sub in sorted(exc.exceptions, key=lambda e: not getattr(e, "__notes__", None)):
            step = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, cattrs.AttributeValidationNote):
                    step = _join(path, note.name)
                elif isinstance(note, cattrs.IterableValidationNote):
                    step = f"{path}[{note.index!r}]" if not isinstance(note.index, int) \
                        else f"{path}[{note.index}]"
            return _first_error(sub, step)
        return path, str(exc)
    if isinstance(exc, ValidationError):
        message = str(exc)
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2:]
        return (_join(path, exc.field) if exc.field and not path.endswith(exc.field)
                else path), message
    if isinstance(exc, KeyError):
        return path, "required field missing"
    if isinstance(exc, TypeError | ValueError):
        # attrs' own validators: TypeError(msg, attribute, …) or "'quantity' must be >= 1: 0"
        attribute = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(attribute, attrs.Attribute):
            return _join(path, attribute.name), str(exc.args[0])
        named = _ATTRS_MESSAGE.match(str(exc))
        if named:
            return _join(path, named.group(1)), str(exc)
        return path, str(exc) or "invalid value"
    return path, f"invalid value ({type(exc).__name__})"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
