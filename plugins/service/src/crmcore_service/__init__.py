"""crmcore-service: service orders (业务受理, changes, cancellations, billing, faults, 工单)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_service.api import Service

__all__ = ["Service"]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "Service": "crmcore_service.api",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
