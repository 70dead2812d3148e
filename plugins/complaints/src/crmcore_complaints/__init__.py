"""crmcore-complaints: complaint tickets handled end to end (DOMAIN §5).

Host applications use ``crmcore_complaints.api.Complaints(crm)``; the CLI is ``crm complaints``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.exports import exports_on_first_use

if TYPE_CHECKING:
    from crmcore_complaints.model import Claim, Status, Ticket

__all__ = ["Claim", "Status", "Ticket"]

# Imported on first use (PEP 562): registering the plugin with ``crm`` imports only its
# ``plugin`` module, not the whole package.
_EXPORTS = {
    "Claim": "crmcore_complaints.model",
    "Status": "crmcore_complaints.model",
    "Ticket": "crmcore_complaints.model",
}


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
