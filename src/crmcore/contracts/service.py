"""Service's contract: service-order step, end and escalation events."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore.app import CRM
    from crmcore.effects import Effects


class ServiceOrder(Protocol):
    """A service order as the ``crm_service_*`` events pass it (read-only; the service
    plugin's ``Order`` is a frozen attrs class with more fields)."""

    @property
    def id(self) -> str: ...

    @property
    def customer_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def state(self) -> str:
        """The step the order is at now."""

    @property
    def owner(self) -> str: ...

    @property
    def assignee(self) -> str | None:
        """Who acts at the current step."""

    @property
    def department(self) -> str | None: ...

    @property
    def visit(self) -> int:
        """How many steps the order has entered (1 once opened)."""

    @property
    def opened_at(self) -> datetime: ...

    @property
    def outcome(self) -> str | None:
        """done, cancelled or rejected once the order ended; None while open."""


class ServiceContract:
    """``crm_service_*``."""

    @hookspec
    def crm_service_step_entered(
        self, crm: CRM, order: ServiceOrder, from_state: str | None, actor: str
    ) -> Effects | None:
        """An order was opened (``from_state`` None) or moved to ``order.state``. The service
        plugin answers with the task for whoever acts at the new step. Every plugin."""

    @hookspec
    def crm_service_order_ended(self, crm: CRM, order: ServiceOrder, actor: str) -> Effects | None:
        """An order reached a step that ends it; ``order.outcome`` is done, cancelled or
        rejected. Every plugin is called."""

    @hookspec
    def crm_service_order_escalated(
        self, crm: CRM, order: ServiceOrder, level: int, target: str, actor: str
    ) -> Effects | None:
        """The worker raised a stalled step to ladder ``level`` (1-based); ``target`` is the
        person it went to (or the role when no one holds it). Once per order, step visit and
        level. Every plugin is called."""
