"""The rep roster and assignment: share customers and tasks among reps balancing open load
against ability (DOMAIN §3); tasks of a rep who becomes unavailable go to the others."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import DuplicateKeyError, NotFoundError, TaskStatus, ValidationError
from crmcore.customers import require_actor
from crmcore.security import Resource
from crmcore_followup.records import REPS, Rep

if TYPE_CHECKING:
    from crmcore import CRM

EDITABLE = frozenset({"team", "skills", "ability", "capacity", "available", "shift"})


class Roster:
    """``crm reps``: who is on the roster, with team, skills, ability, capacity, availability.

    Under enforced permissions a rep is the owner of their own roster entry: agents may
    change only themselves, shift leads their team, managers their department."""

    def __init__(self, crm: CRM) -> None:
        self._crm = crm
        self._records = crm.records(REPS, Rep)

    def all(self) -> list[Rep]:
        """Every rep by name (asked once per transaction: each new task reads the roster)."""
        return list(
            self._crm.remembered(REPS, "all", lambda: self._records.find(sort=[("name", 1)]))
        )

    def get(self, name: str) -> Rep:
        rep = self._records.find_one({"name": name})
        if rep is None:
            raise NotFoundError(f"no rep named {name!r} on the roster (see 'crm reps list')")
        return rep

    def find(self, name: str | None) -> Rep | None:
        if name is None:
            return None
        return self._crm.remembered(
            REPS, ("name", name), lambda: self._records.find_one({"name": name})
        )

    def add(self, name: str, *, actor: str, **fields: Any) -> Rep:
        """Put a rep on the roster; a second rep of the same name is refused."""
        actor = require_actor(actor)
        unknown = sorted(set(fields) - EDITABLE)
        if unknown:
            raise ValidationError(f"unknown rep field(s): {', '.join(unknown)}")
        rep = Rep(id=self._crm.new_id("rep_"), name=name, **fields)
        self._crm.authorize(actor, "rep.create", Resource("rep"))
        try:
            with self._crm.transaction(actor):
                return self._records.insert(rep)
        except DuplicateKeyError:
            raise ValidationError(
                f"a rep named {name!r} is already on the roster", field="name"
            ) from None

    def update(self, name: str, *, actor: str, **changes: Any) -> tuple[Rep, int]:
        """Change a rep's fields. Marking a rep unavailable reassigns their open tasks;
        returns the rep and how many tasks moved."""
        actor = require_actor(actor)
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise ValidationError(f"unknown rep field(s): {', '.join(unknown)}")
        if not changes:
            raise ValidationError("nothing to change: give at least one field")
        rep = self.get(name)
        attrs.evolve(rep, **changes)  # validate before writing
        self._crm.authorize(actor, "rep.update", Resource("rep", rep.id, rep.name))
        with self._crm.transaction(actor):
            updated = self._records.update(rep, **changes)
            moved = 0
            if rep.available and not updated.available:
                moved = reassign_open_tasks(self._crm, updated.name, actor=actor)
        return updated, moved

    def remove(self, name: str, *, actor: str) -> int:
        """Take a rep off the roster; their open tasks are reassigned. Returns how many."""
        actor = require_actor(actor)
        rep = self.get(name)
        self._crm.authorize(actor, "rep.delete", Resource("rep", rep.id, rep.name))
        with self._crm.transaction(actor):
            self._records.delete(rep)
            return reassign_open_tasks(self._crm, rep.name, actor=actor)


@attrs.define
class LoadBook:
    """Open load per available rep, counted when first needed and kept current while
    assigning a batch (the customer's own rep is often the answer: one count then)."""

    reps: dict[str, Rep]
    counter: Callable[[str], int]
    counted: dict[str, int] = attrs.field(factory=dict)
    customers: dict[str, int] | None = None

    @classmethod
    def read(cls, crm: CRM, *, exclude: Iterable[str] = (), team: str | None = None) -> LoadBook:
        """Available reps (of ``team`` when given), without ``exclude``."""
        skip = set(exclude)
        reps = {
            r.name: r
            for r in Roster(crm).all()
            if r.available and r.name not in skip and (team is None or r.team == team)
        }

        def count(name: str) -> int:
            return crm.tasks.count({"assignee": name, "status": TaskStatus.OPEN.value})

        return cls(reps, count)

    @property
    def open_tasks(self) -> dict[str, int]:
        """Open tasks of every available rep (counting the ones not counted yet)."""
        for name in self.reps:
            self._load(name)
        return dict(self.counted)

    def _load(self, name: str) -> int:
        if name not in self.counted:
            self.counted[name] = self.counter(name)
        return self.counted[name]

    @property
    def empty(self) -> bool:
        return not self.reps

    def knows(self, name: str | None) -> bool:
        return name is not None and name in self.reps

    def _has_room(self, name: str) -> bool:
        return self._load(name) < self.reps[name].capacity

    def pick_for_task(
        self, *, preferred: str | None = None, skill: str | None = None
    ) -> str | None:
        """The rep for a new task: ``preferred`` (the customer's own rep) when available with
        room, else the available rep with room and the lowest open-tasks / ability, ties by
        name; reps with ``skill`` first. None when nobody has room."""
        if (
            preferred in self.reps
            and self._has_room(preferred)
            and (skill is None or skill in self.reps[preferred].skills or not self._skilled(skill))
        ):
            return self._take(preferred)
        candidates = [name for name in self.reps if self._has_room(name)]
        if skill is not None:
            skilled = [name for name in candidates if skill in self.reps[name].skills]
            candidates = skilled or candidates
        if not candidates:
            return None
        best = min(candidates, key=lambda n: (self._load(n) / self.reps[n].ability, n))
        return self._take(best)

    def _skilled(self, skill: str) -> bool:
        return any(skill in r.skills and self._has_room(r.name) for r in self.reps.values())

    def _take(self, name: str) -> str:
        self.counted[name] = self._load(name) + 1
        return name

    def pick_owner(self, crm: CRM) -> str | None:
        """The rep for a new customer: the available rep with room and the fewest customers
        per unit of ability, ties by name. None when the roster has nobody."""
        if self.customers is None:
            self.customers = {name: crm.customers.count({"owner": name}) for name in self.reps}
        counted = self.customers
        candidates = [name for name in self.reps if self._has_room(name)] or list(self.reps)
        if not candidates:
            return None
        best = min(candidates, key=lambda n: (counted[n] / self.reps[n].ability, n))
        counted[best] += 1
        return best


def reassign_open_tasks(crm: CRM, rep_name: str, *, actor: str) -> int:
    """Give ``rep_name``'s open tasks to available reps (the customer's own rep first, then
    balanced); a task nobody can take is unassigned so that it shows in the shared queue.
    Returns how many tasks moved."""
    skills = crm.settings("followup").skills_by_kind
    book = LoadBook.read(crm, exclude=[rep_name])
    moved = 0
    with crm.transaction():
        for task in crm.tasks.find(
            {"assignee": rep_name, "status": TaskStatus.OPEN.value}, sort=[("due_at", 1)]
        ):
            owner = None
            if task.customer_id is not None:
                try:
                    owner = crm.customers.get_any(task.customer_id).owner
                except NotFoundError:
                    owner = None
            crm.tasks.assign(
                task.id,
                book.pick_for_task(preferred=owner, skill=skills.get(task.kind)),
                actor=actor,
            )
            moved += 1
    return moved
