"""The contract's ``IndexSpec`` as MongoDB indexes, and back.

An index is named ``IndexSpec.name`` (``u_email``, ``i_assignee_status_due_at``), so the
declared indexes are found again by name and indexes an operator added by hand are left alone.

A *unique sparse* spec becomes a partial index over documents whose indexed fields are all
present and not null. MongoDB's own ``sparse`` option still indexes ``null``, so two customers
without a phone number would collide; the partial filter keeps them out. The planner uses such
an index only for queries that repeat its filter, so ``with_index_hints`` adds the (redundant)
``$type`` clause to queries that pin those fields to values. A *non-unique* sparse spec needs no
such care and becomes a MongoDB ``sparse`` index, which every equality or range query can use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crmcore.storage import IndexSpec
from crmcore_storage_mongo.translate import mongo_path

# Every BSON type a JSON document can hold, except null: "present and not null".
NON_NULL_TYPES = ["double", "string", "object", "array", "bool", "int", "long", "decimal"]


@attrs.frozen
class MongoIndex:
    """What ``create_index`` takes for one spec."""

    name: str
    keys: list[tuple[str, int]]
    unique: bool
    sparse: bool
    partial: dict[str, Any] | None

    def options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.unique:
            out["unique"] = True
        if self.sparse:
            out["sparse"] = True
        if self.partial is not None:
            out["partialFilterExpression"] = self.partial
        return out


def to_mongo(spec: IndexSpec) -> MongoIndex:
    """The MongoDB index for a spec."""
    keys = [(mongo_path(f), d) for f, d in spec.fields]
    if spec.sparse and spec.unique:
        return MongoIndex(spec.name, keys, True, False, partial_filter(p for p, _ in keys))
    return MongoIndex(spec.name, keys, spec.unique, spec.sparse, None)


def partial_filter(paths: Iterable[str]) -> dict[str, Any]:
    """Documents whose every path is present and not null."""
    return {path: {"$type": list(NON_NULL_TYPES)} for path in paths}


def from_mongo(info: Mapping[str, Any]) -> IndexSpec | None:
    """The spec an existing index was made from, or None for other indexes (``_id_``, manual)."""
    key = info.get("key")
    if not key:
        return None
    fields = tuple(
        ("id" if f == "_id" else f, int(d))
        for f, d in dict(key).items()
        if isinstance(d, int | float) and int(d) in (1, -1)
    )
    if len(fields) != len(dict(key)):
        return None  # hashed, text, 2dsphere …: not one of ours
    spec = IndexSpec(
        fields,
        unique=bool(info.get("unique")),
        sparse=bool(info.get("sparse")) or "partialFilterExpression" in info,
    )
    return spec if spec.name == info.get("name") else None


def same_index(info: Mapping[str, Any], wanted: MongoIndex) -> bool:
    """Whether an existing index is exactly the one ``wanted`` describes."""
    keys = [(f, int(d)) for f, d in dict(info.get("key") or {}).items()]
    return (
        keys == wanted.keys
        and bool(info.get("unique")) == wanted.unique
        and bool(info.get("sparse")) == wanted.sparse
        and _plain(info.get("partialFilterExpression")) == _plain(wanted.partial)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
