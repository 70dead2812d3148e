"""Compiled filters answer as the filter language says (crmcore.storage.query's reference)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.storage.query import (
    MISSING,
    _equals,
    _is_operator_map,
    _op,
    compile_filter,
    compile_normal,
    normalize_filter,
    resolve,
)

scalars = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", "1", ""])
values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.sampled_from("xy"), scalars)
docs = st.fixed_dictionaries(
    {"id": st.just("d")},
    optional={"a": values, "b": values, "n": st.fixed_dictionaries({}, optional={"x": values})},
)
fields = st.sampled_from(["a", "b", "n.x", "missing"])
conditions = scalars | st.fixed_dictionaries(
    {},
    optional={
        "$eq": scalars,
        "$ne": scalars,
        "$in": st.lists(scalars, max_size=3),
        "$gte": st.integers(-3, 3) | st.sampled_from(["a", "b"]),
        "$exists": st.booleans(),
    },
).filter(bool)
filters = st.dictionaries(fields, conditions, min_size=1, max_size=3)


def reference(filter: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Every field's condition holds: equality as ``_equals``, operators as ``_op``; one
    part of an ``$or`` holds, every part of an ``$and``."""
    for key, cond in normalize_filter(filter).items():
        if key == "$or":
            if not any(reference(part, doc) for part in cond):
                return False
            continue
        if key == "$and":
            if not all(reference(part, doc) for part in cond):
                return False
            continue
        value = resolve(doc, key)
        if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            if not all(_op(op, operand)(value) for op, operand in cond.items()):
                return False
        elif not _equals(value, cond):
            return False
    return True


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(filters, docs)
def test_compiled_filters_answer_as_the_reference(filter, doc):
    assert bool(compile_filter(filter)(doc)) == reference(filter, doc)


def test_text_equality_is_json_equality():
    match = compile_filter({"a": "1"})
    assert match({"id": "d", "a": "1"}) and match({"id": "d", "a": ["x", "1"]})
    assert not match({"id": "d", "a": 1}) and not match({"id": "d", "a": [1]})
    assert not match({"id": "d"}) and not match({"id": "d", "a": None})
    assert not match({"id": "d", "a": {"1": "1"}})
    nested = compile_filter({"n.x": "1"})
    assert nested({"id": "d", "n": {"x": "1"}}) and not nested({"id": "d", "n": "1"})
    assert resolve({"id": "d"}, "a") is MISSING


def test_filter_values_take_their_stored_form_whatever_their_type():
    """Plain text passes as it is; a text enum is its value (not passed as text), a datetime
    its ISO form, and any mapping of operators is read as one (not only a dict)."""
    from datetime import UTC, datetime
    from types import MappingProxyType

    from crmcore.entities import TaskStatus
    from crmcore.storage.query import normalize_filter

    when = datetime(2026, 1, 5, 9, tzinfo=UTC)
    got = normalize_filter(
        {
            "status": TaskStatus.OPEN,
            "kind": "call",
            "due_at": MappingProxyType({"$lte": when}),
            "n": 3,
        }
    )
    assert got == {
        "status": "open",
        "kind": "call",
        "due_at": {"$lte": "2026-01-05T09:00:00.000000Z"},
        "n": 3,
    }
    assert type(got["status"]) is str


either = st.recursive(
    filters,
    lambda inner: st.builds(
        lambda op, parts, rest: {op: parts, **rest},
        st.sampled_from(["$or", "$and"]),
        st.lists(inner, min_size=1, max_size=2),
        filters | st.just({}),
    ),
    max_leaves=4,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(either, docs)
def test_a_normalised_filter_compiles_to_the_same_predicate(filter, doc):
    """``compile_normal`` (what a backend calls once it has normalised its query) answers as
    the reference and as ``compile_filter`` on the filter as given, ``$or`` and ``$and``
    included."""
    expected = reference(filter, doc)
    assert bool(compile_normal(normalize_filter(filter))(doc)) == expected
    assert bool(compile_filter(filter)(doc)) == expected


@given(
    st.dictionaries(
        st.sampled_from(["$lt", "$in", "a", "", "$"]) | st.integers(0, 2),
        scalars,
        max_size=3,
    )
)
def test_operator_maps_of_plain_dicts_are_told_as_any_mapping_is(value):
    """The quick test for a plain ``dict`` agrees with the test for any other mapping."""
    assert _is_operator_map(value) == _is_operator_map(MappingProxyType(value))
    assert _is_operator_map(value) == (
        bool(value) and all(isinstance(k, str) and k.startswith("$") for k in value)
    )
