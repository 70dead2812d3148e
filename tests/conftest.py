"""Fixtures shared by the core's tests (the public ones come from ``crmcore.testing``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
