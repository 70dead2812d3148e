"""Hooks the service plugin offers to other plugins.

Implement them with ``@crmcore.hookimpl(optionalhook=True)``; they are fired through
``crm.emit``, so return ``crmcore.Effects`` and the core applies them in the same transaction
as the order's change. ``order`` is a ``crmcore_service.model.Order`` (attrs, frozen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore import hookspec

if TYPE_CHECKING:
    from crmcore import CRM, Effects
    from crmcore_service.model import Order


class ServiceHookSpecs:
    """``crm_service_*`` hooks."""

    @hookspec
    def crm_service_step_entered(self, crm: CRM, order: Order, from_state: str | None,
                                 actor: str) -> Effects | None:
        """An order was opened (``from_state`` None) or moved to ``order.state``. The service
        plugin answers with the task for whoever acts at the new step. Every plugin."""

    @hookspec
    def crm_service_order_ended(self, crm: CRM, order: Order, actor: str) -> Effects | None:
        """An order reached a step that ends it; ``order.outcome`` is done, cancelled or
        rejected. Every plugin is called."""

    @hookspec
    def crm_service_order_escalated(self, crm: CRM, order: Order, level: int, target: str,
                                    actor: str) -> Effects | None:
        """The worker raised a stalled step to ladder ``level`` (1-based); ``target`` is the
        person it went to (or the role when no one holds it). Once per order, step visit and
        level. Every plugin is called."""
