"""The worker sweep (``crm_tick``): create what has come due, touching only what is due.

Each customer's schedule carries ``check_at``; a sweep leases due schedules one at a time with
the storage claim primitive, so several workers (threads or processes) never plan the same
customer at once, and the core's dedupe keys keep one open task per key whatever happens.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import attrs

from crmcore import ConflictError, DuplicateKeyError, Effects, NotFoundError, TaskDraft, TaskUpdate
from crmcore.converter import from_doc
from crmcore_followup.engine import Engine, log
from crmcore_followup.records import BACKFILL, SCHEDULE, STATE, Schedule, SweepState
from crmcore_followup.reps import LoadBook

if TYPE_CHECKING:
    from crmcore import CRM

LEASE = timedelta(minutes=5)


def sweep(crm: CRM, now: datetime, worker: str) -> Effects:
    """One sweep for ``worker`` at ``now``: backfill a batch of pre-existing customers, then
    plan every schedule whose ``check_at`` has come (up to ``sweep_batch``)."""
    engine = Engine.of(crm)
    backfill(engine, now, worker)
    coll = crm.collection(SCHEDULE)
    book = LoadBook.read(crm)
    drafts: list[TaskDraft] = []
    updates: list[TaskUpdate] = []
    seen: set[str] = set()
    for _ in range(engine.settings.sweep_batch):
        # one transaction per customer: the lease, the plan's reads and the schedule write
        # go together, and every lock is taken in the store's order (store, then audit)
        with crm.transaction():
            doc = coll.claim(
                {"check_at": {"$lte": now}},
                owner=worker,
                until=now + LEASE,
                now=now,
                sort=[("check_at", 1)],
            )
            if doc is None or doc["id"] in seen:
                break
            seen.add(doc["id"])
            schedule = from_doc(Schedule, doc)
            fields, new_drafts, moves = engine.plan(schedule, now, book)
            try:
                engine.schedules.update(schedule, **fields, lease_owner=None, lease_until=None)
            except (ConflictError, NotFoundError):
                # written meanwhile (a backend without transactions): our lease stays until
                # it ends, and the next sweep plans it again
                log.info(
                    "schedule changed during the sweep; left for the next one",
                    schedule=schedule.id,
                    worker=worker,
                )
                continue
        drafts += new_drafts
        updates += [TaskUpdate(task_id=task_id, due_at=due) for task_id, due in moves]
    return Effects(tasks=drafts, task_updates=updates)


def backfill(engine: Engine, now: datetime, worker: str) -> int:
    """Give schedules to customers who existed before the plugin was enabled, a batch per
    sweep, once (``resync`` starts it again). Returns how many customers were looked at."""
    crm = engine.crm
    states = crm.records(STATE, SweepState)
    try:
        state = states.get(BACKFILL)
    except NotFoundError:
        try:
            state = states.insert(SweepState(id=BACKFILL))
        except DuplicateKeyError:
            state = states.get(BACKFILL)
    if state.done:
        return 0
    with crm.transaction():
        doc = crm.collection(STATE).claim(
            {"id": BACKFILL, "done": False}, owner=worker, until=now + LEASE, now=now
        )
        if doc is None:
            return 0  # another worker is on it
        state = from_doc(SweepState, doc)
        budget = engine.settings.sweep_batch
        query = {"id": {"$gt": state.cursor}} if state.cursor else None
        customers = crm.customers.find(query, sort=[("id", 1)], limit=budget)
        for customer in customers:
            if engine.schedule_of(customer.id) is None:
                with contextlib.suppress(DuplicateKeyError):  # a hook made it meanwhile
                    engine.schedules.insert(engine.backfill_schedule(customer, now))
            elif state.touch_existing:
                engine.mutate(customer, lambda s: attrs.evolve(s, check_at=now), recompute=False)
        with contextlib.suppress(ConflictError):  # reset by a resync meanwhile: starts over
            states.update(
                state,
                cursor=customers[-1].id if customers else state.cursor,
                done=len(customers) < budget,
                lease_owner=None,
                lease_until=None,
            )
    return len(customers)


def resync(crm: CRM) -> None:
    """Look at every customer again on the next sweeps (after the plugin was disabled for a
    while, or to apply changed settings to everyone)."""
    states = crm.records(STATE, SweepState)
    with crm.transaction():
        try:
            state = states.get(BACKFILL)
        except NotFoundError:
            states.insert(SweepState(id=BACKFILL, touch_existing=True))
            return
        states.update(
            state, cursor=None, done=False, touch_existing=True, lease_owner=None, lease_until=None
        )
