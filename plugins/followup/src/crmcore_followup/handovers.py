"""The shift handover log (DOMAIN §3 and §9: open items, difficult cases and changes are handed
from one shift to the next).

The outgoing rep writes a handover to the incoming rep: a note and the open items of
``api.handover`` for them (urgent items and prospects due before the shift ends). The
incoming rep accepts it: the items still open and still the outgoing rep's become theirs, in
one transaction with the acceptance. A handover is accepted once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from crmcore import Effects, NotFoundError, TaskUpdate, ValidationError
from crmcore.customers import require_actor
from crmcore.i18n import msg
from crmcore.schema import field, name_text, utc_converter

if TYPE_CHECKING:
    from crmcore import CRM
    from crmcore.records import Records

from crmcore_followup.storage import HANDOVERS as HANDOVERS

OPEN = "open"
ACCEPTED = "accepted"


def _ids(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class ShiftHandover:
    """One handover from ``from_rep`` to ``to_rep``: the note and the items handed over."""

    id: str
    from_rep: str = field(validator=name_text)
    to_rep: str = field(validator=name_text)
    created_at: datetime = field(converter=utc_converter("created_at"))
    until: datetime = field(converter=utc_converter("until"))
    note: str = field(personal=True, default="")
    task_ids: tuple[str, ...] = attrs.field(default=(), converter=_ids)
    status: str = OPEN
    accepted_at: datetime | None = field(
        default=None, converter=utc_converter("accepted_at", optional=True)
    )
    moved: int = 0  # items that became the incoming rep's at acceptance
    version: int = 0


def _records(crm: CRM) -> Records[ShiftHandover]:
    return crm.records(HANDOVERS, ShiftHandover)


def write(
    crm: CRM, *, actor: str, to_rep: str, note: str = "", until: datetime | None = None
) -> ShiftHandover:
    """The outgoing rep ``actor`` hands their open items (``api.handover`` up to ``until``)
    and ``note`` to ``to_rep``. Refused, writing nothing: no incoming rep, oneself, a person
    the CRM does not know, nothing to hand over (no item and no note), or a handover to the
    same rep still waiting for acceptance."""
    from crmcore_followup.api import handover

    actor = require_actor(actor)
    to_rep = (to_rep or "").strip()
    note = (note or "").strip()
    if not to_rep:
        raise ValidationError(msg("name the rep who takes over"), field="to_rep")
    if to_rep == actor:
        raise ValidationError(msg("hand over to someone else, not to yourself"), field="to_rep")
    if crm.actor(to_rep) is None:
        raise ValidationError(
            msg(
                "unknown rep %(rep)s: add them to the roster (crm reps add) "
                "or to [security.actors]",
                rep=repr(to_rep),
            ),
            field="to_rep",
        )
    pending = _records(crm).find({"from_rep": actor, "to_rep": to_rep, "status": OPEN}, limit=1)
    if pending:
        raise ValidationError(
            msg(
                "your handover to %(rep)s of %(at)s is not accepted yet",
                rep=to_rep,
                at=pending[0].created_at.isoformat(),
            ),
            field="to_rep",
        )
    shift = handover(crm, rep=actor, until=until)
    ids = list(dict.fromkeys([t.id for t in shift.urgent] + [p.task_id for p in shift.prospects]))
    if not ids and not note:
        raise ValidationError(
            msg("nothing to hand over: you have no open items due this shift; write a note"),
            field="note",
        )
    record = ShiftHandover(
        id=crm.new_id("hnd_"),
        from_rep=actor,
        to_rep=to_rep,
        created_at=crm.now(),
        until=shift.until,
        note=note,
        task_ids=ids,
    )
    with crm.transaction(actor):
        return _records(crm).insert(record)


def get(crm: CRM, handover_id: str) -> ShiftHandover:
    try:
        return _records(crm).get(handover_id)
    except NotFoundError:
        raise NotFoundError(f"no shift handover {handover_id!r}") from None


def accept(crm: CRM, handover_id: str, *, actor: str) -> ShiftHandover:
    """``actor``, the incoming rep, accepts the handover: the items still open and still
    assigned to the outgoing rep become theirs. Only the rep it was written to accepts it, and
    only once."""
    actor = require_actor(actor)
    current = get(crm, handover_id)
    if current.to_rep != actor:
        raise ValidationError(
            msg("this handover is for %(rep)s; only they accept it", rep=current.to_rep)
        )
    if current.status != OPEN:
        raise ValidationError(
            msg(
                "this handover was accepted already (%(at)s)",
                at=current.accepted_at.isoformat() if current.accepted_at else "",
            )
        )
    moving = [
        t
        for t in (
            crm.tasks.find({"id": {"$in": list(current.task_ids)}}) if current.task_ids else []
        )
        if t.is_open and t.assignee == current.from_rep
    ]
    with crm.transaction(actor):
        if moving:
            # the outgoing rep gave these when writing the handover: not re-checked as the
            # incoming rep's own reassignment of someone else's task
            crm.apply(
                Effects(task_updates=[TaskUpdate(task_id=t.id, assignee=actor) for t in moving]),
                actor=actor,
            )
        return _records(crm).update(
            current, status=ACCEPTED, accepted_at=crm.now(), moved=len(moving)
        )


def waiting_for(crm: CRM, rep: str) -> list[ShiftHandover]:
    """Handovers written to ``rep`` and not accepted yet, oldest first."""
    return _records(crm).find({"to_rep": rep, "status": OPEN}, sort=[("created_at", 1)])


def written_by(crm: CRM, rep: str, *, limit: int = 10) -> list[ShiftHandover]:
    """``rep``'s latest handovers, newest first."""
    return _records(crm).find({"from_rep": rep}, sort=[("created_at", -1)], limit=limit)
