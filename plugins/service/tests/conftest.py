"""Fixtures for the service tests: a CRM with the plugin (and others when asked), its API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crmcore_service.api import Service

from crmcore import CRM


@pytest.fixture
def setup(make_crm: Callable[..., CRM]) -> Callable[..., tuple[CRM, Service]]:
    """``setup(settings={...}, plugins=[...], **make_crm kwargs)`` → (crm, api)."""

    def build(
        settings: dict[str, Any] | None = None, plugins: tuple[Any, ...] = (), **kwargs: Any
    ) -> tuple[CRM, Service]:
        all_settings = {"service": settings or {}, **kwargs.pop("other_settings", {})}
        crm = make_crm(["service", *plugins], settings=all_settings, **kwargs)
        return crm, Service(crm)

    return build


@pytest.fixture
def customer_id() -> Callable[[CRM], str]:
    def add(crm: CRM, name: str = "Li Wei", phone: str = "+86 138 0013 8000") -> str:
        return crm.customers.add(actor="ann", name=name, phone=phone).id

    return add
