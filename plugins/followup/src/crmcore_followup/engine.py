"""The follow-up engine: per-customer schedules and the contact tasks they call for.

Every operation here is *convergent*: it reads the current schedule and open tasks and moves
them to what the rules say, so calling it twice, or from two hooks in either order, ends in the
same state. That is what makes the result independent of the order in which plugins' hooks run
(for example grading's re-grade and our own reaction to the same follow-up interaction).

Schedules are written directly (read, change, write with the version read; retried on a
conflict) because two of our hooks may touch one schedule within one event; one open task per
kind is guaranteed by the core's dedupe keys.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore import (
    ConflictError,
    Customer,
    CustomerStatus,
    DuplicateKeyError,
    Effects,
    NotFoundError,
    Priority,
    Task,
    TaskDraft,
    TaskUpdate,
)
from crmcore.contracts import callback_key
from crmcore.converter import iso
from crmcore.i18n import N_, msg, term
from crmcore.logs import get_logger
from crmcore.stash import StashKey
from crmcore_followup import care, quiet
from crmcore_followup.grades import grades_of, is_key_customer, pipeline_grade
from crmcore_followup.records import (
    FIRST_CONTACT_DONE,
    FIRST_CONTACT_NONE,
    FIRST_CONTACT_PENDING,
    SCHEDULE,
    Schedule,
    schedule_id,
)
from crmcore_followup.reps import LoadBook
from crmcore_followup.routing import PRIORITY_PERK, perks_of
from crmcore_followup.settings import FollowupSettings

if TYPE_CHECKING:
    from crmcore import CRM

SOURCE = "followup"
NAMESPACE = "followup"
_RETRIES = 8
OVERDUE_RECHECK_DAYS = 7
_SCHEDULE_FIELDS = (
    "check_at",
    "active",
    "grade",
    "cadence_days",
    "last_follow_up_at",
    "next_due_at",
    "first_contact",
    "assigned_at",
    "birthday_year",
    "holiday_through",
    "route_vip",
)

log = get_logger("followup")


class _Unread:
    """``Engine.mutate``'s default ``current``: the schedule is read by ``mutate`` itself."""


UNREAD = _Unread()


# -- dedupe keys (one open task per key, enforced by the core across processes) -----------


def follow_up_key(customer_id: str) -> str:
    return f"follow_up:{customer_id}"


def first_contact_key(customer_id: str) -> str:
    return f"first_contact:{customer_id}"


def birthday_key(customer_id: str, year: int) -> str:
    return f"care:birthday:{customer_id}:{year}"


def holiday_key(customer_id: str, day: date) -> str:
    return f"care:holiday:{customer_id}:{day.isoformat()}"


def ours(task: Task) -> bool:
    """Tasks this plugin looks after: its own, and ones people created by hand (no source)."""
    return task.source in (None, SOURCE)


def sampled(ref: str, ratio: float) -> bool:
    """Deterministic sampling (the same event always gets the same answer, in every worker)."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    bucket = int.from_bytes(hashlib.sha256(ref.encode()).digest()[:4], "big") / 2**32
    return bucket < ratio


_ENGINE: StashKey[Engine] = StashKey()


class Engine:
    """The plugin's operations on one open CRM."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.settings: FollowupSettings = crm.settings("followup")
        # stored without blank fields (grade, birthday year, lease): the sweep's claim and
        # every query read a missing field as null
        self.schedules = crm.records(SCHEDULE, Schedule, compact=True)
        # per thread: a follow-up being created whose caller writes ``next_due_at`` itself
        self._local = threading.local()

    @classmethod
    def of(cls, crm: CRM) -> Engine:
        """The engine of ``crm``, built once per CRM (kept in ``crm.stash``)."""
        return crm.stash.get_or_build(_ENGINE, lambda: cls(crm))

    # -- time ------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.crm.now()

    def local_today(self, customer: Customer, now: datetime | None = None) -> date:
        return (now or self.now()).astimezone(quiet.zone(customer.timezone)).date()

    def place(
        self, customer: Customer, due: datetime, *, deadline: datetime | None = None
    ) -> datetime:
        """``due`` moved out of the customer's quiet hours (their own time zone)."""
        return quiet.place(due, customer.timezone, self.settings.windows, deadline=deadline)

    def follow_up_due(self, schedule: Schedule, customer: Customer) -> datetime:
        """The next follow-up: ``cadence`` days after the last one, never in quiet hours and
        never later than the cadence allows."""
        raw = schedule.anchor + timedelta(days=schedule.cadence_days)
        return self.place(customer, raw, deadline=raw)

    def first_contact_due(self, customer: Customer, assigned_at: datetime) -> datetime:
        raw = assigned_at + timedelta(days=self.settings.first_contact_days)
        return self.place(customer, raw, deadline=raw)

    def callback_due(self, customer: Customer, event_at: datetime) -> tuple[datetime, datetime]:
        """(due, deadline) of a callback for an event at ``event_at``."""
        days = self.settings.callback_within_days
        by_tier = self.settings.tier_days(
            self.settings.tier_callback_within_days, grades_of(customer)
        )
        if by_tier is not None:
            days = min(days, by_tier)
        deadline = event_at + timedelta(days=days)
        raw = min(event_at + timedelta(hours=self.settings.callback_delay_hours), deadline)
        return self.place(customer, raw, deadline=deadline), deadline

    def care_due(self, customer: Customer, occasion: date) -> datetime:
        """A greeting on the day itself at ``care_time``, out of quiet hours, on that day."""
        raw = quiet.local_at(occasion, self.settings.care_time_of_day, customer.timezone)
        end_of_day = quiet.local_at(occasion + timedelta(days=1), time(0, 0), customer.timezone)
        return self.place(customer, raw, deadline=end_of_day - timedelta(minutes=1))

    def local_midnight(self, customer: Customer, day: date) -> datetime:
        return quiet.local_at(day, time(0, 0), customer.timezone)

    # -- schedules -------------------------------------------------------------------------

    def schedule_of(self, customer_id: str) -> Schedule | None:
        try:
            return self.schedules.get(schedule_id(customer_id))
        except NotFoundError:
            return None

    def new_schedule(
        self,
        customer: Customer,
        *,
        since: datetime,
        first_contact: str = FIRST_CONTACT_NONE,
        last_follow_up_at: datetime | None = None,
    ) -> Schedule:
        grade = pipeline_grade(customer)
        return Schedule(
            id=schedule_id(customer.id),
            customer_id=customer.id,
            since=since,
            grade=grade,
            cadence_days=self.settings.cadence_of(grade, grades_of(customer)),
            first_contact=first_contact,
            last_follow_up_at=last_follow_up_at,
            holiday_through=self.local_today(customer) - timedelta(days=1),
        )

    def mutate(
        self,
        customer: Customer,
        change: Callable[[Schedule], Schedule],
        *,
        recompute: bool = True,
        current: Schedule | _Unread | None = UNREAD,
    ) -> Schedule:
        """Read the customer's schedule (created if missing), apply ``change``, write it back
        with the version read; retried when someone else wrote meanwhile. ``check_at`` is
        recomputed from the result unless ``recompute`` is False. ``current``: the schedule
        the caller has just read in this transaction (None: there is none), used for the
        first attempt instead of reading it again; a stale one fails the version check and
        the retry reads it afresh."""
        for attempt in range(_RETRIES):
            if attempt or isinstance(current, _Unread):
                current = self.schedule_of(customer.id)
            base = current or self.new_schedule(customer, since=self.now())
            new = change(base)
            if recompute:
                check_at = self.check_time(new, customer)
                if check_at != new.check_at:
                    new = attrs.evolve(new, check_at=check_at)
            try:
                with self.crm.transaction():
                    if current is None:
                        return self.schedules.insert(new)
                    # ``new`` was built (and checked) by ``change``: written as it is
                    return self.schedules.replace(current, new, fields=_SCHEDULE_FIELDS)
            except (ConflictError, DuplicateKeyError):
                continue
        raise ConflictError(
            f"follow-up schedule of {customer.id} kept changing underneath; "
            f"gave up after {_RETRIES} attempts"
        )

    def check_time(
        self, schedule: Schedule, customer: Customer, now: datetime | None = None
    ) -> datetime | None:
        """When the sweep must look at this customer next (None: nothing can come due)."""
        now = now or self.now()
        if (
            not schedule.active
            or customer.status is not CustomerStatus.ACTIVE
            or customer.do_not_contact
        ):
            return None
        candidates: list[datetime] = []
        horizon = now + timedelta(days=self.settings.recheck_days)
        # a day after the first contact or follow-up is due (to hand over to the cadence, or
        # recreate the follow-up, if someone cancelled it); once it is overdue, completing it
        # is what moves things on, so look weekly (daily, every customer whose first contact
        # nobody made would be planned again every day for nothing)
        if schedule.first_contact == FIRST_CONTACT_PENDING:
            start = schedule.assigned_at or schedule.since
            due = start + timedelta(days=self.settings.first_contact_days)
        else:
            due = schedule.next_due_at or self.follow_up_due(schedule, customer)
        candidates.append(
            due + timedelta(days=1) if due >= now else now + timedelta(days=OVERDUE_RECHECK_DAYS)
        )
        candidates.append(horizon)
        today = self.local_today(customer, now)
        if customer.birth_date is not None:
            upcoming = care.next_birthday(
                customer.birth_date, today, after_year=schedule.birthday_year
            )
            if upcoming is not None:
                candidates.append(
                    self.local_midnight(
                        customer, care.creation_day(upcoming, self.settings.birthday_days_ahead)
                    )
                )
        holidays = care.upcoming_holidays(
            self.settings.holidays_from(today), today, after=schedule.holiday_through
        )
        if holidays:
            candidates.append(
                self.local_midnight(
                    customer, care.creation_day(holidays[0].day, self.settings.holiday_days_ahead)
                )
            )
        return min(candidates)

    # -- assignment ------------------------------------------------------------------------

    def assignee_for(
        self, kind: str, customer: Customer, book: LoadBook | None = None
    ) -> str | None:
        """Who gets a new contact task for ``customer``: their own rep while available with
        room, else the roster's least loaded rep for their ability. Without a roster, the
        customer's owner."""
        if kind not in self.settings.assign_kinds:
            return customer.owner
        book = book if book is not None else LoadBook.read(self.crm)
        if book.empty:
            return customer.owner
        return book.pick_for_task(
            preferred=customer.owner, skill=self.settings.skills_by_kind.get(kind)
        )

    def priority_for(self, kind: str, customer: Customer) -> Priority:
        """Care is low; a key customer's follow-ups and callbacks, and every contact task of
        a customer with the ``priority_handling`` perk, are high (queues order by it)."""
        if kind == "care":
            return Priority.LOW
        if kind in ("follow_up", "callback") and is_key_customer(customer, self.settings):
            return Priority.HIGH
        if PRIORITY_PERK in perks_of(self.crm, customer):
            return Priority.HIGH
        return Priority.NORMAL

    # -- the convergent operations ---------------------------------------------------------

    def follow_up_draft(
        self,
        schedule: Schedule,
        customer: Customer,
        due: datetime,
        assignee: str | None,
        priority: Priority | None = None,
    ) -> TaskDraft:
        return TaskDraft(
            kind="follow_up",
            title=msg("Follow up"),
            due_at=due,
            customer_id=customer.id,
            assignee=assignee,
            priority=self.priority_for("follow_up", customer) if priority is None else priority,
            dedupe_key=follow_up_key(customer.id),
            source=SOURCE,
        )

    def _create(self, draft: TaskDraft, *, actor: str) -> Task:
        """Create a task on behalf of the write that triggered us (like ``Effects``: no
        second permission check), firing ``crm_task_created``; the open task holding the
        dedupe key if another writer got there first."""
        created = self.crm.apply(Effects(tasks=[draft]), actor=actor)
        if created:
            return created[0]
        existing = self.crm.tasks.open_by_key(draft.dedupe_key or "")
        if existing is None:  # pragma: no cover - the key's holder vanished meanwhile
            raise ConflictError(f"task {draft.dedupe_key} could not be created; retry")
        return existing

    def _update(self, task: Task, *, actor: str, **changes: Any) -> Task:
        """Change one of our open tasks on behalf of the triggering write."""
        wanted = {k: v for k, v in changes.items() if getattr(task, k) != v}
        if not wanted:
            return task
        updated = self.crm.tasks.apply_update(TaskUpdate(task_id=task.id, **wanted), actor=actor)
        return updated or task

    def ensure_follow_up(
        self,
        customer: Customer,
        schedule: Schedule,
        *,
        actor: str,
        write: bool = True,
        likely_new: bool = False,
    ) -> Task | None:
        """Make the customer's one open follow-up due on the current cadence from the last
        follow-up: reschedule it if it exists, create it if not (nothing while the first
        contact is pending, for do-not-contact or inactive customers). The schedule's
        ``next_due_at`` is written unless ``write`` is False (the caller writes it, with the
        rest of its change, in one write). ``likely_new`` (the follow-up just completed) only
        saves a query: the creation is tried first, its dedupe check finding any open one."""
        if (
            customer.do_not_contact
            or customer.status is not CustomerStatus.ACTIVE
            or not schedule.active
            or schedule.first_contact == FIRST_CONTACT_PENDING
        ):
            return None
        due = self.follow_up_due(schedule, customer)
        priority = self.priority_for("follow_up", customer)
        task = None if likely_new else self.crm.tasks.open_by_key(follow_up_key(customer.id))
        if task is None:
            deferred = getattr(self._local, "defer_due", False)
            self._local.defer_due = not write
            try:
                task = self._create(
                    self.follow_up_draft(
                        schedule, customer, due, self.assignee_for("follow_up", customer), priority
                    ),
                    actor=actor,
                )
            finally:
                self._local.defer_due = deferred
        task = self._update(task, actor=actor, due_at=due, priority=priority)
        if write:
            self.mutate(customer, lambda s: attrs.evolve(s, next_due_at=task.due_at))
        return task

    def follow_up_happened(
        self,
        customer_id: str,
        at: datetime,
        *,
        actor: str,
        completed: bool = False,
        first_contact_closed: bool = False,
    ) -> None:
        """A follow-up contact took place at ``at``: the cadence restarts from it (from the
        current grade), and a pending first contact is done. ``completed``: it is one of our
        contact tasks completed (no follow-up is likely open; only saves a query).
        ``first_contact_closed``: that task was the customer's first contact itself, so no
        open one is left to cancel (saves the query for it)."""
        customer = self.crm.customers.get(customer_id)
        was_pending = False

        def change(s: Schedule) -> Schedule:
            nonlocal was_pending
            was_pending = s.first_contact == FIRST_CONTACT_PENDING
            last = at if s.last_follow_up_at is None else max(at, s.last_follow_up_at)
            first = FIRST_CONTACT_DONE if was_pending else s.first_contact
            return attrs.evolve(s, last_follow_up_at=last, first_contact=first)

        # The cadence restart and the next follow-up's due date are one schedule write: the
        # follow-up is made from the schedule as it will be, then both are written together.
        current = self.schedule_of(customer.id)
        planned = change(current or self.new_schedule(customer, since=self.now()))
        if was_pending and not first_contact_closed:
            pending = self.crm.tasks.open_by_key(first_contact_key(customer.id))
            if pending is not None:
                self.crm.tasks.apply_update(
                    TaskUpdate(
                        task_id=pending.id,
                        cancel=True,
                        reason=N_("first contact made by another follow-up"),
                    ),
                    actor=actor,
                )
        task = self.ensure_follow_up(
            customer, planned, actor=actor, write=False, likely_new=completed or was_pending
        )

        def with_due(s: Schedule) -> Schedule:
            # the schedule read above, unchanged since: ``planned`` is its change already
            s = planned if current is not None and s is current else change(s)
            return s if task is None else attrs.evolve(s, next_due_at=task.due_at)

        self.mutate(customer, with_due, current=current)

    def grade_changed(
        self, customer_id: str, new: str | None, *, actor: str, scheme: str = "pipeline"
    ) -> None:
        """A grade changed (the pipeline grade, or a tier with a plan): the cadence it gives
        applies from the last follow-up on (the open follow-up is moved accordingly)."""
        customer = self.crm.customers.get(customer_id)
        grades = {**grades_of(customer), scheme: new}
        pipeline = grades.get("pipeline") if isinstance(grades.get("pipeline"), str) else None
        schedule = self.mutate(
            customer,
            lambda s: attrs.evolve(
                s, grade=pipeline, cadence_days=self.settings.cadence_of(pipeline, grades)
            ),
        )
        self.ensure_follow_up(customer, schedule, actor=actor)

    def ensure_first_contact(
        self,
        customer: Customer,
        *,
        assigned_at: datetime,
        actor: str,
        current: Schedule | _Unread | None = UNREAD,
        book: LoadBook | None = None,
    ) -> Task | None:
        """A newly assigned customer is contacted by their rep within ``first_contact_days``:
        one open first-contact task, due then, given to the customer's rep. ``current``: the
        schedule as ``mutate`` takes it (None for a customer just added, who has none yet);
        ``book``: the whole roster as the caller has just read it (else it is read)."""
        if customer.do_not_contact or customer.status is not CustomerStatus.ACTIVE:
            return None
        schedule = self.mutate(
            customer,
            lambda s: attrs.evolve(s, first_contact=FIRST_CONTACT_PENDING, assigned_at=assigned_at),
            current=current,
        )
        due = self.first_contact_due(customer, schedule.assigned_at or assigned_at)
        assignee = self.assignee_for("first_contact", customer, book)
        key = first_contact_key(customer.id)
        # Create first: the usual case is a new customer, whose task the dedupe check of the
        # creation itself finds absent (one query); an open one is then read and moved.
        created = self.crm.apply(
            Effects(
                tasks=[
                    TaskDraft(
                        kind="first_contact",
                        title=msg("First contact with a new customer"),
                        due_at=due,
                        customer_id=customer.id,
                        assignee=assignee,
                        priority=self.priority_for("first_contact", customer),
                        dedupe_key=key,
                        source=SOURCE,
                    )
                ]
            ),
            actor=actor,
        )
        if created:
            return created[0]
        task = self.crm.tasks.open_by_key(key)
        if task is None:  # pragma: no cover - the key's holder vanished meanwhile
            raise ConflictError(f"task {key} could not be created; retry")
        changes: dict[str, Any] = {"due_at": due}
        if assignee is not None:
            changes["assignee"] = assignee
        return self._update(task, actor=actor, **changes)

    def callback_draft(
        self,
        customer: Customer,
        *,
        ref: str,
        event_at: datetime,
        reason: str,
        trigger: str = "interaction",
        book: LoadBook | None = None,
    ) -> TaskDraft | None:
        """A callback within ``callback_within_days`` of the event. None for do-not-contact
        customers, when the window has already passed (an old event logged late), for a
        non-key customer's event left out by ``callback_ratio``, and for an interaction when
        the customer already has an open callback for an earlier one (one call covers both).
        Closed complaints (``trigger="complaint"``) always get their own."""
        if customer.do_not_contact or customer.status is not CustomerStatus.ACTIVE:
            return None
        due, deadline = self.callback_due(customer, event_at)
        if deadline <= self.crm.wall_now():  # the present, also when history is replayed
            return None
        key = is_key_customer(customer, self.settings)
        if trigger == "interaction":
            if not key and not sampled(ref, self.settings.callback_ratio):
                return None
            if self.crm.tasks.count(
                {
                    "customer_id": customer.id,
                    "kind": "callback",
                    "status": "open",
                    f"ext.{NAMESPACE}.trigger": trigger,
                }
            ):
                return None
        return TaskDraft(
            kind="callback",
            title=msg("Callback after %(reason)s", reason=term(reason)),
            due_at=due,
            customer_id=customer.id,
            assignee=self.assignee_for("callback", customer, book),
            priority=self.priority_for("callback", customer),
            dedupe_key=callback_key(ref),
            source=SOURCE,
            ref=ref,
            ext={
                NAMESPACE: {
                    "deadline": iso(deadline),
                    "key_customer": key,
                    "event_at": iso(event_at),
                    "reason": reason,
                    "trigger": trigger,
                }
            },
        )

    def care_drafts(
        self, customer: Customer, schedule: Schedule, now: datetime, book: LoadBook | None = None
    ) -> tuple[list[TaskDraft], Schedule]:
        """Birthday and holiday greetings whose creation day has come, and the schedule as it
        will be once they exist (for the next look)."""
        drafts: list[TaskDraft] = []
        today = self.local_today(customer, now)
        after = schedule
        if customer.birth_date is not None:
            upcoming = care.next_birthday(
                customer.birth_date, today, after_year=schedule.birthday_year
            )
            if upcoming is not None and today >= care.creation_day(
                upcoming, self.settings.birthday_days_ahead
            ):
                drafts.append(
                    TaskDraft(
                        kind="care",
                        title=msg("Birthday greeting (%(day)s)", day=upcoming.isoformat()),
                        due_at=self.care_due(customer, upcoming),
                        customer_id=customer.id,
                        assignee=self.assignee_for("care", customer, book),
                        priority=self.priority_for("care", customer),
                        dedupe_key=birthday_key(customer.id, upcoming.year),
                        source=SOURCE,
                        ext={
                            NAMESPACE: {
                                "care": "birthday",
                                "year": upcoming.year,
                                "date": upcoming.isoformat(),
                            }
                        },
                    )
                )
                after = attrs.evolve(after, birthday_year=upcoming.year)
        for holiday in care.upcoming_holidays(
            self.settings.holidays_from(today), today, after=schedule.holiday_through
        ):
            if today < care.creation_day(holiday.day, self.settings.holiday_days_ahead):
                break
            drafts.append(
                TaskDraft(
                    kind="care",
                    title=msg("Holiday greeting: %(holiday)s", holiday=holiday.label),
                    due_at=self.care_due(customer, holiday.day),
                    customer_id=customer.id,
                    assignee=self.assignee_for("care", customer, book),
                    priority=self.priority_for("care", customer),
                    dedupe_key=holiday_key(customer.id, holiday.day),
                    source=SOURCE,
                    ext={NAMESPACE: {"care": "holiday", "date": holiday.day.isoformat()}},
                )
            )
            after = attrs.evolve(after, holiday_through=holiday.day)
        return drafts, after

    def keeps_books_on(self, task: Task) -> bool:
        """Whether ``task_created`` writes anything for ``task``: a care task marks its
        occasion done, a follow-up its due date (unless the caller writes that itself)."""
        if task.customer_id is None or task.source != SOURCE:
            return False
        if task.kind == "care":
            return task.ext.get(NAMESPACE, {}).get("care") in ("birthday", "holiday")
        return task.kind == "follow_up" and not getattr(self._local, "defer_due", False)

    def task_created(self, task: Task) -> None:
        """Bookkeeping once one of our tasks really exists (so nothing is marked as done for a
        task that was never stored)."""
        if task.customer_id is None or not self.keeps_books_on(task):
            return  # a first contact, or a follow-up whose due date the caller writes
        meta = task.ext.get(NAMESPACE, {})
        try:
            customer = self.crm.customers.get_any(task.customer_id)
        except NotFoundError:
            return
        if task.kind == "care" and meta.get("care") == "birthday":
            year = int(meta["year"])
            self.mutate(
                customer,
                lambda s: attrs.evolve(s, birthday_year=max(year, s.birthday_year or year)),
            )
        elif task.kind == "care" and meta.get("care") == "holiday":
            day = date.fromisoformat(meta["date"])
            self.mutate(
                customer,
                lambda s: attrs.evolve(s, holiday_through=max(day, s.holiday_through or day)),
            )
        elif task.kind == "follow_up":
            self.mutate(customer, lambda s: attrs.evolve(s, next_due_at=task.due_at))

    # -- the sweep -------------------------------------------------------------------------

    def plan(
        self, schedule: Schedule, now: datetime, book: LoadBook
    ) -> tuple[dict[str, Any], list[TaskDraft], list[tuple[str, datetime]]]:
        """What the sweep does for one claimed schedule: the schedule fields to write, the
        tasks to create, and open follow-ups to move ``(task id, due)``."""
        try:
            customer = self.crm.customers.get_any(schedule.customer_id)
        except NotFoundError:
            return {"active": False, "check_at": None}, [], []
        if customer.status is not CustomerStatus.ACTIVE or schedule.id != schedule_id(customer.id):
            return {"active": False, "check_at": None}, [], []
        if customer.do_not_contact:
            return {"check_at": None}, [], []
        after = schedule
        grade = pipeline_grade(customer)
        if grade is None:
            grade = schedule.grade
        cadence = self.settings.cadence_of(grade, grades_of(customer))
        if grade != schedule.grade or cadence != schedule.cadence_days:
            # settled data wins at sweep time (an event may have been missed, or the
            # configured cadence changed)
            after = attrs.evolve(after, grade=grade, cadence_days=cadence)
        drafts: list[TaskDraft] = []
        moves: list[tuple[str, datetime]] = []
        if (
            after.first_contact == FIRST_CONTACT_PENDING
            and self.crm.tasks.open_by_key(first_contact_key(customer.id)) is None
        ):
            after = attrs.evolve(after, first_contact=FIRST_CONTACT_NONE)  # cancelled
        if after.first_contact != FIRST_CONTACT_PENDING:
            due = self.follow_up_due(after, customer)
            task = self.crm.tasks.open_by_key(follow_up_key(customer.id))
            if task is None:
                drafts.append(
                    self.follow_up_draft(
                        after, customer, due, self.assignee_for("follow_up", customer, book)
                    )
                )
                after = attrs.evolve(after, next_due_at=due)
            elif after.cadence_days != schedule.cadence_days and task.due_at != due:
                moves.append((task.id, due))
                after = attrs.evolve(after, next_due_at=due)
        care_drafts, after = self.care_drafts(customer, after, now, book)
        drafts += care_drafts
        fields = {
            k: getattr(after, k)
            for k in ("grade", "cadence_days", "first_contact", "next_due_at")
            if getattr(after, k) != getattr(schedule, k)
        }
        fields["check_at"] = self.check_time(after, customer, now)
        return fields, drafts, moves

    def backfill_schedule(self, customer: Customer, now: datetime) -> Schedule:
        """A schedule for a customer who existed before the plugin: the cadence counts from
        their last follow-up contact, else from when they were added."""
        last = self.crm.interactions.find(
            {"customer_id": customer.id, "kind": {"$in": list(self.settings.follow_up_kinds)}},
            sort=[("occurred_at", -1)],
            limit=1,
        )
        schedule = self.new_schedule(
            customer,
            since=customer.created_at,
            last_follow_up_at=last[0].occurred_at if last else None,
        )
        return attrs.evolve(schedule, check_at=now)


def open_contact_tasks(crm: CRM, customer_id: str, kinds: Iterable[str]) -> list[Task]:
    wanted = set(kinds)
    return [t for t in crm.tasks.open_for(customer_id) if t.kind in wanted]
