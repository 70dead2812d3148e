"""W14: server time of each workspace page against the JSON API call for the same data.

A retail store (the retail profile's plugins plus ``web``) on the embedded store, built
through the API: N customers added with ``crm.customers.add`` (every reaction runs: first
contact, grading, follow-ups), one purchase each through ``crm.interactions.log``, and a
queue of follow-ups for ``rep00``. ``crm serve`` (one worker) on 127.0.0.1; a manager and
``rep00`` sign in through the sign-in form; one client calls in sequence over a kept-alive
connection. Each page is timed end to end and so is its API baseline in the same run:

- My day ``/`` (as rep00)                 vs ``GET /api/v1/tasks/queue?assignee=rep00``
- customer page ``/customers/{id}``       vs ``GET /api/v1/customers/{id}``
- search by name ``/search?q=Customer 000`` vs ``GET /api/v1/customers?q=...`` (many match)
- search by a full name ``/search?q=Customer 004321`` vs the same API call (one matches)
- search by phone ``/search?q=138...``     vs ``GET /api/v1/customers?q=...`` (a customer's phone)
- search by the last 4 digits of a phone  vs the same API call
- complaint desk ``/complaints``           vs ``GET /api/v1/complaints``
- callbacks ``/followup/callbacks``        vs ``GET /api/v1/followup/callbacks``
- dashboard ``/dashboard?period=...`` (week, month, day and a custom 30 days) vs ``GET
  /api/v1/reports`` (the whole report)

A page this build does not serve (404) is reported as such, not timed. The dashboard keeps
what it computed for a minute: its first view of a window (cold) is reported apart from the
views after it (warm).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.common import REPS, Result, percentile, person
from bench.web import _available, _config, serving
from bench.workloads import retail_stack

PASSWORD = "bench password 14"
MANAGER = "boss"


def build_store(folder: Path, n: int) -> tuple[Path, list[str], list[str], list[str]]:
    """The store, built through the API; the config path, customer ids, their phones (as
    written, national form), enabled plugins."""
    from crmcore_web.app import open_for_api

    plugins, settings = retail_stack()
    plugins = [p for p in plugins if p != "web"]
    config = _config(folder, plugins, settings)
    # as the profile writes it: its [core] (time zone, phones' country code), which the
    # shared config leaves out; the reps and their manager in one department, so the
    # manager reads every rep's customers
    core = settings.get("core", {})
    directory = ["\n[core]\n", *(f"{k} = {json.dumps(v)}\n" for k, v in core.items())]
    directory += [f'\n[security.actors.{MANAGER}]\nrole = "manager"\ndepartment = "sales"\n']
    directory += [f'\n[security.actors.{r}]\nrole = "agent"\ndepartment = "sales"\n' for r in REPS]
    with config.open("a", encoding="utf-8") as out:
        out.write("".join(directory))
    rng = random.Random(14)
    ids: list[str] = []
    phones: list[str] = []
    with open_for_api(config) as crm:
        for i in range(n):
            fields = person(rng, i)
            customer = crm.customers.add(actor="bench", **fields)
            ids.append(customer.id)
            phones.append(fields["phone"].removeprefix("+86"))
            crm.interactions.log(
                actor="bench",
                customer_id=customer.id,
                kind="purchase",
                amount=round(rng.uniform(20, 800), 2),
                rep=fields["owner"],
                occurred_at=crm.now() - timedelta(days=rng.randrange(60)),
            )
        for i in range(60):
            crm.tasks.create(
                actor="bench",
                kind="follow_up",
                title=f"call {i}",
                due_at=crm.now() + timedelta(hours=rng.randint(-48, 240)),
                customer_id=rng.choice(ids),
                assignee=REPS[0],
            )
    return config, ids, phones, plugins


class Browser:
    """A lean client holding the workspace's cookies, one kept-alive connection."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}
        self.headers = headers or {}

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, bytes]:
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        try:
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed an idle kept-alive connection: open another, ask again
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
        data = answer.read()
        for header, value in answer.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return answer.status, data

    def get(self, path: str) -> bytes:
        status, data = self.call("GET", path)
        if status >= 300:
            raise RuntimeError(f"GET {path}: {status} {data[:200]!r}")
        return data

    def sign_in(self, name: str, password: str) -> None:
        _status, page = self.call("GET", "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page)
        if token is None:
            raise RuntimeError("the sign-in page has no csrf_token")
        form = urlencode(
            {"username": name, "password": password, "csrf_token": token.group(1).decode()}
        ).encode()
        status, data = self.call("POST", "/login", form, "application/x-www-form-urlencoded")
        if status != 303:
            raise RuntimeError(f"sign-in as {name} failed: {status} {data[:200]!r}")

    def close(self) -> None:
        self.conn.close()


def _time(into: list[float], fn: Any, *args: Any) -> None:
    t = time.perf_counter()
    fn(*args)
    into.append((time.perf_counter() - t) * 1000)


def measure(
    config: Path, ids: list[str], phones: list[str], plugins: list[str], calls: int
) -> tuple[dict[str, dict[str, list[float]]], dict[str, str]]:
    """{page: {"page": ms, "api": ms}} and the pages skipped with why."""
    env = {**os.environ, "CRMCORE_PLUGINS": ",".join(["storage_tinydb", "web", *plugins])}
    crm_cmd = [sys.executable, "-m", "crmcore.cli.main", "--config", str(config)]

    def crm(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [*crm_cmd, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout

    crm(
        "--as",
        "bench",
        "user",
        "add",
        MANAGER,
        "--role",
        "manager",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    crm(
        "--as",
        "bench",
        "user",
        "add",
        REPS[0],
        "--role",
        "agent",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    key = json.loads(crm("--as", "bench", "--json", "apikey", "create", "bench"))["key"]
    rng = random.Random(15)
    samples: dict[str, dict[str, list[float]]] = {}
    skipped: dict[str, str] = {}
    with serving(crm_cmd, env) as port:
        api = Browser(port, {"Authorization": f"Bearer {key}"})
        rep = Browser(port)
        boss = Browser(port)
        try:
            api.get("/api/v1/tasks/queue")  # the key's check, off the clock
            rep.sign_in(REPS[0], PASSWORD)
            boss.sign_in(MANAGER, PASSWORD)
            cid, phone, full = ids[0], phones[0], "Customer 000000"
            name = "Customer 000"  # matches a thousand customers at 10k: a real search
            plan = [
                ("My day", rep, lambda: "/", lambda: f"/api/v1/tasks/queue?assignee={REPS[0]}"),
                (
                    "customer page",
                    boss,
                    lambda: f"/customers/{cid}",
                    lambda: f"/api/v1/customers/{cid}",
                ),
                (
                    "search by name",
                    boss,
                    lambda: "/search?" + urlencode({"q": name}),
                    lambda: "/api/v1/customers?" + urlencode({"q": name}),
                ),
                (
                    "search by a full name",
                    boss,
                    lambda: "/search?" + urlencode({"q": full}),
                    lambda: "/api/v1/customers?" + urlencode({"q": full}),
                ),
                (
                    "search by phone",
                    boss,
                    lambda: "/search?" + urlencode({"q": phone}),
                    lambda: "/api/v1/customers?" + urlencode({"q": phone}),
                ),
                (
                    "search by the last 4 digits",
                    boss,
                    lambda: "/search?" + urlencode({"q": phone[-4:]}),
                    lambda: "/api/v1/customers?" + urlencode({"q": phone[-4:]}),
                ),
                ("complaint desk", boss, lambda: "/complaints", lambda: "/api/v1/complaints"),
                (
                    "callbacks",
                    boss,
                    lambda: "/followup/callbacks",
                    lambda: "/api/v1/followup/callbacks",
                ),
            ]
            for page, who, path, baseline in plan:
                status, _ = who.call("GET", path())
                if status == 404:
                    skipped[page] = "not served by this build"
                    continue
                times: dict[str, list[float]] = {"page": [], "api": []}
                for i in range(calls + 3):
                    pick = rng.randrange(len(ids))
                    cid, phone, full = ids[pick], phones[pick], f"Customer {pick:06d}"
                    if i == 3:  # the first calls load collections: not timed
                        times = {"page": [], "api": []}
                    _time(times["page"], who.get, path())
                    _time(times["api"], api.get, baseline())
                samples[page] = times
            # the dashboard: each period's first view is cold, the views after it warm
            cold: list[float] = []
            warm: list[float] = []
            # a custom period: the thirty days ending a fortnight ago (dates as the page's
            # form sends them; the purchases reach back 60 days, every customer was added today)
            today = time.strftime("%Y-%m-%d")
            until = (date.fromisoformat(today) - timedelta(days=14)).isoformat()
            since = (date.fromisoformat(today) - timedelta(days=44)).isoformat()
            views = ["week", "month", "day", f"custom&since={since}&until={until}"]
            for period in views:
                _time(cold, boss.get, f"/dashboard?period={period}")
                for _ in range(max(1, calls // len(views))):
                    _time(warm, boss.get, f"/dashboard?period={period}")
            report: list[float] = []
            for _ in range(max(3, calls // 10)):
                _time(report, api.get, "/api/v1/reports")
            samples["dashboard (cold)"] = {"page": cold, "api": report}
            samples["dashboard (warm)"] = {"page": warm, "api": report}
        finally:
            for client in (api, rep, boss):
                client.close()
    return samples, skipped


def w14_pages(size: dict[str, Any], tmp: Path) -> list[Result]:
    calls = size["W14_calls"]
    results = []
    for n in size["W14_customers"]:
        if not _available():
            results.append(
                Result(
                    "W14",
                    "workspace pages (p95 ms)",
                    {"customers": n},
                    "ms",
                    False,
                    note="crmcore-web is not installed",
                )
            )
            continue
        folder = tmp / f"w14-{n}"
        folder.mkdir()
        started = time.perf_counter()
        config, ids, phones, plugins = build_store(folder, n)
        built = time.perf_counter() - started
        samples, skipped = measure(config, ids, phones, plugins, calls)
        for page, times in samples.items():
            p50, p95 = percentile(times["page"], 50), percentile(times["page"], 95)
            a50, a95 = percentile(times["api"], 50), percentile(times["api"], 95)
            results.append(
                Result(
                    "W14",
                    f"{page} page (p95 ms)",
                    {"customers": n, "calls": len(times["page"])},
                    "ms",
                    False,
                    crmcore=p95,
                    baselines={"api_p95": a95},
                    extra={
                        "page_p50_ms": round(p50, 2),
                        "api_p50_ms": round(a50, 2),
                        "goal_p95_ms": 150,
                        "meets_goal": p95 <= 150,
                        "store_built_s": round(built, 1),
                    },
                    note="retail stack + web, built through the API; crm serve, 1 worker, "
                    "127.0.0.1, one sequential client; baseline: the JSON API's call for "
                    "the same data",
                )
            )
        for page, why in skipped.items():
            results.append(
                Result("W14", f"{page} page (p95 ms)", {"customers": n}, "ms", False, note=why)
            )
    return results
