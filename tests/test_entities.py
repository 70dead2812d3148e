"""Entities, validation messages, normalisation, the converter and ids."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmcore.converter import from_doc, iso, parse_iso, to_doc
from crmcore.entities import Customer, Interaction, Priority, Task, TaskStatus
from crmcore.errors import StorageError, ValidationError
from crmcore.ids import new_id
from crmcore.normalize import normalize_email, normalize_phone
from crmcore.schema import personal_fields

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STAMPS = {"created_at": NOW, "created_by": "ann", "updated_at": NOW, "updated_by": "ann"}


def customer(**kw):
    return Customer(id="cus_1", **{"name": "Li Lei", **STAMPS, **kw})


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("138-0013-8000", None, "13800138000"),
        ("138 0013 8000", "86", "+8613800138000"),
        ("0138 0013 8000", "86", "+8613800138000"),
        ("+86 (138) 0013-8000", "86", "+8613800138000"),
        ("0086 138 0013 8000", None, "+8613800138000"),
        ("+1 415.555.0100", "86", "+14155550100"),
        ("+8613800138000", "86", "+8613800138000"),  # already normalised: returned as it is
        # issue 23: every way of writing one number gives one E.164 form (phonenumbers)
        ("8613800138000", "86", "+8613800138000"),
        (
            "\uff11\uff13\uff18\uff10\uff10\uff11\uff13\uff18\uff10\uff10\uff10",
            "86",
            "+8613800138000",
        ),
        ("\uff0b86 138 0013 8000", "86", "+8613800138000"),
        ("+44 (0)20 7946 0958", "86", "+442079460958"),
        ("010-8888 6666", "86", "+861088886666"),
    ],
)
def test_phone_normalisation(raw, country, expected):
    assert normalize_phone(raw, default_country_code=country) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("12345", "6 to 15 digits"),
        ("+1234567890123456", "too long"),
        ("+12345", "too short"),
        ("+123456", "too short"),
        ("138-abc-8000", "no country code"),
        ("", "is empty"),
        (" + ", "not a phone number"),
    ],
)
def test_malformed_phones_are_refused_with_the_reason(raw, fragment):
    with pytest.raises(ValidationError, match=fragment) as info:
        normalize_phone(raw)
    assert info.value.field == "phone"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("12345", "phone number '12345'"),
        ("138 0013 800", "no such number in CN"),
        ("+86 138 0013 80001", "phone number"),
    ],
)
def test_impossible_numbers_are_refused_with_a_country(raw, fragment):
    with pytest.raises(ValidationError, match=fragment):
        normalize_phone(raw, default_country_code="86")


def test_phone_type_is_kept():
    from crmcore.normalize import parse_phone

    assert parse_phone("13800138000", default_country_code="86").type == "mobile"
    assert parse_phone("010 8888 6666", default_country_code="86").type == "fixed_line"
    assert parse_phone("+1 800 555 0199", default_country_code="86").type == "toll_free"
    assert parse_phone("13800138000").type is None  # no country: digits kept, type unknown


def test_email_normalisation_and_refusal():
    assert normalize_email("  Li.Lei@Example.COM ") == "li.lei@example.com"
    for bad in ("li.lei", "li@", "@example.com", "li lei@example.com", "li@example"):
        with pytest.raises(ValidationError, match="malformed e-mail"):
            normalize_email(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "  "}, "name: must not be empty"),
        ({"gender": "robot"}, "gender: unknown value 'robot'"),
        ({"status": "sleeping"}, "status: unknown value"),
        ({"birth_date": "05/01/1990"}, "birth_date: expected a date"),
        ({"ext": {"grading": 3}}, "ext: expected a mapping"),
        ({"created_at": datetime(2026, 1, 1)}, "created_at: naive datetime"),
    ],
)
def test_customer_validation_names_the_field(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        customer(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": -1.0}, "amount: must not be negative"),
        ({"amount": "12"}, "amount: expected a number"),
        ({"satisfaction": 6}, "satisfaction: expected a whole number from 1 to 5"),
        ({"kind": "Bad Kind"}, "kind: 'Bad Kind' is not a kind name"),
        ({"channel": "pigeon"}, "channel: unknown value 'pigeon'"),
    ],
)
def test_interaction_validation_names_the_field(kwargs, message):
    base = {
        "id": "int_1",
        "customer_id": "cus_1",
        "kind": "purchase",
        "occurred_at": NOW,
        "created_at": NOW,
        "created_by": "ann",
    }
    with pytest.raises(ValidationError, match=message):
        Interaction(**{**base, **kwargs})


def test_datetimes_are_stored_in_utc_whatever_zone_they_came_in():
    shanghai = timezone(timedelta(hours=8))
    c = customer(created_at=datetime(2026, 1, 5, 17, 0, tzinfo=shanghai))
    assert c.created_at == NOW and c.created_at.tzinfo == UTC
    assert to_doc(c)["created_at"] == "2026-01-05T09:00:00.000000Z"


def test_round_trip_through_the_converter_preserves_everything():
    c = customer(
        phone="+8613800138000",
        tags=["vip", "b", "vip"],
        gender="female",
        birth_date=date(1990, 2, 3),
        ext={"grading": {"grades": {"pipeline": "A"}}},
    )
    doc = to_doc(c)
    assert doc["tags"] == ["b", "vip"] and doc["gender"] == "female"
    assert doc["birth_date"] == "1990-02-03"
    assert from_doc(Customer, doc) == c
    t = Task(
        id="tsk_1", kind="follow_up", title="call", due_at=NOW, priority=Priority.URGENT, **STAMPS
    )
    assert to_doc(t)["priority"] == 4 and to_doc(t)["status"] == "open"
    assert from_doc(Task, to_doc(t)) == t and from_doc(Task, to_doc(t)).status is TaskStatus.OPEN


def test_damaged_stored_record_is_a_storage_error_naming_it():
    doc = to_doc(customer())
    doc["created_at"] = "yesterday"
    with pytest.raises(StorageError, match="stored Customer 'cus_1' does not load"):
        from_doc(Customer, doc)


def test_personal_fields_are_declared():
    assert {"name", "phone", "email", "address", "birth_date", "chat_handles"} <= set(
        personal_fields(Customer)
    )
    assert "region" not in personal_fields(Customer)
    assert personal_fields(Interaction) == ("summary",)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_iso_round_trips_and_sorts_like_time(moment):
    assert parse_iso(iso(moment)) == moment
    later = moment + timedelta(microseconds=1)
    assert iso(moment) < iso(later)


def test_ids_are_time_ordered_and_unique():
    ids = [new_id("cus_", NOW) for _ in range(1000)]
    assert len(set(ids)) == 1000 and ids == sorted(ids)
    # monotonic within a process even if the clock goes back
    assert new_id("cus_", NOW - timedelta(days=1)) > ids[-1]
    later = new_id("cus_", NOW + timedelta(days=1))
    assert later > ids[-1] and later.startswith("cus_") and len(later) == 30


def _crockford(text: str) -> int:
    return int(
        "".join("0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(c).__format__("05b") for c in text), 2
    )


def test_an_id_holds_its_millisecond_and_counts_up_within_it():
    when = NOW + timedelta(days=3650, milliseconds=7)  # later than any id minted so far
    first, second = new_id("tsk_", when), new_id("tsk_", when)
    assert _crockford(first[4:14]) == _crockford(second[4:14]) == int(when.timestamp() * 1000)
    assert _crockford(second[4:]) == _crockford(first[4:]) + 1
    assert _crockford(first[14:]) < 2**80
    next_ms = new_id("tsk_", when + timedelta(milliseconds=1))
    assert _crockford(next_ms[4:14]) == int(when.timestamp() * 1000) + 1


def test_ids_count_up_across_a_block_of_1024(monkeypatch):
    from crmcore import ids

    when = NOW + timedelta(days=7300)  # later than any id minted so far
    new_id("tsk_", when)
    # two before the end of this block of 1,024 (the part encoded once per block stays right)
    monkeypatch.setattr(ids, "_last_rand", (ids._last_rand | 1023) - 2)
    minted = [new_id("tsk_", when) for _ in range(4)]
    numbers = [_crockford(i[4:]) for i in minted]
    assert numbers == [numbers[0] + k for k in range(4)] and numbers[1] % 1024 == 1023
    assert minted == sorted(minted)


def test_str_and_int_enums_in_plugin_records_are_stored_as_plain_values():
    import enum

    import attrs

    class Status(enum.StrEnum):
        OPEN = "open"

    class Level(enum.IntEnum):
        HIGH = 3

    @attrs.frozen
    class Ticket:
        id: str
        status: Status
        level: Level

    doc = to_doc(Ticket("t1", Status.OPEN, Level.HIGH))
    assert doc == {"id": "t1", "status": "open", "level": 3}
    assert type(doc["status"]) is str and type(doc["level"]) is int
    assert from_doc(Ticket, doc) == Ticket("t1", Status.OPEN, Level.HIGH)


@given(
    cc=st.sampled_from([1, 7, 44, 49, 81, 86, 852, 886, 800, 870, 882, 979]),
    nsn=st.integers(min_value=1000, max_value=10**12 - 1),
)
@settings(max_examples=300, derandomize=True)
def test_a_phone_is_accepted_exactly_when_phonenumbers_calls_it_valid(cc, nsn):
    """parse_phone asks for the number's type once instead of is_valid_number and then the type:
    the answers must agree with the library's own validity for every country code."""
    import phonenumbers

    from crmcore.normalize import parse_phone

    text = f"+{cc}{nsn}"
    try:
        number = phonenumbers.parse(text, "ZZ")
    except phonenumbers.NumberParseException:
        return
    possible = phonenumbers.is_possible_number_with_reason(number) in (
        phonenumbers.ValidationResult.IS_POSSIBLE,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    )
    try:
        parse_phone(text)
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == (possible and phonenumbers.is_valid_number(number))
