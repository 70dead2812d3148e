"""The filter language as ``tinydb.Query`` objects, for looking at the files with stock TinyDB.

``to_tinydb_query(filter)`` builds a TinyDB query out of TinyDB's own pieces (field paths,
``test``, ``exists``, ``&``, ``|``, ``~``) whose per-value tests are the shared semantics of
``crmcore.storage.query``, so ``TinyDB("crm-data/tasks.json").search(q)`` returns the documents
the store's ``find`` returns::

    from tinydb import TinyDB
    from crmcore_storage_tinydb import to_tinydb_query

    db = TinyDB("crm-data/tasks.json", access_mode="r")
    db.search(to_tinydb_query({"status": "open", "due_at": {"$lte": "2026-03-01"}}))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tinydb import Query
from tinydb.queries import QueryInstance

from crmcore.storage.query import MISSING, _equals, _is_operator_map, _op, normalize_filter


def _path(field: str) -> Query:
    query = Query()
    for part in field.split("."):
        query = query[part]
    return query


def _field(field: str, test: Callable[[Any], bool]) -> QueryInstance:
    path = _path(field)
    found = path.test(test)
    if test(MISSING):
        # TinyDB never calls a test on a missing field; the filter language may match it.
        return found | ~path.exists()
    return found


def _passes(tests: list[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    return lambda value: all(test(value) for test in tests)


def _equal_to(literal: Any) -> Callable[[Any], bool]:
    return lambda value: _equals(value, literal)


def to_tinydb_query(filter: Mapping[str, Any] | None) -> QueryInstance:
    """A ``tinydb`` query matching exactly the documents ``filter`` matches in the store."""
    normal = normalize_filter(filter)
    parts: list[QueryInstance] = []
    for key, value in normal.items():
        if key in ("$or", "$and"):
            subs = [to_tinydb_query(f) for f in value]
            combined = subs[0]
            for sub in subs[1:]:
                combined = (combined | sub) if key == "$or" else (combined & sub)
            parts.append(combined)
        elif _is_operator_map(value):
            parts.append(_field(key, _passes([_op(op, operand) for op, operand in value.items()])))
        else:
            parts.append(_field(key, _equal_to(value)))
    if not parts:
        return Query().noop()
    query = parts[0]
    for part in parts[1:]:
        query = query & part
    return query
