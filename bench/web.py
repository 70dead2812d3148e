"""W13: the HTTP API against the same calls made in-process.

A retail store (the retail profile's plugins plus ``web``) on the embedded store with N
customers; a ``crm serve`` subprocess (one worker) on 127.0.0.1; one client calling in
sequence over a kept-alive connection (the standard library's lean client). Each call is
timed end to end (the client's view: HTTP, JSON, authentication, the thread hop, the
handler), then the same handler is timed
in-process on the same store. Reported: p50 and p95 of each, and HTTP / in-process.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import REPS, Result, percentile
from bench.workloads import _fill, retail_stack
from crmcore.app import CRM

CALLS = ("GET customer", "GET my queue", "POST purchase")
WARM_UP = 10  # rounds of the three calls made before the timed ones, on both sides


def _available() -> bool:
    try:
        import crmcore_web  # noqa: F401
    except ImportError:
        return False
    return True


def _config(folder: Path, plugins: list[str], settings: dict[str, Any]) -> Path:
    """A crm.toml for the store in ``folder``, the role policy on, a bench admin."""
    lines = [
        "[storage]",
        'backend = "tinydb"',
        f'location = "{folder / "store"}"',
        "",
        "[plugins]",
        f"enabled = {json.dumps(['storage_tinydb', 'web', *plugins])}",
        "",
        "[security]",
        "enforce = true",
        "",
        "[security.actors.bench]",
        'role = "admin"',
    ]
    for section, table in settings.items():
        if section in ("security", "core"):
            continue
        lines += ["", *_toml_table(section, table)]
    path = folder / "crm.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml_table(name: str, table: dict[str, Any]) -> list[str]:
    plain = {
        k: v
        for k, v in table.items()
        if not isinstance(v, dict | list)
        or (isinstance(v, list) and not any(isinstance(i, dict) for i in v))
    }
    out = [f"[{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in plain.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            if all(not isinstance(v, dict) for v in value.values()):
                out += [
                    f"{key} = {{ "
                    + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in value.items())
                    + " }"
                ]
            else:
                for sub, inner in value.items():
                    out += ["", *_toml_table(f"{name}.{key}.{sub}", inner)]
        elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
            for item in value:
                out += ["", f"[[{name}.{key}]]"] + [
                    f"{k} = {json.dumps(v)}" for k, v in item.items()
                ]
    return out


def _prepare(folder: Path, n: int) -> tuple[Path, list[str], list[str]]:
    """The store with ``n`` customers and some of rep00's tasks; the config path, customer
    ids and the enabled plugins."""
    from crmcore_web.app import open_for_api

    plugins, settings = retail_stack()
    plugins = [p for p in plugins if p != "web"]  # added below either way
    config = _config(folder, plugins, settings)
    with open_for_api(config) as crm:
        ids = _fill(crm, n, 0, seed=7)
        rng = random.Random(8)
        for i in range(60):
            crm.tasks.create(
                actor="bench",
                kind="follow_up",
                title=f"call {i}",
                due_at=crm.now() + timedelta(hours=rng.randint(-48, 240)),
                customer_id=rng.choice(ids),
                assignee=REPS[0],
            )
    return config, ids, plugins


def _inprocess(config: Path, ids: list[str], calls: int) -> dict[str, list[float]]:
    from crmcore_web.app import open_for_api
    from crmcore_web.core_routes import InteractionNew, get_customer, log_interaction, task_queue

    from crmcore.api import ApiCall as Call
    from crmcore.api import parse_body

    rng = random.Random(9)
    samples: dict[str, list[float]] = {c: [] for c in CALLS}
    with open_for_api(config) as crm:
        for i in range(calls + WARM_UP):
            if i == WARM_UP:  # first calls load collections and build loaders: not timed
                samples = {c: [] for c in CALLS}
            cid = rng.choice(ids)
            _time(
                samples["GET customer"],
                get_customer,
                Call(crm, "bench", {"customer_id": cid}, {}, None, None),
            )
            _time(
                samples["GET my queue"],
                task_queue,
                Call(crm, "bench", {}, {"assignee": REPS[0]}, None, None),
            )
            body = parse_body(InteractionNew, {"kind": "purchase", "amount": 88.0})
            call = Call(crm, "bench", {"customer_id": cid}, {}, body, None)
            _time(samples["POST purchase"], _write, crm, log_interaction, call)
    return samples


def _write(crm: CRM, handler: Any, call: Any) -> Any:
    with crm.transaction(call.actor):  # as the API runs a write
        return handler(call)


def _time(into: list[float], fn: Any, *args: Any) -> None:
    t = time.perf_counter()
    fn(*args)
    into.append((time.perf_counter() - t) * 1000)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _over_http(
    config: Path, ids: list[str], calls: int, plugins: list[str]
) -> dict[str, list[float]]:
    env = {**os.environ, "CRMCORE_PLUGINS": ",".join(["storage_tinydb", "web", *plugins])}
    crm_cmd = [sys.executable, "-m", "crmcore.cli.main", "--config", str(config)]
    made = subprocess.run(
        [*crm_cmd, "--as", "bench", "--json", "apikey", "create", "bench"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    rng = random.Random(9)
    samples: dict[str, list[float]] = {c: [] for c in CALLS}
    with serving(crm_cmd, env) as port:
        client = Client(port, headers)
        try:
            client.call("GET", "/api/v1/tasks/queue")  # the key's scrypt check, off the clock
            purchase = json.dumps({"kind": "purchase", "amount": 88.0}).encode()
            queue = f"/api/v1/tasks/queue?assignee={REPS[0]}"
            for i in range(calls + WARM_UP):
                if i == WARM_UP:
                    samples = {c: [] for c in CALLS}
                cid = rng.choice(ids)
                _time(samples["GET customer"], client.call, "GET", f"/api/v1/customers/{cid}")
                _time(samples["GET my queue"], client.call, "GET", queue)
                _time(
                    samples["POST purchase"],
                    client.call,
                    "POST",
                    f"/api/v1/customers/{cid}/interactions",
                    purchase,
                )
        finally:
            client.close()
    return samples


@contextlib.contextmanager
def serving(crm_cmd: list[str], env: dict[str, str]) -> Iterator[int]:
    """``crm serve`` (one worker) on a free port of 127.0.0.1 while the block runs: yields the
    port once the server answers; stopped (SIGTERM, then SIGKILL after a minute) after."""
    port = _free_port()
    server = subprocess.Popen(
        [*crm_cmd, "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_until_up(port, server)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


class Client:
    """A lean HTTP/1.1 client (the standard library's, one kept-alive connection): what a
    call costs the client is part of its time, so the client should cost little (httpx costs
    about 0.3 ms more per call than this on the W13 machine)."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self._headers = headers
        self._json = {**headers, "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """The answer's body; an error answer stops the benchmark."""
        self._conn.request(
            method, path, body=body, headers=self._headers if body is None else self._json
        )
        answer = self._conn.getresponse()
        data = answer.read()
        if answer.status >= 300:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:200]!r}")
        return data

    def close(self) -> None:
        self._conn.close()


def _wait_until_up(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            raise RuntimeError("crm serve did not start")
        time.sleep(0.1)


def w13_http(size: dict[str, int], tmp: Path) -> list[Result]:
    calls = size["W13_calls"]
    results = []
    for n in size["W13_customers"]:
        if not _available():
            results.append(
                Result(
                    "W13",
                    "HTTP API against in-process calls (p95 ms)",
                    {"customers": n},
                    "ms",
                    False,
                    note="crmcore-web is not installed",
                )
            )
            continue
        folder = tmp / f"w7-{n}"
        folder.mkdir()
        config, ids, plugins = _prepare(folder, n)
        local = _inprocess(config, ids, calls)
        remote = _over_http(config, ids, calls, plugins)
        for call in CALLS:
            l50, l95 = percentile(local[call], 50), percentile(local[call], 95)
            h50, h95 = percentile(remote[call], 50), percentile(remote[call], 95)
            results.append(
                Result(
                    "W13",
                    f"{call} over HTTP (p95 ms)",
                    {"customers": n, "calls": calls},
                    "ms",
                    False,
                    crmcore=h95,
                    baselines={"in_process_p95": l95},
                    extra={
                        "http_p50_ms": round(h50, 2),
                        "in_process_p50_ms": round(l50, 2),
                        "p50_http_over_in_process": round(h50 / l50, 2),
                        "p95_http_over_in_process": round(h95 / l95, 2),
                    },
                    note="retail stack + web, crm serve with 1 worker on 127.0.0.1, one "
                    "sequential client; ratio <1: HTTP slower",
                )
            )
    return results
