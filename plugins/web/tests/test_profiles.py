"""A store made by ``crm init --profile …`` serves the API as written, with no extra setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
from crmcore_web import create_app


@pytest.mark.parametrize("profile", ["retail", "telecom"])
def test_a_profile_as_crm_init_writes_it_serves_the_api(tmp_path, profile):
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "CRMCORE_PLUGINS",
            "CRM_CONFIG",
            "CRM_STORAGE_BACKEND",
            "CRM_STORAGE_LOCATION",
            "CRM_ACTOR",
        )
    }
    config = tmp_path / "crm.toml"

    def crm(*args):
        done = subprocess.run(
            [sys.executable, "-m", "crmcore.cli.main", "--config", str(config), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    crm("init", "--profile", profile, "--path", str(config))
    key = json.loads(crm("--as", "admin", "--json", "apikey", "create", "ann", "--role", "admin"))[
        "key"
    ]
    with warnings.catch_warnings():  # Starlette suggests httpx2; httpx works the same
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    with TestClient(create_app(config)) as client:
        made = client.post(
            "/api/v1/customers",
            headers={"Authorization": f"Bearer {key}"},
            json={"name": "王芳", "phone": "13800138000"},
        )
        assert made.status_code == 201, made.text
        assert (
            client.get(
                "/api/v1/customers", headers={"Authorization": f"Bearer {key}"}, params={"q": "王"}
            ).json()[0]["id"]
            == made.json()["id"]
        )
