"""``$jsonSchema`` validators generated from attrs record types.

The schema describes the document the core's converter writes (``crmcore.converter.to_doc``):
datetimes as fixed-width UTC ISO strings, dates as ``YYYY-MM-DD``, enums as their values,
tuples and lists as arrays. Fields without a default are required; unknown fields are allowed
(the core stores helper fields such as a task's ``open_key``, and plugins add fields over
time). A validator must never refuse what the core writes, so a field is left unconstrained
where its type is not understood, and so is every personal field: with ``[core]
encrypt_personal`` the core stores those sealed (a string in place of a date or a mapping).
"""

from __future__ import annotations

import enum
import sys
import types
import typing
from datetime import date, datetime
from typing import Any

import attrs

from crmcore.schema import PERSONAL

ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
INTEGER = ["int", "long"]
NUMBER = ["int", "long", "double", "decimal"]
SCALAR_TYPES = frozenset({"string", "int", "long", "double", "decimal", "bool", "null"})


def json_schema(cls: type, *, sealed_personal: bool = True) -> dict[str, Any]:
    """The schema of a stored ``cls`` document, as the core sees it (with ``id``).

    ``sealed_personal=False`` describes personal fields by their declared types instead.
    """
    return _attrs_schema(cls, top=True, sealed_personal=sealed_personal)


def mongo_validator(cls: type) -> dict[str, Any]:
    """The ``validator`` for ``createCollection``/``collMod``: ``id`` is stored as ``_id``."""
    schema = json_schema(cls)
    props = {("_id" if k == "id" else k): v for k, v in schema["properties"].items()}
    required = ["_id" if k == "id" else k for k in schema["required"]]
    return {"$jsonSchema": {**schema, "properties": props, "required": required}}


def scalar_fields(cls: type) -> frozenset[str]:
    """Top-level fields of ``cls`` whose stored values are always scalars (or null).

    A sealed personal field is a string, so a field of a scalar type stays scalar sealed.
    """
    names = (
        n
        for n, sub in json_schema(cls, sealed_personal=False)["properties"].items()
        if _is_scalar_schema(sub)
    )
    return frozenset("_id" if n == "id" else n for n in names)


def _is_scalar_schema(schema: dict[str, Any]) -> bool:
    if "anyOf" in schema:
        return all(_is_scalar_schema(s) for s in schema["anyOf"])
    if "enum" in schema:
        return all(v is None or isinstance(v, str | int | float) for v in schema["enum"])
    kinds = schema.get("bsonType")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    return bool(kinds) and set(kinds) <= SCALAR_TYPES


def _hints(cls: type) -> dict[str, Any]:
    """Resolved annotations; a field whose annotation does not resolve is left out (Any)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:
        pass  # one unresolvable name (say, imported only for type checkers): go field by field
    module = sys.modules.get(cls.__module__)
    out = {}
    for field in attrs.fields(cls):
        holder = types.SimpleNamespace(__annotations__={field.name: field.type})
        try:
            out[field.name] = typing.get_type_hints(
                holder, globalns=vars(module) if module else {}
            )[field.name]
        except Exception:
            continue
    return out


def _attrs_schema(cls: type, *, top: bool = False, sealed_personal: bool = True) -> dict[str, Any]:
    hints = _hints(cls)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for field in attrs.fields(cls):
        # Personal fields may reach the store sealed by the core's encryption layer (a string
        # in place of a date or a mapping): their stored form is not the declared type.
        sealed = sealed_personal and field.metadata.get(PERSONAL, False)
        properties[field.name] = {} if sealed else _type_schema(hints.get(field.name, Any))
        if field.default is attrs.NOTHING:
            required.append(field.name)
    if top:
        properties["id"] = {"bsonType": "string"}
        properties["version"] = {"bsonType": INTEGER}
        for name in ("id", "version"):
            if name not in required:
                required.append(name)
    schema: dict[str, Any] = {"bsonType": "object", "properties": properties}
    if top:
        schema = {"title": cls.__name__, **schema}
    schema["required"] = required
    return schema


def _type_schema(tp: Any) -> dict[str, Any]:
    """The schema of one annotated type; ``{}`` (anything) when not understood."""
    if tp is Any or tp is object:
        return {}
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _union([_type_schema(arg) for arg in typing.get_args(tp)])
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(tp))}
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(tp)
        if origin is tuple:  # tuple[X, ...] has items X; a fixed tuple is left open
            item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        else:
            item = args[0] if args else None
        schema: dict[str, Any] = {"bsonType": "array"}
        items = _type_schema(item) if item is not None else {}
        if items:
            schema["items"] = items
        return schema
    if origin is dict:
        args = typing.get_args(tp)
        schema = {"bsonType": "object"}
        values = _type_schema(args[1]) if len(args) == 2 else {}
        if values:
            schema["additionalProperties"] = values
        return schema
    if tp is type(None):
        return {"bsonType": "null"}
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return {"enum": [m.value for m in tp]}
        if tp is bool:
            return {"bsonType": "bool"}
        if tp is int:
            return {"bsonType": INTEGER}
        if tp is float:
            return {"bsonType": NUMBER}
        if tp is str:
            return {"bsonType": "string"}
        if issubclass(tp, datetime):
            return {"bsonType": "string", "pattern": ISO_DATETIME}
        if issubclass(tp, date):
            return {"bsonType": "string", "pattern": ISO_DATE}
        if attrs.has(tp):
            return _attrs_schema(tp)
        if issubclass(tp, list | tuple | set | frozenset):
            return {"bsonType": "array"}
        if issubclass(tp, dict):
            return {"bsonType": "object"}
    return {}


def _union(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Join alternatives: merged ``bsonType`` lists where that is exact, else ``anyOf``."""
    if any(p == {} for p in parts):
        return {}
    enums = [p for p in parts if set(p) == {"enum"}]
    nulls = [p for p in parts if p == {"bsonType": "null"}]
    if enums and len(enums) + len(nulls) == len(parts):
        values: list[Any] = [v for p in enums for v in p["enum"]]
        return {"enum": values + ([None] if nulls else [])}
    plain = [p for p in parts if set(p) == {"bsonType"}]
    if len(plain) == len(parts):
        kinds: list[str] = []
        for p in plain:
            for k in [p["bsonType"]] if isinstance(p["bsonType"], str) else p["bsonType"]:
                if k not in kinds:
                    kinds.append(k)
        return {"bsonType": kinds[0] if len(kinds) == 1 else kinds}
    if nulls and len(parts) - len(nulls) == 1:
        # X | None where X has more than a type (a pattern, items …): either null or an X
        (other,) = [p for p in parts if p not in nulls]
        return {"anyOf": [{"bsonType": "null"}, other]}
    return {"anyOf": parts}
