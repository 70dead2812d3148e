"""What every server of the JSON API does the same way, whatever the HTTP toolkit underneath.

Plugins declare endpoints with :class:`crmcore.registry.ApiRoute` (the ``crm_api_routes``
hook); a server (the ``web`` plugin, or ``crmcore.testing.api`` in tests) serves them with the
functions here, so a request is read and an answer written the same way everywhere:

- :func:`api_routes` collects every plugin's routes, refusing two with the same method and path;
- :func:`match_path` finds a route's ``{placeholders}`` in a request path;
- :func:`parse_body` structures a JSON body into a route's ``body`` attrs class, strictly;
- :func:`query_int`, :func:`query_bool`, :func:`query_text`, :func:`query_datetime` read
  typed query parameters;
- :func:`to_json` turns what a handler returns into plain JSON values;
- :func:`error_status` is the HTTP status of each of crmcore's typed errors.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections import abc
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, list_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from crmcore import i18n
from crmcore.converter import converter, iso
from crmcore.entities import title_message
from crmcore.errors import (
    ConflictError,
    CrmError,
    NotFoundError,
    PermissionDenied,
    PluginError,
    ValidationError,
)
from crmcore.registry import ApiRoute

if TYPE_CHECKING:
    from crmcore.app import CRM

T = TypeVar("T")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ATTRS_MESSAGE = re.compile(r"^'([A-Za-z_][A-Za-z0-9_]*)' must ")


@attrs.frozen
class ApiCall:
    """A concrete :class:`crmcore.registry.ApiRequest`: what a handler receives."""

    crm: CRM
    actor: str
    path: Mapping[str, str] = attrs.field(factory=dict)
    query: Mapping[str, str] = attrs.field(factory=dict)
    body: Any = None
    if_match: int | None = None


# -- routes -----------------------------------------------------------------------------------


def route_key(route: ApiRoute) -> tuple[str, str]:
    """``(method, path with every placeholder blanked)``: two routes with the same key would
    answer the same requests."""
    return route.method, _PLACEHOLDER.sub("{}", route.path)


def api_routes(crm: CRM) -> list[tuple[str, ApiRoute]]:
    """Every plugin's routes as ``(plugin name, route)``, checked: each an ``ApiRoute`` whose
    ``body`` (if any) is an attrs class, and no method and path twice. A failed check is a
    ``PluginError`` naming the plugin (for a duplicate, both plugins)."""
    seen: dict[tuple[str, str], str] = {}
    out: list[tuple[str, ApiRoute]] = []
    for plugin, route in crm.plugins.crm_api_routes(crm=crm):
        if not isinstance(route, ApiRoute):
            raise PluginError(
                plugin, f"crm_api_routes returned {type(route).__name__}, not ApiRoute"
            )
        if route.body is not None and not attrs.has(route.body):
            raise PluginError(
                plugin,
                f"route {route.method} {route.path}: body must be an "
                f"attrs class, not {route.body!r}",
            )
        key = route_key(route)
        if key in seen:
            first, second = sorted((seen[key], plugin))
            raise PluginError(
                second,
                f"route {route.method} {route.path} is declared by both "
                f"plugin {first!r} and plugin {second!r}; disable one of them",
            )
        seen[key] = plugin
        out.append((plugin, route))
    return out


def match_path(template: str, path: str) -> dict[str, str] | None:
    """The placeholder values if ``path`` matches ``template`` (``/a/{id}`` and ``/a/7`` give
    ``{"id": "7"}``), else None. A placeholder matches one non-empty segment."""
    pattern = (
        "^"
        + "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if _PLACEHOLDER.fullmatch(part) else re.escape(part)
            for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template)
        )
        + "$"
    )
    found = re.match(pattern, path)
    return None if found is None else dict(found.groupdict())


# -- request bodies ---------------------------------------------------------------------------


def _text(value: Any, _type: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {_shown(value)}")
    return value


def _whole(value: Any, _type: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {_shown(value)}")
    return value


def _number(value: Any, _type: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {_shown(value)}")
    return float(value)


def _flag(value: Any, _type: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {_shown(value)}")
    return value


def _datetime(value: Any, _type: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected a date and time as ISO 8601 text, got {_shown(value)}")
    try:
        parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone (add Z or an offset such as +08:00)")
    return parsed.astimezone(UTC)


def _date(value: Any, _type: type) -> date:
    if not isinstance(value, str):
        raise TypeError(f"expected a date as YYYY-MM-DD, got {_shown(value)}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from None


def _member(value: Any, type_: type[enum.Enum]) -> enum.Enum:
    for member in type_:
        if member.value == value and type(member.value) is type(value):
            return member
    allowed = ", ".join(str(m.value) for m in type_)
    raise ValueError(f"unknown value {value!r} (allowed: {allowed})")


def _shown(value: Any) -> str:
    kind = {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value))
    return (
        f"{kind} ({value!r})"
        if kind and not isinstance(value, list | dict)
        else (kind or type(value).__name__)
    )


def _body_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp, hook in (
        (str, _text),
        (int, _whole),
        (float, _number),
        (bool, _flag),
        (datetime, _datetime),
        (date, _date),
    ):
        conv.register_structure_hook(tp, hook)
    # by name, so that they win over the str / int hooks earlier in their MRO
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum, enum.IntFlag):
        conv.register_structure_hook(base, _member)
    conv.register_structure_hook_factory(_is_array, _array_hook)
    conv.register_structure_hook_func(_is_literal, _literal)
    return conv


def _literal(value: Any, type_: Any) -> Any:
    for allowed in typing.get_args(type_):
        if allowed == value and type(allowed) is type(value):
            return allowed
    choices = ", ".join(str(a) for a in typing.get_args(type_))
    raise ValueError(f"unknown value {value!r} (allowed: {choices})")


_LISTS = (list, abc.Sequence, abc.MutableSequence)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)


def _is_array(type_: Any) -> bool:
    """``list[X]``, ``tuple[X, ...]``, sequences and sets (JSON arrays), not fixed-length
    tuples."""
    origin = typing.get_origin(type_) or type_
    if origin in _LISTS or origin in _SETS:
        return True
    args = typing.get_args(type_)
    return origin is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_literal(type_: Any) -> bool:
    origin: Any = typing.get_origin(type_)
    return origin is typing.Literal


def _array_hook(type_: Any, conv: cattrs.Converter) -> Any:
    """cattrs' own hook for the list, tuple or set, after checking that the value is a JSON
    array (a string is iterable, and would otherwise become a list of its characters)."""
    origin = typing.get_origin(type_) or type_
    if origin is tuple:
        inner = homogenous_tuple_structure_factory(type_, conv)
    elif origin in _SETS:
        item = (typing.get_args(type_) or (Any,))[0]
        made = frozenset if origin is frozenset else set
        list_of: Any = types.GenericAlias(list, (item,))  # list[item], item known at run time
        as_list = list_structure_factory(list_of, conv)

        def inner(value: Any, _type: Any) -> Any:
            return made(as_list(value, list_of))
    else:
        item = (typing.get_args(type_) or (Any,))[0]
        list_of = types.GenericAlias(list, (item,))
        inner = list_structure_factory(list_of, conv)

    def structure(value: Any, _type: Any) -> Any:
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {_shown(value)}")
        return inner(value, _type)

    return structure


_body = _body_converter()


def parse_body(cls: type[T], doc: Any) -> T:
    """Structure a request's JSON body into ``cls`` (an attrs class), strictly: the body must
    be an object, unknown keys are refused, every value must have its field's JSON type (no
    ``"5"`` for a number, no ``1`` for a boolean), datetimes need a time zone. The attrs
    validators run. Any failure is a ``ValidationError`` whose ``field`` is the path of the
    first offending value (``score``, ``items[2].sku``)."""
    if not isinstance(doc, dict):
        raise ValidationError(f"the request body must be a JSON object, not {_shown(doc)}")
    try:
        return _body.structure(doc, cls)
    except ValidationError:
        raise
    except Exception as exc:  # cattrs' error groups, or a constructor's own error
        field, message = _first_problem(exc, cls, "")
        raise ValidationError(message, field=field or None) from None


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _first_problem(exc: BaseException, cls: Any, path: str) -> tuple[str, str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        allowed = ", ".join(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else ""
        return (
            _join(path, extra[0]),
            f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(extra)}"
            + (f" (allowed: {allowed})" if allowed else ""),
        )
    if isinstance(exc, ClassValidationError):
        with_notes, without = exc.group_exceptions()
        for sub in without:
            if isinstance(sub, ForbiddenExtraKeysError):
                return _first_problem(sub, exc.cl, path)
        for sub, note in with_notes:
            return _first_problem(sub, note.type, _join(path, note.name))
        if without:
            return _first_problem(without[0], exc.cl, path)
    if isinstance(exc, IterableValidationError):
        with_index, rest = exc.group_exceptions()
        for sub, at in with_index:
            return _first_problem(sub, at.type, _join(path, at.index))
        if rest:
            return _first_problem(rest[0], cls, path)
    if isinstance(exc, ValidationError):
        field = _join(path, exc.field) if exc.field and path else (exc.field or path)
        message = str(exc)
        if exc.field and message.startswith(f"{exc.field}: "):
            message = message[len(exc.field) + 2 :]
        return field, message
    if isinstance(exc, KeyError):
        return path, "is required"
    if isinstance(exc, cattrs.BaseValidationError) and exc.exceptions:
        return _first_problem(exc.exceptions[0], cls, path)
    if isinstance(exc, TypeError | ValueError):
        # attrs' own validators: TypeError(msg, attribute, …) or "'quantity' must be >= 1: 0"
        attribute = exc.args[1] if len(exc.args) > 1 else None
        if isinstance(attribute, attrs.Attribute):
            return _join(path, attribute.name), str(exc.args[0])
        named = _ATTRS_MESSAGE.match(str(exc))
        if named:
            return _join(path, named.group(1)), str(exc)
    return path, str(exc) or type(exc).__name__


# -- query parameters -------------------------------------------------------------------------


def query_text(query: Mapping[str, str], name: str, *, choices: tuple[str, ...] = ()) -> str | None:
    """A query parameter's text, None when absent or empty; with ``choices``, one of them."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if choices and value not in choices:
        raise ValidationError(
            f"unknown value {value!r} (allowed: {', '.join(choices)})", field=name
        )
    return value


@overload
def query_int(
    query: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int: ...
@overload
def query_int(
    query: Mapping[str, str],
    name: str,
    default: None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None: ...
def query_int(
    query: Mapping[str, str],
    name: str,
    default: int | None = None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    """A whole-number query parameter (``?limit=20``), ``default`` when absent."""
    value = query.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ValidationError(f"expected a whole number, got {value!r}", field=name) from None
    if minimum is not None and number < minimum:
        raise ValidationError(f"must be at least {minimum}, got {number}", field=name)
    if maximum is not None and number > maximum:
        raise ValidationError(f"must be at most {maximum}, got {number}", field=name)
    return number


def query_bool(query: Mapping[str, str], name: str, default: bool | None = None) -> bool | None:
    """A boolean query parameter: ``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    value = query.get(name)
    if value is None or value == "":
        return default
    text = value.strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValidationError(f"expected true or false, got {value!r}", field=name)


def query_datetime(query: Mapping[str, str], name: str) -> datetime | None:
    """An ISO 8601 date-and-time query parameter with a time zone (``2026-01-05T18:00Z``)."""
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return _datetime(value.strip(), datetime).astimezone(UTC)
    except ValueError as exc:
        raise ValidationError(str(exc), field=name) from None


# -- answers ----------------------------------------------------------------------------------

_SCALARS = frozenset((str, int, float, bool))


def to_json(value: Any) -> Any:
    """What a handler returned as plain JSON values: attrs instances become objects (as the
    store writes them), tuples and sets lists, datetimes fixed-width UTC ISO 8601 text
    (``2026-01-05T09:00:00.000000Z``), dates ``YYYY-MM-DD``, enums their value, durations
    seconds, mapping keys text; anything else its text. The one conversion every server of the
    API uses. Inside ``crmcore.i18n.activate(...)``, text written as data (a task's title, a
    reason given as a message) is in that language; the message ids stay beside it."""
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    if kind is dict:  # the common containers first: most of a large answer is made of them
        out = {k if type(k) is str else str(to_json(k)): to_json(v) for k, v in value.items()}
        if out.get("title_key") and i18n.active():  # a task's title, in the reader's language
            message = title_message(str(out["title"]), out["title_key"], out.get("title_args"))
            out["title"] = i18n.translate(message, i18n.current_gettext)
        if out.get("note_key") and i18n.active():  # a note a plugin wrote (a ticket's trail)
            message = title_message(str(out["note"]), out["note_key"], out.get("note_args"))
            out["note"] = i18n.translate(message, i18n.current_gettext)
        if out.get("status") == "cancelled" and out.get("outcome") and i18n.active():
            # a task's cancel reason: a message id where the core or a plugin wrote it
            out["outcome"] = i18n.translate(str(out["outcome"]), i18n.current_gettext)
        return out
    if kind is list:
        return [to_json(v) for v in value]
    if attrs.has(kind):
        return to_json(converter.unstructure(value))
    if isinstance(value, i18n.Message):  # a reason stored with its message id
        return i18n.translate(value, i18n.current_gettext) if i18n.active() else str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_json(v) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, str | int | float | bool):  # subclasses of the JSON scalars
        return value
    return str(value)


_STATUSES: tuple[tuple[type[CrmError], int], ...] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PermissionDenied, 403),
)


def error_status(exc: CrmError) -> int:
    """The HTTP status answering one of crmcore's typed errors (500 for any other)."""
    for kind, status in _STATUSES:
        if isinstance(exc, kind):
            return status
    return 500
