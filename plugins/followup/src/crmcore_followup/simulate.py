"""``crm demo``: what follow-up staff do in a day, with every random choice drawn from ``rng``.

- On the first day, when the roster is empty, the manager puts the reps who own customers on it
  (teams, abilities and capacities drawn at random).
- Reps record the outcome of callbacks due by tomorrow (most satisfied, some not).
- Now and then a rep is off for a day: marked unavailable (their open tasks move to the others)
  and back the next day.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from crmcore import TaskStatus
from crmcore.i18n import N_, store_gettext
from crmcore_followup.api import record_callback
from crmcore_followup.engine import SOURCE
from crmcore_followup.reps import Roster

if TYPE_CHECKING:
    from crmcore import CRM

TEAMS = ("north", "south")
SKILLS = ("callback", "care", "sales", "vip")
CALLBACK_SHARE = 0.75  # callbacks due by tomorrow that get made today
SATISFIED_SHARE = 0.8
OFF_SICK = 0.04  # chance a rep is off on a given day
MIN_AVAILABLE = 2


def seed_roster(crm: CRM, rng: random.Random, actor: str) -> int:
    """Put every rep who owns customers on the roster (the demo starts without one)."""
    roster = Roster(crm)
    owners = sorted({c.owner for c in crm.customers.iter() if c.owner})
    for name in owners:
        roster.add(
            name,
            actor=actor,
            team=rng.choice(TEAMS),
            skills=rng.sample(SKILLS, 2),
            ability=rng.randint(2, 5),
            capacity=rng.choice([60, 80, 120]),
        )
    return len(owners)


def simulate_day(crm: CRM, now: datetime, rng: random.Random, actor: str) -> None:
    roster = Roster(crm)
    reps = roster.all()
    if not reps:
        seed_roster(crm, rng, actor)
        reps = roster.all()
    for rep in reps:
        if not rep.available:
            roster.update(rep.name, available=True, actor=actor)
    available = [r for r in roster.all() if r.available]
    for rep in available:
        if len(available) > MIN_AVAILABLE and rng.random() < OFF_SICK:
            roster.update(rep.name, available=False, actor=actor)
            available = [r for r in available if r.name != rep.name]
    query = {
        "kind": "callback",
        "source": SOURCE,
        "status": TaskStatus.OPEN.value,
        "due_at": {"$lte": now + timedelta(days=1)},
    }
    said = store_gettext(crm)  # the reps write in the store's language
    for task in crm.tasks.find(query, sort=[("due_at", 1)]):
        if rng.random() >= CALLBACK_SHARE:
            continue
        satisfied = rng.random() < SATISFIED_SHARE
        score = rng.choice([4, 5, 5]) if satisfied else rng.choice([1, 2, 3])
        record_callback(
            crm,
            task.id,
            satisfied=satisfied,
            score=score,
            notes=said(N_("callback made") if satisfied else N_("customer unhappy")),
            actor=task.assignee or actor,
        )
