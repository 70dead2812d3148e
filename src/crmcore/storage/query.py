"""The filter language shared by every backend, and a reference evaluator for Python backends.

A filter is a mapping. Each key is a dotted field path (``ext.grading.grade``) or ``$or`` /
``$and`` with a list of filters; all keys must match. A value is either a literal (equality; a
list field matches when it contains the literal; ``None`` matches missing or null) or a mapping
of operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists``. Datetimes and enums in filters are
turned into their stored forms first (``crmcore.converter.storable``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from crmcore.converter import iso, storable
from crmcore.errors import ValidationError

OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"})
MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()

Predicate = Callable[[Mapping[str, Any]], bool]


def resolve(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path``, or ``MISSING``."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return MISSING
        value = value[part]
    return value


def normalize_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate a filter and convert its values to stored forms. Raises ``ValidationError``."""
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise ValidationError(f"a filter must be a mapping, got {type(filter).__name__}")
    out: dict[str, Any] = {}
    for key, value in filter.items():
        if key in ("$or", "$and"):
            if not isinstance(value, list | tuple) or not value:
                raise ValidationError(f"{key} takes a non-empty list of filters")
            out[key] = [normalize_filter(f) for f in value]
        elif key.startswith("$"):
            raise ValidationError(f"unknown query operator {key!r} at the top level")
        elif _is_operator_map(value):
            ops = {}
            for op, operand in value.items():
                if op not in OPERATORS:
                    raise ValidationError(f"unknown query operator {op!r} on field {key!r}")
                if op in ("$in", "$nin") and not isinstance(operand, list | tuple | set):
                    raise ValidationError(f"{op} on field {key!r} takes a list")
                ops[op] = bool(operand) if op == "$exists" else storable(operand)
            out[key] = ops
        else:
            out[key] = storable(value)
    return out


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_operator_map(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:  # most filter values: no Mapping check (an ABC's) needed
        return False
    if kind is dict:  # the other usual one (a normalised filter's operators): no ABC check
        for k in value:
            if not isinstance(k, str) or not k.startswith("$"):
                return False
        return bool(value)
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and k.startswith("$") for k in value)
    )


def _equals(value: Any, literal: Any) -> bool:
    if literal is None:
        return value is MISSING or value is None
    if isinstance(value, list) and not isinstance(literal, list):
        return any(_same(v, literal) for v in value)
    return _same(value, literal)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: True is not 1 (Python says it is), at any depth."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _comparable(a: Any, b: Any) -> bool:
    if a is MISSING or a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    numeric = (int, float)
    return (isinstance(a, numeric) and isinstance(b, numeric)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _op(op: str, operand: Any) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda v: _equals(v, operand)
    if op == "$ne":
        return lambda v: not _equals(v, operand)
    if op == "$in":
        return lambda v: any(_equals(v, x) for x in operand)
    if op == "$nin":
        return lambda v: not any(_equals(v, x) for x in operand)
    if op == "$exists":
        return lambda v: (v is not MISSING) == operand
    compare = {
        "$gt": lambda a, b: a > b,
        "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b,
        "$lte": lambda a, b: a <= b,
    }[op]
    return lambda v: _comparable(v, operand) and compare(v, operand)


def compile_filter(filter: Mapping[str, Any] | None) -> Predicate:
    """Turn a filter (already normalised or not) into a predicate over documents."""
    return compile_normal(normalize_filter(filter))


def compile_normal(normal: dict[str, Any]) -> Predicate:
    """``compile_filter`` for a filter ``normalize_filter`` returned (not normalised again:
    a backend that has normalised its query compiles it with this)."""
    checks: list[Predicate] = []
    for key, value in normal.items():
        if key == "$or":
            checks.append(_any_of([compile_normal(f) for f in value]))
        elif key == "$and":
            checks.append(_all_of([compile_normal(f) for f in value]))
        elif _is_operator_map(value):
            checks.append(_field_passes(key, [_op(op, operand) for op, operand in value.items()]))
        else:
            checks.append(_field_equals(key, value))
    return _all_of(checks)


def _any_of(checks: list[Predicate]) -> Predicate:
    return lambda doc: any(check(doc) for check in checks)


def _all_of(checks: list[Predicate]) -> Predicate:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda doc: first(doc) and second(doc)
    return lambda doc: all(check(doc) for check in checks)


def _getter(key: str) -> Callable[[Mapping[str, Any]], Any]:
    """``resolve(doc, key)`` as a function; a top-level field of a plain dict (what every
    backend hands the predicate) is one ``dict.get``."""
    if "." in key:
        return lambda doc: resolve(doc, key)
    return lambda doc: doc.get(key, MISSING) if type(doc) is dict else resolve(doc, key)


def _field_passes(key: str, tests: list[Callable[[Any], bool]]) -> Predicate:
    get = _getter(key)
    if len(tests) == 1:
        test = tests[0]
        return lambda doc: test(get(doc))
    return lambda doc: all(test(get(doc)) for test in tests)


def _field_equals(key: str, literal: Any) -> Predicate:
    get = _getter(key)
    if type(literal) is str:
        # text equals text only (never a number or a bool), so == is JSON equality here; a
        # list field matches when it holds the text
        return lambda doc: (v := get(doc)) == literal or (type(v) is list and literal in v)
    return lambda doc: _equals(get(doc), literal)


def _rank(value: Any) -> tuple[int, Any]:
    if value is MISSING or value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, default=str))


def validate_sort(sort: Iterable[tuple[str, int]] | None) -> list[tuple[str, int]]:
    """Check a sort spec: a list of ``(field, 1 | -1)`` pairs."""
    if sort is None:
        return []
    out = []
    for item in sort:
        if (
            not isinstance(item, tuple | list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or item[1] not in (1, -1)
        ):
            raise ValidationError(f"sort takes (field, 1 or -1) pairs, got {item!r}")
        out.append((item[0], int(item[1])))
    return out


D = TypeVar("D", bound=Mapping[str, Any])


def sort_docs(docs: list[D], sort: Iterable[tuple[str, int]] | None) -> None:
    """Sort in place by ``sort`` with ties broken by id (stable multi-pass sort)."""
    docs.sort(key=lambda d: d["id"])
    for field, direction in reversed(validate_sort(sort)):
        docs.sort(key=_rank_at(field), reverse=direction == -1)


def _rank_at(field: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda doc: _rank(resolve(doc, field))


def index_key(
    doc: Mapping[str, Any], fields: Iterable[tuple[str, int]], *, sparse: bool
) -> tuple[Any, ...] | None:
    """The hashable key a document has in an index, or None if a sparse index skips it."""
    values = []
    for path, _direction in fields:
        value = resolve(doc, path)
        if sparse and (value is MISSING or value is None):
            return None
        values.append(_hashable(None if value is MISSING else value))
    return tuple(values)


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def lease_is_free(doc: Mapping[str, Any], owner: str, now: datetime) -> bool:
    """True if ``owner`` may lease ``doc`` at ``now`` (no lease, an ended one, or its own)."""
    holder = doc.get("lease_owner")
    until = doc.get("lease_until")
    return holder is None or holder == owner or until is None or until <= iso(now)


def check_new_doc(doc: Mapping[str, Any]) -> None:
    """Refuse documents without a string id, or that are not JSON-compatible."""
    if type(doc) is dict and "_id" not in doc and _plain_document(doc):
        return  # the usual case, in one pass; anything else gets the checks below
    if not isinstance(doc, Mapping):
        raise ValidationError(f"a document must be a mapping, got {type(doc).__name__}")
    if not isinstance(doc.get("id"), str) or not doc["id"]:
        raise ValidationError("a document needs a non-empty string 'id'")
    if "_id" in doc:
        raise ValidationError("'_id' is reserved for backends; the core's key is 'id'")
    for key in doc:
        if not isinstance(key, str) or not key or "." in key:
            raise ValidationError(
                f"top-level field names must be non-empty and contain no '.' "
                f"(filters read a '.' as a path): {key!r}"
            )
    _check_json(doc, "")  # names the path of what is not storable


_SCALARS = frozenset({str, int, float, bool, type(None)})
_EXACT = frozenset({str, int, bool, type(None)})  # scalars the quick check needs not look at


def _plain_document(doc: dict[str, Any]) -> bool:
    """True for a plain dict with a non-empty string id, field names without '.' or a
    leading '$', and plain JSON values (numbers finite)."""
    ident = doc.get("id")
    if type(ident) is not str or not ident:
        return False
    keys = tuple(doc)
    if keys not in _GOOD_KEYS:  # records of one type share their keys: check them once
        for k in keys:
            if type(k) is not str or not k or "." in k or k[0] == "$":
                return False
        if len(_GOOD_KEYS) < 512:
            _GOOD_KEYS.add(keys)
    scalars = _EXACT
    return _plain([v for v in doc.values() if type(v) not in scalars])


_GOOD_KEYS: set[tuple[str, ...]] = set()  # top-level key lists that passed the check


def _plain(value: Any) -> bool:
    """True if ``value`` is plain JSON (dicts with string keys not starting with '$', lists,
    scalars), checked without building the paths an error would name."""
    stack = [value]
    pop, push, scalars, finite = stack.pop, stack.append, _EXACT, math.isfinite
    while stack:
        item = pop()
        kind = type(item)
        if kind is float:
            if not finite(item):
                return False
        elif kind is dict:
            for k, v in item.items():
                if type(k) is not str or k[:1] == "$":
                    return False
                if type(v) not in scalars:
                    push(v)
        elif kind is list:
            for v in item:
                if type(v) not in scalars:
                    push(v)
        elif kind not in scalars:
            return False
    return True


def _check_json(value: Any, path: str) -> None:
    if type(value) in _SCALARS:
        if type(value) is float and not math.isfinite(value):
            raise ValidationError(
                f"{path.rstrip('.') or 'document'}: {value} is not a number "
                "JSON can hold; store a finite number or None"
            )
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_json(v, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"document keys must be strings, got {k!r} at {path or '.'}")
            if k.startswith("$"):
                raise ValidationError(f"document keys must not start with '$': {path}{k}")
            if type(v) not in _EXACT:
                _check_json(v, f"{path}{k}.")
        return
    raise ValidationError(
        f"{path.rstrip('.') or 'document'}: {type(value).__name__} is not "
        "storable; convert it with crmcore.converter first"
    )


def copy_doc(value: Any) -> Any:
    """A deep copy of a JSON document (faster than ``copy.deepcopy``)."""
    if type(value) is dict:
        return {k: v if type(v) in _SCALARS else copy_doc(v) for k, v in value.items()}
    if type(value) is list:
        return [v if type(v) in _SCALARS else copy_doc(v) for v in value]
    return value
