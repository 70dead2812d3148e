"""Data-born text (task titles, reasons) stored with its message id and parameters and shown
in the reader's language; text stored without them shown as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from crmcore import hookimpl, i18n
from crmcore.converter import to_doc
from crmcore.effects import TaskDraft
from crmcore.i18n import N_, msg, restored, stored, term, translate
from crmcore.messages import Message, from_message_doc, message_doc
from crmcore.registry import Kinds, TranslationCatalog
from crmcore.testing.factories import make_test_crm

PO = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Call %(who)s about %(what)s"
msgstr "就%(what)s致电%(who)s"

msgid "the invoice"
msgstr "发票"

msgid "Broken %(gone)s"
msgstr "坏的 %(other)s"
"""


class Catalog:
    """A third-party plugin with its own catalog and a task it titles with a message."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def crm_translations(self):
        return [TranslationCatalog(self.folder, "thirdparty")]

    @hookimpl
    def crm_kinds(self):
        return Kinds(tasks=("chase",), task_labels={"chase": N_("the invoice")})


@pytest.fixture
def crm(tmp_path):
    po = tmp_path / "zh_CN" / "LC_MESSAGES" / "thirdparty.po"
    po.parent.mkdir(parents=True)
    po.write_text(PO, "utf-8")
    i18n.clear_cache()
    with make_test_crm([("thirdparty", Catalog(tmp_path))]) as crm:
        yield crm
    i18n.clear_cache()


def zh(crm):
    return i18n.gettext("zh_CN", crm.plugins)


def test_a_message_title_is_stored_with_its_id_and_args_and_shown_in_chinese(crm):
    title = msg("Call %(who)s about %(what)s", who="Ann", what=term(N_("the invoice")))
    task = crm.tasks.create(actor="t", kind="chase", title=title, due_at=crm.now())
    assert type(task.title) is str and task.title == "Call Ann about the invoice"
    assert task.title_key == "Call %(who)s about %(what)s"
    assert task.title_args == {"who": "Ann", "what": {"key": "the invoice"}}
    doc = crm.store.collection("tasks").get(task.id)
    # stored as its message: the English is rendered again when the task is read
    assert "title" not in doc and doc["title_key"] == task.title_key
    again = crm.tasks.get(task.id)
    assert str(again.title_message) == "Call Ann about the invoice"
    assert translate(again.title_message, zh(crm)) == "就发票致电Ann"
    assert translate(again.title_message, i18n.gettext("en", crm.plugins)) == again.title


def test_an_effect_task_titled_with_a_message_keeps_it(crm):
    draft = TaskDraft(
        kind="chase",
        title=msg("Call %(who)s about %(what)s", who="Bo", what="rent"),
        due_at=crm.now(),
    )
    task, _new = crm.tasks.create_from(draft, actor="t")
    assert translate(crm.tasks.get(task.id).title_message, zh(crm)) == "就rent致电Bo"


def test_text_only_titles_are_shown_as_written_or_as_a_known_message_id(crm):
    plain = crm.tasks.create(actor="t", kind="chase", title="Ring the shop", due_at=crm.now())
    assert plain.title_key is None and "title_key" in to_doc(plain)
    assert translate(plain.title_message, zh(crm)) == "Ring the shop"
    # an older record whose English happens to be a message id is translated all the same
    known = crm.tasks.create(actor="t", kind="chase", title="the invoice", due_at=crm.now())
    assert translate(known.title_message, zh(crm)) == "发票"


def test_a_record_written_before_the_fields_existed_reads(crm):
    task = crm.tasks.create(actor="t", kind="chase", title="Old one", due_at=crm.now())
    coll = crm.store.collection("tasks")
    doc = coll.get(task.id)
    doc.pop("title_key", None), doc.pop("title_args", None)  # blank: not stored either
    coll.replace(task.id, doc, expected_version=doc["version"]) if hasattr(
        coll, "replace"
    ) else None
    old = crm.tasks.get(task.id)
    assert old.title == "Old one" and translate(old.title_message, zh(crm)) == "Old one"


def test_a_translation_that_does_not_fit_the_args_falls_back_to_the_english(crm):
    value = restored(stored(msg("Broken %(gone)s", gone="x")))
    assert translate(value, zh(crm)) == "Broken x"


def test_reasons_round_trip_through_their_stored_form(crm):
    reason = msg("Call %(who)s about %(what)s", who="Cy", what=term(N_("the invoice")))
    doc = stored(reason)
    assert doc == {  # no "text": the id and the arguments give the English back
        "key": "Call %(who)s about %(what)s",
        "args": {"who": "Cy", "what": {"key": "the invoice"}},
    }
    back = restored(doc)
    assert isinstance(back, Message) and back == "Call Cy about the invoice"
    assert translate(back, zh(crm)) == "就发票致电Cy"
    assert stored("plain words") == "plain words" and restored("plain words") == "plain words"


def test_a_record_that_stored_the_english_still_reads_it(crm):
    doc = {
        "key": "Call %(who)s about %(what)s",
        "args": {"who": "Cy", "what": {"key": "the invoice"}},
        "text": "Call Cy about the invoice",
    }
    back = restored(doc)
    assert back == "Call Cy about the invoice" and translate(back, zh(crm)) == "就发票致电Cy"


@pytest.mark.parametrize(
    "value",
    [
        msg("%(n)s months", n=6),
        msg("%(n)s points", n=2.5),
        msg("%(flag)s", flag=True),
        msg("Call %(who)s", who=msg("%(n)s months", n=None)),
        i18n.joined(term(N_("the invoice")), msg("Call %(who)s about %(what)s", who="D", what="x")),
    ],
)
def test_stored_text_is_left_out_only_where_it_reads_back_the_same(value):
    doc = stored(value)
    assert isinstance(doc, dict) and "text" not in doc
    assert restored(json.loads(json.dumps(doc))) == str(value)


def test_a_message_without_parameters_is_stored_as_its_id(crm):
    doc = stored(term(N_("the invoice")))
    assert doc == "the invoice"  # its id is its English: no document around it
    back = restored(doc)
    assert isinstance(back, Message) and translate(back, zh(crm)) == "发票"
    # plain text (older records, plugins that give text) reads as written in every language
    assert translate(restored("Call the supplier"), zh(crm)) == "Call the supplier"


@pytest.mark.parametrize(
    "value",
    [
        msg("%(days)s", days=(1, 2)),  # a tuple comes back a list: "[1, 2]"
        msg("%(n)s", n=float("inf")),
        msg("%(n)s", n=Decimal("1.50")),
        msg("Call %(who)s", who=restored({"key": "%(n)s", "args": {}, "text": "shown as"})),
        restored({"key": "Due %(when)s", "args": {}, "text": "Due Monday"}),
    ],
)
def test_text_that_the_id_does_not_give_back_is_stored(value):
    doc = stored(value)
    assert isinstance(doc, dict) and doc["text"] == str(value)
    assert restored(json.loads(json.dumps(doc, default=str))) == str(value)


def test_joined_parts_round_trip(crm):
    value = i18n.joined(
        term(N_("the invoice")), msg("Call %(who)s about %(what)s", who="D", what="x")
    )
    doc = message_doc(value)
    assert doc == {
        "parts": [
            {"key": "the invoice"},
            {"key": "Call %(who)s about %(what)s", "args": {"who": "D", "what": "x"}},
        ],
        "sep": "; ",
    }
    back = from_message_doc(doc)
    assert back == "the invoice; Call D about x"
    assert translate(back, zh(crm)) == "发票\uff1b就x致电D"  # a full-width semicolon


@pytest.mark.parametrize(
    "bad", [{"key": 3}, {"args": {}}, {"key": "k", "args": [1]}, {"text": 5}, [1, 2], 7]
)
def test_unreadable_stored_messages_show_their_text_or_nothing(bad):
    shown = restored(bad)
    assert isinstance(shown, str)
    assert shown in ("", "7", "[1, 2]")


def test_stored_text_wins_over_args_that_no_longer_fit():
    value = restored({"key": "Due %(when)s", "args": {}, "text": "Due Monday"})
    assert value == "Due Monday"
    assert translate(value, lambda m: m) == "Due Monday"


def test_task_kinds_have_labels_from_the_declaring_plugin(crm):
    assert crm.task_kind_label("chase") == "the invoice"
    assert zh(crm)(crm.task_kind_label("chase")) == "发票"
    assert crm.task_kind_label("follow_up") == "Follow-up"
    assert zh(crm)(crm.task_kind_label("follow_up")) != "Follow-up"
    assert crm.task_kind_label("unknown_kind") == "Unknown kind"


BUNDLED = ["grading", "followup", "loyalty", "complaints", "service", "web"]


def test_every_task_kind_of_the_bundled_plugins_has_a_chinese_label():
    i18n.clear_cache()
    with make_test_crm(BUNDLED) as crm:
        gettext = i18n.gettext("zh_CN", crm.plugins)
        assert {"referral_ask", "recovery", "improvement", "qa_review"} <= crm.task_kinds
        unlabelled = [k for k in sorted(crm.task_kinds) if k not in crm._task_labels]
        assert unlabelled == []
        english = {k: crm.task_kind_label(k) for k in crm.task_kinds}
        untranslated = [k for k, label in english.items() if gettext(label) == label]
        assert untranslated == []


def test_every_task_title_the_bundled_plugins_write_is_a_message_of_their_catalogs():
    """The plugins' sources make titles with msg(): no f-string or plain title left."""
    import re

    root = Path(__file__).resolve().parent.parent / "plugins"
    plain = []
    for source in sorted(root.glob("*/src/*/*.py")):
        text = source.read_text("utf-8")
        for m in re.finditer(r"\btitle=(f?[\"'])", text):
            line = text[: m.start()].count("\n") + 1
            context = text[max(0, m.start() - 400) : m.start()]
            if "TaskDraft(" in context or "tasks.create(" in context or "flow_task(" in context:
                plain.append(f"{source.relative_to(root)}:{line}")
    assert plain == []


def _crm_cli(*args: str, lang: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM", "LC_", "LANG"))}
    env.update({"LANG": lang, "COLUMNS": "250"})
    return subprocess.run(
        [sys.executable, "-m", "crmcore.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_crm_tables_show_titles_in_the_terminals_language(tmp_path):
    folder = tmp_path / "demo"
    made = _crm_cli("demo", "--customers", "6", "--days", "2", "--dir", str(folder), lang="C")
    assert made.returncode == 0, made.stderr
    config = str(folder / "crm.toml")
    due = ("--config", config, "--as", "admin", "tasks", "due", "--within", "30d")
    chinese = _crm_cli(*due, lang="zh_CN.UTF-8")
    assert chinese.returncode == 0, chinese.stderr
    assert "首次联系新客户" in chinese.stdout
    assert "First contact with a new customer" not in chinese.stdout
    english = _crm_cli(*due, lang="en_US.UTF-8")
    assert (
        "First contact with a new customer" in english.stdout and "首次联系" not in english.stdout
    )
    # --json stays as stored: the English with its message id, whatever the terminal says
    as_json = _crm_cli("--json", *due, lang="zh_CN.UTF-8")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    first = next(r for r in rows if r["kind"] == "first_contact")
    assert first["title"] == "First contact with a new customer"
    assert first["title_key"] == "First contact with a new customer"
