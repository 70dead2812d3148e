"""Notifications about tickets: sent through ``crm_complaint_notify``; the default notifier
keeps them in ``complaints.outbox`` and logs them."""

from __future__ import annotations

from crmcore import CRM
from crmcore.logs import get_logger
from crmcore_complaints.model import OUTBOX, Notification, Ticket
from crmcore_complaints.names import SECTION


class Notifier:
    """Who hears about a ticket: every ``crm_complaint_notify`` implementation (the outbox
    last, as the default)."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.records = crm.records(OUTBOX, Notification)
        self.log = get_logger(SECTION)

    def send(
        self, ticket: Ticket, kind: str, recipient: str | None, role: str, subject: str, body: str
    ) -> None:
        """Tell ``recipient`` (who holds ``role``; None when no one does) about ``ticket``."""
        notification = Notification(
            id=self.crm.new_id("ntf_"),
            kind=kind,
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            created_at=self.crm.now(),
            recipient=recipient,
            role=role,
            subject=subject,
            body=body,
        )
        self.crm.plugins.crm_complaint_notify(crm=self.crm, notification=notification)

    def deliver(self, notification: Notification) -> bool:
        """The default notifier: keep the message in ``complaints.outbox`` and log it."""
        self.records.insert(notification)
        self.log.info(
            "complaint notification",
            kind=notification.kind,
            ticket=notification.ticket_id,
            recipient=notification.recipient,
            role=notification.role,
            subject=notification.subject,
        )
        return True
