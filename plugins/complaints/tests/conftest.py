"""Fixtures for the complaints tests: a CRM with the plugin, its API, and a hook recorder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crmcore_complaints.api import Complaints

from crmcore import CRM, Effects, hookimpl


class Recorder:
    """A plugin that records every complaint hook call (as another plugin would see it)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def named(self, hook: str) -> list[dict[str, Any]]:
        return [kw for name, kw in self.events if name == hook]

    @hookimpl
    def crm_complaint_registered(self, crm: CRM, ticket: Any, actor: str) -> Effects | None:
        self.events.append(("registered", {"ticket": ticket, "actor": actor}))
        return None

    @hookimpl
    def crm_complaint_escalated(
        self, crm: CRM, ticket: Any, level: int, target: str, actor: str
    ) -> Effects | None:
        self.events.append(
            ("escalated", {"ticket": ticket, "level": level, "target": target, "at": crm.now()})
        )
        return None

    @hookimpl
    def crm_complaint_resolved(self, crm: CRM, ticket: Any, actor: str) -> Effects | None:
        self.events.append(("resolved", {"ticket": ticket, "actor": actor}))
        return None

    @hookimpl
    def crm_complaint_reopened(self, crm: CRM, ticket: Any, actor: str) -> Effects | None:
        self.events.append(("reopened", {"ticket": ticket, "actor": actor}))
        return None

    @hookimpl
    def crm_complaint_closed(self, crm: CRM, ticket: Any, actor: str) -> Effects | None:
        self.events.append(("closed", {"ticket": ticket, "actor": actor}))
        return None

    @hookimpl
    def crm_complaint_sla_breached(
        self, crm: CRM, ticket: Any, target: str, due_at: Any, actor: str
    ) -> Effects | None:
        self.events.append(
            ("breached", {"ticket": ticket, "target": target, "due_at": due_at, "at": crm.now()})
        )
        return None


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def setup(
    make_crm: Callable[..., CRM], recorder: Recorder
) -> Callable[..., tuple[CRM, Complaints]]:
    """``setup(settings={...}, core={...})`` → (crm, api) with complaints and the recorder."""

    def build(settings: dict[str, Any] | None = None, **kwargs: Any) -> tuple[CRM, Complaints]:
        crm = make_crm(
            ["complaints", ("recorder", recorder)],
            settings={"complaints": settings or {}},
            **kwargs,
        )
        return crm, Complaints(crm)

    return build


@pytest.fixture
def customer_id() -> Callable[[CRM], str]:
    def add(crm: CRM, name: str = "Li Wei") -> str:
        return crm.customers.add(actor="ann", name=name, phone="+86 138 0013 8000").id

    return add
