"""Words of the complaint workflow used inside messages (an error naming a status, an action
or a proposal's state), marked for the catalog: ``term(STATUS_WORDS[status])``."""

from __future__ import annotations

from crmcore.i18n import N_
from crmcore_complaints.model import ProposalState, Status

STATUS_WORDS = {
    Status.REGISTERED: N_("registered"),
    Status.VALID: N_("valid"),
    Status.DISPATCHED: N_("dispatched"),
    Status.IN_PROGRESS: N_("in_progress"),  # the English names the status as stored
    Status.RESOLVED: N_("resolved"),
    Status.CLOSED: N_("closed"),
}
#: The actions of ``model.ALLOWED_FROM``, as the English names them ("cannot chase it").
ACTION_WORDS = {
    "judge": N_("judge"),
    "dispatch": N_("dispatch"),
    "respond": N_("respond"),
    "chase": N_("chase"),
    "propose": N_("propose"),
    "approve": N_("approve"),
    "resolve": N_("resolve"),
    "close": N_("close"),
    "reopen": N_("reopen"),
    "wait": N_("wait"),
    "resume": N_("resume"),
    "note": N_("note"),
}
PROPOSAL_WORDS = {
    ProposalState.PENDING: N_("pending"),
    ProposalState.APPROVED: N_("approved"),
    ProposalState.REJECTED: N_("rejected"),
}
#: A customer's status, named in a refusal to open a ticket for them.
CUSTOMER_WORDS = {"active": N_("active"), "merged": N_("merged"), "erased": N_("erased")}
#: The default configuration's names (a department, the SLA policies): pages show configured
#: names through the catalogs (``tr(name)``), so these read in Chinese; names a store
#: configures itself read as written.
CONFIGURED_NAMES = (N_("customer_service"), N_("standard"), N_("urgent"))
