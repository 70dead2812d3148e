"""Callbacks and the shift handover through the web plugin's workspace (Starlette test
client): the callback list, the script and its answer (an unsatisfied one creates the
recovery task and the page says so), the handover and its acceptance; CSRF and validation."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("crmcore_web")

from crmcore_followup import handovers
from crmcore_followup.api import Roster

from crmcore import CRM
from crmcore.i18n_catalogs import problems

PASSWORD = "correct horse battery"
ACTORS = {
    "admin": {"role": "admin"},
    "ann": {"role": "agent", "team": "north"},
    "bo": {"role": "agent", "team": "north"},
    "wu": {"role": "shift_lead", "team": "north"},
}


def Workspace(crm: CRM, name: str) -> Any:
    """A signed-in browser stand-in (``crmcore_web.testing.SignedIn``)."""
    from crmcore_web.testing import SignedIn

    return SignedIn(crm, name, token_page="/followup/callbacks", password=PASSWORD)


@pytest.fixture
def crm(make_crm) -> CRM:
    crm = make_crm(
        ["web", "followup"],
        settings={
            "followup": {"teams": {"north": {"lead": "wu"}}},
            "security": {"enforce": True, "actors": ACTORS},
        },
    )
    roster = Roster(crm)
    for name in ("ann", "bo", "wu"):
        roster.add(name, actor="admin", team="north")
    return crm


def a_callback(crm: CRM, kind: str = "purchase"):
    customer = crm.customers.add(actor="admin", name="Li Wei", owner="ann")
    crm.interactions.log(actor="ann", customer_id=customer.id, kind=kind, amount=99.0)
    [task] = crm.tasks.find({"kind": "callback", "customer_id": customer.id})
    return customer, task


def test_the_callback_list_opens_the_script_for_the_purchase(crm, clock):
    _customer, task = a_callback(crm)
    ann = Workspace(crm, "ann")
    listing = ann.get("/followup/callbacks")
    assert listing.status_code == 200
    row = re.search(rf'data-task="{task.id}">(.*?)</tr>', listing.text, re.S)
    assert row and "Li Wei" in row.group(1) and "After a purchase" in row.group(1)
    page = ann.get(f"/followup/callbacks/{task.id}").text
    assert "Has everything arrived, and does it work as expected?" in page
    assert "If not satisfied:" in page and 'name="satisfied"' in page


def test_an_unsatisfied_answer_creates_the_recovery_task_and_the_page_says_so(crm, clock):
    customer, task = a_callback(crm)
    clock.advance(timedelta(hours=30))
    ann = Workspace(crm, "ann")
    answer = ann.post(
        f"/followup/callbacks/{task.id}",
        {"satisfied": "0", "score": "2", "channel": "phone", "notes": "the parcel came late"},
    )
    assert answer.status_code == 303
    [recovery] = crm.tasks.find({"kind": "recovery"})
    assert (recovery.assignee, recovery.customer_id) == ("wu", customer.id)
    assert crm.tasks.get(task.id).status.value == "done"
    page = ann.get(answer.headers["location"]).text
    assert "A recovery task was created for wu." in page  # the notice, once
    assert re.search(r'class="result">[^<]*A recovery task was created for wu\.', page)
    again = ann.get(answer.headers["location"]).text  # and on the page for good
    assert re.search(r'class="result">[^<]*A recovery task was created for wu\.', again)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"score": "3"}, "Say whether the customer is satisfied."),
        ({"satisfied": "1", "score": "9"}, "A score is 1 to 5."),
        ({"satisfied": "1", "channel": "pigeon"}, "Choose how you reached the customer."),
    ],
)
def test_a_wrong_answer_is_shown_in_the_form_and_writes_nothing(crm, form, message):
    _customer, task = a_callback(crm)
    ann = Workspace(crm, "ann")
    before = crm.interactions.count()
    answer = ann.post(f"/followup/callbacks/{task.id}", form)
    assert answer.status_code == 422 and message in answer.text
    assert crm.interactions.count() == before
    assert crm.tasks.get(task.id).is_open


def test_recording_without_the_csrf_token_is_refused(crm):
    _customer, task = a_callback(crm)
    ann = Workspace(crm, "ann")
    answer = ann.post(f"/followup/callbacks/{task.id}", {"satisfied": "1"}, csrf=False)
    assert answer.status_code == 403
    assert crm.tasks.get(task.id).is_open
    assert (
        ann.post("/followup/handover", {"to_rep": "bo", "note": "x"}, csrf=False).status_code == 403
    )
    assert handovers.written_by(crm, "ann") == []


def test_the_outgoing_rep_hands_over_and_the_incoming_rep_accepts(crm, clock):
    customer = crm.customers.add(actor="admin", name="Zhao Lei", owner="ann")
    urgent = crm.tasks.create(
        actor="ann",
        kind="follow_up",
        title="quote to send",
        due_at=crm.now() + timedelta(hours=1),
        customer_id=customer.id,
        assignee="ann",
        priority=3,
    )
    ann, bo = Workspace(crm, "ann"), Workspace(crm, "bo")
    page = ann.get("/followup/handover").text
    assert "quote to send" in page and "Zhao Lei" in page
    answer = ann.post("/followup/handover", {"to_rep": "bo", "note": "Zhao is in a hurry"})
    assert answer.status_code == 303
    waiting = bo.get("/followup/handover").text
    [written] = handovers.waiting_for(crm, "bo")
    assert "Zhao is in a hurry" in waiting and "quote to send" in waiting
    assert bo.post(f"/followup/handover/{written.id}/accept", {}).status_code == 303
    assert crm.tasks.get(urgent.id).assignee == "bo"
    assert "accepted" in ann.get("/followup/handover").text


def test_a_wrong_handover_is_shown_in_the_form_and_writes_nothing(crm):
    ann = Workspace(crm, "ann")
    answer = ann.post("/followup/handover", {"to_rep": "nobody", "note": "x"})
    assert answer.status_code == 422 and "unknown rep" in answer.text
    assert handovers.written_by(crm, "ann") == []
    # the refusal comes from the handover API, in the page's language
    chinese = ann.post(
        "/followup/handover",
        {"to_rep": "ann", "note": "x"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert chinese.status_code == 422
    assert "请交接给他人\uff0c而不是自己" in chinese.text and "not to yourself" not in chinese.text
    assert handovers.written_by(crm, "ann") == []


def test_callbacks_in_chinese(crm):
    _customer, task = a_callback(crm)
    ann = Workspace(crm, "ann")
    page = ann.get(f"/followup/callbacks/{task.id}", headers={"Accept-Language": "zh-CN"})
    assert "商品都收到了吗" in page.text and "客户是否满意" in page.text


def test_the_catalog_is_complete():
    source = Path(__import__("crmcore_followup").__file__).parent
    assert problems(source, source / "locale/zh_CN/LC_MESSAGES/crmcore_followup.po") == []


def unlabelled(html: str) -> list[str]:
    """Form fields (not hidden) without a ``<label for=…>`` naming their id."""
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    out = []
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag:
            continue
        found = re.search(r'\bid="([^"]+)"', tag)
        if found is None or found.group(1) not in labelled:
            out.append(tag)
    return out


def test_every_field_of_the_followup_pages_has_a_label(crm):
    _customer, task = a_callback(crm)
    wu = Workspace(crm, "wu")
    for path in (
        "/followup/callbacks",
        "/followup/callbacks?scope=all",
        f"/followup/callbacks/{task.id}",
        "/followup/handover",
    ):
        page = wu.get(path)
        assert page.status_code == 200, path
        assert unlabelled(page.text) == [], path


def test_a_callback_without_an_answer_score_or_note_leaves_no_empty_field(crm, clock):
    """The customer page's last callbacks and the script's previous ones join only the
    fields a callback has: never "· ·" or a trailing "·"."""
    customer, task = a_callback(crm)
    for fields in (
        {"summary": "asked about delivery"},  # no answer, no score
        {"satisfaction": 4},  # a score only
        {},  # the date alone
        {"ext": {"followup": {"satisfied": True}}},  # an answer only
    ):
        crm.interactions.log(actor="ann", customer_id=customer.id, kind="callback", **fields)
        clock.advance(hours=1)
    ann = Workspace(crm, "ann")
    customer_page = ann.get(f"/customers/{customer.id}").text
    script = ann.get(f"/followup/callbacks/{task.id}").text
    for page, heading in ((customer_page, "Last callbacks"), (script, "Earlier callbacks")):
        after = page.split(heading, 1)[1]
        items = re.findall(r"<li>(.*?)</li>", after.split("</ul>", 1)[0], re.S)
        assert len(items) == 4, (heading, items)
        for item in items:
            text = " ".join(item.split())
            assert "· ·" not in text and not text.endswith("·"), (heading, text)
        assert any(text.endswith("· asked about delivery") for text in items), items
    assert "satisfied" in customer_page.split("Last callbacks", 1)[1].split("</ul>", 1)[0]
