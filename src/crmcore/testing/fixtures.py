"""pytest plugin shipped with crmcore (entry point ``pytest11``): fixtures for plugin authors.

- ``clock``: a ``ManualClock`` at ``crmcore.testing.START`` (Monday 2026-01-05 09:00 UTC).
- ``make_crm``: ``make_crm(plugins=[...], settings={...})`` builds a CRM on in-memory storage
  with that clock, loading only the plugins named; every CRM it made is closed after the test.
- ``crm``: a CRM with no plugins at all.
- ``crm_cli``: ``cli = crm_cli("myplugin")`` runs ``crm`` in-process (``cli("customer",
  "list")`` -> exit code, stdout, stderr) with only the plugins named, on an in-memory store
  shared by every call; ``cli.open()`` opens a CRM on that store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crmcore.app import CRM
from crmcore.clock import ManualClock
from crmcore.storage.memory import MemoryStore
from crmcore.testing.cli import InProcessCli, make_cli
from crmcore.testing.factories import START, make_test_crm


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "api_covers(method, path): the JSON API route (path relative to /api/v1) this test calls",
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def make_crm(clock: ManualClock) -> Iterator[Callable[..., CRM]]:
    made: list[CRM] = []

    def factory(plugins: Any = (), **kwargs: Any) -> CRM:
        kwargs.setdefault("clock", clock)
        crm = make_test_crm(plugins, **kwargs)
        made.append(crm)
        return crm

    yield factory
    for crm in made:
        crm.close()


@pytest.fixture
def crm(make_crm: Callable[..., CRM]) -> CRM:
    return make_crm()


@pytest.fixture
def crm_cli(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., InProcessCli]]:
    made: list[InProcessCli] = []

    def factory(*plugins: str) -> InProcessCli:
        cli = make_cli(plugins, monkeypatch, capsys, tmp_path)
        made.append(cli)
        return cli

    yield factory
    for cli in made:
        MemoryStore.drop_shared(cli.location)
