"""An unsatisfied callback leads somewhere (DOMAIN §9: ask what was wrong, promise
improvement, route it to the department concerned).

When a ``callback`` interaction records an unsatisfied answer (``ext.followup.satisfied`` is
False, or, when not said, a score at or below ``unsatisfied_at_or_below``), then by
``unsatisfied_action``:

- ``task``: a ``recovery`` task for the team lead of the customer's rep (``[followup.teams]``),
  high priority, due ``recovery_due_hours`` later outside quiet hours, dedupe key
  ``recovery:<callback interaction id>``. With no lead, or when the rep is the lead, the task
  is left unassigned for the team's shared queue and its title says so.
- ``ticket``: a ``complaint`` interaction (the complaints plugin's documented contract turns it
  into a ticket in ``recovery_category``); not for a complaint's own callback, which complaints
  reopens already.
- ``none``: nothing beyond the record.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from crmcore import Customer, Interaction, NotFoundError, Priority, TaskDraft
from crmcore.i18n import N_, msg, term
from crmcore_followup.reps import Roster
from crmcore_followup.settings import FollowupSettings

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore_followup.engine import Engine

KIND = "recovery"
NAMESPACE = "followup"


def recovery_key(interaction_id: str) -> str:
    return f"{KIND}:{interaction_id}"


def is_unsatisfied(interaction: Interaction, settings: FollowupSettings) -> bool:
    """Whether a callback's answer is unsatisfied (said, or scored low when not said)."""
    said = (interaction.ext.get(NAMESPACE) or {}).get("satisfied")
    if said is not None:
        return said is False
    score = interaction.satisfaction
    return score is not None and score <= settings.unsatisfied_at_or_below


def rep_of(customer: Customer, interaction: Interaction) -> str | None:
    """The rep responsible: the customer's owner, else whoever made the callback."""
    return customer.owner or interaction.rep


def team_of(crm: CRM, rep: str | None) -> str | None:
    found = Roster(crm).find(rep)
    return found.team if found is not None else None


def lead_of(settings: FollowupSettings, team: str | None, rep: str | None) -> str | None:
    """The team's lead, never the rep themselves (None: left for the shared queue)."""
    configured = settings.teams.get(team or "")
    lead = configured.lead if configured is not None else None
    return lead if lead and lead != rep else None


def department_of(settings: FollowupSettings, team: str | None) -> str | None:
    configured = settings.teams.get(team or "")
    return configured.department if configured is not None else None


def _callback_trigger(crm: CRM, interaction: Interaction) -> str | None:
    task_id = (interaction.ext.get(NAMESPACE) or {}).get("task_id")
    if not task_id:
        return None
    try:
        return crm.tasks.get(task_id).ext.get(NAMESPACE, {}).get("trigger")
    except NotFoundError:
        return None


def on_callback(
    engine: Engine, interaction: Interaction, customer: Customer, *, actor: str
) -> TaskDraft | None:
    """What an unsatisfied callback leads to: the recovery task to create (``task``), or the
    complaint logged here (``ticket``)."""
    crm, settings = engine.crm, engine.settings
    if settings.unsatisfied_action == "none" or not is_unsatisfied(interaction, settings):
        return None
    rep = rep_of(customer, interaction)
    team = team_of(crm, rep)
    what = interaction.summary or "no notes"
    if settings.unsatisfied_action == "ticket":
        if _callback_trigger(crm, interaction) == "complaint":
            return None  # the complaint's own callback: complaints reopens that ticket
        crm.interactions.log(
            actor=actor,
            customer_id=customer.id,
            kind="complaint",
            rep=rep,
            channel=interaction.channel,
            ref=None,
            summary=f"Unsatisfied callback ({interaction.id}): {what}"[:500],
            ext={
                "complaints": {"category": settings.recovery_category},
                NAMESPACE: {"recovery_of": interaction.id},
            },
        )
        return None
    lead = lead_of(settings, team, rep)
    due = engine.place(customer, engine.now() + timedelta(hours=settings.recovery_due_hours))
    title = msg("Unsatisfied callback: ask what was wrong, promise improvement, route it")
    if lead is None:
        title = msg(
            "Unsatisfied callback: ask what was wrong, promise improvement, route it"
            " (no team lead for %(rep)s: set [followup.teams] lead)",
            rep=rep or term(N_("the customer")),
        )
    meta: dict[str, Any] = {
        "callback": interaction.id,
        "rep": rep,
        "team": team,
        "department": department_of(settings, team),
        "score": interaction.satisfaction,
        "ref": interaction.ref,
    }
    return TaskDraft(
        kind=KIND,
        title=title,
        due_at=due,
        customer_id=customer.id,
        assignee=lead,
        priority=Priority.HIGH,
        dedupe_key=recovery_key(interaction.id),
        source="followup",
        ref=interaction.id,
        ext={NAMESPACE: meta},
    )
