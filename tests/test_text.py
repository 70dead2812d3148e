"""Text rules (docs/text.md): refused at the door naming the field, shown safely on the way out."""

from __future__ import annotations

import json
from datetime import timedelta

import attrs
import pytest

from crmcore.converter import to_doc
from crmcore.errors import ValidationError
from crmcore.records import Records
from crmcore.schema import free_text, name_text
from crmcore.storage.memory import MemoryStore
from crmcore.testing.cli import one_line_error
from crmcore.text import encodable_text, for_terminal, json_text

SURROGATE = "\ud800"
NAME_REFUSED = [
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\t",
    "\n",
    "\r",
    "\u2028",
    "\u202e",
    "\u2066",
    "\u200f",
    SURROGATE,
    "\udced",
]
FREE_REFUSED = ["\x00", "\x1b", "\x07", "\x7f", "\x9b", SURROGATE]
FREE_KEPT = ["\n", "\t", "\r\n", "\u202e", "\u200f"]


# -- customers, interactions and tasks through the API ---------------------------------------

CUSTOMER_TEXT = [
    "name",
    "phone",
    "email",
    "address",
    "region",
    "occupation",
    "organisation",
    "owner",
    "source",
]


@pytest.mark.parametrize("field", CUSTOMER_TEXT)
def test_every_customer_text_field_refuses_a_lone_surrogate_naming_the_field(crm, field):
    fields = {"name": "Ann", field: f"x{SURROGATE}y"}
    with pytest.raises(ValidationError) as raised:
        crm.customers.add(actor="ann", **fields)
    assert str(raised.value).startswith(f"{field}: ")
    if field not in ("phone", "email"):  # those two say what a phone or an e-mail may hold
        assert "not valid Unicode (a lone surrogate, U+D800)" in str(raised.value)
    assert crm.customers.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", ["ok", f"bad{SURROGATE}"]),
        ("chat_handles", {"wechat": f"li{SURROGATE}"}),
        ("chat_handles", {f"we{SURROGATE}": "li"}),
        ("ext", {"nps": {"note": f"x{SURROGATE}"}}),
        ("ext", {"nps": {"deep": [{"k": SURROGATE}]}}),
    ],
)
def test_lists_mappings_and_ext_refuse_a_lone_surrogate_at_any_depth(crm, field, value):
    with pytest.raises(ValidationError, match=rf"^{field}[.:]"):
        crm.customers.add(actor="ann", name="Ann", **{field: value})
    assert crm.customers.count() == 0


def test_updates_refuse_what_adds_refuse(crm):
    ann = crm.customers.add(actor="ann", name="Ann")
    for bad in ({"name": "A\x1bnn"}, {"region": SURROGATE}, {"tags": ["a\nb"]}):
        with pytest.raises(ValidationError):
            crm.customers.update(ann.id, actor="ann", **bad)
    assert crm.customers.get(ann.id).version == ann.version


@pytest.mark.parametrize("char", NAME_REFUSED)
def test_a_name_refuses_control_bidi_and_line_break_characters(crm, char):
    with pytest.raises(ValidationError, match=r"^name: contains "):
        crm.customers.add(actor="ann", name=f"Li{char}Lei")
    assert crm.customers.count() == 0


def test_names_keep_what_real_names_need(crm):
    for name in (
        "李雷",
        "José Ñúñez",
        "O'Brien-Smith",
        "محمد",
        "👩\u200d👩\u200d👧",
        "Zoë\u200cX",
        "[/b] :smile:",
    ):
        assert crm.customers.add(actor="ann", name=name).name == name


@pytest.mark.parametrize("char", FREE_REFUSED)
def test_free_text_refuses_control_characters_and_surrogates(crm, char):
    ann = crm.customers.add(actor="ann", name="Ann")
    with pytest.raises(ValidationError, match=r"^summary: contains "):
        crm.interactions.log(
            actor="ann", customer_id=ann.id, kind="visit", summary=f"said {char} this"
        )
    with pytest.raises(ValidationError, match=r"^notes: contains "):
        crm.tasks.create(
            actor="ann", kind="callback", title="Call", due_at=crm.now(), notes=f"x{char}"
        )
    assert crm.interactions.count() == 0


@pytest.mark.parametrize("kept", FREE_KEPT)
def test_free_text_keeps_line_breaks_tabs_and_bidi_marks(crm, kept):
    ann = crm.customers.add(actor="ann", name="Ann")
    logged = crm.interactions.log(
        actor="ann", customer_id=ann.id, kind="visit", summary=f"first{kept}second"
    )
    assert crm.interactions.get(logged.id).summary == f"first{kept}second"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "Call\nnow"),
        ("title", SURROGATE),
        ("assignee", "ann\x1b"),
        ("kind", "callback\x00"),
        ("assignee", "ann\u202e"),
    ],
)
def test_task_names_refuse_control_characters(crm, field, value):
    fields = {
        "kind": "callback",
        "title": "Call",
        "due_at": crm.now() + timedelta(hours=1),
        field: value,
    }
    with pytest.raises(ValidationError, match=rf"^{field}: "):
        crm.tasks.create(actor="ann", **fields)


def test_the_actor_of_a_write_is_a_name(crm):
    # refused as the entity's created_by, or earlier as the write's actor: either names it
    with pytest.raises(ValidationError, match=r"^(created_by|actor): .*U\+001B"):
        crm.customers.add(actor="ann\x1b[2J", name="Ann")


# -- plugin records -----------------------------------------------------------------------------


@attrs.frozen
class Note:
    id: str
    title: str = attrs.field(validator=name_text)
    body: str = attrs.field(default="", validator=free_text)
    labels: tuple[str, ...] = ()
    data: dict = attrs.field(factory=dict)
    version: int = 0


def test_plugin_records_refuse_a_lone_surrogate_in_any_field_validated_or_not():
    notes = Records(MemoryStore().collection("nps.notes"), Note)
    for bad in (
        {"labels": ("a", SURROGATE)},
        {"data": {"k": [SURROGATE]}},
        {"data": {SURROGATE: 1}},
    ):
        with pytest.raises(ValidationError, match=r"^Note"):
            notes.insert(Note(id="n1", title="ok", **bad))
    kept = notes.insert(Note(id="n1", title="ok", body="line\nline"))
    with pytest.raises(ValidationError, match=r"^Note.data"):
        notes.update(kept, data={"k": SURROGATE})
    with pytest.raises(ValidationError, match=r"^body: contains a control"):
        notes.update(kept, body="\x00")
    assert notes.get("n1") == kept


# -- the same rules through the command line and the importer -----------------------------------


@pytest.fixture
def cli(crm_cli):
    return crm_cli()


def count(cli) -> int:
    code, out, _ = cli("--json", "customer", "list", "--limit", "1000")
    assert code == 0
    return len(json.loads(out))


@pytest.mark.parametrize(
    "name", ["\udced\udca0\udc80", "a\x1b[31mred", "a\u202eb", "a\x00b", "two\nlines"]
)
def test_the_cli_refuses_bad_text_in_one_line_naming_the_field(cli, name):
    code, out, err = cli("customer", "add", "--name", name)
    line = one_line_error(err)
    assert code == 2 and out == "" and line.startswith("error: name: contains")
    assert "\x1b" not in err and "\u202e" not in err and "\x00" not in err
    assert count(cli) == 0


def test_a_jsonl_row_with_a_lone_surrogate_is_a_bad_row_naming_line_and_field(cli, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"name": "Ann"}\n{"name": "B\\ud800b"}\n{"name": "Cy", "tags": ["\\udfff"]}\n',
        encoding="utf-8",
    )
    code, out, err = cli("customer", "import", str(rows))
    assert code == 2 and "imported 1 of 3" in out
    assert f"{rows}:2: name: contains text that is not valid Unicode" in err
    assert f"{rows}:3: tags: contains text that is not valid Unicode" in err
    assert count(cli) == 1


# -- text stored before the rules is shown, never fatal ----------------------------------------


BAD_NAMES = ["\ud800", "a\x1b[2Jb", "x\u202ey", "[/b]", ":smile:", "nul\x00", "del\x7f"]


@pytest.fixture
def stored_badly(cli):
    """A store holding names written before the rules (straight into the collection)."""
    crm = cli.open()
    ann = crm.customers.add(actor="ann", name="Ann", phone="13800138000")
    for i, name in enumerate(BAD_NAMES):
        doc = {**to_doc(ann), "id": f"cus_bad{i}", "name": name}
        crm.store.collection("customers").insert(doc)
    crm.close()
    return cli


def test_a_listing_shows_stored_control_characters_escaped(stored_badly):
    code, out, err = stored_badly("customer", "list")
    assert code == 0, err
    for raw in ("\x1b", "\u202e", "\x00", "\x7f"):
        assert raw not in out
    for shown in ("\\ud800", "a\\x1b[2Jb", "x\\u202ey", "[/b]", ":smile:", "nul\\x00", "del\\x7f"):
        assert shown in out


def test_json_listing_and_export_carry_stored_text_exactly(stored_badly):
    code, out, err = stored_badly("--json", "customer", "list")
    assert code == 0, err
    out.encode("utf-8")  # encodable, whatever was stored
    assert {c["name"] for c in json.loads(out)} == {"Ann", *BAD_NAMES}
    assert "\x1b" not in out and "\u202e" not in out
    code, out, err = stored_badly("customer", "export")
    assert code == 0, err
    assert {json.loads(line)["name"] for line in out.splitlines()} == {"Ann", *BAD_NAMES}
    code, out, err = stored_badly("customer", "export", "--format", "csv")
    assert code == 0 and "\\ud800" in out, err
    out.encode("utf-8")


def test_duplicates_and_show_work_on_a_store_holding_bad_text(stored_badly):
    code, out, err = stored_badly("customer", "duplicates")
    assert code == 0 and "\\ud800" in out and "\x1b" not in out, err
    code, out, err = stored_badly("customer", "show", "cus_bad1")
    assert code == 0 and "a\\x1b[2Jb" in out and "\x1b" not in out, err
    code, out, _ = stored_badly("--json", "customer", "show", "cus_bad0")
    assert code == 0 and json.loads(out)["customer"]["name"] == "\ud800"


def test_error_lines_escape_what_the_user_typed(cli):
    code, _out, err = cli("customer", "show", "cus_\x1b[2J\u202e")
    line = one_line_error(err)
    assert code == 3 and "\x1b" not in line and "\u202e" not in line
    assert "\\x1b[2J\\u202e" in line


# -- the helpers --------------------------------------------------------------------------------


def test_for_terminal_escapes_and_keeps():
    assert for_terminal("plain text, 中文") == "plain text, 中文"
    assert for_terminal("a\x1bb\u202ec\ud800") == "a\\x1bb\\u202ec\\ud800"
    assert for_terminal("one\ntwo") == "one\ntwo"
    assert for_terminal("one\ntwo\tx", one_line=True) == "one\\x0atwo\\x09x"


@pytest.mark.parametrize("value", ["\ud800", "a\u202eb\x7f", "\x85\u2028", "中文\x1b", "ok"])
def test_json_text_is_the_same_json_value_encodable_and_inert(value):
    text = json_text({"v": value, "k": [value]})
    text.encode("utf-8")
    assert json.loads(text) == {"v": value, "k": [value]}
    assert not any(c in text for c in "\x1b\u202e\x7f\x85\u2028")


def test_encodable_text_escapes_only_lone_surrogates():
    assert encodable_text("a\ud800b中") == "a\\ud800b中"
    assert encodable_text("x\x1b") == "x\x1b"


def test_bytes_a_shell_passed_that_are_not_utf8_are_named_as_such(crm):
    with pytest.raises(ValidationError, match=r"bytes that are not valid UTF-8 \(0xED\)"):
        crm.customers.add(actor="ann", name="\udced\udca0\udc80")  # b"\xed\xa0\x80" via argv


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"a": {"b": ["ok", "x\ud800"]}}, "ext.a.b"),
        ({"a": {"k\udc00": 1}}, "ext.a"),
        ([{"n": "\ud800"}], "ext.n"),
        # what JSON cannot hold goes the long way, still refused at any depth
        ({"a": {"s": {"x\ud800"}}}, "ext.a.s"),
        ({"a": ("t", "\udfff")}, "ext.a"),
        ({1: {"b": "\ud800"}}, "ext.b"),
    ],
)
def test_check_encodable_refuses_a_lone_surrogate_however_deep_naming_its_path(value, field):
    from crmcore.text import check_encodable

    with pytest.raises(ValidationError) as raised:
        check_encodable(value, "ext")
    assert raised.value.field == field


def test_check_encodable_accepts_what_utf8_encodes_json_or_not():
    from datetime import UTC, datetime

    from crmcore.text import check_encodable

    for value in (
        {"a": {"b": ["中文", 1, None, 2.5, True]}, "c": []},
        [{"x": "é"}, "ok"],
        {1: "a", "s": {"x", "y"}, "t": ("u",), "d": datetime(2026, 1, 1, tzinfo=UTC)},
    ):
        check_encodable(value, "ext")
