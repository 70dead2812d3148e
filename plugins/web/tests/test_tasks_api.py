"""Tasks over HTTP: my queue, one task, claim, complete, reschedule, assign."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmcore.converter import iso


def _task(web, title, due_in, assignee="ann", **fields):
    return web.crm.tasks.create(
        actor="system",
        kind="follow_up",
        title=title,
        due_at=web.crm.now() + due_in,
        assignee=assignee,
        **fields,
    )


@pytest.mark.api_covers("GET", "/tasks/queue")
def test_my_queue_splits_overdue_due_today_and_upcoming(web):
    late = _task(web, "late", -timedelta(hours=1))
    today = _task(web, "today", timedelta(hours=3))
    soon = _task(web, "soon", timedelta(days=2))
    _task(web, "far", timedelta(days=10))
    _task(web, "bo's", -timedelta(hours=1), assignee="bo")
    answer = web.client.get("/api/v1/tasks/queue", headers=web.as_["ann"])
    assert answer.status_code == 200
    queue = {k: [t["id"] for t in v] for k, v in answer.json().items()}
    assert queue == {"overdue": [late.id], "due_today": [today.id], "upcoming": [soon.id]}
    wider = web.client.get(
        "/api/v1/tasks/queue", params={"days": 30}, headers=web.as_["ann"]
    ).json()
    assert [t["title"] for t in wider["upcoming"]] == ["soon", "far"]


@pytest.mark.api_covers("GET", "/tasks/queue")
def test_another_reps_queue_is_visible_to_their_lead_not_to_a_colleague(web):
    _task(web, "bo's", -timedelta(hours=1), assignee="bo")
    url = "/api/v1/tasks/queue"
    by_ann = web.client.get(url, params={"assignee": "bo"}, headers=web.as_["ann"]).json()
    by_lee = web.client.get(url, params={"assignee": "bo"}, headers=web.as_["lee"]).json()
    assert by_ann["overdue"] == [] and [t["title"] for t in by_lee["overdue"]] == ["bo's"]


@pytest.mark.api_covers("GET", "/tasks/{task_id}")
def test_get_a_task_with_policy_and_404(web):
    mine = _task(web, "mine", timedelta(hours=1))
    theirs = _task(web, "theirs", timedelta(hours=1), assignee="bo")
    got = web.client.get(f"/api/v1/tasks/{mine.id}", headers=web.as_["ann"])
    assert got.status_code == 200 and got.json()["title"] == "mine"
    assert got.headers["etag"] == f'"{mine.version}"'
    assert web.client.get(f"/api/v1/tasks/{theirs.id}", headers=web.as_["ann"]).status_code == 403
    assert web.client.get("/api/v1/tasks/tsk_nope", headers=web.as_["ann"]).status_code == 404


@pytest.mark.api_covers("POST", "/tasks/{task_id}/claim")
def test_claim_takes_an_unassigned_task_and_never_steals_one(web):
    free = _task(web, "free", timedelta(hours=1), assignee=None)
    taken = _task(web, "taken", timedelta(hours=1), assignee="bo")
    answer = web.client.post(f"/api/v1/tasks/{free.id}/claim", headers=web.as_["ann"])
    assert answer.status_code == 200 and answer.json()["assignee"] == "ann"
    hidden = web.client.post(f"/api/v1/tasks/{free.id}/claim", headers=web.as_["bo"])
    assert hidden.status_code == 403  # an agent may not even read a colleague's task
    again = web.client.post(f"/api/v1/tasks/{free.id}/claim", headers=web.as_["lee"])
    assert again.status_code == 409 and "assigned to ann" in again.json()["error"]["message"]
    assert (
        web.client.post(f"/api/v1/tasks/{taken.id}/claim", headers=web.as_["lee"]).status_code
        == 409
    )
    assert web.crm.tasks.get(taken.id).assignee == "bo"


@pytest.mark.api_covers("POST", "/tasks/{task_id}/complete")
def test_complete_with_outcome_and_if_match(web):
    task = _task(web, "call back", timedelta(hours=1))
    url = f"/api/v1/tasks/{task.id}/complete"
    stale = web.client.post(
        url, headers={**web.as_["ann"], "If-Match": '"7"'}, json={"outcome": "reached"}
    )
    assert stale.status_code == 409 and web.crm.tasks.get(task.id).is_open
    refused = web.client.post(url, headers=web.as_["bo"], json={"outcome": "reached"})
    assert refused.status_code == 403
    done = web.client.post(
        url,
        headers={**web.as_["ann"], "If-Match": f'"{task.version}"'},
        json={"outcome": "reached"},
    )
    assert done.status_code == 200
    assert done.json()["status"] == "done" and done.json()["outcome"] == "reached"
    twice = web.client.post(url, headers=web.as_["ann"])  # no body: no outcome
    assert twice.status_code == 422 and "only open tasks" in twice.json()["error"]["message"]


@pytest.mark.api_covers("POST", "/tasks/{task_id}/reschedule")
def test_reschedule_needs_a_time_with_an_offset(web):
    task = _task(web, "call", timedelta(hours=1))
    url = f"/api/v1/tasks/{task.id}/reschedule"
    naive = web.client.post(url, headers=web.as_["ann"], json={"due_at": "2026-01-09T10:00"})
    assert naive.status_code == 422 and naive.json()["error"]["field"] == "due_at"
    missing = web.client.post(url, headers=web.as_["ann"], json={})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "due_at"
    moved = web.client.post(
        url, headers=web.as_["ann"], json={"due_at": "2026-01-09T10:00:00+08:00"}
    )
    assert moved.status_code == 200 and moved.json()["due_at"] == "2026-01-09T02:00:00.000000Z"
    assert iso(web.crm.tasks.get(task.id).due_at) == "2026-01-09T02:00:00.000000Z"


@pytest.mark.api_covers("POST", "/tasks/{task_id}/assign")
def test_assign_follows_the_policy(web):
    task = _task(web, "call", timedelta(hours=1), assignee="bo")
    url = f"/api/v1/tasks/{task.id}/assign"
    assert web.client.post(url, headers=web.as_["ann"], json={"assignee": "ann"}).status_code == 403
    moved = web.client.post(url, headers=web.as_["lee"], json={"assignee": "ann"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "ann"
    cleared = web.client.post(url, headers=web.as_["lee"], json={"assignee": None})
    assert cleared.status_code == 200 and cleared.json()["assignee"] is None


@pytest.mark.api_covers("GET", "/tasks/{task_id}")
def test_a_title_given_as_a_message_is_answered_in_the_readers_language(web):
    from crmcore.i18n import msg

    task = _task(web, msg("Follow-up"), timedelta(hours=1))  # a message of the core's catalog
    url, who = f"/api/v1/tasks/{task.id}", web.as_["ann"]
    plain = web.client.get(url, headers=who).json()
    assert (plain["title"], plain["title_key"], plain["title_args"]) == (
        "Follow-up",
        "Follow-up",
        {},
    )
    assert web.client.get(url, params={"lang": "zh_CN"}, headers=who).json()["title"] == "跟进"
    chinese = web.client.get(url, headers={**who, "Accept-Language": "zh-CN,zh;q=0.9"}).json()
    assert chinese["title"] == "跟进" and chinese["title_key"] == "Follow-up"
    english = web.client.get(url, params={"lang": "en"}, headers={**who, "Accept-Language": "zh"})
    assert english.json()["title"] == "Follow-up"
    queue = web.client.get("/api/v1/tasks/queue", params={"lang": "zh-CN"}, headers=who).json()
    assert [t["title"] for t in queue["due_today"] + queue["upcoming"]] == ["跟进"]
    # a title given as text is answered as written, whatever the language
    text = _task(web, "Ring the shop", timedelta(hours=2))
    got = web.client.get(f"/api/v1/tasks/{text.id}", params={"lang": "zh_CN"}, headers=who)
    assert got.json()["title"] == "Ring the shop" and got.json()["title_key"] is None


def test_an_unknown_lang_is_a_clear_400(web):
    answer = web.client.get("/api/v1/tasks/queue", params={"lang": "fr"}, headers=web.as_["ann"])
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "lang"
    assert "en, zh_CN" in answer.json()["error"]["message"]


def test_a_plugins_reasons_are_answered_in_the_readers_language(web_for):
    web = web_for(("web", "grading"))
    customer = web.customer("Li Wei", owner="ann")
    from crmcore_grading import api as grading

    grading.set_inputs(web.crm, customer["id"], actor="admin", demand="dead")
    url = f"/api/v1/grading/customers/{customer['id']}"

    def reason(**params):
        view = web.client.get(url, params=params, headers=web.as_["admin"]).json()
        return next(g["reason"] for g in view["grades"] if g["scheme"] == "pipeline")

    assert reason() == "no need or no chance of a deal (dead)"
    assert reason(lang="zh_CN").startswith("无需求或无成交可能")
    assert reason(lang="en") == "no need or no chance of a deal (dead)"
