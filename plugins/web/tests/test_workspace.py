"""The workspace served in process (Starlette's test client): sign-in, sessions, CSRF,
permissions, My day, the customer page, search, the language. Browser tests are in
test_workspace_browser.py."""

from __future__ import annotations

import re
import warnings
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from crmcore_web.users import Users

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from crmcore_web import create_app

PASSWORD = "correct horse battery"
ACTORS = {
    "admin": {"role": "admin"},
    "ann": {"role": "agent", "team": "north", "department": "sales"},
    "bo": {"role": "agent", "team": "north", "department": "sales"},
    "cy": {"role": "agent", "team": "south", "department": "support"},
    "mia": {"role": "manager", "department": "sales"},
    "lee": {"role": "shift_lead", "team": "north", "department": "sales"},
    "aud": {"role": "auditor"},
}
STACK = ["web", "grading", "followup", "complaints", "loyalty"]


class Site:
    """A CRM with users for every actor, and a browser-like client per person."""

    def __init__(self, crm: Any) -> None:
        self.crm = crm
        self.app = create_app(crm)
        self.users = Users(crm)
        self.clients: list[Any] = []

    def user(self, name: str) -> None:
        """``name`` may sign in (users are made on demand: argon2 hashing costs)."""
        if self.users.find(name) is None:
            self.users.add(name, PASSWORD, actor="admin")

    def client(self, lang: str | None = "en") -> Any:
        """A browser; ``lang`` is its Accept-Language (None: it sends none)."""
        headers = {"Accept-Language": lang} if lang else {}
        client = TestClient(self.app, base_url="http://testserver", headers=headers)
        self.clients.append(client)
        return client

    def signed_in(self, name: str, lang: str | None = "en") -> Any:
        self.user(name)
        client = self.client(lang)
        page = client.get("/login")
        answer = client.post(
            "/login", data={"username": name, "password": PASSWORD, "csrf_token": csrf(page.text)}
        )
        assert answer.status_code == 200 and answer.url.path == "/", answer.text
        return client

    def customer(self, name: str = "Wang Wei", **fields: Any) -> Any:
        return self.crm.customers.add(actor="admin", name=name, **fields)

    def task(self, customer: Any, assignee: str, hours: float = -1, **fields: Any) -> Any:
        return self.crm.tasks.create(
            actor="admin",
            kind="follow_up",
            title=fields.pop("title", "Ask how it went"),
            due_at=self.crm.now() + timedelta(hours=hours),
            customer_id=customer.id,
            assignee=assignee,
            **fields,
        )


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
def site(make_crm: Any) -> Any:
    crm = make_crm(
        plugins=STACK,
        settings={
            "core": {"timezone": "Asia/Shanghai", "default_country_code": "86"},
            "security": {"enforce": True, "actors": ACTORS},
        },
    )
    made = Site(crm)
    yield made
    for client in made.clients:
        client.close()


# -- sign-in, sessions, CSRF -------------------------------------------------------------------


def test_pages_need_sign_in_and_sign_in_lands_on_my_day(site):
    site.user("ann")
    client = site.client()
    answer = client.get("/customers/cus_x", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fcustomers%2Fcus_x"
    page = client.get("/login")
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    answer = client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    session = [c for c in answer.headers.get_list("set-cookie") if c.startswith("crm_session")]
    assert session and "HttpOnly" in session[0] and "SameSite=lax" in session[0]
    assert "Secure" not in session[0]  # plain http here; Secure over TLS
    home = client.get("/")
    assert home.status_code == 200 and "<h1>My day</h1>" in home.text


def test_sign_in_follows_next_but_never_off_site(site):
    site.user("ann")
    client = site.client()
    page = client.get("/login?next=/search")
    answer = client.post(
        "/login",
        data={
            "username": "ann",
            "password": PASSWORD,
            "next": "/search",
            "csrf_token": csrf(page.text),
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/search"
    other = site.client()
    page = other.get("/login")
    answer = other.post(
        "/login",
        data={
            "username": "ann",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf(page.text),
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_session_cookie_is_secure_over_tls(site):
    site.user("ann")
    client = TestClient(site.app, base_url="https://testserver", headers={"Accept-Language": "en"})
    site.clients.append(client)
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf_token": csrf(page.text)},
        follow_redirects=False,
    )
    session = [c for c in answer.headers.get_list("set-cookie") if c.startswith("crm_session")]
    assert "Secure" in session[0]


def test_the_notice_after_a_post_is_as_private_as_the_session_over_tls(site):
    customer = site.customer(owner="ann")
    task = site.task(customer, "ann", title="Ring back")
    site.user("ann")
    client = TestClient(site.app, base_url="https://testserver", headers={"Accept-Language": "en"})
    site.clients.append(client)
    page = client.get("/login")
    client.post(
        "/login",
        data={"username": "ann", "password": PASSWORD, "csrf_token": csrf(page.text)},
    )
    done = client.post(
        f"/tasks/{task.id}/complete",
        data={"outcome": "no_answer", "csrf_token": csrf(client.get("/").text)},
        follow_redirects=False,
    )
    [notice] = [c for c in done.headers.get_list("set-cookie") if c.startswith("crm_notice")]
    assert "Secure" in notice and "HttpOnly" in notice


def test_failed_sign_in_says_one_generic_thing_for_every_cause(site):
    site.user("ann")
    site.user("bo")
    Users(site.crm).disable("bo", actor="admin")
    answers = []
    for name, password in (("ann", "wrong password!"), ("nobody", PASSWORD), ("bo", PASSWORD)):
        client = site.client()
        page = client.get("/login")
        answer = client.post(
            "/login", data={"username": name, "password": password, "csrf_token": csrf(page.text)}
        )
        assert answer.status_code == 401
        answers.append(re.search(r'role="alert">([^<]+)<', answer.text).group(1))
        assert "crm_session" not in client.cookies
    assert len(set(answers)) == 1 and "Wrong user name or password" in answers[0]


def test_repeated_failures_hold_the_name_back_even_with_the_right_password(site):
    site.user("ann")
    client = site.client()
    for _ in range(5):  # signin_failures_per_user
        page = client.get("/login")
        client.post(
            "/login",
            data={"username": "ann", "password": "not it at all", "csrf_token": csrf(page.text)},
        )
    fresh = site.client()
    page = fresh.get("/login")
    answer = fresh.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf_token": csrf(page.text)}
    )
    assert answer.status_code == 401 and "crm_session" not in fresh.cookies
    other = site.signed_in("bo")  # another name is not held back
    assert other.get("/").status_code == 200


def _sign_in(site, app, name, password):
    client = TestClient(app, base_url="http://testserver", headers={"Accept-Language": "en"})
    site.clients.append(client)
    page = client.get("/login")
    return client.post(
        "/login", data={"username": name, "password": password, "csrf_token": csrf(page.text)}
    )


def test_failures_counted_by_several_workers_hold_the_name_back_in_all(site, clock):
    """``crm serve --workers N``: each worker is its own app; the failures for a user are
    counted on the user's record, so 3 here and 2 there hold the name back in both (in
    memory, neither worker would have reached 5); the hold lifts after ``block_seconds``."""
    site.user("ann")
    workers = [create_app(site.crm), create_app(site.crm)]
    for i in range(5):  # signin_failures_per_user, spread over the two workers
        answer = _sign_in(site, workers[i % 2], "ann", "not it at all")
        assert answer.status_code == 401
    for app in workers:
        answer = _sign_in(site, app, "ann", PASSWORD)
        assert answer.status_code == 401 and "crm_session" not in answer.cookies
    assert site.users.find("ann").locked_until is not None
    clock.advance(seconds=61)  # block_seconds
    answer = _sign_in(site, create_app(site.crm), "ann", PASSWORD)
    assert answer.status_code == 200 and answer.url.path == "/"
    ann = site.users.find("ann")
    assert ann.failed_signins == () and ann.locked_until is None


def test_a_right_password_clears_the_failures_and_unknown_names_write_nothing(site):
    site.user("ann")
    users = site.crm.collection("web.users")
    before = [dict(d) for d in users.find({})]
    for _ in range(3):
        _sign_in(site, create_app(site.crm), "nobody", "not it at all")
    assert [dict(d) for d in users.find({})] == before  # no record for a name no user has
    for _ in range(4):
        _sign_in(site, create_app(site.crm), "ann", "not it at all")
    assert len(site.users.find("ann").failed_signins) == 4
    assert _sign_in(site, create_app(site.crm), "ann", PASSWORD).status_code == 200
    assert site.users.find("ann").failed_signins == ()
    for _ in range(4):  # four more after the success: not five in a row
        _sign_in(site, create_app(site.crm), "ann", "not it at all")
    assert _sign_in(site, create_app(site.crm), "ann", PASSWORD).status_code == 200


def test_a_new_password_set_by_an_admin_lifts_the_hold(site):
    site.user("ann")
    for _ in range(5):
        _sign_in(site, create_app(site.crm), "ann", "not it at all")
    assert site.users.held_until("ann") is not None
    site.users.set_password("ann", "a brand new passphrase", actor="admin")
    assert site.users.held_until("ann") is None
    assert _sign_in(site, create_app(site.crm), "ann", "a brand new passphrase").status_code == 200


def test_sign_in_without_the_form_token_is_refused(site):
    site.user("ann")
    client = site.client()
    client.get("/login")
    answer = client.post("/login", data={"username": "ann", "password": PASSWORD})
    assert answer.status_code == 403
    assert "crm_session" not in client.cookies
    forged = client.post(
        "/login", data={"username": "ann", "password": PASSWORD, "csrf_token": "x" * 43}
    )
    assert forged.status_code == 403


def test_a_post_without_csrf_is_403_and_writes_nothing(site):
    customer = site.customer(owner="ann")
    task = site.task(customer, "ann")
    client = site.signed_in("ann")
    answer = client.post(f"/tasks/{task.id}/complete", data={"outcome": "reached"})
    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    wrong = client.post(
        f"/tasks/{task.id}/complete", data={"outcome": "reached", "csrf_token": "0" * 43}
    )
    assert wrong.status_code == 403
    assert site.crm.tasks.get(task.id).is_open
    # another session's token does not work either
    other = site.signed_in("ann")
    stolen = csrf(other.get("/").text)
    assert (
        client.post(
            f"/tasks/{task.id}/complete", data={"outcome": "reached", "csrf_token": stolen}
        ).status_code
        == 403
    )
    assert site.crm.tasks.get(task.id).is_open


def test_sign_out_ends_the_session_on_the_server(site):
    client = site.signed_in("ann")
    token = client.cookies["crm_session"]
    answer = client.post(
        "/logout", data={"csrf_token": csrf(client.get("/").text)}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    replay = site.client()
    replay.cookies.set("crm_session", token)
    assert replay.get("/", follow_redirects=False).status_code == 303


def test_disabling_a_user_ends_their_sessions_at_once(site):
    client = site.signed_in("ann")
    assert client.get("/").status_code == 200
    Users(site.crm).disable("ann", actor="admin")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_store_holds_no_session_token_nor_password(site):
    client = site.signed_in("ann")
    token = client.cookies["crm_session"]
    stored = [*site.crm.collection("web.sessions").iter(), *site.crm.collection("web.users").iter()]
    text = repr(stored)
    assert token not in text and PASSWORD not in text
    assert all(
        u["password_hash"].startswith("$argon2id$") for u in site.crm.collection("web.users").iter()
    )


def test_the_api_keeps_working_with_keys_and_ignores_session_cookies(site, api_client):
    client = site.signed_in("admin")
    answer = client.get("/api/v1/customers")
    assert answer.status_code == 401  # a session cookie is no API key
    api = api_client(site.crm)
    assert api.get("/api/v1/customers", headers=api.key("admin")).status_code == 200
    assert client.get("/api/v1/nowhere").headers["content-type"].startswith("application/json")


def test_unknown_pages_are_html_404_in_the_readers_language(site):
    client = site.signed_in("ann")
    answer = client.get("/no/such/page")
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    assert "There is no such page" in answer.text


def test_pages_are_never_cached_and_scripts_come_only_from_here(site):
    client = site.signed_in("ann")
    answer = client.get("/")
    assert answer.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    css = client.get("/static/workspace.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]


# -- who sees what ---------------------------------------------------------------------------


def test_a_rep_cannot_open_another_teams_customer(site):
    theirs = site.customer("Zhao Lei", owner="cy")
    client = site.signed_in("ann")
    answer = client.get(f"/customers/{theirs.id}")
    assert answer.status_code == 403 and "Zhao Lei" not in answer.text
    lead = site.signed_in("lee")  # team north's lead: cy is in team south
    assert lead.get(f"/customers/{theirs.id}").status_code == 403
    assert site.signed_in("cy").get(f"/customers/{theirs.id}").status_code == 200


def test_a_rep_cannot_complete_someone_elses_task(site):
    customer = site.customer(owner="bo")
    task = site.task(customer, "bo")
    client = site.signed_in("ann")
    answer = client.post(
        f"/tasks/{task.id}/complete",
        data={"outcome": "reached", "csrf_token": csrf(client.get("/").text)},
    )
    assert answer.status_code == 403
    assert site.crm.tasks.get(task.id).is_open


def test_the_audit_trail_names_the_signed_in_person(site):
    customer = site.customer(owner="ann")
    task = site.task(customer, "ann")
    client = site.signed_in("ann")
    client.post(
        f"/tasks/{task.id}/complete",
        data={"outcome": "reached", "csrf_token": csrf(client.get("/").text)},
    )
    entries = (
        [e for e in site.crm.audit.entries() if e.record_id == task.id]
        if hasattr(site.crm.audit, "entries")
        else None
    )
    done = site.crm.tasks.get(task.id)
    assert done.completed_by == "ann" and done.updated_by == "ann"
    if entries is not None:
        assert entries[-1].actor == "ann"


# -- My day ------------------------------------------------------------------------------------


def test_my_day_orders_overdue_then_today_then_week_and_shows_only_mine(site):
    a = site.customer("Overdue Customer", owner="ann", phone="13800000001")
    b = site.customer("Later Customer", owner="ann", phone="13800000002")
    c = site.customer("Not Mine", owner="bo")
    site.task(b, "ann", hours=24 * 3, title="Later this week")
    site.task(a, "ann", hours=-5, title="Long overdue")
    site.task(c, "bo", hours=-5, title="Bo's work")
    site.task(a, "ann", hours=24 * 10, title="Next month")
    page = site.signed_in("ann").get("/").text
    assert page.index("Long overdue") < page.index("Later this week")
    assert "Bo's work" not in page and "Next month" not in page
    sections = dict(re.findall(r'<h2 id="h-(\w+)">.*?</h2>(.*?)</section>', page, re.S))
    assert "Long overdue" in sections["overdue"] and "Later this week" in sections["week"]
    assert f'href="/customers/{a.id}"' in page


def test_my_day_masks_phones_the_viewer_does_not_own(site):
    mine = site.customer("Mine", owner="ann", phone="13812345678")
    theirs = site.customer("Theirs", owner="bo", phone="13987654321")
    site.task(mine, "ann")
    site.task(theirs, "bo")
    lead = site.signed_in("lee").get("/").text
    assert "+86138****5678" in lead and "+86139****4321" in lead
    assert "13812345678" not in lead
    ann = site.signed_in("ann").get("/").text
    assert "+8613812345678" in ann


def test_a_shift_lead_sees_the_team_queue_and_filters_by_rep(site):
    a = site.customer("Ann's", owner="ann")
    b = site.customer("Bo's", owner="bo")
    c = site.customer("Cy's", owner="cy")
    site.task(a, "ann", title="for ann")
    site.task(b, "bo", title="for bo")
    site.task(c, "cy", title="for cy")
    lead = site.signed_in("lee")
    page = lead.get("/").text
    assert "for ann" in page and "for bo" in page and "for cy" not in page
    only_bo = lead.get("/?rep=bo").text
    assert "for bo" in only_bo and "for ann" not in only_bo
    assert lead.get("/?rep=cy").status_code == 422  # not in the lead's team
    assert 'id="rep-filter"' not in site.signed_in("ann").get("/").text


def test_a_manager_sees_the_departments_queue_and_an_admin_everyones(site):
    for rep in ("ann", "bo", "cy"):
        site.task(site.customer(f"{rep}'s customer", owner=rep), rep, title=f"for {rep}")
    manager = site.signed_in("mia").get("/").text
    assert "for ann" in manager and "for bo" in manager and "for cy" not in manager
    admin = site.signed_in("admin").get("/").text
    assert all(f"for {rep}" in admin for rep in ("ann", "bo", "cy"))


def test_quiet_hours_take_the_call_action_away_and_say_until_when(site):
    # the followup plugin's default quiet hours cover the night in the customer's zone
    site.crm.clock.set(site.crm.now().replace(hour=16, minute=0))  # 00:00 in Shanghai
    # quiet from 21:00 to 08:00 by default: the call may be made from 08:00
    customer = site.customer(
        "Night Owl", owner="ann", phone="13812345678", timezone="Asia/Shanghai"
    )
    site.task(customer, "ann")
    page = site.signed_in("ann").get("/").text
    assert 'href="tel:' not in page
    assert "Quiet hours until today 08:00: do not call" in page


def test_every_row_of_my_day_carries_its_own_complete_and_reschedule_forms(site):
    # the forms' fixed parts are rendered once per page and repeated per row (issue 21)
    tasks = [site.task(site.customer(f"Cust {i}", owner="ann"), "ann", hours=i) for i in (-2, 3)]
    for lang, words in (
        ("en", ("Outcome", "No answer", "Complete", "New due time", "Reschedule")),
        ("zh-CN", ("结果", "无人接听", "完成", "改期")),
    ):
        page = site.signed_in("ann", lang=lang).get("/").text
        rows = re.findall(r'<tr class="task" data-task="([^"]+)">(.*?)</tr>', page, re.S)
        assert {t.id for t in tasks} <= {r[0] for r in rows}
        for task_id, row in rows:
            assert f'action="/tasks/{task_id}/complete"' in row
            assert f'action="/tasks/{task_id}/reschedule"' in row
            assert row.count('name="csrf_token"') == 2 and row.count('name="next" value="/"') == 2
            assert re.findall(r'<option value="([a-z_]+)">', row) == [
                "reached",
                "no_answer",
                "call_back_later",
                "not_interested",
            ]
            assert f'for="outcome-{task_id}"' in row and f'id="outcome-{task_id}"' in row
            assert f'for="due-{task_id}"' in row and f'id="due-{task_id}"' in row
            assert all(word in row for word in words), (lang, row)


def test_completing_from_my_day_needs_an_outcome_and_then_says_so(site):
    customer = site.customer(owner="ann")
    task = site.task(customer, "ann", title="Ring back")
    client = site.signed_in("ann")
    token = csrf(client.get("/").text)
    empty = client.post(f"/tasks/{task.id}/complete", data={"outcome": "", "csrf_token": token})
    assert empty.status_code == 422 and site.crm.tasks.get(task.id).is_open
    done = client.post(
        f"/tasks/{task.id}/complete", data={"outcome": "no_answer", "csrf_token": token}
    )
    assert done.status_code == 200 and "Task completed: Ring back" in done.text
    assert site.crm.tasks.get(task.id).outcome == "no_answer"
    assert "Task completed" not in client.get("/").text  # the notice shows once


def test_rescheduling_reads_the_time_in_the_stores_zone(site):
    customer = site.customer(owner="ann")
    task = site.task(customer, "ann")
    client = site.signed_in("ann")
    token = csrf(client.get("/").text)
    later = (
        (site.crm.now() + timedelta(days=2))
        .astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
        .replace(hour=10, minute=30)
    )
    answer = client.post(
        f"/tasks/{task.id}/reschedule",
        data={"due_at": later.strftime("%Y-%m-%dT%H:%M"), "csrf_token": token},
    )
    assert answer.status_code == 200
    moved = site.crm.tasks.get(task.id)
    assert moved.due_at == later.replace(second=0, microsecond=0)
    past = client.post(
        f"/tasks/{task.id}/reschedule", data={"due_at": "2001-01-01T10:00", "csrf_token": token}
    )
    assert past.status_code == 422


# -- the customer page ------------------------------------------------------------------------


def test_the_customer_page_shows_the_file_history_tasks_and_times_in_the_stores_zone(site):
    customer = site.customer("Wang Wei", owner="ann", phone="13812345678", email="wang@example.com")
    site.crm.interactions.log(
        actor="ann",
        customer_id=customer.id,
        kind="purchase",
        summary="bought a kettle",
        amount=129.5,
    )
    site.task(customer, "ann", title="Check the kettle works")
    page = site.signed_in("ann").get(f"/customers/{customer.id}").text
    assert "Wang Wei" in page and "+8613812345678" in page and "wang@example.com" in page
    assert "bought a kettle" in page and "129.50" in page
    assert "Check the kettle works" in page
    assert "Z<" not in page and "+00:00" not in page
    assert not re.search(r"\d\d:\d\d:\d\d\.\d+", page)  # no microseconds


def test_logging_a_purchase_from_the_customer_page(site):
    customer = site.customer(owner="ann")
    client = site.signed_in("ann")
    page = client.get(f"/customers/{customer.id}")
    answer = client.post(
        f"/customers/{customer.id}/interactions",
        data={
            "kind": "purchase",
            "channel": "in_person",
            "summary": "two chairs",
            "amount": "1,299.00",
            "csrf_token": csrf(page.text),
        },
    )
    assert answer.status_code == 200 and "Recorded: Purchase" in answer.text
    logged = site.crm.interactions.for_customer(customer.id)
    assert logged[0].amount == 1299.0 and logged[0].created_by == "ann"
    assert logged[0].channel.value == "in_person"
    bad = client.post(
        f"/customers/{customer.id}/interactions",
        data={
            "kind": "purchase",
            "channel": "phone",
            "amount": "lots",
            "csrf_token": csrf(page.text),
        },
    )
    assert bad.status_code == 422 and "give the amount as a number" in bad.text
    assert len(site.crm.interactions.for_customer(customer.id)) == 1


def test_editing_a_customer_and_a_version_conflict_shows_both_values(site):
    customer = site.customer("Li Na", owner="ann", region="North")
    client = site.signed_in("ann")
    form = client.get(f"/customers/{customer.id}/edit").text
    fields = {
        "csrf_token": csrf(form),
        "version": str(customer.version),
        "name": "Li Na",
        "region": "East",
        "phone": "",
        "email": "",
        "address": "",
        "birth_date": "",
        "gender": "",
        "occupation": "",
        "organisation": "",
        "owner": "ann",
        "tags": "",
        "timezone": "UTC",
        "notes": "",
    }
    # someone else saves first
    site.crm.customers.update(customer.id, actor="admin", region="West")
    answer = client.post(f"/customers/{customer.id}/edit", data=fields)
    assert answer.status_code == 409
    assert "Someone else saved this customer" in answer.text
    row = re.search(r'<tr data-field="region">(.*?)</tr>', answer.text).group(1)
    assert "West" in row and "East" in row
    assert site.crm.customers.get(customer.id).region == "West"
    # the form now carries the new version: saving again applies the rep's choice
    redo = dict(fields, version=re.search(r'name="version" value="(\d+)"', answer.text).group(1))
    saved = client.post(f"/customers/{customer.id}/edit", data=redo)
    assert saved.status_code == 200 and "Saved" in saved.text
    assert site.crm.customers.get(customer.id).region == "East"


def test_an_invalid_edit_names_the_field_and_writes_nothing(site):
    customer = site.customer("Li Na", owner="ann")
    client = site.signed_in("ann")
    form = client.get(f"/customers/{customer.id}/edit").text
    answer = client.post(
        f"/customers/{customer.id}/edit",
        data={
            "csrf_token": csrf(form),
            "version": str(customer.version),
            "name": "Li Na",
            "email": "not an address",
            "timezone": "UTC",
        },
    )
    assert answer.status_code == 422 and "malformed e-mail" in answer.text
    assert site.crm.customers.get(customer.id).email is None


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["138 1234 5678", "+86 138-1234-5678", "0086 13812345678", "5678"]
)
def test_search_finds_a_phone_written_any_way_and_masks_it(site, written):
    customer = site.customer("Wang Wei", owner="ann", phone="13812345678")
    site.customer("Other", owner="ann", phone="13900000000")
    page = site.signed_in("ann").get("/search", params={"q": written}).text
    assert f'href="/customers/{customer.id}"' in page
    assert "Other" not in page
    results = re.findall(r'<tr class="result">.*?</tr>', page, re.S)
    assert len(results) == 1 and "+86138****5678" in results[0]
    assert "13812345678" not in results[0]


def test_search_by_name_and_email_only_among_readable_customers(site):
    site.customer("Wang Wei", owner="ann", email="wang@example.com")
    site.customer("Wang Fang", owner="cy")
    client = site.signed_in("ann")
    by_name = client.get("/search", params={"q": "wang"}).text
    assert "Wang Wei" in by_name and "Wang Fang" not in by_name
    by_mail = client.get("/search", params={"q": "WANG@example.com"}).text
    assert "Wang Wei" in by_mail
    assert "No customer matches" in client.get("/search", params={"q": "zzz"}).text


def test_search_ranks_the_whole_name_first_and_bounds_the_list(site):
    for i in range(60):
        site.customer(f"Zhou Min {i:02d}", owner="ann")
    exact = site.customer("Zhou Min", owner="ann")
    site.customer("张伟明", owner="ann")
    client = site.signed_in("ann")
    page = client.get("/search", params={"q": "zhou min"}).text
    results = re.findall(r'<tr class="result">.*?</tr>', page, re.S)
    assert len(results) == 50 and f'href="/customers/{exact.id}"' in results[0]
    assert "The first 50 matches; say more to narrow it down." in page
    one = client.get("/search", params={"q": "zhou min 07"}).text
    assert len(re.findall(r'<tr class="result">', one)) == 1 and "Zhou Min 07" in one
    assert "Customers found: 1" in one
    assert "张伟明" in client.get("/search", params={"q": "伟明"}).text


# -- language ----------------------------------------------------------------------------------


def test_language_from_accept_language_then_the_switch_then_the_users_setting(make_crm):
    crm = make_crm(plugins=STACK, settings={"security": {"enforce": True, "actors": ACTORS}})
    site = Site(crm)  # a UTC store: English unless asked
    client = site.signed_in("ann", lang=None)
    assert "<h1>My day</h1>" in client.get("/").text
    assert (
        "<h1>我的一天</h1>" in client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).text
    )
    client.post(
        "/locale", data={"locale": "zh_CN", "next": "/", "csrf_token": csrf(client.get("/").text)}
    )
    assert Users(crm).get("ann").locale == "zh_CN"
    other = site.signed_in("ann", lang="en")  # another browser, same user: their setting
    assert "<h1>我的一天</h1>" in other.get("/").text
    for client in site.clients:
        client.close()


def test_a_store_in_shanghai_speaks_chinese_by_default(site):
    page = site.signed_in("ann", lang=None).get("/").text
    assert '<html lang="zh-CN">' in page and "<h1>我的一天</h1>" in page


# -- every page: labels on every field, a token on every form ----------------------------------


class Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: list[dict[str, str]] = []
        self.labels: set[str] = set()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": a.get("method", "get").lower(), "csrf": False})
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag in ("input", "select", "textarea"):
            if tag == "input" and a.get("type") in ("hidden", "submit", "button"):
                if a.get("name") == "csrf_token" and self.forms:
                    self.forms[-1]["csrf"] = True
                return
            self.fields.append(a)


def all_pages(site: Any) -> dict[str, str]:
    customer = site.customer("Wang Wei", owner="ann", phone="13812345678")
    site.task(customer, "ann")
    site.crm.interactions.log(actor="ann", customer_id=customer.id, kind="purchase", amount=10.0)
    client = site.signed_in("ann")
    paths = [
        "/",
        f"/customers/{customer.id}",
        f"/customers/{customer.id}/edit",
        "/search?q=wang",
        "/no/such/page",
    ]
    for _plugin, page in site.app.state.workspace.contributions.pages:
        if "GET" in page.methods and "{" not in page.path:
            paths.append(page.path)
    out = {p: client.get(p).text for p in dict.fromkeys(paths)}
    out["/login"] = site.client().get("/login").text
    return out


def test_every_form_field_has_a_label_and_every_post_form_a_token(site):
    for path, html in all_pages(site).items():
        parsed = Forms()
        parsed.feed(html)
        for field in parsed.fields:
            assert field.get("id") in parsed.labels or field.get("aria-label"), (
                f"{path}: a field without a label: {field}"
            )
        for form in parsed.forms:
            assert form["method"] == "get" or form["csrf"], f"{path}: a POST form without csrf"


# -- the bundled plugins' panels and badges ------------------------------------------------------


def test_the_customer_page_carries_grading_and_loyalty_panels_with_names(site):
    from crmcore_grading import api as grading
    from crmcore_loyalty.api import Loyalty

    referrer = site.customer("Old Friend", owner="ann")
    customer = site.customer("Wang Wei", owner="ann")
    grading.set_inputs(
        site.crm,
        customer.id,
        actor="admin",
        demand="target",
        expected_close=(site.crm.now() + timedelta(days=20)).date(),
    )
    loyalty = Loyalty(site.crm)
    code = loyalty.referral_code(referrer.id, actor="admin")
    loyalty.link(customer.id, code, actor="admin")
    client = site.signed_in("ann")
    page = client.get(f"/customers/{customer.id}").text
    grades = re.search(r'data-panel="grading".*?</section>', page, re.S).group(0)
    assert "Grades and churn risk" in grades and ">A<" in grades
    assert "within 1 month" in grades or "1 month" in grades  # the grade's reason
    assert "Churn risk" in grades
    loyal = re.search(r'data-panel="loyalty".*?</section>', page, re.S).group(0)
    assert f'<a href="/customers/{referrer.id}">Old Friend</a>' in loyal  # a name, not an id
    their = client.get(f"/customers/{referrer.id}").text
    assert f'<a href="/customers/{customer.id}">Wang Wei</a>' in their
    # the pipeline grade beside the name in My day, A first
    site.task(customer, "ann", title="graded task")
    site.task(referrer, "ann", title="another task")
    called: list[str] = []
    undo = site.crm.plugins._pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: called.append(name), lambda *args: None
    )
    try:
        page = client.get("/").text
    finally:
        undo()
    assert re.search(r'Wang Wei</a>\s*<span class="grade" title="Grade[^"]*">A</span>', page)
    # the two rows' badges in one call for the page (grading and loyalty have the batch hook)
    assert called.count("crm_customers_badges") == 1
    assert "crm_customer_badges" not in called
    chinese = site.signed_in("ann", lang="zh-CN").get(f"/customers/{customer.id}").text
    assert "客户分级与流失风险" in chinese and "会员积分与推荐" in chinese


def test_sessions_expire_and_expired_ones_are_cleared_at_the_next_sign_in(site):
    client = site.signed_in("ann")
    assert client.get("/").status_code == 200
    site.crm.clock.advance(hours=13)  # [web] session_hours = 12
    assert client.get("/", follow_redirects=False).status_code == 303
    assert site.crm.collection("web.sessions").count({"user": "ann"}) == 1
    site.signed_in("ann")
    assert site.crm.collection("web.sessions").count({"user": "ann"}) == 1  # the new one only


def test_a_broken_panel_is_named_and_the_page_still_shows(make_crm):
    from crmcore import hookimpl
    from crmcore.registry import CustomerPanel

    def explode(request, customer):
        raise RuntimeError("bug in a third-party panel")

    class Broken:
        @hookimpl
        def crm_customer_panels(self, crm):
            return [CustomerPanel("broken", "Broken", explode)]

    crm = make_crm(
        plugins=["web", ("broken", Broken())],
        settings={"security": {"enforce": True, "actors": ACTORS}},
    )
    site = Site(crm)
    customer = site.customer("Wang Wei", owner="ann")
    page = site.signed_in("ann").get(f"/customers/{customer.id}")
    assert page.status_code == 200 and "Wang Wei" in page.text
    assert "This panel could not be shown (plugin broken)" in page.text
    for client in site.clients:
        client.close()
