"""Callback scripts (DOMAIN §3: the script branches on satisfied / unsatisfied) and what an
answer leads to.

``script_for(crm, task)`` picks the script for the callback's occasion: a closed complaint, or
the kind of interaction that called for it (purchase, treatment, business …; any other kind
gets the general script). ``outcome_of(crm, interaction)`` says what recording an answer did:
the recovery task created, the complaint logged, the ticket complaints reopens, or nothing.

Texts are lazy strings (``crmcore.i18n.lazy``) from the plugin's gettext catalog: shown in
the page's language.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from crmcore import Interaction, NotFoundError, Task
from crmcore.i18n import LazyText, lazy
from crmcore_followup.recovery import NAMESPACE, is_unsatisfied, recovery_key

if TYPE_CHECKING:
    from crmcore import CRM


@attrs.frozen
class CallbackScript:
    """What the rep says and asks on a callback, and how each answer branch ends."""

    occasion: str  # complaint, purchase, treatment, business, general
    opening: LazyText
    questions: tuple[LazyText, ...]
    if_satisfied: LazyText
    if_unsatisfied: LazyText


_CLOSE_OK = lazy("Thank the customer, say they can call us any time, and end the call.")
_CLOSE_BAD = lazy(
    "Ask what was wrong, apologise, promise improvement and say who will get back to them."
)

SCRIPTS: dict[str, CallbackScript] = {
    s.occasion: s
    for s in (
        CallbackScript(
            "complaint",
            lazy("Introduce yourself and say you are calling about the complaint we resolved."),
            (
                lazy("Is the problem fully solved?"),
                lazy("How satisfied are you with how we handled your complaint, from 1 to 5?"),
                lazy("Is there anything else we can do for you?"),
            ),
            lazy("Thank the customer for their patience and close the call."),
            lazy(
                "Ask what is still wrong and apologise: the complaint is reopened and its owner "
                "will act on it."
            ),
        ),
        CallbackScript(
            "purchase",
            lazy("Introduce yourself and say you are calling about their recent purchase."),
            (
                lazy("Has everything arrived, and does it work as expected?"),
                lazy("Was anything about the purchase or the delivery not right?"),
                lazy("How satisfied are you with the purchase, from 1 to 5?"),
            ),
            _CLOSE_OK,
            _CLOSE_BAD,
        ),
        CallbackScript(
            "treatment",
            lazy(
                "Introduce yourself and say you are calling to ask how they are after their "
                "treatment."
            ),
            (
                lazy("How are you feeling since the treatment?"),
                lazy("Have you noticed any discomfort or anything unexpected?"),
                lazy("How satisfied are you with the treatment and our staff, from 1 to 5?"),
            ),
            lazy(
                "Remind them of any aftercare advice and their next visit, thank them and end the "
                "call."
            ),
            _CLOSE_BAD,
        ),
        CallbackScript(
            "business",
            lazy(
                "Introduce yourself and say you are calling about the service we completed for "
                "them."
            ),
            (
                lazy("Was everything done as agreed?"),
                lazy("Did anything take longer than promised or go wrong?"),
                lazy("How satisfied are you with the service, from 1 to 5?"),
            ),
            _CLOSE_OK,
            _CLOSE_BAD,
        ),
        CallbackScript(
            "general",
            lazy("Introduce yourself and say why you are calling."),
            (lazy("How did it go?"), lazy("How satisfied are you with us, from 1 to 5?")),
            _CLOSE_OK,
            _CLOSE_BAD,
        ),
    )
}


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
    reopens = interaction.ref if occasion == "complaint" and crm.has_plugin("complaints") else None
    found = crm.tasks.find({"dedupe_key": recovery_key(interaction.id)}, limit=1)
    if found:
        return Outcome("task", True, task=found[0], reopens=reopens)
    logged = crm.interactions.find(
        {
            "customer_id": interaction.customer_id,
            "kind": "complaint",
            f"ext.{NAMESPACE}.recovery_of": interaction.id,
        },
        limit=1,
    )
    if logged:
        return Outcome("ticket", True, interaction_id=logged[0].id, reopens=reopens)
    return Outcome("none", True, reopens=reopens)
