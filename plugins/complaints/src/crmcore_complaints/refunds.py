"""Refunds of a complaint's resolution: money returned for a purchase of the ticket's
customer, logged as a ``refund`` interaction (so spend, value tiers and points follow)."""

from __future__ import annotations

from crmcore import CRM, NotFoundError, ValidationError
from crmcore.entities import Interaction
from crmcore.i18n import msg
from crmcore_complaints.model import Ticket
from crmcore_complaints.names import SECTION
from crmcore_complaints.settings import ComplaintsSettings


def refund_logged(crm: CRM, ticket: Ticket, proposal: int | None) -> Interaction | None:
    """The refund already logged for ``ticket``'s ``proposal`` (a resolution after a reopen
    with the same approved solution refunds nothing twice)."""
    for logged in crm.interactions.for_customer(ticket.customer_id, kinds=["refund"]):
        mine = logged.ext.get(SECTION, {})
        if mine.get("ticket_id") == ticket.id and mine.get("proposal") == proposal:
            return logged
    return None


def check_refund(
    crm: CRM,
    settings: ComplaintsSettings,
    ticket: Ticket,
    refund: float | None,
    purchase_id: str | None,
) -> tuple[float, str]:
    """A refund must be positive and return part of a purchase of the ticket's customer that
    has not been refunded already; returns the amount and the purchase."""
    if refund is None or isinstance(refund, bool) or refund <= 0:
        raise ValidationError(
            msg("a refund needs an amount above zero, got %(refund)s", refund=repr(refund)),
            field="refund",
        )
    if not purchase_id:
        raise ValidationError(
            msg("name the purchase the refund returns (its interaction id)"), field="purchase_id"
        )
    try:
        purchase = crm.interactions.get(purchase_id)
    except NotFoundError:
        raise ValidationError(
            msg("no purchase %(purchase)s", purchase=repr(purchase_id)), field="purchase_id"
        ) from None
    if purchase.kind not in settings.purchase_kinds or purchase.customer_id != ticket.customer_id:
        raise ValidationError(
            msg(
                "%(purchase)s is not a purchase of customer %(customer)s",
                purchase=purchase_id,
                customer=ticket.customer_id,
            ),
            field="purchase_id",
        )
    refunded = sum(
        r.amount or 0.0
        for r in crm.interactions.for_customer(ticket.customer_id, kinds=["refund"])
        if r.ref == purchase_id
    )
    left = max(0.0, (purchase.amount or 0.0) - refunded)
    if refund > left + 1e-9:
        raise ValidationError(
            msg(
                "a refund of %(refund)s exceeds what is left of purchase %(purchase)s "
                "(%(left)s of %(amount)s)",
                refund=f"{refund:g}",
                purchase=purchase_id,
                left=f"{left:g}",
                amount=f"{purchase.amount or 0:g}",
            ),
            field="refund",
        )
    return float(refund), purchase_id
