"""crmcore.api: what every server of the JSON API shares, and the test client built on it."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

import attrs
import pytest

from crmcore import ApiParam, ApiRoute, hookimpl
from crmcore.api import (
    api_routes,
    error_status,
    match_path,
    parse_body,
    query_bool,
    query_datetime,
    query_int,
    query_text,
    to_json,
)
from crmcore.errors import (
    ConflictError,
    CrmError,
    NotFoundError,
    PermissionDenied,
    PluginError,
    ValidationError,
)
from crmcore.schema import non_empty
from crmcore.testing.api import CALLS, ApiClient


class Mood(enum.StrEnum):
    HAPPY = "happy"
    SAD = "sad"


@attrs.frozen
class Line:
    sku: str
    qty: int


@attrs.frozen
class Body:
    name: str = attrs.field(validator=non_empty)
    points: int = 0
    amount: float | None = None
    urgent: bool = False
    mood: Mood | None = None
    verdict: Literal["valid", "invalid"] = "valid"
    when: datetime | None = None
    day: date | None = None
    lines: tuple[Line, ...] = ()


def problem(doc):
    with pytest.raises(ValidationError) as caught:
        parse_body(Body, doc)
    return caught.value.field, str(caught.value)


def test_parse_body_structures_every_json_type():
    body = parse_body(
        Body,
        {
            "name": "Ann",
            "points": 3,
            "amount": 2,
            "urgent": True,
            "mood": "sad",
            "verdict": "invalid",
            "when": "2026-01-05T17:00:00+08:00",
            "day": "2026-02-01",
            "lines": [{"sku": "a", "qty": 2}],
        },
    )
    assert body == Body(
        "Ann",
        3,
        2.0,
        True,
        Mood.SAD,
        "invalid",
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        date(2026, 2, 1),
        (Line("a", 2),),
    )


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        ({"name": "a", "extra": 1}, "extra", "unknown field extra"),
        (
            {"name": "a", "lines": [{"sku": "x", "qty": 1, "colour": "red"}]},
            "lines[0].colour",
            "unknown field colour",
        ),
        ({"name": "a", "points": "5"}, "points", "expected a whole number"),
        ({"name": "a", "points": True}, "points", "expected a whole number"),
        ({"name": "a", "points": 1.5}, "points", "expected a whole number"),
        ({"name": 7}, "name", "expected text"),
        ({"name": "a", "urgent": 1}, "urgent", "expected true or false"),
        ({"name": "a", "amount": "2"}, "amount", "expected a number"),
        ({"name": "a", "mood": "angry"}, "mood", "unknown value 'angry' (allowed: happy, sad)"),
        (
            {"name": "a", "verdict": "maybe"},
            "verdict",
            "unknown value 'maybe' (allowed: valid, invalid)",
        ),
        ({"name": "a", "verdict": True}, "verdict", "unknown value True"),
        ({"name": "a", "when": "2026-01-05T09:00:00"}, "when", "no time zone"),
        ({"name": "a", "day": "5 Jan"}, "day", "not a date"),
        (
            {"name": "a", "lines": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": "2"}]},
            "lines[1].qty",
            "expected a whole number",
        ),
        ({"name": "a", "lines": "ab"}, "lines", "expected a list"),
        ({"name": "a", "lines": {"sku": "x", "qty": 1}}, "lines", "expected a list"),
        ({}, "name", "required"),
        ({"name": ""}, "name", "empty"),
    ],
)
def test_parse_body_refuses_naming_the_field(doc, field, words):
    got_field, message = problem(doc)
    assert got_field == field
    assert words in message


@attrs.frozen
class Counted:
    qty: int = attrs.field(validator=attrs.validators.ge(1))
    sku: str = attrs.field(default="x", validator=attrs.validators.instance_of(str))


@attrs.frozen
class Basket:
    items: list[Counted]


def test_parse_body_names_the_field_an_attrs_validator_refused():
    with pytest.raises(ValidationError) as caught:
        parse_body(Basket, {"items": [{"qty": 1}, {"qty": 0}]})
    assert caught.value.field == "items[1].qty" and ">= 1" in str(caught.value)


@attrs.frozen
class Collections:
    tags: frozenset[str] = frozenset()
    seen: set[int] = attrs.field(factory=set)
    order: Sequence[int] = ()


def test_parse_body_takes_sets_and_sequences_only_from_json_arrays():
    body = parse_body(Collections, {"tags": ["b", "a", "b"], "seen": [1], "order": [3, 1]})
    assert body == Collections(frozenset({"a", "b"}), {1}, [3, 1])
    for doc, field in (
        ({"tags": "ab"}, "tags"),
        ({"seen": {"1": 1}}, "seen"),
        ({"order": "31"}, "order"),
        ({"seen": [1, "2"]}, "seen[1]"),
        ({"order": [1, True]}, "order[1]"),
    ):
        with pytest.raises(ValidationError) as caught:
            parse_body(Collections, doc)
        assert caught.value.field == field, doc


def test_parse_body_gives_datetimes_in_utc():
    body = parse_body(Body, {"name": "a", "when": "2026-01-05T17:00:00+08:00"})
    assert body.when.tzinfo is UTC and body.when.hour == 9


def test_parse_body_needs_an_object():
    field, message = problem(["name"])
    assert field is None and "JSON object" in message


def test_to_json_makes_plain_json():
    value = [
        Body(
            "Ann",
            when=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
            mood=Mood.HAPPY,
            lines=(Line("a", 1),),
        ),
        {"at": date(2026, 1, 2), "t": (1, 2)},
    ]
    assert to_json(value) == [
        {
            "name": "Ann",
            "points": 0,
            "amount": None,
            "urgent": False,
            "mood": "happy",
            "verdict": "valid",
            "when": "2026-01-05T09:00:00.000000Z",
            "day": None,
            "lines": [{"sku": "a", "qty": 1}],
        },
        {"at": "2026-01-02", "t": [1, 2]},
    ]
    assert to_json("x") == "x" and to_json(None) is None
    assert to_json({1: timedelta(minutes=2), "s": {3, 1, 2}, "f": frozenset()}) == {
        "1": 120.0,
        "s": [1, 2, 3],
        "f": [],
    }
    assert to_json({"n": Decimal("1.50")}) == {"n": "1.50"}


def test_match_path():
    assert match_path("/a/{id}/b", "/a/7/b") == {"id": "7"}
    assert match_path("/a/{id}/b", "/a/7/c") is None
    assert match_path("/a/{id}", "/a/7/b") is None
    assert match_path("/a/{id}", "/a/") is None
    assert match_path("/a.b", "/aXb") is None


def test_query_helpers():
    q = {"limit": "20", "bad": "x", "flag": "true", "off": "0", "status": "open", "empty": ""}
    assert query_int(q, "limit", 5, minimum=1) == 20
    assert query_int(q, "missing", 5) == 5
    assert query_int(q, "empty", 5) == 5
    with pytest.raises(ValidationError) as caught:
        query_int(q, "bad")
    assert caught.value.field == "bad"
    with pytest.raises(ValidationError, match="at most 10"):
        query_int(q, "limit", maximum=10)
    assert query_bool(q, "flag") is True and query_bool(q, "off") is False
    with pytest.raises(ValidationError, match="true or false"):
        query_bool(q, "status")
    assert query_text(q, "status", choices=("open", "closed")) == "open"
    when = {"until": "2026-01-05T18:00:00+08:00", "naive": "2026-01-05T18:00", "bad": "x"}
    assert query_datetime(when, "until") == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert query_datetime(when, "missing") is None
    for name in ("naive", "bad"):
        with pytest.raises(ValidationError) as caught:
            query_datetime(when, name)
        assert caught.value.field == name
    with pytest.raises(ValidationError, match="allowed: a, b"):
        query_text(q, "status", choices=("a", "b"))


def test_error_status():
    assert [
        error_status(e)
        for e in (
            ValidationError("x"),
            NotFoundError("x"),
            ConflictError("x"),
            PermissionDenied("x"),
            CrmError("x"),
        )
    ] == [422, 404, 409, 403, 500]


@attrs.frozen
class Greeting:
    text: str
    at: datetime


@attrs.frozen
class Shout:
    words: str


def hello(request):
    return Greeting(f"hello {request.path['name']} from {request.actor}", request.crm.now())


def shout(request):
    return {"said": request.body.words.upper(), "times": int(request.query.get("times", "1"))}


class Plugin:
    @hookimpl
    def crm_api_routes(self, crm):
        return [
            ApiRoute("GET", "/p/hello/{name}", hello, "Say hello", response=Greeting),
            ApiRoute(
                "POST",
                "/p/shout",
                shout,
                "Shout",
                body=Shout,
                status=201,
                query=[ApiParam("times", "how often", type="integer")],
            ),
        ]


class Twin:
    @hookimpl
    def crm_api_routes(self, crm):
        return [ApiRoute("GET", "/p/hello/{who}", hello, "Say hello too")]


def test_client_calls_routes_as_the_server_would(make_crm):
    client = ApiClient(make_crm([("p", Plugin())]))
    answer = client.call("GET", "/p/hello/ann", actor="bob")
    assert answer.status == 200
    assert answer.json == {"text": "hello ann from bob", "at": "2026-01-05T09:00:00.000000Z"}
    answer = client.call("POST", "/p/shout", actor="bob", body={"words": "hi"}, query={"times": 2})
    assert (answer.status, answer.json) == (201, {"said": "HI", "times": 2})
    answer = client.call("POST", "/p/shout?times=3", actor="bob", body={"words": "hi"})
    assert answer.json == {"said": "HI", "times": 3}
    with pytest.raises(ValidationError) as caught:
        client.call("POST", "/p/shout", actor="bob", body={"words": "hi", "loud": True})
    assert caught.value.field == "loud"
    with pytest.raises(ValidationError) as caught:  # no body is an empty object, as served
        client.call("POST", "/p/shout", actor="bob")
    assert caught.value.field == "words"
    with pytest.raises(ValidationError, match="takes no request body"):
        client.call("GET", "/p/hello/x", actor="bob", body={})
    with pytest.raises(ValidationError, match="not allowed"):
        client.call("DELETE", "/p/shout", actor="bob")
    with pytest.raises(NotFoundError):
        client.call("GET", "/p/nothing", actor="bob")
    assert client.called == {("GET", "/p/hello/{name}"), ("POST", "/p/shout")}
    assert CALLS[-1] == ("POST", "/p/shout")  # a refused call never reached a route


class Loose:
    @hookimpl
    def crm_api_routes(self, crm):
        return [ApiRoute("POST", "/loose", hello, "Loose", body=dict)]


def test_a_route_whose_body_is_not_an_attrs_class_is_refused_naming_the_plugin(make_crm):
    with pytest.raises(PluginError, match=r"'loose'.*body must be an attrs class"):
        api_routes(make_crm([("loose", Loose())]))


def test_head_runs_the_get_route_and_answers_no_body(make_crm):
    client = ApiClient(make_crm([("p", Plugin())]), http=False)
    answer = client.call("HEAD", "/p/hello/ann", actor="bob")
    assert (answer.status, answer.json) == (200, None)
    assert ("GET", "/p/hello/{name}") in client.called


def test_two_plugins_declaring_one_route_are_named(make_crm):
    crm = make_crm([("p", Plugin()), ("twin", Twin())])
    with pytest.raises(PluginError, match="both plugin 'p' and plugin 'twin'") as caught:
        api_routes(crm)
    assert "'p'" in str(caught.value) and "'twin'" in str(caught.value)


def test_to_json_walks_plain_containers_and_turns_keys_into_text():
    nested = {Mood.HAPPY: [Line("a", 1), {"d": date(2026, 1, 2)}], 2: {"x": [None, 1.5]}}
    assert to_json(nested) == {
        "happy": [{"sku": "a", "qty": 1}, {"d": "2026-01-02"}],
        "2": {"x": [None, 1.5]},
    }
