"""pytest plugin shipped with crmcore (entry point ``pytest11``): fixtures for plugin authors.

- ``clock``: a ``ManualClock`` at ``crmcore.testing.START`` (Monday 2026-01-05 09:00 UTC).
- ``make_crm``: ``make_crm(plugins=[...], settings={...})`` builds a CRM on in-memory storage
  with that clock, loading only the plugins named; every CRM it made is closed after the test.
- ``crm``: a CRM with no plugins at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from crmcore.app import CRM
from crmcore.clock import ManualClock
from crmcore.testing.factories import START, make_test_crm


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
