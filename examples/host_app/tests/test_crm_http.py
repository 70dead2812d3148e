"""The HTTP service on a real socket (127.0.0.1, a free port) over an in-memory CRM."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import crm_http
import pytest

from crmcore import ManualClock
from crmcore.testing import START, make_test_crm

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxies


@pytest.fixture
def crm():
    crm = make_test_crm(clock=ManualClock(START))
    yield crm
    crm.close()


@pytest.fixture
def policy():
    """The authorize policy the server uses; tests may swap ``policy.rule``."""
    class Policy:
        rule = staticmethod(lambda actor, action, resource: None)

        def __call__(self, actor, action, resource):
            self.rule(actor, action, resource)

    return Policy()


@pytest.fixture
def server(crm, policy):
    server = crm_http.make_server(crm_http.create_app(crm, authorize=policy), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def call(server):
    host, port = server.server_address[:2]

    def call(method, path, body=None, *, actor="ann", headers=None, raw=None):
        sent = {**({"X-Actor": actor} if actor is not None else {}), **(headers or {})}
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(f"http://{host}:{port}{path}", data=data,
                                         headers=sent, method=method)
        try:
            with OPENER.open(request, timeout=10) as response:
                return response.status, response.headers, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, json.loads(exc.read())

    return call


def add(call, **fields):
    status, _headers, body = call("POST", "/customers", {"name": "Li Lei", **fields})
    assert status == 201, body
    return body


def test_health_needs_no_actor(call):
    status, _h, body = call("GET", "/health", actor=None)
    assert status == 200 and body["status"] == "ok" and body["store"].startswith("memory")


def test_add_then_get_a_customer(call):
    status, headers, created = call("POST", "/customers", {"name": "Li Lei",
                                                           "phone": "138 0013 8000",
                                                           "tags": ["vip"]})
    assert status == 201 and headers["Location"] == f"/customers/{created['id']}"
    assert headers["ETag"] == '"1"' and created["created_by"] == "ann"
    status, headers, shown = call("GET", f"/customers/{created['id']}", actor="bo")
    assert status == 200 and headers["ETag"] == '"1"'
    assert shown["customer"]["phone"] == "13800138000" and shown["customer"]["tags"] == ["vip"]
    assert shown["open_tasks"] == [] and shown["summary"] == []


def test_the_actor_is_required(call, crm):
    for method, path in [("POST", "/customers"), ("GET", "/customers/cus_x"),
                         ("GET", "/tasks/due"), ("POST", "/tasks/tsk_x/done")]:
        status, _h, body = call(method, path, {"name": "Li"}, actor=None)
        assert status == 400 and "X-Actor header is required" in body["error"]["message"]
    assert call("POST", "/customers", {"name": "Li"}, actor="  ")[0] == 400
    assert crm.customers.count() == 0


@pytest.mark.parametrize(("body", "raw", "headers", "status", "fragment"), [
    ({"phone": "12", "name": "Li"}, None, None, 400, "phone: malformed phone number"),
    ({"phone": "138 0013 8000"}, None, None, 400, "name: is required"),
    ({"name": "Li", "nickname": "x"}, None, None, 400, "unknown or read-only customer field"),
    ({"name": "Li", "actor": "boss"}, None, None, 400, "actor: set it through the X-Actor"),
    ({"name": "Li", "gender": "x"}, None, None, 400, "gender: unknown value 'x'"),
    ({"name": ""}, None, None, 400, "name: must not be empty"),
    (None, b"{not json", None, 400, "not valid JSON"),
    (None, b"[1, 2]", None, 400, "must be a JSON object"),
    (None, b"name=Li", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send JSON"),
])
def test_bad_customers_are_refused_and_nothing_is_written(call, crm, body, raw, headers, status,
                                                          fragment):
    got, _h, answer = call("POST", "/customers", body, raw=raw, headers=headers)
    assert got == status and fragment in answer["error"]["message"]
    assert crm.customers.count() == 0


def test_validation_errors_name_the_field(call):
    _status, _h, body = call("POST", "/customers", {"name": "Li", "email": "li@"})
    assert body["error"] == {"type": "validation", "field": "email",
                             "message": body["error"]["message"]}


def test_unknown_ids_are_404(call):
    for method, path, body in [("GET", "/customers/cus_missing", None),
                               ("PATCH", "/customers/cus_missing", {"region": "North"}),
                               ("POST", "/customers/cus_missing/interactions", {"kind": "visit"}),
                               ("POST", "/tasks/tsk_missing/done", None)]:
        status, _h, answer = call(method, path, body)
        assert status == 404 and answer["error"]["type"] == "not_found", path


def test_update_with_if_match(call, crm):
    cid = add(call)["id"]
    status, headers, updated = call("PATCH", f"/customers/{cid}", {"region": "North"},
                                    headers={"If-Match": '"1"'})
    assert status == 200 and headers["ETag"] == '"2"' and updated["region"] == "North"
    status, _h, answer = call("PATCH", f"/customers/{cid}", {"region": "South"},
                              headers={"If-Match": '"1"'})
    assert status == 409 and "changed since you read it" in answer["error"]["message"]
    assert crm.customers.get(cid).region == "North"
    assert call("PATCH", f"/customers/{cid}", {"region": "South"},
                headers={"If-Match": "soon"})[0] == 400
    assert call("PATCH", f"/customers/{cid}", {})[0] == 400
    status, _h, updated = call("PATCH", f"/customers/{cid}", {"region": "South"})  # no If-Match
    assert status == 200 and updated["version"] == 3


def test_a_taken_unique_phone_is_a_conflict(server, call, crm):
    # the same service over a CRM that keeps phone numbers unique
    unique = make_test_crm(core={"unique_phone": True})
    try:
        app = crm_http.create_app(unique)
        first = app.handle("POST", "/customers", {"X-Actor": "ann"},
                           b'{"name": "Li", "phone": "13800138000"}')
        second = app.handle("POST", "/customers", {"X-Actor": "ann"},
                            b'{"name": "Lee", "phone": "138 0013 8000"}')
        assert (first.status, second.status) == (201, 409)
        assert second.body["error"]["type"] == "conflict"
    finally:
        unique.close()


def test_log_and_list_interactions(call, crm):
    cid = add(call)["id"]
    status, _h, logged = call("POST", f"/customers/{cid}/interactions",
                              {"kind": "purchase", "amount": 12.5, "channel": "chat",
                               "occurred_at": "2026-01-04T10:30:00"}, actor="bo")
    assert status == 201 and logged["created_by"] == "bo"
    assert logged["occurred_at"] == "2026-01-04T10:30:00.000000Z"  # naive: business zone (UTC)
    for bad, fragment in [({"amount": 1}, "kind: is required"),
                          ({"kind": "teleport"}, "unknown interaction kind 'teleport'"),
                          ({"kind": "purchase", "amount": -1}, "amount: must not be negative"),
                          ({"kind": "visit", "occurred_at": "yesterday"}, "occurred_at:"),
                          ({"kind": "visit", "customer_id": "cus_x"}, "customer_id: set it")]:
        status, _h, answer = call("POST", f"/customers/{cid}/interactions", bad)
        assert status == 400 and fragment in answer["error"]["message"], bad
    status, _h, listed = call("GET", f"/customers/{cid}/interactions?limit=5")
    assert status == 200 and [i["id"] for i in listed] == [logged["id"]]
    assert call("GET", f"/customers/{cid}/interactions?limit=0")[0] == 400


def test_due_tasks_then_done(call, crm):
    cid = add(call)["id"]
    mine = crm.tasks.create(actor="ann", kind="callback", title="call Li", customer_id=cid,
                            due_at=crm.now() - timedelta(hours=1), assignee="bo")
    crm.tasks.create(actor="ann", kind="follow_up", title="later", customer_id=cid,
                     due_at=crm.now() + timedelta(hours=5), assignee="bo")
    crm.tasks.create(actor="ann", kind="care", title="not bo's", customer_id=cid,
                     due_at=crm.now() - timedelta(hours=1), assignee="cy")
    status, _h, due = call("GET", "/tasks/due?rep=bo")
    assert status == 200 and [t["id"] for t in due] == [mine.id]
    _s, _h, soon = call("GET", "/tasks/due?rep=bo&within_hours=6")
    assert len(soon) == 2
    _s, _h, kinds = call("GET", "/tasks/due?kind=care&kind=callback")
    assert len(kinds) == 2
    assert call("GET", "/tasks/due?within_hours=later")[0] == 400
    assert call("GET", "/tasks/due?overdue=maybe")[0] == 400
    status, _h, answer = call("POST", f"/tasks/{mine.id}/done", {"outcome": "reached"},
                              actor="bo", headers={"If-Match": '"2"'})
    assert status == 409 and answer["error"]["type"] == "conflict"
    status, headers, done = call("POST", f"/tasks/{mine.id}/done", {"outcome": "reached"},
                                 actor="bo", headers={"If-Match": '"1"'})
    assert status == 200 and done["status"] == "done" and done["completed_by"] == "bo"
    assert headers["ETag"] == f'"{done["version"]}"'
    assert call("GET", "/tasks/due?rep=bo")[2] == []
    status, _h, answer = call("POST", f"/tasks/{mine.id}/done", actor="bo")
    assert status == 400 and "only open tasks change" in answer["error"]["message"]
    assert call("POST", f"/tasks/{mine.id}/done", {"outcome": 5})[0] == 400


def test_permission_denied_is_403(call, crm, policy):
    policy.rule = crm_http.AssigneeOnly({"maria"})
    cid = add(call)["id"]
    task = crm.tasks.create(actor="ann", kind="callback", title="call", customer_id=cid,
                            due_at=crm.now(), assignee="bo")
    status, _h, answer = call("POST", f"/tasks/{task.id}/done", actor="cy")
    assert status == 403 and "assigned to bo" in answer["error"]["message"]
    assert crm.tasks.get(task.id).is_open
    assert call("POST", f"/tasks/{task.id}/done", actor="maria")[0] == 200


def test_crmcore_permissions_are_403():
    enforced = make_test_crm(settings={"security": {"enforce": True, "actors": {
        "bo": {"role": "agent"}, "cy": {"role": "agent"}}}})
    try:
        app = crm_http.create_app(enforced)
        cid = enforced.customers.add(actor="bo", name="Li Lei", owner="bo").id
        assert app.handle("GET", f"/customers/{cid}", {"X-Actor": "bo"}).status == 200
        refused = app.handle("GET", f"/customers/{cid}", {"X-Actor": "cy"})
        assert refused.status == 403 and "belongs to bo" in refused.body["error"]["message"]
        logged = app.handle("POST", f"/customers/{cid}/interactions", {"X-Actor": "cy"},
                            b'{"kind": "visit"}')
        assert logged.status == 403 and enforced.interactions.count() == 0
        assert app.handle("GET", "/tasks/due", {"X-Actor": "nobody"}).status == 403
    finally:
        enforced.close()


def test_unexpected_errors_are_500_without_internals(call, crm, policy):
    def broken(actor, action, resource):
        raise RuntimeError("db password is hunter2")

    policy.rule = broken
    status, _h, answer = call("POST", "/customers", {"name": "Li"})
    assert status == 500 and answer["error"]["type"] == "internal"
    assert "hunter2" not in json.dumps(answer) and "RuntimeError" not in json.dumps(answer)
    assert len(answer["error"]["incident"]) == 12
    assert crm.customers.count() == 0


def test_unknown_routes_and_methods(call):
    status, _h, answer = call("GET", "/nowhere")
    assert status == 404 and "no such endpoint" in answer["error"]["message"]
    status, headers, _answer = call("DELETE", "/customers/cus_x")
    assert status == 405 and headers["Allow"] == "GET, PATCH"


def test_an_oversized_body_is_refused_unread(server):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.putrequest("POST", "/customers")
        connection.putheader("X-Actor", "ann")
        connection.putheader("Content-Length", str(crm_http.MAX_BODY + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and b"larger than" in response.read()
    finally:
        connection.close()


def test_parallel_requests(call, crm):
    results: list[int] = []
    lock = threading.Lock()

    def one(n):
        status, _h, _b = call("POST", "/customers", {"name": f"Customer {n}"})
        with lock:
            results.append(status)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [201] * 20 and crm.customers.count() == 20


def test_closing_waits_for_requests_in_flight(crm):
    entered, release = threading.Event(), threading.Event()

    def slow(actor, action, resource):
        entered.set()
        release.wait(timeout=30)

    server = crm_http.make_server(crm_http.create_app(crm, authorize=slow), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    host, port = server.server_address[:2]
    answers = []

    def request():
        connection = http.client.HTTPConnection(host, port, timeout=30)
        connection.request("POST", "/customers", b'{"name": "Li"}', {"X-Actor": "ann"})
        answers.append(connection.getresponse().status)
        connection.close()

    client = threading.Thread(target=request)
    client.start()
    assert entered.wait(timeout=30)

    def close():
        server.shutdown()
        server.server_close()

    closer = threading.Thread(target=close)
    closer.start()
    closer.join(timeout=0.2)
    assert closer.is_alive()  # held up by the request in flight
    release.set()
    closer.join(timeout=30)
    client.join(timeout=30)
    assert not closer.is_alive() and answers == [201] and crm.customers.count() == 1


def test_serve_opens_the_crm_once_and_closes_it_on_shutdown(monkeypatch):
    started: list[crm_http.CrmHttpServer] = []
    ready = threading.Event()
    opened, closed = [], []
    real_open = crm_http.crmcore.open_crm

    def spy_open(*args, **kwargs):
        crm = real_open(*args, **kwargs)
        real_close = crm.close
        crm.close = lambda: (closed.append(crm), real_close())
        opened.append(crm)
        return crm

    monkeypatch.setattr(crm_http.crmcore, "open_crm", spy_open)

    def on_ready(server):
        started.append(server)
        ready.set()

    config = {"storage": {"backend": "memory"}, "plugins": {"enabled": []}}
    runner = threading.Thread(target=crm_http.serve, args=(config,),
                              kwargs={"port": 0, "plugins": [], "ready": on_ready})
    runner.start()
    assert ready.wait(timeout=30)
    [server] = started
    assert opened == [server.app.crm] and closed == []
    server.shutdown()
    runner.join(timeout=30)
    assert not runner.is_alive() and closed == opened


def test_the_script_stops_cleanly_on_sigterm(tmp_path):
    config = tmp_path / "crm.toml"
    config.write_text('[storage]\nbackend = "memory"\n', encoding="utf-8")
    env = {**os.environ, "CRMCORE_PLUGINS": "", "NO_PROXY": "*"}
    script = Path(crm_http.__file__)
    process = subprocess.Popen([sys.executable, str(script), "--config", str(config),
                                "--port", "0"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stderr.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        request = urllib.request.Request(f"{url}/customers", data=b'{"name": "Li"}',
                                         headers={"X-Actor": "ann",
                                                  "Content-Type": "application/json"},
                                         method="POST")
        with OPENER.open(request, timeout=10) as response:
            assert response.status == 201
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "stopped" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
