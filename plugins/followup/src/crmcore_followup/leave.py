"""A rep leaves (DOMAIN §9: big customers' service must not change with staff turnover):
their customers, open tasks and the open work other plugins keep for them move to another
rep, in one transaction, every write audited under the actor who ran it."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import attrs

from crmcore import TaskStatus, ValidationError
from crmcore.customers import require_actor
from crmcore.security import Resource
from crmcore_followup.records import REPS, Rep
from crmcore_followup.reps import LoadBook, Roster, reassign_open_tasks

if TYPE_CHECKING:
    from crmcore import CRM


@attrs.frozen
class Departure:
    """What moved when ``rep`` left: customers per new owner, open tasks, other records."""

    rep: str
    customers: dict[str, int]
    tasks: int
    other: int

    @property
    def customers_moved(self) -> int:
        return sum(self.customers.values())


def leave(
    crm: CRM, rep_name: str, *, actor: str, to: str | None = None, rebalance: bool = False
) -> Departure:
    """Take ``rep_name`` off the roster and hand over everything they hold.

    ``to``: every customer and open task goes to that rep. ``rebalance``: each customer goes
    to the available rep with the fewest customers per unit of ability (with room for more
    open tasks), their contact tasks follow them, and the remaining open tasks are shared by
    load against ability. Exactly one of the two. Plugins move their own open work (tickets)
    through ``crm_rep_left``. Nothing is written when the request is wrong.
    """
    actor = require_actor(actor)
    if (to is None) == (not rebalance):
        raise ValidationError("say where the work goes: --to REP or --rebalance")
    roster = Roster(crm)
    leaving = roster.get(rep_name)
    if to is not None:
        if to == rep_name:
            raise ValidationError(f"{rep_name} cannot hand over to themselves", field="to")
        successor = roster.get(to)
        if not successor.available:
            raise ValidationError(
                f"{to} is unavailable; mark them available or pick another rep", field="to"
            )
    elif not any(r.available and r.name != rep_name for r in roster.all()):
        raise ValidationError(
            f"no other available rep to share {rep_name}'s work with; add one ('crm reps add NAME')"
        )
    crm.authorize(actor, "rep.delete", Resource("rep", leaving.id, leaving.name))
    records = crm.records(REPS, Rep)
    moved: Counter[str] = Counter()
    open_tasks = {"assignee": rep_name, "status": TaskStatus.OPEN.value}
    tasks = crm.tasks.count(open_tasks)
    with crm.transaction(actor):
        if leaving.available:  # out of every pick from here on
            leaving = records.update(leaving, available=False)
        book = LoadBook.read(crm, exclude=[rep_name])
        for customer in crm.customers.find({"owner": rep_name}, sort=[("id", 1)]):
            new = to if to is not None else book.pick_owner(crm)
            crm.customers.update(customer.id, actor=actor, owner=new)
            moved[new or ""] += 1
        if to is not None:
            for task in crm.tasks.find(open_tasks):
                crm.tasks.assign(task.id, to, actor=actor)
        else:
            reassign_open_tasks(crm, rep_name, actor=actor)
        fallback = to if to is not None else LoadBook.read(crm, exclude=[rep_name]).pick_for_task()
        other = crm.plugins.crm_rep_left(
            crm=crm, rep=rep_name, successor=fallback or "", actor=actor
        )
        records.delete(leaving)
    return Departure(rep=rep_name, customers=dict(moved), tasks=tasks, other=other)
