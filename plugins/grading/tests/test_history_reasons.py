"""Grade history reasons are stored with their message ids (no derivable English) and shown
in the reader's language: the workspace panel's recent changes, the API's records, the CLI;
records written before keep their text (issue 21)."""

from __future__ import annotations

from types import SimpleNamespace

from crmcore_grading import api, web
from crmcore_grading.records import HISTORY

from crmcore.i18n import Message, gettext, translate


def _zh(crm):
    return gettext("zh_CN", crm.plugins)


def test_a_grade_change_stores_its_reason_as_a_message_without_its_english(make_crm):
    crm = make_crm(plugins=["grading"])
    customer = crm.customers.add(actor="ann", name="Li Lei")
    api.set_inputs(crm, customer.id, actor="ann", demand="potential")
    docs = crm.collection(HISTORY).find({"customer_id": customer.id, "scheme": "pipeline"})
    assert len(docs) == 1
    assert docs[0]["reason"] == "potential need only"  # no parameters: stored as its id
    change = api.history(crm, customer.id, scheme="pipeline")[0]
    assert isinstance(change.reason, Message) and change.reason == "potential need only"
    assert translate(change.reason, _zh(crm)) == "仅有潜在需求"


def test_a_change_with_arguments_reads_back_in_chinese(make_crm):
    crm = make_crm(plugins=["grading"])
    customer = crm.customers.add(actor="ann", name="Han Mei")
    api.set_inputs(crm, customer.id, actor="ann", demand="target", expected_close="2000-01-01")
    doc = crm.collection(HISTORY).find({"customer_id": customer.id, "scheme": "pipeline"})[0]
    assert doc["reason"]["key"] == "%(need)s, expected to close %(day)s, date passed"
    assert "text" not in doc["reason"]
    change = api.history(crm, customer.id, scheme="pipeline")[0]
    assert change.reason == "clear need, expected to close 2000-01-01, date passed"
    shown = translate(change.reason, _zh(crm))
    assert "2000-01-01" in shown and "clear need" not in shown and "需求明确" in shown


def test_records_written_before_keep_their_english(make_crm):
    crm = make_crm(plugins=["grading"])
    customer = crm.customers.add(actor="ann", name="Old")
    crm.collection(HISTORY).insert(
        {
            "id": "grh_old",
            "customer_id": customer.id,
            "scheme": "pipeline",
            "old": None,
            "new": "D",
            "at": "2026-01-01T00:00:00.000000Z",
            "reason": "potential need only",
            "actor": "ann",
        }
    )
    old = api.history(crm, customer.id)[0]
    assert old.reason == "potential need only"
    assert translate(old.reason, _zh(crm)) == "仅有潜在需求"  # the text is a message id
    with_text = {"key": "%(n)s of %(m)s", "args": {"n": 1}, "text": "one of some"}
    version = crm.collection(HISTORY).get("grh_old")["version"]
    crm.collection(HISTORY).update("grh_old", {"reason": with_text}, expected_version=version)
    assert api.history(crm, customer.id)[0].reason == "one of some"  # the stored English wins


def test_the_panel_lists_recent_changes_with_their_reasons(make_crm):
    crm = make_crm(plugins=["grading"])
    customer = crm.customers.add(actor="ann", name="Wei")
    api.set_inputs(crm, customer.id, actor="ann", demand="potential")
    api.set_inputs(crm, customer.id, actor="ann", demand="dead")
    customer = crm.customers.get(customer.id)
    result = web.panel(SimpleNamespace(crm=crm), customer)  # type: ignore[arg-type]
    assert result is not None
    changes = result.context["changes"]
    assert [(c["old"], c["new"]) for c in changes][:2] == [("D", "E"), (None, "D")]
    reasons = [translate(c["reason"], _zh(crm)) for c in changes[:2]]
    assert reasons == ["无需求或无成交可能\uff08死客户\uff09", "仅有潜在需求"]
