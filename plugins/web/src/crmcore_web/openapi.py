"""The OpenAPI 3.1 document, generated from the attrs classes the handlers structure bodies
into and return, so the document and the code cannot drift apart."""

from __future__ import annotations

import enum
import re
import types
import typing
from collections import abc
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import attrs

from crmcore.registry import ApiRoute

ERROR_STATUSES = {
    "400": "Malformed JSON or a malformed header",
    "401": "No API key, or an unknown or revoked one",
    "403": "The role policy refuses this actor (the reason is given)",
    "404": "No such record",
    "409": "The record changed since it was read (stale If-Match), or a unique value is taken",
    "413": "The body is larger than [web] max_body_bytes",
    "415": "The body is not application/json",
    "422": "The input is invalid; `field` names what to fix",
    "428": "This change needs an If-Match header with the version read",
    "429": "Too many failed authentications from this address; see Retry-After",
}


class Schemas:
    """JSON Schemas of Python types, attrs classes collected under components/schemas."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._names: dict[type, str] = {}

    def of(self, tp: Any) -> dict[str, Any]:
        if tp is None or tp is type(None):
            return {"type": "null"}
        if tp is Any or tp is object:
            return {}
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            parts = [self.of(a) for a in args]
            return {"anyOf": parts}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Set):
            if origin is tuple and args and args[-1] is not Ellipsis:
                return {
                    "type": "array",
                    "prefixItems": [self.of(a) for a in args],
                    "minItems": len(args),
                    "maxItems": len(args),
                }
            return {"type": "array", "items": self.of(args[0]) if args else {}}
        if origin in (dict, abc.Mapping):
            value = args[1] if len(args) == 2 else Any
            return {"type": "object", "additionalProperties": self.of(value)}
        if isinstance(tp, type):
            if issubclass(tp, bool):
                return {"type": "boolean"}
            if issubclass(tp, enum.Enum):
                values = [m.value for m in tp]
                kind = "integer" if all(isinstance(v, int) for v in values) else "string"
                return {"type": kind, "enum": values}
            if issubclass(tp, int):
                return {"type": "integer"}
            if issubclass(tp, float):
                return {"type": "number"}
            if issubclass(tp, str):
                return {"type": "string"}
            if issubclass(tp, datetime):
                return {"type": "string", "format": "date-time"}
            if issubclass(tp, date):
                return {"type": "string", "format": "date"}
            if attrs.has(tp):
                return {"$ref": f"#/components/schemas/{self._component(tp)}"}
            if tp in (list, tuple):
                return {"type": "array"}
            if tp is dict:
                return {"type": "object"}
        return {}

    def _component(self, cls: type) -> str:
        if cls in self._names:
            return self._names[cls]
        name = re.sub(r"[^A-Za-z0-9._-]", "_", cls.__name__)
        taken = set(self._names.values())
        if name in taken:  # two plugins' classes of one name
            name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{cls.__module__}.{cls.__name__}")
        self._names[cls] = name
        self.components[name] = {}  # placeholder: recursive references resolve to it
        hints = typing.get_type_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if field.name.startswith("_"):
                continue
            schema = dict(self.of(hints.get(field.name, field.type)))
            if field.default is attrs.NOTHING:
                required.append(field.name)
            else:
                default = field.default
                if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                    default = default.factory() if not default.takes_self else attrs.NOTHING
                plain = _plain_default(default)
                if plain is not attrs.NOTHING:
                    schema["default"] = plain
            properties[field.name] = schema
        doc = (cls.__doc__ or "").strip()
        body: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            body["required"] = required
        if doc:
            body["description"] = doc.split("\n\n")[0].replace("\n", " ")
        self.components[name] = body
        return name


def _plain_default(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | tuple) and not value:
        return []
    if isinstance(value, dict) and not value:
        return {}
    return attrs.NOTHING  # a sentinel or an object: say nothing rather than something wrong


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def build_document(
    routes: Iterable[tuple[str, ApiRoute]],
    *,
    title: str,
    version: str,
    public: Iterable[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (``(plugin, route)``) served under ``/api/v1``,
    plus ``public`` paths (method, path, summary) that need no key."""
    schemas = Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for plugin, route in routes:
        op: dict[str, Any] = {
            "operationId": _operation_id(route),
            "summary": route.summary,
            "tags": [route.tag or plugin],
            "security": [{"apiKey": []}],
        }
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PLACEHOLDER.findall(route.path)
        ]
        for param in route.query:
            params.append(
                {
                    "name": param.name,
                    "in": "query",
                    "required": param.required,
                    "description": param.description,
                    "schema": {"type": param.type},
                }
            )
        if route.method != "GET":
            params.append(
                {
                    "name": "If-Match",
                    "in": "header",
                    "required": False,
                    "description": "The version you read (as the ETag gave it); a "
                    "stale one is answered 409",
                    "schema": {"type": "string"},
                }
            )
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas.of(route.body)}},
            }
        success: dict[str, Any] = {"description": _status_text(route.status)}
        if route.response is not None and route.status != 204:
            success["content"] = {"application/json": {"schema": schemas.of(route.response)}}
        responses = {str(route.status): success}
        for status, text in ERROR_STATUSES.items():
            if status in ("413", "415") and route.body is None:
                continue
            if status == "428" and route.method == "GET":
                continue
            responses[status] = {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        op["responses"] = responses
        paths.setdefault(f"/api/v1{route.path}", {})[route.method.lower()] = op
    for method, path, summary in public:
        paths.setdefault(path, {})[method.lower()] = {
            "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_"),
            "summary": summary,
            "tags": ["public"],
            "security": [],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {}}}}
            },
        }
    components = dict(sorted(schemas.components.items()))
    components["Error"] = _ERROR_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key from `crm apikey create ACTOR`",
                }
            },
        },
    }


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "type", "message"],
            "properties": {
                "status": {"type": "integer"},
                "type": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}


def _operation_id(route: ApiRoute) -> str:
    words = re.sub(r"[{}]", "", route.path).strip("/").replace("/", "_").replace("-", "_")
    return f"{route.method.lower()}_{words}"


def _status_text(status: int) -> str:
    return {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}.get(status, "OK")
