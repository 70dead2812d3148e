"""``CollectionSpec(record_type="module:Class", personal=(...))``: a plugin's record classes
named, so that opening a CRM does not define them; their personal fields still protected."""

from __future__ import annotations

import sys
import textwrap

import attrs
import pytest

from crmcore.schema import field, personal_fields
from crmcore.storage import CollectionSpec


@pytest.fixture
def record_module(tmp_path, monkeypatch):
    """A module ``crmtest_named_records`` with a record class, importable, not imported."""
    (tmp_path / "crmtest_named_records.py").write_text(
        textwrap.dedent(
            """
            import attrs
            from crmcore.schema import field

            @attrs.frozen
            class Note:
                id: str
                customer_id: str
                text: str = field(personal=True, default="")
                kind: str = "note"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "crmtest_named_records", raising=False)
    return "crmtest_named_records"


def test_personal_fields_given_with_a_named_type_do_not_import_its_module(record_module):
    spec = CollectionSpec("notes.notes", record_type=f"{record_module}:Note", personal=("text",))
    assert spec.personal_fields() == ("text",)
    assert record_module not in sys.modules
    cls = spec.record_class()  # imported now, and checked against ``personal``
    assert cls is not None and cls.__name__ == "Note" and record_module in sys.modules
    assert personal_fields(cls) == ("text",)


def test_without_personal_a_named_type_is_read_at_open(record_module):
    spec = CollectionSpec("notes.notes", record_type=f"{record_module}:Note")
    assert spec.personal_fields() == ("text",)  # correct, at the price of the import
    assert record_module in sys.modules


def test_personal_fields_that_differ_from_the_class_are_refused(record_module):
    for wrong in ((), ("text", "kind")):
        spec = CollectionSpec("notes.notes", record_type=f"{record_module}:Note", personal=wrong)
        with pytest.raises(ValueError, match=r"notes\.notes.*declares \('text',\) personal"):
            spec.record_class()


def test_a_class_given_itself_says_which_fields_are_personal():
    @attrs.frozen
    class Thing:
        id: str
        secret: str = field(personal=True, default="")

    spec = CollectionSpec("things.things", record_type=Thing)
    assert spec.record_class() is Thing
    assert spec.personal_fields() == ("secret",)
    assert CollectionSpec("things.plain").personal_fields() == ()
    with pytest.raises(ValueError, match="personal is given with a record type named"):
        CollectionSpec("things.things", record_type=Thing, personal=("secret",))


@pytest.mark.parametrize("bad", ["crmtest_named_records", "mod:", ":Note", "mod.Note"])
def test_a_record_type_name_must_be_module_and_class(bad):
    with pytest.raises(ValueError, match="is not 'module:Class'"):
        CollectionSpec("notes.notes", record_type=bad)


def test_a_name_that_is_not_a_class_is_refused(record_module):
    spec = CollectionSpec("notes.notes", record_type=f"{record_module}:field")
    with pytest.raises(TypeError, match="not a class"):
        spec.record_class()


def test_every_installed_plugins_named_record_types_resolve_with_their_personal_fields(
    make_crm,
):
    """The shipped plugins name their record classes and spell out their collections' names
    and personal fields: each resolves, its personal fields are the class's (``record_class``
    checks them), and each name is the one its model module uses."""
    from crmcore_complaints import model as complaints
    from crmcore_followup import handovers
    from crmcore_followup import records as followup
    from crmcore_grading import records as grading
    from crmcore_loyalty import records as loyalty
    from crmcore_service import model as service
    from crmcore_web import apikeys, sessions, users

    crm = make_crm(["complaints", "service", "web", "loyalty", "followup", "grading"])
    specs = {spec.name: spec for spec in crm.collection_specs()}
    named = {name for name, spec in specs.items() if isinstance(spec.record_type, str)}
    modules = {
        complaints: ("TICKETS", "TRACES", "OUTBOX", "ACTIONS"),
        service: ("ORDERS", "TRANSITIONS", "CHARGES", "CARE", "QA_REVIEWS", "STAFF_COMPLAINTS"),
        apikeys: ("KEYS",),
        users: ("USERS",),
        sessions: ("SESSIONS",),
        loyalty: ("LEDGER", "ACCOUNTS", "CODES", "REFERRALS", "CURSORS", "TOTALS"),
        followup: ("SCHEDULE", "REPS", "STATE"),
        handovers: ("HANDOVERS",),
        grading: ("HISTORY",),
    }
    spelt = {getattr(module, constant) for module, names in modules.items() for constant in names}
    assert spelt <= named
    for name in named:
        spec = specs[name]
        cls = spec.record_class()
        assert cls is not None and attrs.has(cls), name
        assert spec.personal is not None, f"{name}: personal fields not given beside the name"
        assert set(spec.personal_fields()) == set(personal_fields(cls)), name
        assert cls.__module__ == spec.record_type.partition(":")[0], name


def test_a_plugins_tests_catch_personal_fields_that_are_not_the_classs(record_module, make_crm):
    """``make_crm`` (``crmcore.testing``) resolves every named record type: a plugin that
    forgot a personal field beside the name fails its own tests, not silently in production."""
    from crmcore import hookimpl

    class Notes:
        @hookimpl
        def crm_collections(self):
            return [CollectionSpec("notes.notes", record_type=f"{record_module}:Note", personal=())]

    with pytest.raises(ValueError, match=r"notes\.notes.*declares \('text',\) personal"):
        make_crm([("notes", Notes())])
