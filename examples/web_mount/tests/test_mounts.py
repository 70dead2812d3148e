"""The crmcore API mounted in FastAPI and in Django, called through an ASGI test client."""

from __future__ import annotations

import pytest


@pytest.fixture
def crm(make_crm):
    return make_crm(
        plugins=["web"],
        settings={"security": {"enforce": True, "actors": {"ann": {"role": "agent"}}}},
    )


def _key(crm):
    from crmcore_web.apikeys import Keyring

    return {"Authorization": f"Bearer {Keyring(crm).create('ann', actor='system')[1]}"}


def _exercise(client, crm):
    assert client.get("/hello").status_code == 200  # the host's own route
    assert client.get("/crm/health").json() == {"status": "ok"}
    assert client.get("/crm/api/v1/tasks/queue").status_code == 401
    headers = _key(crm)
    made = client.post("/crm/api/v1/customers", headers=headers, json={"name": "王芳"})
    assert made.status_code == 201, made.text
    got = client.get(f"/crm/api/v1/customers/{made.json()['id']}", headers=headers)
    assert got.status_code == 200 and got.json()["name"] == "王芳"
    assert crm.customers.get(made.json()["id"]).created_by == "ann"
    assert client.get("/crm/api/openapi.json").json()["openapi"] == "3.1.0"


def test_mounted_in_fastapi(crm):
    pytest.importorskip("fastapi")
    from fastapi_host import build
    from starlette.testclient import TestClient

    with TestClient(build(crm)) as client:
        _exercise(client, crm)


def test_mounted_in_django(crm):
    pytest.importorskip("django")
    from django_host import build
    from starlette.testclient import TestClient

    with TestClient(build(crm)) as client:
        _exercise(client, crm)
        assert client.get("/hello").json() == {"hello": "from django"}


@pytest.fixture
def config_env(tmp_path, monkeypatch):
    """A crm.toml on a fresh embedded store with the web plugin, named by $CRM_CONFIG."""
    path = tmp_path / "crm.toml"
    path.write_text(
        '[storage]\nbackend = "tinydb"\nlocation = "data"\n\n'
        '[plugins]\nenabled = ["storage_tinydb", "web"]\n\n'
        '[security.actors.ann]\nrole = "agent"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CRM_CONFIG", str(path))
    monkeypatch.delenv("CRMCORE_PLUGINS", raising=False)
    return path


def _exercise_from_env(client):
    from crmcore_web.app import open_for_api

    with open_for_api(None) as crm:
        headers = _key(crm)
    made = client.post("/crm/api/v1/customers", headers=headers, json={"name": "Li"})
    assert made.status_code == 201, made.text
    assert client.get("/hello").status_code == 200


def test_the_fastapi_app_as_uvicorn_runs_it(config_env):
    pytest.importorskip("fastapi")
    import fastapi_host
    from starlette.testclient import TestClient

    with TestClient(fastapi_host.app) as client:  # runs the lifespan: opens, then closes
        _exercise_from_env(client)


def test_the_django_app_as_uvicorn_runs_it(config_env):
    pytest.importorskip("django")
    import django_host
    from starlette.testclient import TestClient

    with TestClient(django_host.app_from_env()) as client:
        _exercise_from_env(client)
