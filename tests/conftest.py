"""Fixtures shared by the core's tests (the public ones come from ``crmcore.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def open_with_keys(make_crm, monkeypatch) -> Callable[..., Callable[..., Any]]:
    """``open_with_keys(plugins, storage)`` gives ``open_(key, *previous, **core)``, which
    closes the CRM it opened last and opens ``storage`` again with encryption at rest on,
    ``key`` as the current key and ``previous`` as the previous ones (through the
    environment), and ``core`` as further ``[core]`` settings."""
    opened: list[Any] = []

    def bind(plugins: Sequence[str], storage: Mapping[str, Any]) -> Callable[..., Any]:
        def open_(key: str, *previous: str, **core: Any) -> Any:
            if opened:
                opened[-1].close()
            monkeypatch.setenv("CRM_ENCRYPTION_KEY", key)
            if previous:
                monkeypatch.setenv("CRM_ENCRYPTION_PREVIOUS_KEYS", ",".join(previous))
            else:
                monkeypatch.delenv("CRM_ENCRYPTION_PREVIOUS_KEYS", raising=False)
            opened.append(
                make_crm(
                    list(plugins), storage=dict(storage), core={"encrypt_personal": True, **core}
                )
            )
            return opened[-1]

        return open_

    return bind


@pytest.fixture(params=["memory", "tinydb"])
def memory_or_tinydb(
    request: pytest.FixtureRequest, make_crm: Any, tmp_path: Path
) -> Iterator[Any]:
    """A core CRM on the in-memory store, then on the embedded one (clock at the stack
    bench's start): for tests of how records are stored, on both kinds of backend."""
    if request.param == "memory":
        yield make_crm()
        return
    from bench.stack import START
    from crmcore import ManualClock, open_crm

    crm = open_crm(
        {"storage": {"backend": "tinydb", "location": str(tmp_path / "data")}},
        clock=ManualClock(START),
        plugins=["storage_tinydb"],
    )
    yield crm
    crm.close()
