"""API keys: the CLI, hashing, Bearer authentication, revocation, the brake, the key's role."""

from __future__ import annotations

import json
import logging

import pytest
from crmcore_web.apikeys import KEYS, Brake, Keyring

from crmcore import PermissionDenied, open_crm
from crmcore.cli.main import run
from crmcore.logs import configure_logging
from crmcore.testing.cli import one_line_error


def _all_stored_text(crm) -> str:
    return json.dumps(list(crm.collection(KEYS).iter()))


def test_apikey_create_prints_the_key_once_as_the_last_word(crm_cli):
    cli = crm_cli("web")
    code, out, err = cli("apikey", "create", "ann", "--role", "agent", "--label", "shop")
    assert code == 0, err
    key = out.split()[-1]
    assert key.startswith("crm.key_")
    code, out, _ = cli("--json", "apikey", "create", "bo", "--role", "manager")
    data = json.loads(out)
    assert code == 0 and data["key"].startswith("crm.key_") and data["role"] == "manager"
    with cli.open() as crm:
        stored = _all_stored_text(crm)
        assert key.split(".")[2] not in stored and data["key"].split(".")[2] not in stored
        assert Keyring(crm).verify(key).actor == "ann"
        assert Keyring(crm).verify(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    code, out, _ = cli("apikey", "list")
    assert code == 0 and "ann" in out and "shop" in out and key not in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("apikey", "create", "worker:7", "--role", "admin"), "system actor"),
        (("apikey", "create", "stranger"), "not a known actor; pass --role"),
        (("apikey", "create", "ann", "--role", "system"), "Invalid value for '--role'"),
        (("apikey", "revoke", "key_nope"), "key_nope"),
    ],
)
def test_apikey_mistakes_are_one_line_and_write_nothing(crm_cli, args, words):
    cli = crm_cli("web")
    code, _out, err = cli(*args)
    assert code != 0 and words in one_line_error(err)
    with cli.open() as crm:
        assert crm.collection(KEYS).count() == 0


def test_revoke_and_last_use_through_the_cli(crm_cli, api_client):
    cli = crm_cli("web")
    _, out, _ = cli("--json", "apikey", "create", "ann", "--role", "agent")
    created = json.loads(out)
    config = {
        "storage": {"backend": "memory", "location": cli.location},
        "security": {"enforce": True},
    }
    with open_crm(config, plugins=cli.plugins) as crm:
        client = api_client(crm)
        headers = {"Authorization": f"Bearer {created['key']}"}
        assert client.get("/api/v1/tasks/queue", headers=headers).status_code == 200
        _, listed, _ = cli("--json", "apikey", "list")
        assert json.loads(listed)[0]["last_used_at"] is not None
        code, _, _ = cli("apikey", "revoke", created["id"])
        assert code == 0
        assert client.get("/api/v1/tasks/queue", headers=headers).status_code == 401
    _, listed, _ = cli("--json", "apikey", "list")
    assert json.loads(listed) == []
    _, listed, _ = cli("--json", "apikey", "list", "--all")
    assert json.loads(listed)[0]["revoked_at"] is not None


@pytest.mark.api_covers("GET", "/tasks/queue")
@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer nonsense", "Basic YW5uOnB3", "Bearer crm.key_nope.secret"]
)
def test_no_or_a_bad_key_is_401(web, header):
    headers = {} if header is None else {"Authorization": header}
    answer = web.client.get("/api/v1/tasks/queue", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["error"]["type"] == "unauthorized"


@pytest.mark.api_covers("GET", "/tasks/queue")
def test_repeated_failures_are_braked_with_429_and_retry_after(web_for):
    web = web_for(settings={"web": {"max_failures": 3, "block_seconds": 30}})
    bad = {"Authorization": "Bearer crm.key_nope.guess"}
    codes = [web.client.get("/api/v1/tasks/queue", headers=bad).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    good = web.client.get("/api/v1/tasks/queue", headers=web.as_["ann"])
    assert good.status_code == 429  # even a right key waits: the address is braked
    assert 1 <= int(good.headers["retry-after"]) <= 31


def test_the_brake_lets_go_after_the_block_and_counts_within_its_window():
    now = [0.0]
    brake = Brake(max_failures=3, window=10, block=60, now=lambda: now[0])
    for t in (0, 5, 11, 16):  # by 16 the failures at 0 and 5 have left the window
        now[0] = t
        brake.failed("a")
    assert brake.retry_after("a") == 0
    now[0] = 17
    brake.failed("a")  # the third within 10 s: 11, 16, 17
    assert brake.retry_after("a") == 60
    assert brake.retry_after("b") == 0
    now[0] = 77
    assert brake.retry_after("a") == 0


@pytest.mark.api_covers("GET", "/customers/{customer_id}")
def test_the_keys_role_applies_not_the_directorys(web):
    made = web.customer("Li Lei", owner="bo")
    auditor_key = web.client.key("ann", "auditor")  # ann is an agent in the directory
    read = web.client.get(f"/api/v1/customers/{made['id']}", headers=auditor_key)
    assert read.status_code == 200  # an auditor reads everything
    write = web.client.patch(
        f"/api/v1/customers/{made['id']}",
        headers={**auditor_key, "If-Match": f'"{made["version"]}"'},
        json={"region": "x"},
    )
    assert write.status_code == 403 and "auditors are read-only" in write.text
    # outside API requests ann is still the directory's agent
    assert web.crm.actor("ann").role.value == "agent"


@pytest.mark.api_covers("POST", "/customers")
def test_keys_never_reach_the_logs(web, capsys):
    configure_logging("debug", "json")
    try:
        key = web.as_["ann"]["Authorization"].split()[1]
        web.client.post("/api/v1/customers", headers=web.as_["ann"], json={"name": "Li"})
        web.client.get("/api/v1/tasks/queue", headers={"Authorization": f"Bearer {key}x"})
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert '"route": "/customers"' in text and '"status": 201' in text  # it did log
        assert '"status": 401' in text
        assert key.split(".")[2] not in text
    finally:
        configure_logging("warning", "console")
        logging.getLogger().handlers.clear()


def test_an_app_over_a_crm_without_enforcement_is_refused(make_crm):
    from crmcore_web import create_app

    from crmcore import ConfigError

    with pytest.raises(ConfigError, match=r"security\.enforce"):
        create_app(make_crm(plugins=["web"]))


def test_health_needs_no_key_and_reveals_no_path(tmp_path, api_client, make_crm):
    crm = make_crm(
        plugins=["web", "storage_tinydb"],
        settings={"security": {"enforce": True}},
        storage={"backend": "tinydb", "location": str(tmp_path / "store")},
    )
    client = api_client(crm)
    answer = client.get("/health")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert str(tmp_path) not in answer.text


def test_cli_help_lists_serve_and_apikey(capsys, monkeypatch):
    monkeypatch.setenv("CRMCORE_PLUGINS", "web")
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert "serve" in out and "apikey" in out


def test_an_agent_lists_only_their_own_keys(make_crm):
    crm = make_crm(
        plugins=["web"],
        settings={
            "security": {
                "enforce": True,
                "actors": {
                    "ann": {"role": "agent"},
                    "bo": {"role": "agent"},
                    "boss": {"role": "admin"},
                },
            }
        },
    )
    keys = Keyring(crm)
    keys.create("ann", actor="boss")
    keys.create("bo", actor="boss")
    assert [k.actor for k in keys.list(actor="ann")] == ["ann"]
    assert [k.actor for k in keys.list(actor="boss")] == ["ann", "bo"]
    with pytest.raises(PermissionDenied):
        keys.create("bo", actor="ann")  # an agent makes keys for themselves only


def test_serve_refuses_workers_on_a_store_that_cannot_be_shared(crm_cli):
    cli = crm_cli("web")
    code, _out, err = cli("serve", "--workers", "2")
    assert code == 2 and "cannot be shared by several processes" in one_line_error(err)


def test_serve_reports_a_bad_configuration_in_one_line(crm_cli, tmp_path):
    cli = crm_cli("web")
    bad = tmp_path / "crm.toml"
    bad.write_text("[web]\nmax_body_bytes = -1\n", encoding="utf-8")
    code, _out, err = cli("--config", str(bad), "serve")
    assert code == 2 and "max_body_bytes" in one_line_error(err)
