"""crmcore-service: service orders (业务受理, changes, cancellations, billing, faults, 工单)."""

from crmcore_service.api import Service

__all__ = ["Service"]
