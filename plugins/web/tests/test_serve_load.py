"""``crm serve --workers 2`` in a real subprocess under load: 32 concurrent clients on
127.0.0.1 for a bounded time and request count, mixing reads and writes. No server error,
every acknowledged write is stored and nothing else; killing a worker mid-load loses no
acknowledged write."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from crmcore import open_crm

CLIENTS = 32
SECONDS = 3.0  # the plain load stops after this long …
MAX_REQUESTS = 1500  # … or after this many requests, whichever comes first
MIN_PER_CLIENT = 3  # each client makes this many whatever the time, so a slow machine still
# puts every client through the server (the test must not depend on the machine's speed)
# The load with a kill is bounded by count (the worker dies at the first count, the load goes
# on to the second), with a time cap that only a dead service would reach.
KILL_AT, KILL_MAX_REQUESTS, KILL_CAP_SECONDS = 150, 600, 60.0
PLUGINS = "storage_tinydb,web"


def _crm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "crmcore.cli.main", *args]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes under the ``crm serve`` process ``pid``."""
    found = []
    for child in _children(pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline:  # not the resource tracker
            found.append(child)
    return found


class Server:
    """A ``crm serve`` subprocess on a store made by ``crm init``, with an admin key."""

    def __init__(self, folder: Path) -> None:
        self.env = {**os.environ, "CRMCORE_PLUGINS": PLUGINS, "COLUMNS": "200"}
        for name in ("CRM_CONFIG", "CRM_STORAGE_BACKEND", "CRM_STORAGE_LOCATION", "CRM_ACTOR"):
            self.env.pop(name, None)
        self.config = folder / "crm.toml"
        self._run("init", "--path", str(self.config))
        out = self._run(
            "--config", str(self.config), "--json", "apikey", "create", "loader", "--role", "admin"
        )
        self.headers = {"Authorization": f"Bearer {json.loads(out)['key']}"}
        # files, not pipes: a pipe nobody reads fills up and blocks the server's writes
        self._out = open(folder / "serve.out", "w+b")  # noqa: SIM115
        self._err = open(folder / "serve.err", "w+b")  # noqa: SIM115
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            _crm_cmd(
                "--config",
                str(self.config),
                "--log-level",
                "info",
                "--log-format",
                "json",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                "2",
            ),
            env=self.env,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        self._wait_ready()

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            _crm_cmd(*args), env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"crm serve exited: {self.output()}")
            try:
                if (
                    httpx.get(f"{self.url}/health", timeout=2).status_code == 200
                    and len(_workers(self.proc.pid)) >= 2
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("crm serve did not answer /health within 60 s")

    def output(self) -> str:
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.output()

    def stdout(self) -> str:
        self._out.seek(0)
        return self._out.read().decode("utf-8", "replace")

    def close(self) -> None:
        self._out.close()
        self._err.close()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()
        srv.close()


class Load:
    """What the clients did: acknowledged writes, writes in doubt, statuses."""

    def __init__(self, limit: int = MAX_REQUESTS) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.customers: dict[str, str] = {}  # name -> id, acknowledged
        self.interactions: set[str] = set()  # ref, acknowledged
        self.in_doubt: set[str] = set()  # names and refs of writes with no answer
        self.statuses: dict[int, int] = {}
        self.transport_errors = 0
        self.requests = 0

    def take(self) -> bool:
        with self.lock:
            if self.requests >= self.limit:
                return False
            self.requests += 1
            return True

    def note(self, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _client(server: Server, load: Load, seed: int, until: float, seeds: list[str]) -> None:
    rng = random.Random(seed)
    n = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        while (n < MIN_PER_CLIENT or time.monotonic() < until) and load.take():
            n += 1
            choice = rng.random()
            token = f"c{seed}-{n}"
            with load.lock:
                known = list(load.customers.values()) or seeds
            try:
                if choice < 0.3:
                    answer = http.post("/api/v1/customers", json={"name": token})
                    if answer.status_code == 201:
                        with load.lock:
                            load.customers[token] = answer.json()["id"]
                elif choice < 0.55:
                    answer = http.post(
                        f"/api/v1/customers/{rng.choice(known)}/interactions",
                        json={"kind": "purchase", "amount": 10, "ref": token},
                    )
                    if answer.status_code == 201:
                        with load.lock:
                            load.interactions.add(token)
                elif choice < 0.85:
                    answer = http.get(f"/api/v1/customers/{rng.choice(known)}")
                else:
                    answer = http.get("/api/v1/tasks/queue")
                load.note(answer.status_code)
            except httpx.TransportError:
                with load.lock:
                    load.transport_errors += 1
                    if choice < 0.55:
                        load.in_doubt.add(token)


def _run_load(
    server: Server, load: Load, seeds: list[str], *, seconds: float = SECONDS, during: Any = None
) -> None:
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(server, load, i, until, seeds))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    for thread in threads:
        thread.join(timeout=seconds + MIN_PER_CLIENT * 30 + 60)  # 30 s: a request's timeout
    assert not any(t.is_alive() for t in threads)


def _seed(server: Server, count: int = 5) -> list[str]:
    ids = []
    for i in range(count):
        answer = httpx.post(
            f"{server.url}/api/v1/customers",
            headers=server.headers,
            json={"name": f"seed-{i}"},
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def _stored(server: Server) -> tuple[dict[str, str], set[str]]:
    with open_crm(server.config, plugins=PLUGINS.split(",")) as crm:
        customers = {c.name: c.id for c in crm.customers.iter() if c.name.startswith("c")}
        refs = {i.ref for i in crm.interactions.iter() if i.ref}
        assert crm.customers.count() == len(customers) + 5
        assert crm.interactions.count() == len(refs)
    return customers, refs


def test_32_clients_two_workers_no_errors_and_exact_counts(server):
    seeds = _seed(server)
    load = Load()
    _run_load(server, load, seeds)
    logs = server.stop()
    # the workers log each request, JSON on stderr as the CLI was told; stdout stays empty
    assert server.stdout() == ""
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert sum(1 for entry in lines if entry.get("event") == "request") >= load.requests
    assert "Traceback" not in logs
    assert load.requests >= CLIENTS * MIN_PER_CLIENT  # every client ran
    assert not [s for s in load.statuses if s >= 500], load.statuses
    assert set(load.statuses) <= {200, 201}, load.statuses
    assert load.transport_errors == 0
    customers, refs = _stored(server)
    assert customers == load.customers  # every acknowledged create, and nothing else
    assert refs == load.interactions


def test_killing_a_worker_mid_load_loses_no_acknowledged_write(server):
    seeds = _seed(server)
    load = Load(KILL_MAX_REQUESTS)
    killed: list[int] = []
    at: list[int] = []  # how many requests had been made when the worker died

    def kill_one() -> None:
        deadline = time.monotonic() + KILL_CAP_SECONDS
        while load.requests < KILL_AT and time.monotonic() < deadline:
            time.sleep(0.005)
        at.append(load.requests)
        victim = _workers(server.proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    _run_load(server, load, seeds, seconds=KILL_CAP_SECONDS, during=kill_one)
    assert at[0] < load.requests  # the load went on after the kill
    # the supervisor replaces the dead worker, and the service goes on answering
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = _workers(server.proc.pid)
        if len(workers) >= 2 and killed[0] not in workers:
            break
        time.sleep(0.2)
    assert killed[0] not in _workers(server.proc.pid) and len(_workers(server.proc.pid)) >= 2
    after = httpx.get(
        f"{server.url}/api/v1/customers/{seeds[0]}", headers=server.headers, timeout=30
    )
    assert after.status_code == 200
    server.stop()
    assert not [s for s in load.statuses if s >= 500], load.statuses
    customers, refs = _stored(server)
    for name, id in load.customers.items():
        assert customers.get(name) == id  # every acknowledged create is there
    assert load.interactions <= refs  # every acknowledged interaction is there
    # anything else stored is a write whose answer the kill swallowed
    assert set(customers) - set(load.customers) <= load.in_doubt
    assert refs - load.interactions <= load.in_doubt
