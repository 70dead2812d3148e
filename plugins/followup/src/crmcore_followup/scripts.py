"""Callback scripts (DOMAIN §3: the script branches on satisfied / unsatisfied) and what an
answer leads to.

``script_for(crm, task)`` picks the script for the callback's occasion: a closed complaint, or
the kind of interaction that called for it (purchase, treatment, business …; any other kind
gets the general script). ``outcome_of(crm, interaction)`` says what recording an answer did:
the recovery task created, the complaint logged, the ticket complaints reopens, or nothing.

Texts are English message ids marked with ``N_`` for the plugin's gettext catalog; pages
translate them when they show them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from crmcore import Interaction, NotFoundError, Task
from crmcore_followup.recovery import NAMESPACE, is_unsatisfied, recovery_key

if TYPE_CHECKING:
    from crmcore import CRM


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it here."""
    return message


@attrs.frozen
class CallbackScript:
    """What the rep says and asks on a callback, and how each answer branch ends."""

    occasion: str  # complaint, purchase, treatment, business, general
    opening: str
    questions: tuple[str, ...]
    if_satisfied: str
    if_unsatisfied: str


_CLOSE_OK = N_("Thank the customer, say they can call us any time, and end the call.")
_CLOSE_BAD = N_("Ask what was wrong, apologise, promise improvement and say who will get back "
                "to them.")

SCRIPTS: dict[str, CallbackScript] = {s.occasion: s for s in (
    CallbackScript(
        "complaint",
        N_("Introduce yourself and say you are calling about the complaint we resolved."),
        (N_("Is the problem fully solved?"),
         N_("How satisfied are you with how we handled your complaint, from 1 to 5?"),
         N_("Is there anything else we can do for you?")),
        N_("Thank the customer for their patience and close the call."),
        N_("Ask what is still wrong and apologise: the complaint is reopened and its owner "
           "will act on it.")),
    CallbackScript(
        "purchase",
        N_("Introduce yourself and say you are calling about their recent purchase."),
        (N_("Has everything arrived, and does it work as expected?"),
         N_("Was anything about the purchase or the delivery not right?"),
         N_("How satisfied are you with the purchase, from 1 to 5?")),
        _CLOSE_OK, _CLOSE_BAD),
    CallbackScript(
        "treatment",
        N_("Introduce yourself and say you are calling to ask how they are after their "
           "treatment."),
        (N_("How are you feeling since the treatment?"),
         N_("Have you noticed any discomfort or anything unexpected?"),
         N_("How satisfied are you with the treatment and our staff, from 1 to 5?")),
        N_("Remind them of any aftercare advice and their next visit, thank them and end the "
           "call."),
        _CLOSE_BAD),
    CallbackScript(
        "business",
        N_("Introduce yourself and say you are calling about the service we completed for "
           "them."),
        (N_("Was everything done as agreed?"),
         N_("Did anything take longer than promised or go wrong?"),
         N_("How satisfied are you with the service, from 1 to 5?")),
        _CLOSE_OK, _CLOSE_BAD),
    CallbackScript(
        "general",
        N_("Introduce yourself and say why you are calling."),
        (N_("How did it go?"),
         N_("How satisfied are you with us, from 1 to 5?")),
        _CLOSE_OK, _CLOSE_BAD),
)}


def occasion_of(crm: CRM, task: Task) -> str:
    """What the callback is about: ``complaint`` for a closed complaint, else the kind of the
    interaction that called for it (``general`` when unknown)."""
    meta = task.ext.get(NAMESPACE, {})
    if meta.get("trigger") == "complaint" or (task.source == "complaints"):
        return "complaint"
    if task.ref:
        try:
            return crm.interactions.get(task.ref).kind
        except NotFoundError:
            pass
    return "general"


def script_for(crm: CRM, task: Task) -> CallbackScript:
    """The script for the callback ``task`` (the general one for an occasion without one)."""
    return SCRIPTS.get(occasion_of(crm, task), SCRIPTS["general"])


@attrs.frozen
class Outcome:
    """What a recorded callback answer led to.

    ``kind``: ``none`` (satisfied, or ``unsatisfied_action = "none"``), ``task`` (the
    recovery ``task``; its assignee None when it waits in the shared queue) or ``ticket``
    (the ``complaint`` interaction logged for the complaints plugin, ``interaction_id``).
    ``reopens``: the ticket the complaints plugin reopens (a complaint's own callback
    answered unsatisfied)."""

    kind: str
    unsatisfied: bool
    task: Task | None = None
    interaction_id: str | None = None
    reopens: str | None = None


def outcome_of(crm: CRM, interaction: Interaction) -> Outcome:
    """What recording the callback ``interaction`` led to, read back from the store."""
    settings = crm.settings(NAMESPACE)
    if not is_unsatisfied(interaction, settings):
        return Outcome("none", False)
    task_id = interaction.ext.get(NAMESPACE, {}).get("task_id")
    occasion = None
    if task_id:
        try:
            occasion = occasion_of(crm, crm.tasks.get(task_id))
        except NotFoundError:
            occasion = None
    reopens = (interaction.ref if occasion == "complaint" and crm.has_plugin("complaints")
               else None)
    found = crm.tasks.find({"dedupe_key": recovery_key(interaction.id)}, limit=1)
    if found:
        return Outcome("task", True, task=found[0], reopens=reopens)
    logged = crm.interactions.find({"customer_id": interaction.customer_id,
                                    "kind": "complaint",
                                    f"ext.{NAMESPACE}.recovery_of": interaction.id}, limit=1)
    if logged:
        return Outcome("ticket", True, interaction_id=logged[0].id, reopens=reopens)
    return Outcome("none", True, reopens=reopens)
