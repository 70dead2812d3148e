"""Who a role is at a given moment: the shift lead on duty, a department's manager …"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs

from crmcore.calendars import calendar_named
from crmcore_complaints.business_time import DAYS, parse_hhmm
from crmcore_complaints.model import Ticket
from crmcore_complaints.settings import ComplaintsSettings, Shift


@attrs.frozen
class Resolved:
    """A role resolved to a person (``person`` None: no one holds it now)."""

    role: str
    person: str | None
    how: str  # one line for the trace: why this person


def on_shift(shift: Shift, local: datetime) -> bool:
    """Whether ``local`` (a time in the business zone) falls inside ``shift``. A shift that
    ends at or before its start runs overnight: it belongs to the day it started."""
    start = parse_hhmm(shift.start)
    end = parse_hhmm(shift.end, allow_end_of_day=True)
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local - timedelta(days=1)).weekday()]
    if start < end:
        return today in shift.days and start <= minute < end
    return (today in shift.days and minute >= start) or (yesterday in shift.days and minute < end)


def shift_lead(
    settings: ComplaintsSettings, zone: ZoneInfo, when: datetime, department: str | None
) -> str | None:
    """The lead of the first configured shift on duty at ``when`` for ``department``."""
    local = when.astimezone(zone)
    for shift in settings.shifts:
        if shift.departments and department not in shift.departments:
            continue
        if on_shift(shift, local):
            return shift.lead
    return None


def department_of(settings: ComplaintsSettings, ticket: Ticket) -> str | None:
    """The ticket's department, or the first that handles its category if not dispatched."""
    if ticket.department:
        return ticket.department
    handling = settings.departments_for(ticket.category)
    return handling[0] if handling else None


def resolve_role(
    settings: ComplaintsSettings, zone: ZoneInfo, ticket: Ticket, role: str, when: datetime
) -> Resolved:
    """The person holding ``role`` for ``ticket`` at ``when``.

    A shift lead comes from the rota; with no shift on duty the ticket goes to the department
    manager instead. When no one holds a role, the owner (first-contact responsibility) gets
    it. ``person:<id>`` names someone directly.
    """
    if role.startswith("person:"):
        return Resolved(role, role[7:].strip(), "named in the escalation ladder")
    department = department_of(settings, ticket)
    dept = settings.departments.get(department) if department else None
    if role == "shift_lead":
        lead = shift_lead(settings, zone, when, department)
        if lead is not None:
            return Resolved(role, lead, "shift lead on duty")
        if dept is not None and dept.manager:
            return Resolved(role, dept.manager, f"no shift lead on duty; manager of {department}")
        return Resolved(
            role,
            ticket.owner,
            "no shift lead on duty and no department manager "
            "set; the owner (first contact) instead",
        )
    if role == "department_manager":
        if dept is not None and dept.manager:
            return Resolved(role, dept.manager, f"manager of {department}")
        return Resolved(
            role,
            ticket.owner,
            f"department {department} has no manager set; the owner (first contact) instead",
        )
    if role == "dispatcher":
        if ticket.dispatched_by:
            return Resolved(role, ticket.dispatched_by, "dispatched the ticket")
        return Resolved(role, ticket.owner, "not dispatched yet; the owner instead")
    if role == "handler":
        if ticket.handler:
            return Resolved(role, ticket.handler, "handles the ticket")
        return Resolved(role, ticket.owner, "no handler yet; the owner instead")
    return Resolved(role, ticket.owner, "owns the ticket (first contact)")


UNSTAFFED = (
    "no one but the owner holds a rung of the ladder; left unassigned for the team: "
    "fill in [[complaints.shifts]] and the departments' managers"
)


def escalation_target(
    settings: ComplaintsSettings, zone: ZoneInfo, ticket: Ticket, level: int, when: datetime
) -> Resolved:
    """Who ladder ``level`` (1-based) of ``ticket`` goes to at ``when``: never the owner.

    An escalation raises a ticket above whoever owns it, so when the rung's role resolves to
    no one or to the owner (an empty rota, the owner is the lead on duty), the next rungs are
    tried in order; with none left the task stays unassigned (``person`` None) and ``how``
    says what to fill in.
    """
    ladder = settings.escalation
    step = ladder[level - 1]
    for later in ladder[level - 1 :]:
        who = resolve_role(settings, zone, ticket, later.target, when)
        if who.person and who.person != ticket.owner:
            if later is step:
                return who
            return Resolved(
                step.target,
                who.person,
                f"{step.target} is the owner or unset; next rung: {who.how}",
            )
    return Resolved(step.target, None, UNSTAFFED)


def staffing_warnings(settings: ComplaintsSettings, today: date | None = None) -> list[str]:
    """What the escalation ladder needs and the settings do not name, and a holiday calendar
    without data for ``today``'s year (for ``crm check``)."""
    targets = {step.target for step in settings.escalation}
    out = []
    name = settings.calendar.holiday_calendar
    if name and today is not None and not calendar_named(name).covers(today):
        out.append(
            f"complaints: the {name!r} holiday calendar has no data for {today.year}; "
            "business hours count weekdays only until chinesecalendar is upgraded "
            "(pip install -U chinesecalendar) or the dates are listed in "
            "[complaints.calendar] holidays"
        )
    if "shift_lead" in targets and not settings.shifts:
        out.append(
            "complaints: the escalation ladder raises tickets to the shift lead but the "
            "rota is empty; name the leads in [[complaints.shifts]] (lead, days, start, "
            "end)"
        )
    if targets & {"shift_lead", "department_manager"}:
        unmanaged = [name for name, dept in settings.departments.items() if not dept.manager]
        if unmanaged:
            out.append(
                "complaints: the escalation ladder raises tickets to the department "
                "manager but these departments have none: "
                + ", ".join(unmanaged)
                + '; set manager = "<actor>" under [complaints.departments.<name>]'
            )
    return out
