"""The ``$jsonSchema`` generated from attrs types accepts what the core writes, refuses the rest.

mongomock does not enforce validators, so the schema is checked here as a pure function, with a
small evaluator of the ``$jsonSchema`` keywords the generator uses; a real server applies it
(and the real-server tests write through it).
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime, timedelta
from typing import Any, Literal

import attrs
import pytest
from crmcore_storage_mongo.schema import (
    ISO_DATETIME,
    json_schema,
    mongo_validator,
    scalar_fields,
)
from crmcore_storage_mongo.store import to_mongo

from crmcore.entities import Customer, Interaction, Task
from crmcore.storage.query import copy_doc

# -- a test-only evaluator for the keywords the generator emits -------------------------------


def bson_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(type(value))


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def violations(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    out: list[str] = []
    allowed = {
        "bsonType",
        "enum",
        "pattern",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "anyOf",
        "title",
    }
    assert set(schema) <= allowed, f"unexpected keyword at {path}: {set(schema) - allowed}"
    if "bsonType" in schema:
        kinds = schema["bsonType"]
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if bson_type(value) not in kinds:
            return [f"{path}: {bson_type(value)} is not {kinds}"]
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        out.append(f"{path}: {value!r} not in enum")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        out.append(f"{path}: {value!r} does not match")
    if "anyOf" in schema and not any(not violations(s, value, path) for s in schema["anyOf"]):
        out.append(f"{path}: matches no alternative")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [
            f"{path}.{name}: required" for name in schema.get("required", []) if name not in value
        ]
        for key, sub in value.items():
            if key in props:
                out += violations(props[key], sub, f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += violations(schema["additionalProperties"], sub, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}.{key}: not allowed")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += violations(schema["items"], item, f"{path}[{i}]")
    return out


def stored_violations(record_type: type, doc: dict[str, Any]) -> list[str]:
    return violations(mongo_validator(record_type)["$jsonSchema"], to_mongo(doc))


# -- what the core writes passes --------------------------------------------------------------


@pytest.fixture
def populated(make_crm, clock):
    crm = make_crm(core={"timezone": "Asia/Shanghai"})
    full = crm.customers.add(
        actor="rep1",
        name="Li Lei",
        phone="+86 138 0013 8000",
        email="LI@example.com",
        address="1 Road",
        birth_date=date(1990, 5, 1),
        chat_handles={"wechat": "lilei"},
        gender="male",
        region="East",
        occupation="engineer",
        organisation="ACME",
        owner="rep1",
        tags=["vip", "b2b"],
        source="fair",
        do_not_contact=True,
        ext={"grading": {"grade": "A", "score": 9.5, "history": [1, 2]}},
    )
    bare = crm.customers.add(actor="rep1", name="Han Meimei")
    dup = crm.customers.add(actor="rep1", name="Li L.", email="li@example.com")
    crm.customers.merge(full.id, dup.id, actor="rep2")
    crm.interactions.log(
        actor="rep1",
        customer_id=full.id,
        kind="purchase",
        amount=120,
        channel="in_person",
        place="shop",
        satisfaction=5,
        rep="rep1",
        summary="bought things",
        ref="order-1",
        ext={"x": {"y": None}},
    )
    crm.interactions.log(actor="rep1", customer_id=bare.id, kind="complaint", amount=12.5)
    crm.interactions.log(actor="rep1", customer_id=bare.id, kind="note")
    open_task = crm.tasks.create(
        actor="rep1",
        kind="callback",
        title="Call back",
        due_at=clock.now(),
        customer_id=full.id,
        assignee="rep1",
        priority=4,
        dedupe_key="cb:1",
        notes="about the order",
    )
    crm.tasks.claim(worker="w1", lease=timedelta(minutes=5))
    done = crm.tasks.create(actor="rep1", kind="care", title="Birthday", due_at=clock.now())
    crm.tasks.complete(done.id, actor="rep2", outcome="sent")
    cancelled = crm.tasks.create(actor="rep1", kind="other", title="x", due_at=clock.now())
    crm.tasks.cancel(cancelled.id, actor="rep2", reason="no longer needed")
    assert open_task.id
    return crm


@pytest.mark.parametrize(
    ("collection", "record_type"),
    [("customers", Customer), ("interactions", Interaction), ("tasks", Task)],
)
def test_every_document_the_core_writes_satisfies_its_schema(populated, collection, record_type):
    docs = list(populated.store.collection(collection).iter())
    assert len(docs) >= 3
    for doc in docs:
        assert stored_violations(record_type, doc) == [], doc["id"]


# -- what it must refuse ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_type", "change", "why"),
    [
        (Task, {"status": "deleted"}, "not in enum"),
        (Task, {"priority": 7}, "not in enum"),
        (Task, {"priority": True}, "not in enum"),
        (Task, {"due_at": "2026-01-05 09:00"}, "does not match"),
        (Customer, {"created_at": "2026-01-05"}, "does not match"),
        (Customer, {"gender": "unknown"}, "not in enum"),
        (Task, {"due_at": None}, "null is not"),
        (Task, {"lease_until": "tomorrow"}, "matches no alternative"),
        (Task, {"version": "1"}, "string is not"),
        (Task, {"ext": {"plugin": "not a mapping"}}, "string is not"),
        (Customer, {"tags": ["ok", 3]}, "int is not"),
        (Customer, {"do_not_contact": "yes"}, "string is not"),
        (Interaction, {"amount": "12"}, "string is not"),
        (Interaction, {"satisfaction": 4.5}, "double is not"),
        (Interaction, {"channel": "pigeon"}, "not in enum"),
    ],
)
def test_wrong_values_are_refused(populated, record_type, change, why):
    name = {Task: "tasks", Customer: "customers", Interaction: "interactions"}[record_type]
    doc = copy_doc(next(populated.store.collection(name).iter()))
    doc.update(change)
    found = stored_violations(record_type, doc)
    assert found and why in " ".join(found)


@pytest.mark.parametrize(
    ("record_type", "missing"),
    [
        (Task, "due_at"),
        (Task, "kind"),
        (Customer, "name"),
        (Interaction, "customer_id"),
        (Customer, "created_by"),
        (Task, "version"),
    ],
)
def test_required_fields_are_required(populated, record_type, missing):
    name = {Task: "tasks", Customer: "customers", Interaction: "interactions"}[record_type]
    doc = copy_doc(next(populated.store.collection(name).iter()))
    del doc[missing]
    assert f"$.{missing}: required" in stored_violations(record_type, doc)


def test_ids_are_stored_as_underscore_id_and_extra_fields_are_allowed():
    validator = mongo_validator(Task)["$jsonSchema"]
    assert "_id" in validator["properties"] and "id" not in validator["properties"]
    assert "_id" in validator["required"] and "version" in validator["required"]
    assert "additionalProperties" not in validator  # the core stores open_key alongside
    assert json_schema(Task)["properties"]["id"] == {"bsonType": "string"}


# -- the generator on plugin-style record types ------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Address:
    city: str
    zip: str | None = None


@attrs.frozen
class PluginRecord:
    id: str
    when: datetime
    day: date | None
    colour: Colour
    shade: Literal["light", "dark"]
    counts: list[int]
    pair: tuple[int, str]
    where: Address
    meta: dict[str, Any]
    anything: Any
    unknown: UnknownName  # noqa: F821 - an annotation that cannot be resolved
    score: float = 0.0
    version: int = 0


def test_personal_fields_are_unconstrained_since_they_may_be_stored_sealed():
    props = json_schema(Customer)["properties"]
    for name in ("name", "phone", "email", "address", "birth_date", "chat_handles"):
        assert props[name] == {}
    assert json_schema(Task)["properties"]["notes"] == {}
    assert "name" in json_schema(Customer)["required"]
    sealed = {"birth_date": "enc:v1:r:AAAA", "chat_handles": "enc:v1:r:BBBB"}
    doc = {
        "id": "c",
        "name": "enc:v1:r:CCCC",
        "created_at": "2026-01-05T09:00:00.000000Z",
        "created_by": "x",
        "updated_at": "2026-01-05T09:00:00.000000Z",
        "updated_by": "x",
        "version": 1,
        **sealed,
    }
    assert stored_violations(Customer, doc) == []


def test_the_generator_covers_nested_and_unusual_types():
    props = json_schema(PluginRecord)["properties"]
    assert props["when"] == {"bsonType": "string", "pattern": ISO_DATETIME}
    assert props["day"]["anyOf"][0] == {"bsonType": "null"}
    assert props["colour"] == {"enum": ["red", "blue"]}
    assert props["shade"] == {"enum": ["light", "dark"]}
    assert props["counts"] == {"bsonType": "array", "items": {"bsonType": ["int", "long"]}}
    assert props["pair"] == {"bsonType": "array"}
    assert props["where"]["properties"]["zip"] == {"bsonType": ["string", "null"]}
    assert props["where"]["required"] == ["city"]
    assert props["meta"] == {"bsonType": "object"}
    assert props["anything"] == {}
    assert props["score"] == {"bsonType": ["int", "long", "double", "decimal"]}


def test_an_unresolvable_annotation_constrains_that_field_only():
    # A validator must never refuse what the core writes: unknown means unconstrained.
    props = json_schema(PluginRecord)["properties"]
    assert props["unknown"] == {}
    assert props["colour"] == {"enum": ["red", "blue"]}


def test_scalar_fields_are_those_that_never_hold_lists_or_mappings():
    fields = scalar_fields(Task)
    assert {"_id", "version", "priority", "due_at", "status", "lease_until"} <= fields
    assert not {"ext"} & fields
    assert {"tags", "chat_handles", "ext"}.isdisjoint(scalar_fields(Customer))
    assert {"name", "birth_date", "gender"} <= scalar_fields(Customer)


# -- applying it (the control flow; a real server enforces it) ---------------------------------


class FakeDatabase:
    """Records what the backend asks of the database when it applies a validator."""

    def __init__(self, existing: dict | None = None) -> None:
        self.existing = existing
        self.calls: list[tuple] = []

    def create_collection(self, name, **options):
        from pymongo.errors import CollectionInvalid

        self.calls.append(("create", name, options["validationLevel"]))
        if self.existing is not None:
            raise CollectionInvalid(f"collection {name} already exists")

    def list_collections(self, filter):
        return iter([{"name": filter["name"], "options": self.existing}])

    def command(self, *args, **kwargs):
        self.calls.append(("collMod", args[1], kwargs["validationLevel"]))


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (None, [("create", "tasks", "moderate")]),
        ({}, [("create", "tasks", "moderate"), ("collMod", "tasks", "moderate")]),
        (
            {"validator": mongo_validator(Task), "validationLevel": "moderate"},
            [("create", "tasks", "moderate")],
        ),  # already up to date: no collMod
        (
            {"validator": {"$jsonSchema": {}}, "validationLevel": "moderate"},
            [("create", "tasks", "moderate"), ("collMod", "tasks", "moderate")],
        ),
    ],
)
def test_validators_are_created_or_brought_up_to_date(open_mock, existing, expected):
    """What ``crm db upgrade`` does (``modify``): create, or collMod when different."""
    store = open_mock()
    store.db = FakeDatabase(existing)
    store._apply_validator("tasks", mongo_validator(Task), modify=True)
    assert store.db.calls == expected


@pytest.mark.parametrize(
    "existing", [{}, {"validator": {"$jsonSchema": {}}, "validationLevel": "moderate"}]
)
def test_opening_never_changes_an_existing_validator(open_mock, existing):
    """A worker opening (old or new code during a rolling deploy) never runs collMod."""
    store = open_mock()
    store.db = FakeDatabase(existing)
    assert store._apply_validator("tasks", mongo_validator(Task), modify=False) == "behind"
    assert [c[0] for c in store.db.calls] == ["create"]
