"""Run the ``crm`` command line in-process, as users run it, for tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from crmcore.app import CRM, open_crm
from crmcore.cli.main import run


class InProcessCli:
    """``cli("customer", "add", "--name", "Li")`` -> ``(exit code, stdout, stderr)``.

    Every call loads exactly ``plugins`` (by entry-point name) and works on one named in-memory
    store shared by all calls of this object, so a test can add with one command and read back
    with the next. ``open()`` opens a CRM on that same store to inspect or seed it.
    """

    def __init__(
        self, plugins: Sequence[str], location: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.plugins = list(plugins)
        self.location = location
        self._capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = run(list(args))
        captured = self._capsys.readouterr()
        return code, captured.out, captured.err

    def open(self, **kwargs: Any) -> CRM:
        return open_crm(
            {"storage": {"backend": "memory", "location": self.location}},
            plugins=self.plugins,
            **kwargs,
        )


def make_cli(
    plugins: Sequence[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cwd: Any,
) -> InProcessCli:
    """Point the environment at a fresh named store and the given plugins only."""
    location = f"cli-{uuid.uuid4()}"
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("CRMCORE_PLUGINS", ",".join(plugins))
    monkeypatch.setenv("CRM_STORAGE_BACKEND", "memory")
    monkeypatch.setenv("CRM_STORAGE_LOCATION", location)
    monkeypatch.delenv("CRM_CONFIG", raising=False)
    monkeypatch.delenv("CRM_ACTOR", raising=False)
    return InProcessCli(plugins, location, capsys)


def one_line_error(err: str) -> str:
    """Assert that ``err`` (a command's stderr) is what a user mistake must give — one line
    starting with ``error:`` and no traceback — and return that line."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]
