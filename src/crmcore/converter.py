"""The one cattrs converter that turns entities and plugin records into JSON documents and back.

Datetimes are stored as fixed-width UTC ISO 8601 strings (``2026-11-23T18:57:01.000000Z``), so
string order is time order on every backend; dates as ``YYYY-MM-DD``; enums as their value.

``from_doc`` reads documents that come from our own store through a per-class loader generated
on first use (see ``from_doc`` for what it checks and what it trusts); anything that loader does
not recognise goes through the full cattrs + attrs path, which loads it or says why not.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.converters import BaseConverter
from cattrs.fns import identity
from cattrs.v import format_exception

from crmcore.clock import ensure_aware
from crmcore.errors import StorageError, ValidationError
from crmcore.schema import enum_converter, utc_converter

T = TypeVar("T")

_last_iso: tuple[datetime, str] | None = None  # a write stores its "now" two or three times


def iso(value: datetime) -> str:
    """A datetime as the stored string form (UTC, fixed width, sortable):
    ``2026-01-05T09:00:00.000000Z``."""
    global _last_iso
    last = _last_iso  # one read: another thread may replace it
    if last is not None and last[0] is value:
        return last[1]
    if value.tzinfo is UTC:  # the clock's datetimes are already in UTC
        # isoformat, not strftime: faster, and strftime's %Y drops leading zeros before 1000.
        text = value.isoformat(timespec="microseconds")[:-6] + "Z"
        _last_iso = (value, text)
        return text
    return ensure_aware(value).isoformat(timespec="microseconds")[:-6] + "Z"


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
    if type(value) is str:  # most query values: stored as they are
        return value
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


def _structure_datetime(value: Any, _type: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a date and time as text, got {value!r}")
    return parse_iso(value)


def _structure_date(value: Any, _type: type) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _make() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False)
    conv.register_unstructure_hook(datetime, iso)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(date, lambda d: d.isoformat())
    # Every enum is stored as its plain value. StrEnum and IntEnum are registered by name so
    # they win over the str/int pass-through that comes earlier in their MRO.
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum, enum.IntFlag):
        conv.register_unstructure_hook(base, lambda v: v.value)
    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda v: v.value
    )
    conv.register_structure_hook(date, _structure_date)
    # ``str | None`` and the like are stored as they are: an identity hook lets the generated
    # unstructure functions copy such fields inline instead of calling a hook per field.
    conv.register_unstructure_hook_func(_optional_plain, identity)
    return conv


_PLAIN = (str, int, float, bool)


def _optional_plain(tp: Any) -> bool:
    """``X | None`` where X is a JSON scalar type."""
    inner = _optional_inner(tp)
    return inner in _PLAIN


converter = _make()


def to_doc(obj: Any) -> dict[str, Any]:
    """Unstructure an attrs record into a JSON-compatible document."""
    return converter.unstructure(obj)


def from_doc(cls: type[T], doc: dict[str, Any], *, validate: bool = False) -> T:
    """Structure a document read from our store into ``cls``; damage becomes a ``StorageError``.

    Stored documents were written by ``to_doc`` from a record that passed its attrs validators,
    so by default they are read by a loader generated per class (``stored_loader``) that checks
    the *types* of the stored form and builds the instance without running the validators
    again: every field must be present (or have a default), text must be a ``str``, numbers
    and booleans exact JSON types, datetimes parse to UTC, enum values name a member, and the
    common containers (tuples and lists of text, integers or booleans; mappings of text to
    those, to anything, or to mappings of text to anything, as ``ext``) hold those types and
    are copied, as cattrs copies them; other field types go through their cattrs hooks. A
    document that fails any of that, or is in some other form the loader does not read,
    goes through the full path (cattrs, then the class's ``__init__`` with its converters and
    validators), which still loads what it always loaded and raises the same ``StorageError``
    naming the field otherwise. What the default path trusts are the *value* rules of
    validators (non-empty text, ranges, name patterns, cross-field checks): a stored document
    that breaks only those loads as it is. Attrs converters other than the core's
    ``utc_converter``/``enum_converter`` (no-ops on what the loader produces) still run.

    ``validate=True`` always takes the full path, validators included; user input never comes
    through here (it goes through the classes' constructors).
    """
    if not validate:
        load = _loaders.get(cls, _UNBUILT)
        if load is _UNBUILT:
            load = _loaders[cls] = stored_loader(cls)
        if load is not None:
            try:
                return load(doc)
            except Exception:
                pass  # not in the plain stored form: the full path loads it or says why
    return _full_path(cls, doc)


def _full_path(cls: type[T], doc: dict[str, Any]) -> T:
    """``doc`` structured by cattrs and ``cls.__init__`` (validators run), or ``StorageError``."""
    try:
        return converter.structure(doc, cls)
    except Exception as exc:  # cattrs raises several exception types
        raise StorageError(
            f"stored {cls.__name__} {doc.get('id')!r} does not load: {_describe(exc)}"
        ) from exc


def from_docs(cls: type[T], docs: Iterable[dict[str, Any]]) -> list[T]:
    """``[from_doc(cls, d) for d in docs]``, the class's loader looked up once for them all
    (a query's answer: each document as ``from_doc`` reads it, the same errors)."""
    load = _loaders.get(cls, _UNBUILT)
    if load is _UNBUILT:
        load = _loaders[cls] = stored_loader(cls)
    if load is None:
        return [from_doc(cls, d) for d in docs]
    out: list[T] = []
    for doc in docs:
        try:
            out.append(load(doc))
        except Exception:
            out.append(_full_path(cls, doc))  # not the plain stored form: loaded or refused
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_exception))
    return str(exc)


def _format_exception(exc: BaseException, type_: Any) -> str:
    # A validator's own message names the field and the rule ("kind: 'X' is not a kind
    # name ..."); cattrs' default would say only "invalid value".
    if isinstance(exc, ValidationError):
        return str(exc)
    return format_exception(exc, type_)


# -- the loader for stored documents ----------------------------------------------------------

_UNBUILT: Any = object()
_MISSING: Any = object()
_loaders: dict[type, Callable[[Any], Any] | None] = {}

# The closures that ``crmcore.schema`` makes share one code object per helper: a converter made
# by ``utc_converter``/``enum_converter`` is recognised by it. Both are no-ops on what the loader
# produces (a UTC datetime, a member of the same enum), so the loader skips them.
_UTC_CONVERT = utc_converter("_").__code__
_ENUM_CONVERT = enum_converter(enum.Enum, "_").__code__


class _Unfit(Exception):
    """A stored value the loader does not read itself (``from_doc`` takes the full path)."""


def _closure(fn: Any) -> dict[str, Any]:
    code = fn.__code__
    return {n: c.cell_contents for n, c in zip(code.co_freevars, fn.__closure__ or (), strict=True)}


def _optional_inner(tp: Any) -> Any:
    """``X`` for ``X | None`` (or ``Optional[X]``), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if len(args) == 2 and type(None) in args:
            return args[0] if args[1] is type(None) else args[1]
    return None


def _is_call_hook(hook: Any) -> bool:
    return getattr(hook, "__func__", hook) is BaseConverter._structure_call


def _value_lines(tp: Any, ns: dict[str, Any], key: str) -> tuple[str, list[str]]:
    """(kind, code lines) turning ``v`` (stored) into the structured value of type ``tp``.

    Only types whose structure hook on ``converter`` is the stock one are read here, so a hook a
    plugin registers is still honoured (its fields go through that hook).
    """
    hook = converter.get_structure_hook(tp)
    if tp in (str, int, bool) and _is_call_hook(hook):
        return tp.__name__, [f"if type(v) is not {tp.__name__}: raise _Unfit"]
    if tp is float and _is_call_hook(hook):
        return "float", [
            "if type(v) is int: v = float(v)",
            "elif type(v) is not float: raise _Unfit",
        ]
    if tp is datetime and hook is _structure_datetime:
        return "datetime", [
            "w = _fromiso(v)",  # TypeError unless a str; ValueError if bad
            "if w.tzinfo is not _UTC: w = _structure_datetime(v, None)",
            "v = w",
        ]
    if tp is date and hook is _structure_date:
        return "date", ["v = _date_fromiso(v)"]
    if (
        isinstance(tp, type)
        and issubclass(tp, enum.Enum)
        and (
            _is_call_hook(hook)
            or getattr(hook, "__qualname__", "").startswith("enum_structure_factory.")
        )
    ):
        ns[f"_members_{key}"] = {m.value: m for m in tp.__members__.values()}
        return "enum", [f"v = _members_{key}[v]"]  # KeyError, TypeError: the full path says
    inner = _optional_inner(tp)
    if inner is not None and getattr(hook, "__func__", None) is BaseConverter._structure_optional:
        kind, lines = _value_lines(inner, ns, key)
        return "optional " + kind, ["if v is not None:", *("    " + ln for ln in lines)]
    plain = _plain_container_lines(tp, hook, "v", 0)
    if plain is not None:
        return "container", plain
    ns[f"_hook_{key}"], ns[f"_type_{key}"] = hook, tp
    if typing.get_origin(tp) is dict and getattr(hook, "__name__", "") == "structure_mapping":
        # cattrs' own mapping hook; most ``ext`` and the like are empty, and it makes {} of {}
        return "mapping", [
            "if type(v) is dict and not v: v = {}",
            f"else: v = _hook_{key}(v, _type_{key})",
        ]
    return "hook", [f"v = _hook_{key}(v, _type_{key})"]


def _plain_item(tp: Any) -> bool:
    """Whether items of type ``tp`` are JSON text, integers or booleans read as they are."""
    return tp in (str, int, bool) and _is_call_hook(converter.get_structure_hook(tp))


def _plain_container_lines(tp: Any, hook: Any, name: str, depth: int) -> list[str] | None:
    """Code lines checking ``name`` (stored) and making it the value cattrs' own hook ``hook``
    would build for ``tp``, for the containers stored records use most: ``tuple[X, ...]`` and
    ``list[X]`` of text, integers or booleans, ``dict[str, X]`` of those or of ``Any``, and
    ``dict[str, dict[str, Any]]`` (``ext``). A fresh container, as cattrs makes; None for any
    other type, or one whose hook is not cattrs' own (the field then goes through its hook)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    hook_name = getattr(hook, "__name__", "")
    item = f"x{depth}"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis and _plain_item(args[0]):
        if getattr(hook, "__func__", None) is not BaseConverter._structure_tuple:
            return None
        check, make = args[0].__name__, "tuple"
    elif origin is list and len(args) == 1 and _plain_item(args[0]):
        if hook_name != "structure_list":
            return None
        check, make = args[0].__name__, "list"
    elif origin is dict and len(args) == 2 and _plain_item(args[0]) and args[0] is str:
        if hook_name != "structure_mapping":
            return None
        value = args[1]
        if value is Any or _plain_item(value):
            lines = [
                f"if type({name}) is not dict: raise _Unfit",
                f"for k{depth}, {item} in {name}.items():",
                f"    if type(k{depth}) is not str: raise _Unfit",
            ]
            if value is not Any:
                lines.append(f"    if type({item}) is not {value.__name__}: raise _Unfit")
            return [*lines, f"{name} = dict({name})"]
        inner = _plain_container_lines(value, converter.get_structure_hook(value), item, depth + 1)
        if depth > 0 or inner is None or typing.get_origin(value) is not dict:
            return None
        return [
            f"if type({name}) is not dict: raise _Unfit",
            f"w{depth} = {{}}",
            f"for k{depth}, {item} in {name}.items():",
            f"    if type(k{depth}) is not str: raise _Unfit",
            *("    " + ln for ln in inner),
            f"    w{depth}[k{depth}] = {item}",
            f"{name} = w{depth}",
        ]
    else:
        return None
    return [
        f"if type({name}) is not list: raise _Unfit",
        f"for {item} in {name}:",
        f"    if type({item}) is not {check}: raise _Unfit",
        f"{name} = {make}({name})",
    ]


def _skips_converter(conv: Any, kind: str, tp: Any) -> bool:
    """Whether attrs converter ``conv`` is a no-op on the loader's value of this ``kind``."""
    code = getattr(conv, "__code__", None)
    if code is None or code not in (_UTC_CONVERT, _ENUM_CONVERT):
        return False
    bound = _closure(conv)
    optional = kind.startswith("optional ")
    if optional and not bound["optional"]:
        return False
    if code is _UTC_CONVERT:
        return kind in ("datetime", "optional datetime")
    target = _optional_inner(tp) if optional else tp
    return kind in ("enum", "optional enum") and bound["enum_type"] is target


def _slot(cls: type, name: str) -> Any:
    """The slot descriptor holding attribute ``name`` of ``cls``, if it is one."""
    for klass in cls.__mro__:
        if name in vars(klass):
            found = vars(klass)[name]
            return found if isinstance(found, types.MemberDescriptorType) else None
    return None


def stored_loader(cls: type) -> Callable[[Any], Any] | None:
    """A function building ``cls`` from its stored document without running validators, or
    None when ``cls`` is not a plain attrs class that such a loader can build faithfully.

    Plain means: the class's structure hook on ``converter`` is the one cattrs generates, its
    ``__init__`` is the one attrs generates, with no ``__attrs_pre_init__``/``__attrs_post_init__``,
    every field in ``__init__`` under its own name, and plain callables as converters and
    factories. The loader raises (anything) for a document it does not read; ``from_doc`` then
    takes the full path. ``from_doc`` builds each class's loader once, on first use: structure
    hooks for a record's field types are to be registered before its records are read.
    """
    if not attrs.has(cls):
        return None
    try:
        return _build_loader(cls)
    except Exception:  # a class this code has not foreseen: the full path reads it
        return None


def _is_generated(hook: Any) -> bool:
    code = getattr(hook, "__code__", None)
    return code is not None and code.co_filename.startswith("<cattrs generated")


def _hook_would_be_generated(cls: type) -> bool | None:
    """Whether ``converter``'s structure hook for ``cls`` is the one cattrs generates for attrs
    classes, told from its dispatch tables (in the order cattrs consults them) without
    generating that hook (a compile ``crm customer list`` would otherwise pay for nothing).
    None when the tables are not as this code knows them: the caller then asks for the hook."""
    try:
        tables = converter._structure_func
        single = tables._single_dispatch.dispatch(cls)
        pairs = tables._function_dispatch._handler_pairs
        direct = tables._direct_dispatch.get(cls)
    except AttributeError:
        return None
    if getattr(single, "__name__", None) != "_DispatchNotFound":
        return False  # a hook registered for the class or a base
    if direct is not None:
        return _is_generated(direct)
    for can_handle, handler, _is_factory, _takes_converter in pairs:
        try:
            if not can_handle(cls):
                continue
        except Exception:  # as cattrs' own dispatch does
            continue
        factory: Any = converter.gen_structure_attrs_fromdict
        return bool(handler == factory)
    return False


def _build_loader(cls: type[Any]) -> Callable[[Any], Any] | None:
    attrs.resolve_types(cls)
    generated = _hook_would_be_generated(cls)
    if generated is None:
        generated = _is_generated(converter.get_structure_hook(cls))
    init = getattr(cls.__init__, "__code__", None)
    if (
        init is None
        or not init.co_filename.startswith("<attrs generated")
        or "_attrs_cached_hash" in init.co_consts
        or not generated
        or hasattr(cls, "__attrs_pre_init__")
        or hasattr(cls, "__attrs_post_init__")
    ):
        return None
    ns: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_Unfit": _Unfit,
        "_MISSING": _MISSING,
        "_fromiso": datetime.fromisoformat,
        "_UTC": UTC,
        "_structure_datetime": _structure_datetime,
        "_date_fromiso": date.fromisoformat,
    }
    # Two variants of one body: ``load`` for documents with every field (what ``to_doc``
    # writes), ``_with_defaults`` for older ones that lack some (defaults fill them in).
    every = ["def load(o):", "    s = _new(_cls)"]
    some = ["def _with_defaults(o):", "    s = _new(_cls)"]
    for i, a in enumerate(attrs.fields(cls)):
        if (
            not a.init
            or a.alias != a.name
            or not a.name.isidentifier()
            or isinstance(a.converter, attrs.Converter)
            or (
                isinstance(a.default, attrs.Factory)  # type: ignore[arg-type]
                and a.default.takes_self
            )
        ):
            return None
        key = str(i)
        kind, lines = _value_lines(a.type, ns, key)
        if a.converter is not None and not _skips_converter(a.converter, kind, a.type):
            ns[f"_conv_{key}"] = a.converter
            lines = [*lines, f"v = _conv_{key}(v)"]
        slot = _slot(cls, a.name)
        if slot is None:
            store = f"    _set(s, {a.name!r}, v)"
        else:  # a slot's own setter: what object.__setattr__ ends up calling, minus the lookup
            ns[f"_slot_{key}"] = slot.__set__
            store = f"    _slot_{key}(s, v)"
        every += [f"    v = o[{a.name!r}]", *("    " + ln for ln in lines), store]
        if a.default is attrs.NOTHING:
            some += [f"    v = o[{a.name!r}]", *("    " + ln for ln in lines), store]
            continue
        # as attrs does, the converter (any converter) also applies to the default
        if isinstance(a.default, attrs.Factory):  # type: ignore[arg-type]
            ns[f"_factory_{key}"] = a.default.factory
            default = f"_factory_{key}()"
        else:
            ns[f"_default_{key}"] = a.default
            default = f"_default_{key}"
        if a.converter is not None:
            ns[f"_conv_{key}"] = a.converter
            default = f"_conv_{key}({default})"
        some += [
            f"    v = o.get({a.name!r}, _MISSING)",
            "    if v is _MISSING:",
            f"        v = {default}",
            "    else:",
            *("        " + ln for ln in lines),
            store,
        ]
    source = "\n".join(
        [
            *some,
            "    return s",
            *every[:1],
            "    try:",
            *("    " + ln for ln in every[1:]),
            "        return s",
            "    except KeyError:",
            "        return _with_defaults(o)",
        ]
    )
    exec(compile(source, f"<crmcore stored loader {cls.__qualname__}>", "exec"), ns)
    return ns["load"]
