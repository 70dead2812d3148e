"""``from_doc``'s loader for stored documents builds what the full validating path builds."""

from __future__ import annotations

import enum
import json
import linecache
import string
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore.converter import converter, from_doc, iso, parse_iso, stored_loader, to_doc
from crmcore.entities import (
    Channel,
    Customer,
    CustomerStatus,
    Gender,
    Interaction,
    Priority,
    Task,
    TaskStatus,
)
from crmcore.errors import StorageError
from crmcore.records import Records
from crmcore.schema import enum_converter, field, non_empty, utc_converter
from crmcore.storage.memory import MemoryStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (``==`` alone says 1 == 1.0 == True)."""
    if type(a) is not type(b):
        return False
    if attrs.has(type(a)):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in attrs.fields(type(a)))
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def stored(record: Any) -> dict[str, Any]:
    """The document as a store hands it back (through JSON, with a version)."""
    return json.loads(json.dumps({**to_doc(record), "version": 3}))


# -- strategies for valid records ------------------------------------------------------------

# What the entities accept (crmcore.text): names are one line without control or bidi
# characters; free text keeps tabs and line breaks.
name_chars = st.characters(
    exclude_categories=("Cc", "Cs"),
    exclude_characters="\u061c\u200e\u200f\u202a\u202b\u202c\u202d"
    "\u202e\u2066\u2067\u2068\u2069\u2028\u2029",
)
free_text = st.text(st.characters(exclude_categories=("Cc", "Cs"), include_characters="\t\n\r"))
text = st.text(name_chars, min_size=1).filter(str.strip)
maybe_text = st.none() | st.text(name_chars)
maybe_free = st.none() | free_text
# Speed-independent: no deadline, and a slow machine is no reason to fail the property.
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30))]
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=zones
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False)
)
keys = st.text(string.ascii_letters + string.digits + "_ ", min_size=1, max_size=8)
ext = st.dictionaries(keys, st.dictionaries(keys, json_scalars, max_size=3), max_size=3)
kinds = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)

customers = st.builds(
    Customer,
    id=text,
    name=text,
    created_at=moments,
    created_by=text,
    updated_at=moments,
    updated_by=text,
    phone=maybe_text,
    email=maybe_text,
    address=maybe_free,
    birth_date=st.none() | st.dates(),
    chat_handles=st.dictionaries(st.text(name_chars), st.text(name_chars)),
    gender=st.none() | st.sampled_from(Gender),
    region=maybe_text,
    occupation=maybe_text,
    organisation=maybe_text,
    timezone=text,
    do_not_contact=st.booleans(),
    owner=maybe_text,
    tags=st.lists(st.text(name_chars)),
    source=maybe_text,
    status=st.sampled_from(CustomerStatus),
    merged_into=maybe_text,
    ext=ext,
    version=st.integers(0, 2**40),
)
interactions = st.builds(
    Interaction,
    id=text,
    customer_id=text,
    kind=kinds,
    occurred_at=moments,
    created_at=moments,
    created_by=text,
    channel=st.sampled_from(Channel),
    summary=free_text,
    amount=st.none() | st.integers(0, 10**9) | st.floats(0, 1e12, allow_nan=False),
    satisfaction=st.none() | st.integers(1, 5),
    place=maybe_text,
    rep=maybe_text,
    ref=maybe_text,
    ext=ext,
    version=st.integers(0, 2**40),
)
tasks = st.builds(
    Task,
    id=text,
    kind=kinds,
    title=text,
    due_at=moments,
    created_at=moments,
    created_by=text,
    updated_at=moments,
    updated_by=text,
    customer_id=maybe_text,
    assignee=maybe_text,
    status=st.sampled_from(TaskStatus),
    priority=st.sampled_from(Priority),
    dedupe_key=maybe_text,
    source=maybe_text,
    ref=maybe_text,
    notes=free_text,
    outcome=maybe_free,
    completed_at=st.none() | moments,
    completed_by=maybe_text,
    lease_owner=maybe_text,
    lease_until=st.none() | moments,
    ext=ext,
    version=st.integers(0, 2**40),
)


@SETTINGS
@given(st.one_of(customers, interactions, tasks), st.data())
def test_core_entities_load_from_the_store_exactly_as_the_validating_path_loads_them(record, data):
    cls, doc = type(record), stored(record)
    load = stored_loader(cls)
    assert load is not None
    fast = load(doc)  # called directly: a silent fall-back to the full path must not hide it
    assert same(fast, from_doc(cls, doc, validate=True))
    assert same(from_doc(cls, doc), fast)
    assert fast == attrs.evolve(record, version=3)  # == : a whole amount comes back a float
    # a document from before some fields existed: their defaults fill in, as on the full path
    optional = [a.name for a in attrs.fields(cls) if a.default is not attrs.NOTHING]
    for name in data.draw(st.sets(st.sampled_from(optional), min_size=1)):
        del doc[name]
    assert same(load(doc), from_doc(cls, doc, validate=True))


# -- a plugin record with every kind of field, through Records -------------------------------


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Stage(enum.StrEnum):
    NEW = "new"
    DONE = "done"


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Part:
    name: str
    weight: float = 0.0


def _labels(value: Any) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in value}))


@attrs.frozen
class Sample:
    id: str
    owner: str = field(validator=non_empty)
    at: datetime = field(converter=utc_converter("at"))
    count: int = 0
    share: float = 0.0
    flag: bool = False
    day: date | None = None
    until: datetime | None = field(default=None, converter=utc_converter("until", optional=True))
    plain_at: datetime | None = None
    level: Level = Level.LOW
    stage: Stage = field(default=Stage.NEW, converter=enum_converter(Stage, "stage"))
    colour: Colour | None = None
    labels: tuple[str, ...] = field(default=(), converter=_labels)
    items: list[dict[str, Any]] = attrs.field(factory=list)
    part: Part | None = None
    parts: tuple[Part, ...] = ()
    anything: Any = None
    note: str = field(personal=True, default="")
    version: int = 0


samples = st.builds(
    Sample,
    id=text,
    owner=text,
    at=moments,
    count=st.integers(-(2**60), 2**60),
    share=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6),
    flag=st.booleans(),
    day=st.none() | st.dates(),
    until=st.none() | moments,
    plain_at=st.none() | moments.map(lambda m: m.astimezone(UTC)),
    level=st.sampled_from(Level),
    stage=st.sampled_from(Stage),
    colour=st.none() | st.sampled_from(Colour),
    labels=st.lists(st.text()),
    items=st.lists(st.dictionaries(keys, json_scalars)),
    part=st.none() | st.builds(Part, name=st.text(), weight=st.floats(0, 10)),
    parts=st.lists(st.builds(Part, name=st.text())).map(tuple),
    anything=json_scalars,
    note=st.text(),
)


@SETTINGS
@given(samples)
def test_plugin_records_read_through_records_are_what_the_validating_path_builds(sample):
    records = Records(MemoryStore().collection("sample.things"), Sample)
    inserted = records.insert(sample)
    doc = json.loads(json.dumps(records.collection.get(sample.id)))
    assert stored_loader(Sample) is not None
    expected = from_doc(Sample, doc, validate=True)
    assert same(stored_loader(Sample)(doc), expected)
    assert same(inserted, expected) and same(records.get(sample.id), expected)
    assert same(records.find({"id": sample.id}), [expected])


# -- what the loader checks, trusts, and hands to the full path ------------------------------


def a_task(**changes: Any) -> dict[str, Any]:
    task = Task(
        id="tsk_1",
        kind="follow_up",
        title="call back",
        due_at=T0,
        created_at=T0,
        created_by="ann",
        updated_at=T0,
        updated_by="ann",
    )
    return {**stored(task), **changes}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"status": "bogus"}, "status"),
        ({"priority": 9}, "priority"),
        ({"due_at": "yesterday"}, "due_at"),
        ({"due_at": "2026-01-05T09:00:00"}, "due_at"),  # no time zone
        ({"due_at": None}, "due_at"),
        ({"completed_at": 12}, "completed_at"),
        ({"ext": {"grading": 5}}, "ext"),
        ({"version": "three"}, "version"),
    ],
)
def test_a_damaged_stored_document_is_a_storage_error_naming_the_field(changes, named):
    with pytest.raises(StorageError, match=rf"stored Task 'tsk_1' does not load: .*\$\.{named}"):
        from_doc(Task, a_task(**changes))


def test_a_missing_required_field_is_named():
    doc = a_task()
    del doc["title"]
    with pytest.raises(StorageError, match=r"required field missing @ \$\.title"):
        from_doc(Task, doc)


def test_value_rules_are_trusted_on_stored_documents_and_checked_on_request():
    doc = a_task(title="", kind="Not A Kind")
    assert from_doc(Task, doc).title == ""
    with pytest.raises(StorageError, match="kind: 'Not A Kind' is not a kind name"):
        from_doc(Task, doc, validate=True)


def test_older_or_unusual_stored_forms_still_load_as_before():
    doc = a_task(due_at="2026-01-05T17:00:00+08:00", priority=3.0, notes=7)
    for key in ("status", "ext", "outcome", "version"):
        del doc[key]
    task = from_doc(Task, doc)
    assert same(task, from_doc(Task, doc, validate=True))
    assert task.due_at == T0 and task.due_at.tzinfo is UTC
    assert task.priority is Priority.HIGH and task.status is TaskStatus.OPEN
    assert task.notes == "7" and task.ext == {} and task.version == 0
    doc = {
        **stored(
            Customer(
                id="c1",
                name="Ann",
                created_at=T0,
                created_by="a",
                updated_at=T0,
                updated_by="a",
                tags=["b", "a"],
            )
        )
    }
    doc["tags"] = ["z", " a ", "z"]  # written before tags were normalised: the converter runs
    assert same(from_doc(Customer, doc), from_doc(Customer, doc, validate=True))
    assert from_doc(Customer, doc).tags == ("a", "z")


def test_classes_the_loader_cannot_build_faithfully_keep_the_full_path():
    @attrs.frozen
    class Checked:
        id: str
        total: int = 0

        def __attrs_post_init__(self) -> None:
            if self.total < 0:
                raise ValueError("total: must not be negative")

    assert stored_loader(Checked) is None
    assert from_doc(Checked, {"id": "x", "total": 2}) == Checked("x", 2)
    with pytest.raises(StorageError, match="stored Checked 'x' does not load"):
        from_doc(Checked, {"id": "x", "total": -1})


class Cents(int):
    """Stored as a decimal string of the whole unit, by a hook of its own."""


@attrs.frozen
class Price:
    id: str
    amount: Cents


def test_a_structure_hook_registered_for_a_field_type_is_still_used():
    converter.register_structure_hook(Cents, lambda v, _t: Cents(round(float(v) * 100)))
    assert stored_loader(Price) is not None
    assert from_doc(Price, {"id": "p", "amount": "1.25"}).amount == 125


@SETTINGS
@given(
    when=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-11)), timezone(timedelta(hours=5, minutes=45))]
        ),
    )
)
def test_iso_is_fixed_width_utc_sortable_and_parses_back(when):
    text = iso(when)
    assert len(text) == 27 and text.endswith("Z") and text[10] == "T"
    assert parse_iso(text) == when
    assert iso(when + timedelta(microseconds=1)) > text


def test_iso_answers_for_the_datetime_it_is_given_when_called_again():
    a = datetime(2026, 1, 5, 9, tzinfo=UTC)
    b = a + timedelta(microseconds=1)
    assert [iso(a), iso(a), iso(b), iso(a)] == ["2026-01-05T09:00:00.000000Z"] * 2 + [
        "2026-01-05T09:00:00.000001Z",
        "2026-01-05T09:00:00.000000Z",
    ]
    shifted = a.astimezone(timezone(timedelta(hours=2)))
    assert iso(shifted) == iso(a)


def test_iso_keeps_four_digit_years_before_1000():
    assert iso(datetime(1, 1, 2, tzinfo=UTC)) == "0001-01-02T00:00:00.000000Z"
    assert iso(datetime(2026, 1, 5, 9, 0, 0, 7, tzinfo=UTC)) == "2026-01-05T09:00:00.000007Z"


def test_iso_of_a_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        iso(datetime(2026, 1, 5, 9))


# -- containers the loader builds itself (not through cattrs' hooks) -------------------------


@attrs.frozen
class Bags:
    id: str
    words: tuple[str, ...] = ()
    counts: tuple[int, ...] = ()
    names: list[str] = attrs.field(factory=list)
    flags: list[bool] = attrs.field(factory=list)
    handles: dict[str, str] = attrs.field(factory=dict)
    scores: dict[str, int] = attrs.field(factory=dict)
    loose: dict[str, Any] = attrs.field(factory=dict)
    ext: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    maybe: dict[str, str] | None = None


bags = st.builds(
    Bags,
    id=text,
    words=st.lists(st.text()).map(tuple),
    counts=st.lists(st.integers(-(2**60), 2**60)).map(tuple),
    names=st.lists(st.text()),
    flags=st.lists(st.booleans()),
    handles=st.dictionaries(st.text(), st.text()),
    scores=st.dictionaries(st.text(), st.integers(-(2**60), 2**60)),
    loose=st.dictionaries(st.text(), json_scalars | st.lists(json_scalars)),
    ext=ext,
    maybe=st.none() | st.dictionaries(st.text(), st.text(), max_size=2),
)


@SETTINGS
@given(bags)
def test_containers_load_as_the_validating_path_loads_them(record):
    doc = stored(record)
    assert same(from_doc(Bags, doc), from_doc(Bags, doc, validate=True))
    assert same(from_doc(Bags, doc), record)


def test_containers_are_the_records_own_not_the_documents():
    doc = stored(Bags(id="b", names=["a"], handles={"wx": "ann"}, ext={"p": {"n": 1}}))
    bag = from_doc(Bags, doc)
    doc["names"].append("b")
    doc["handles"]["qq"] = "x"
    doc["ext"]["p"]["n"] = 2
    assert bag.names == ["a"] and bag.handles == {"wx": "ann"} and bag.ext == {"p": {"n": 1}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"words": ["a", 7]}, ("a", "7")),
        ({"names": ["x", 1.5]}, ["x", "1.5"]),
        ({"flags": [True, 1]}, [True, True]),
        ({"handles": {"wx": 3}}, {"wx": "3"}),
        ({"scores": {"a": "4"}}, {"a": 4}),
        ({"counts": [1, True]}, (1, 1)),
        ({"ext": {"p": {"n": 1}, "q": {}}}, {"p": {"n": 1}, "q": {}}),
    ],
)
def test_container_items_of_other_types_take_the_full_path(changes, expected):
    doc = {**stored(Bags(id="b")), **changes}
    bag = from_doc(Bags, doc)
    assert same(bag, from_doc(Bags, doc, validate=True))
    assert same(getattr(bag, next(iter(changes))), expected)


@given(st.lists(st.sampled_from(["a", "b", " a", "b ", "", " ", "é", "a\t", "z"]) | st.text()))
def test_tags_already_normal_are_kept_and_any_others_normalised(tags):
    """``Customer.tags``' converter returns a stored record's tags (already stripped, unique,
    sorted) as they are, and makes the same tuple as before of anything else."""
    from crmcore.entities import _tags

    expected = tuple(sorted({t.strip() for t in tags if t.strip()}))
    for given_as in (tags, tuple(tags)):
        assert _tags(given_as) == expected
    assert _tags(expected) is expected  # read back: not built again
    assert _tags(tuple(reversed(expected))) == expected


def test_from_docs_reads_each_document_as_from_doc_does():
    """A query's answer read at once: plain stored documents, an older form (the full path),
    and a class the loader cannot build (``Price``'s hook) all as ``from_doc`` reads them; a
    damaged one is the same ``StorageError``."""
    from crmcore.converter import from_docs

    older = a_task(due_at="2026-01-05T17:00:00+08:00", priority=3.0, notes=7)
    del older["ext"]
    docs = [a_task(), older, a_task(id="tsk_2", title="")]
    got = from_docs(Task, docs)
    assert len(got) == 3 and all(same(g, from_doc(Task, d)) for g, d in zip(got, docs, strict=True))
    assert got[1].priority is Priority.HIGH and got[1].notes == "7"
    assert from_docs(Task, []) == []
    with pytest.raises(StorageError, match="priority"):
        from_docs(Task, [a_task(), a_task(priority="urgent")])
    converter.register_structure_hook(Cents, lambda v, _t: Cents(round(float(v) * 100)))
    assert [p.amount for p in from_docs(Price, [{"id": "p", "amount": "1.25"}])] == [125]


@attrs.frozen
class _Plain:
    id: str
    n: int = 0


@attrs.frozen
class _Hooked:
    id: str


@attrs.frozen
class _HookedBase:
    id: str


@attrs.frozen
class _HookedChild(_HookedBase):
    extra: int = 0


@attrs.frozen
class _ByFactory:
    id: str


def test_whether_the_structure_hook_is_cattrs_generated_is_told_without_generating_it():
    """``stored_loader`` decides from cattrs' dispatch tables; the verdict is the one the hook
    itself gives (hooks by class, by base class, by predicate and by factory all count)."""
    from crmcore import converter as module

    converter.register_structure_hook(_Hooked, lambda d, _t: _Hooked(d["id"]))
    converter.register_structure_hook(_HookedBase, lambda d, _t: _HookedBase(d["id"]))
    converter.register_structure_hook_factory(
        lambda t: t is _ByFactory, lambda _t: lambda d, _u: _ByFactory(d["id"])
    )
    expected = {_Plain: True, _Hooked: False, _HookedChild: False, _ByFactory: False}
    for cls, generated in expected.items():
        assert module._hook_would_be_generated(cls) is generated, cls
        # and no structure function was generated to decide it
        name = f"<cattrs generated structure {cls.__module__}.{cls.__qualname__}"
        assert not [k for k in linecache.cache if k.startswith(name)], cls
        assert module._is_generated(converter.get_structure_hook(cls)) is generated, cls
        assert bool([k for k in linecache.cache if k.startswith(name)]) is generated, cls
        assert module._hook_would_be_generated(cls) is generated, cls  # once the hook exists
    assert stored_loader(_Plain) is not None
    assert stored_loader(_Hooked) is None and stored_loader(_ByFactory) is None
    assert from_doc(_Plain, {"id": "a"}) == _Plain("a")
