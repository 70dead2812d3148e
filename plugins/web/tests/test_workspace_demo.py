"""``crm demo`` ends by saying how to open the workspace, and the user it prints signs in."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

from crmcore_web import create_app


def test_the_demo_prints_a_user_that_signs_in_to_the_workspace(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    folder = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmcore.cli.main",
            "--json",
            "demo",
            "--customers",
            "20",
            "--days",
            "3",
            "--dir",
            str(folder),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    line = next(s for s in result["next_steps"] if "workspace" in s)
    assert f"crm --config {folder / 'crm.toml'} serve" in line
    name, password = re.search(r"sign in as (\S+) with the password (\S+) ", line).groups()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    with TestClient(
        create_app(str(folder / "crm.toml")), headers={"Accept-Language": "en"}
    ) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        home = client.post(
            "/login", data={"username": name, "password": password, "csrf_token": token}
        )
        assert home.status_code == 200 and "<h1>My day</h1>" in home.text
        assert 'class="task"' in home.text  # the demo rep has work waiting


def test_the_demo_says_it_in_plain_text_too(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "crmcore.cli.main",
            "demo",
            "--customers",
            "10",
            "--days",
            "2",
            "--dir",
            str(tmp_path / "d"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Open the workspace: crm --config" in done.stdout
