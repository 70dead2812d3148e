"""The core filter language as MongoDB queries, with the reference evaluator's exact meaning.

MongoDB and the reference (``crmcore.storage.query``) agree on most things; where they differ
the translation adds a clause:

- ``None`` matches a missing or null value, but not a list holding null (MongoDB's ``null``
  also matches ``[null]``): add ``$not: {$type: "array"}``.
- ``$gt``/``$gte``/``$lt``/``$lte`` never match a list (MongoDB compares list elements): the
  same guard; an operand of ``None``, a list or a mapping never matches at all.
- A dotted path stops at anything but a sub-document (MongoDB walks into lists of
  sub-documents): a path with a list, a scalar or null on the way is missing, which a clause
  on every prefix makes explicit.

A few literals have no exact MongoDB form (a list or mapping compared whole, since MongoDB also
matches an element, and compares sub-documents in key order). For those the query is a
superset and ``Translation.exact`` is False: the caller filters the documents again with the
reference evaluator. Types and brackets otherwise agree: MongoDB never equates ``true`` and 1,
compares numbers with numbers and strings with strings by code point, as the reference does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crmcore.errors import ValidationError
from crmcore.storage.query import normalize_filter, validate_sort

ID = "_id"
NOTHING: dict[str, Any] = {ID: {"$in": []}}  # a clause no document matches
_INT64 = (-(2**63), 2**63 - 1)
_COMPARISONS = ("$gt", "$gte", "$lt", "$lte")


@attrs.frozen
class Translation:
    """A filter as a MongoDB query; a superset to re-check in Python when not ``exact``."""

    query: dict[str, Any]
    exact: bool
    normal: dict[str, Any]  # the normalised core filter, for ``compile_filter``


@attrs.frozen
class SortPlan:
    """A sort as MongoDB keys (``_id`` last, so ties go by id as in the reference)."""

    keys: list[tuple[str, int]]
    core: list[tuple[str, int]]
    # Core paths whose values are not known to be scalars: MongoDB's order equals the
    # reference's only while no document holds a list or mapping there (``sorts_differently``).
    unknown: tuple[str, ...]


def translate(filter: Mapping[str, Any] | None) -> Translation:
    """Validate ``filter`` (``ValidationError``) and translate it."""
    normal = normalize_filter(filter)
    clauses, exact = _clauses(normal)
    return Translation(and_of(clauses), exact, normal)


def mongo_path(path: str) -> str:
    """The stored path of a core path: the core's ``id`` is MongoDB's ``_id``."""
    if path == "id":
        return ID
    if path.startswith("id."):
        return ID + path[2:]
    return path


def check_path(path: str) -> None:
    """Refuse paths MongoDB cannot address (empty parts, parts starting with '$')."""
    for part in path.split("."):
        if not part or part.startswith("$"):
            raise ValidationError(
                f"field path {path!r}: MongoDB cannot address a part "
                "that is empty or starts with '$'"
            )


def and_of(clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """One MongoDB filter requiring every clause."""
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


def _clauses(normal: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    clauses: list[dict[str, Any]] = []
    exact = True
    for key, value in normal.items():
        if key == "$and":
            for sub in value:
                more, sub_exact = _clauses(sub)
                clauses.extend(more)
                exact = exact and sub_exact
        elif key == "$or":
            branches = []
            for sub in value:
                more, sub_exact = _clauses(sub)
                branches.append(and_of(more))
                exact = exact and sub_exact
            if all(branches):  # a branch without conditions matches everything
                clauses.append({"$or": branches})
        else:
            check_path(key)
            ops = value if _is_operator_map(value) else {"$eq": value}
            for op, operand in ops.items():
                more, leaf_exact = _leaf(mongo_path(key), op, operand)
                clauses.extend(more)
                exact = exact and leaf_exact
    return clauses, exact


def _is_operator_map(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and k.startswith("$") for k in value)
    )


def _leaf(path: str, op: str, operand: Any) -> tuple[list[dict[str, Any]], bool]:
    """Clauses for one operator on one path, guarding list-valued prefixes."""
    cond, exact = _value_condition(path, op, _bson_safe(operand))
    if cond is None:
        return [], exact
    parts = path.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts))]
    if not prefixes:
        return [cond], exact
    if _matches_missing(op, operand):
        # Anything but a sub-document on the way (a list, a scalar, null) makes the value
        # missing, which this operator accepts.
        return [
            {
                "$or": [
                    *({p: {"$type": "array"}} for p in prefixes),
                    *({p: {"$not": {"$type": "object"}}} for p in prefixes),
                    cond,
                ]
            }
        ], exact
    # Otherwise every prefix must be a sub-document (not a list of them) for anything to match.
    return [*({p: {"$type": "object", "$not": {"$type": "array"}}} for p in prefixes), cond], exact


def _matches_missing(op: str, operand: Any) -> bool:
    """Whether the reference accepts a missing value for this operator."""
    if op == "$eq":
        return operand is None
    if op == "$ne":
        return operand is not None
    if op == "$in":
        return any(x is None for x in operand)
    if op == "$nin":
        return not any(x is None for x in operand)
    if op == "$exists":
        return not operand
    return False  # comparisons


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float)  # bool is an int


def _null(path: str) -> dict[str, Any]:
    # null or missing, but not [null] (which MongoDB's {path: null} would also match)
    return {path: {"$eq": None, "$not": {"$type": "array"}}}


def _not_null(path: str) -> dict[str, Any]:
    return {"$or": [{path: {"$ne": None}}, {path: {"$type": "array"}}]}


def _superset_of_equal(path: str, literal: Any) -> dict[str, Any]:
    """A condition every document equal to a list or mapping ``literal`` satisfies."""
    if isinstance(literal, list):
        return {path: {"$eq": literal}}  # also matches lists holding it: re-checked in Python
    return {path: {"$type": "object"}}  # mappings compare regardless of key order


def _value_condition(path: str, op: str, operand: Any) -> tuple[dict[str, Any] | None, bool]:
    """The condition at a path holding one value (or nothing); None means no condition."""
    if op == "$eq":
        if operand is None:
            return _null(path), True
        if _is_scalar(operand):
            return {path: {"$eq": operand}}, True
        return _superset_of_equal(path, operand), False
    if op == "$ne":
        if operand is None:
            return _not_null(path), True
        if _is_scalar(operand):
            return {path: {"$ne": operand}}, True
        return None, False
    if op == "$in":
        scalars = [x for x in operand if x is not None and _is_scalar(x)]
        others = [x for x in operand if x is not None and not _is_scalar(x)]
        parts: list[dict[str, Any]] = []
        if scalars:
            parts.append({path: {"$in": scalars}})
        if any(x is None for x in operand):
            parts.append(_null(path))
        parts.extend(_superset_of_equal(path, x) for x in others)
        if not parts:
            return NOTHING, True
        return (parts[0] if len(parts) == 1 else {"$or": parts}), not others
    if op == "$nin":
        if any(x is not None and not _is_scalar(x) for x in operand):
            return None, False
        scalars = [x for x in operand if x is not None]
        parts = [{path: {"$nin": scalars}}] if scalars else []
        if any(x is None for x in operand):
            parts.append(_not_null(path))
        return (and_of(parts) or None), True
    if op == "$exists":
        return {path: {"$exists": bool(operand)}}, True
    if op in _COMPARISONS:
        if operand is None or not _is_scalar(operand):
            return NOTHING, True  # the reference compares nothing with None, lists or maps
        return {path: {op: operand, "$not": {"$type": "array"}}}, True
    raise ValidationError(f"unknown query operator {op!r}")  # normalize_filter caught it


def _bson_safe(value: Any) -> Any:
    """Integers beyond 64 bits cannot be sent; as floats they still compare with numbers."""
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and not (_INT64[0] <= value <= _INT64[1])
    ):
        return float(value)
    if isinstance(value, list):
        return [_bson_safe(v) for v in value]
    return value


def plan_sort(
    sort: Iterable[tuple[str, int]] | None, scalar_paths: frozenset[str] = frozenset()
) -> SortPlan:
    """MongoDB sort keys for a core sort; ``scalar_paths`` are known to hold scalars only."""
    core = validate_sort(sort)
    keys: list[tuple[str, int]] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for path, direction in core:
        check_path(path)
        stored = mongo_path(path)
        if stored in seen:
            continue  # a repeated key cannot change the order
        seen.add(stored)
        keys.append((stored, direction))
        if stored not in scalar_paths and stored != ID:
            unknown.append(path)
    if ID not in seen:
        keys.append((ID, 1))
    return SortPlan(keys, core, tuple(unknown))


def sorts_differently(docs: Iterable[Mapping[str, Any]], paths: Iterable[str]) -> bool:
    """Whether a document holds a list or mapping at a sort path, or a list on the way there.

    MongoDB orders such values differently from the reference (a list by its smallest or
    largest element, a sub-document field by field, and it walks into lists on a dotted path).
    """
    split = [p.split(".") for p in paths]
    for doc in docs:
        for parts in split:
            value: Any = doc
            for part in parts:
                if isinstance(value, list):
                    return True
                if not isinstance(value, Mapping) or part not in value:
                    break
                value = value[part]
            else:
                if isinstance(value, list | Mapping):
                    return True
    return False


def pinned_paths(normal: Mapping[str, Any]) -> set[str]:
    """Stored paths every match holds a non-null value at (top-level conditions only)."""
    out: set[str] = set()
    for key, value in normal.items():
        if key == "$and":
            for sub in value:
                out |= pinned_paths(sub)
        elif key == "$or":
            continue
        elif _is_operator_map(value):
            for op, operand in value.items():
                if (
                    (op == "$eq" and operand is not None and _is_scalar(operand))
                    or (
                        op == "$in"
                        and operand
                        and all(x is not None and _is_scalar(x) for x in operand)
                    )
                    or (op in _COMPARISONS and _is_scalar(operand))
                ):
                    out.add(mongo_path(key))
        elif value is not None and _is_scalar(value):
            out.add(mongo_path(key))
    return out


def with_index_hints(
    query: dict[str, Any],
    normal: Mapping[str, Any],
    partial_indexes: Iterable[tuple[tuple[str, ...], dict[str, Any]]],
) -> dict[str, Any]:
    """Repeat a partial index's filter in a query that implies it, so the planner may use it.

    MongoDB uses a partial index only when the query provably matches a subset of its filter,
    and it cannot prove that ``{phone: "+86…"}`` implies ``{phone: {$type: [...]}}``; adding
    the clause (always true for the documents the query matches) lets it.
    """
    pinned = pinned_paths(normal)
    extra = [
        {path: cond}
        for paths, filter_ in partial_indexes
        if set(paths) <= pinned
        for path, cond in filter_.items()
    ]
    if not extra:
        return query
    return and_of([*([query] if query else []), *extra])
