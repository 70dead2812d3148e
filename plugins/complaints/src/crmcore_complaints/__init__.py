"""crmcore-complaints: complaint tickets handled end to end (DOMAIN §5).

Host applications use ``crmcore_complaints.api.Complaints(crm)``; the CLI is ``crm complaints``.
"""

from crmcore_complaints.model import Claim, Status, Ticket

__all__ = ["Claim", "Status", "Ticket"]
