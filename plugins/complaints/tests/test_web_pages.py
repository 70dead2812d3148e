"""The complaint desk's pages through the web plugin's workspace (Starlette test client):
the desk, the intake form, the ticket page's actions, the customer panel; CSRF and form
validation (a wrong entry is shown in the form and writes nothing)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("crmcore_web")

from crmcore_complaints.api import Complaints

from crmcore import CRM
from crmcore.i18n_catalogs import problems
from crmcore.testing import START

PASSWORD = "correct horse battery"
ACTORS = {
    "admin": {"role": "admin"},
    "ann": {"role": "agent", "team": "north"},
    "dana": {"role": "agent", "team": "north"},
    "wu": {"role": "shift_lead", "team": "north"},
    "mei": {"role": "manager"},
}
SETTINGS = {
    "shifts": [{"lead": "wu", "start": "00:00", "end": "24:00"}],
    "departments": {"customer_service": {"manager": "mei"}},
}


def Desk(crm: CRM, name: str) -> Any:
    """A signed-in browser stand-in (``crmcore_web.testing.SignedIn``)."""
    from crmcore_web.testing import SignedIn

    return SignedIn(crm, name, token_page="/complaints", password=PASSWORD)


@pytest.fixture
def crm(make_crm) -> CRM:
    return make_crm(
        ["web", "complaints"],
        settings={"complaints": SETTINGS, "security": {"enforce": True, "actors": ACTORS}},
    )


def customer(crm: CRM, name: str = "Li Wei") -> str:
    return crm.customers.add(actor="admin", name=name, phone="+86 138 0013 8000", owner="ann").id


def tickets(crm: CRM) -> int:
    return Complaints(crm).tickets.count()


def test_the_desk_shows_my_tickets_with_their_countdown_in_the_stores_zone(make_crm, clock):
    crm = make_crm(
        ["web", "complaints"],
        core={"timezone": "Asia/Shanghai"},
        settings={"complaints": SETTINGS, "security": {"enforce": True, "actors": ACTORS}},
    )
    cid = customer(crm)
    ticket = Complaints(crm).open(actor="ann", customer_id=cid, content="broken kettle")
    desk = Desk(crm, "ann")
    clock.set(START + timedelta(hours=2))
    page = desk.get("/complaints")
    assert page.status_code == 200
    row = re.search(rf'<tr class="ticket" data-ticket="{ticket.id}">(.*?)</tr>', page.text, re.S)
    assert row and "Li Wei" in row.group(1)
    # first response due at START + 12 h = 2026-01-05 21:00 UTC = 2026-01-06 05:00 Shanghai;
    # a store in Shanghai speaks Chinese unless the browser asks otherwise
    assert "2026年1月6日 05:00" in row.group(1) and "10小时后" in row.group(1)
    english = desk.get("/complaints", headers={"Accept-Language": "en"}).text
    [shown] = re.findall(r"First response: ([^<]*)", english)
    assert "in 10 hours" in shown and "05:00" in shown and "21:00" not in shown
    assert "SLA breached" not in english
    clock.set(START + timedelta(hours=13))
    desk = Desk(crm, "ann")  # signed in again: a session does not outlive a night
    late = desk.get("/complaints?overdue=1", headers={"Accept-Language": "en"}).text
    assert ticket.id in late and "SLA breached" in late
    assert desk.get("/complaints?scope=everyone").status_code == 422


def test_intake_registers_a_complaint_and_lands_on_the_ticket(crm):
    cid = customer(crm)
    desk = Desk(crm, "ann")
    form = desk.get(f"/complaints/new?customer_id={cid}")
    assert form.status_code == 200 and "Li Wei" in form.text
    answer = desk.post(
        "/complaints/new",
        {
            "customer_id": cid,
            "channel": "phone",
            "category": "service",
            "claim": "repair_replace_redo",
            "emotions": ["angry", "anxious"],
            "priority": "high",
            "content": "the technician never came",
            "register": "1",
        },
    )
    assert answer.status_code == 303
    [ticket] = Complaints(crm).find()
    assert answer.headers["location"] == f"/complaints/{ticket.id}"
    assert (
        ticket.customer_id,
        ticket.channel.value,
        ticket.category,
        ticket.claim.value,
        [e.value for e in ticket.emotions],
        ticket.priority.name,
        ticket.owner,
    ) == (cid, "phone", "service", "repair_replace_redo", ["angry", "anxious"], "HIGH", "ann")
    page = desk.get(answer.headers["location"])
    assert "the technician never came" in page.text and "Escalation ladder" in page.text


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"content": "x"}, "customer", "Choose the customer who complains."),
        (
            {"customer_id": "CID", "content": "  "},
            "content",
            "Say what the customer complains about.",
        ),
        (
            {"customer_id": "CID", "content": "x", "category": "weather"},
            "category",
            "unknown category",
        ),
        ({"customer_id": "CID", "content": "x", "emotions": ["furious"]}, "emotions", "furious"),
        ({"customer_id": "cus_missing", "content": "x"}, "customer", "No such customer"),
    ],
)
def test_a_wrong_intake_is_shown_in_the_form_and_writes_nothing(crm, form, field, message):
    cid = customer(crm)
    desk = Desk(crm, "ann")
    data = {k: (v.replace("CID", cid) if isinstance(v, str) else v) for k, v in form.items()}
    answer = desk.post("/complaints/new", {"channel": "phone", **data, "register": "1"})
    assert answer.status_code == 422
    assert message in answer.text and "Please check what you entered." in answer.text
    assert tickets(crm) == 0
    assert crm.interactions.count() == 0


def test_the_intake_form_finds_the_customer_by_phone(crm):
    cid = customer(crm)
    desk = Desk(crm, "ann")
    found = desk.post("/complaints/new", {"find": "+8613800138000", "find_customer": "1"})
    assert found.status_code == 200 and f'value="{cid}"' in found.text
    assert tickets(crm) == 0


def test_posts_without_the_csrf_token_are_refused_and_write_nothing(crm):
    cid = customer(crm)
    ticket = Complaints(crm).open(actor="ann", customer_id=cid, content="late parcel")
    desk = Desk(crm, "ann")
    assert (
        desk.post("/complaints/new", {"customer_id": cid, "content": "x"}, csrf=False).status_code
        == 403
    )
    assert (
        desk.post(f"/complaints/{ticket.id}/note", {"note": "hello"}, csrf=False).status_code == 403
    )
    assert (
        desk.post(
            f"/complaints/{ticket.id}/judge", {"valid": "1", "csrf_token": "forged"}, csrf=False
        ).status_code
        == 403
    )
    assert tickets(crm) == 1 and len(Complaints(crm).history(ticket.id)) == 1


def test_the_whole_flow_from_the_ticket_page(crm, clock):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="wrong size delivered")
    ann, wu, mei = Desk(crm, "ann"), Desk(crm, "wu"), Desk(crm, "mei")

    def act(desk: Desk, action: str, **fields: Any) -> Any:
        current = api.get(ticket.id)
        answer = desk.post(
            f"/complaints/{ticket.id}/{action}", {"version": current.version, **fields}
        )
        assert answer.status_code == 303, answer.text
        return api.get(ticket.id)

    assert act(ann, "judge", valid="1").status == "valid"
    assert act(wu, "dispatch", handler="ann").status == "dispatched"
    assert act(wu, "chase", note="any news?").chases == 1
    assert act(ann, "respond", message="we will swap it").status == "in_progress"
    assert act(ann, "propose", solution="swap the item", compensation="20").pending_proposal
    assert act(mei, "approve", decision="approve").approved_proposal.compensation == 20
    assert act(ann, "resolve", resolution="swapped", cause="Wrong Label").status == "resolved"
    assert act(ann, "close", note="").status == "closed"
    reopened = act(ann, "feedback", satisfied="0", score="1", note="still wrong")
    assert (reopened.status, reopened.reopen_count, reopened.satisfied) == ("in_progress", 1, False)
    page = ann.get(f"/complaints/{ticket.id}").text
    # the chase trace names who chased and who was asked (the handler)
    assert re.search(r'data-kind="chase">.*?any news\?.*?wu.*?ann \(Handler\)', page, re.S)
    assert "Reopened → In progress: customer not satisfied at the callback" in page


def test_a_wrong_action_shows_the_error_in_its_form_and_writes_nothing(crm):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="rude staff")
    desk = Desk(crm, "ann")
    before = api.get(ticket.id)
    answer = desk.post(
        f"/complaints/{ticket.id}/judge",
        {"version": before.version, "valid": "0", "explanation": ""},
    )
    assert answer.status_code == 422
    assert re.search(r'id="err-judge">[^<]*polite explanation', answer.text)
    after = api.get(ticket.id)
    assert (after.version, after.status) == (before.version, "registered")
    answer = desk.post(
        f"/complaints/{ticket.id}/propose",
        {"version": api.get(ticket.id).version, "solution": "x", "compensation": "lots"},
    )
    assert answer.status_code == 422 and "expected a number" in answer.text


def test_a_stale_form_is_a_conflict_shown_on_the_ticket(crm):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="rude staff")
    desk = Desk(crm, "ann")
    api.judge(ticket, actor="ann", valid=True)  # someone else, meanwhile
    answer = desk.post(
        f"/complaints/{ticket.id}/judge",
        {"version": ticket.version, "valid": "0", "explanation": "sorry"},
    )
    assert answer.status_code == 409
    assert "Someone changed this ticket" in answer.text
    assert api.get(ticket.id).status == "valid"


def test_the_escalated_ladder_and_chase_trace_show_names_and_times(crm, clock):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="no signal")
    clock.set(START + timedelta(hours=24))
    crm.tick("w1")
    page = Desk(crm, "ann").get(f"/complaints/{ticket.id}").text
    step = re.search(r'<tr class="step reached" data-level="1">(.*?)</tr>', page, re.S)
    assert step and "Escalated to wu at " in step.group(1)
    assert re.search(r'data-kind="escalation">.*?the system.*?wu \(Shift lead\)', page, re.S)
    assert "Escalated to" in Desk(crm, "wu").get("/complaints").text


def test_the_customer_page_panel_lists_open_and_closed_tickets(crm):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="no signal")
    desk = Desk(crm, "ann")
    page = desk.get(f"/customers/{cid}")
    assert page.status_code == 200
    assert f'href="/complaints/{ticket.id}"' in page.text
    assert f"/complaints/new?customer_id={cid}" in page.text


def test_chinese_desk(crm):
    customer(crm)
    desk = Desk(crm, "ann")
    page = desk.get("/complaints", headers={"Accept-Language": "zh-CN"})
    assert "投诉台" in page.text and "登记投诉" in page.text


def test_system_notes_and_refusals_read_in_the_pages_language(crm):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="wrong size delivered")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="wu", handler="ann")
    ticket = api.respond(ticket, actor="ann", message="we will swap it")
    ticket = api.propose(ticket, actor="ann", solution="swap the item")
    ticket = api.approve(ticket, actor="mei")
    ticket = api.resolve(ticket, actor="ann", resolution="swapped")
    ticket = api.close(ticket, actor="ann")
    api.record_callback(ticket, actor="ann", score=1, satisfied=False, note="still wrong")
    [reopened] = [t for t in api.history(ticket.id) if t.action == "reopened"]
    # stored with its message id and parameters; the English stays in ``note``
    assert reopened.note == "customer not satisfied at the callback (score 1)"
    assert (reopened.note_key, reopened.note_args) == (
        "customer not satisfied at the callback (score %(score)s)",
        {"score": 1},
    )
    desk = Desk(crm, "ann")
    zh = {"Accept-Language": "zh-CN"}
    page = desk.get(f"/complaints/{ticket.id}", headers=zh).text
    assert "客户回访时不满意\uff08评分 1\uff09" in page and "not satisfied" not in page
    assert "we will swap it" in page  # what a person typed is shown as typed
    english = desk.get(f"/complaints/{ticket.id}", headers={"Accept-Language": "en"}).text
    assert "customer not satisfied at the callback (score 1)" in english
    # a refusal raised inside the API: the ticket is in progress, not waiting on the customer
    current = api.get(ticket.id)
    answer = desk.post(
        f"/complaints/{ticket.id}/resume", {"version": current.version, "note": ""}, headers=zh
    )
    assert answer.status_code == 422
    assert f"工单 {ticket.id} 未在等待客户" in answer.text
    assert "is not waiting" not in answer.text
    assert api.get(ticket.id).version == current.version  # nothing written
    # a status that does not allow the action: status and action words translated too
    api.resolve(api.get(ticket.id), actor="ann", resolution="swapped again")
    api.close(api.get(ticket.id), actor="ann")
    current = api.get(ticket.id)
    answer = desk.post(
        f"/complaints/{ticket.id}/chase", {"version": current.version, "note": "?"}, headers=zh
    )
    assert answer.status_code == 422
    assert "状态为“已关闭”\uff1a不能催办" in answer.text and "cannot chase" not in answer.text
    refused = desk.post(
        f"/complaints/{ticket.id}/chase",
        {"version": current.version, "note": "?"},
        headers={"Accept-Language": "en"},
    )
    assert "is closed: cannot chase it (only when dispatched, in_progress)" in refused.text


def test_a_refusal_of_the_role_reads_in_the_pages_language(crm):
    cid = customer(crm)
    api = Complaints(crm)
    ticket = api.open(actor="ann", customer_id=cid, content="rude staff")
    ticket = api.judge(ticket, actor="ann", valid=True)
    ticket = api.dispatch(ticket, actor="wu", handler="ann")
    ticket = api.propose(ticket, actor="ann", solution="an apology")
    answer = Desk(crm, "wu").post(
        f"/complaints/{ticket.id}/approve",
        {"version": ticket.version, "decision": "approve"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert answer.status_code == 403
    assert "只能由 customer_service 的经理 mei 审批" in answer.text


def test_the_catalog_is_complete():
    source = Path(__import__("crmcore_complaints").__file__).parent
    assert problems(source, source / "locale/zh_CN/LC_MESSAGES/crmcore_complaints.po") == []


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


def test_every_field_of_the_desk_pages_has_a_label(crm, clock):
    cid = customer(crm)
    api = Complaints(crm)
    fresh = api.open(actor="ann", customer_id=cid, content="one")
    moving = api.dispatch(
        api.judge(api.open(actor="ann", customer_id=cid, content="two"), actor="ann", valid=True),
        actor="wu",
        handler="ann",
    )
    moving = api.propose(moving, actor="ann", solution="swap")
    desk = Desk(crm, "ann")
    for path in (
        "/complaints",
        f"/complaints/new?customer_id={cid}&find=Li+Wei",
        f"/complaints/{fresh.id}",
        f"/complaints/{moving.id}",
    ):
        page = desk.get(path)
        assert page.status_code == 200, path
        assert unlabelled(page.text) == [], path
