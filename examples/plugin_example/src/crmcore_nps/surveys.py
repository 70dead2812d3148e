"""The survey workflow: which callbacks call for a survey, recording answers, expiry, reports."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import attrs
from crmcore import (
    CRM,
    ConflictError,
    Customer,
    Interaction,
    Priority,
    ReportSection,
    SummaryLine,
    Task,
    TaskDraft,
    TaskUpdate,
    ValidationError,
)
from crmcore.logs import get_logger
from crmcore.records import Records
from crmcore.security import Resource

from crmcore_nps.model import ANSWERS, SURVEY_TASK, Answer, survey_key
from crmcore_nps.score import NpsResult, category, check_score, compute_nps, satisfaction
from crmcore_nps.settings import NpsSettings

COMMENT_MAX = 2000


def settings(crm: CRM) -> NpsSettings:
    return crm.settings("nps")


def answers(crm: CRM) -> Records[Answer]:
    return crm.records(ANSWERS, Answer)


# -- sending surveys ---------------------------------------------------------------------------


def survey_draft(crm: CRM, interaction: Interaction, customer: Customer) -> TaskDraft | None:
    """The survey task a logged interaction calls for, or None.

    Only callbacks call for one, never for a do-not-contact customer (unless configured), and
    at most once per customer in any ``period_days`` window.
    """
    if interaction.kind != "callback":
        return None
    conf = settings(crm)
    if conf.skip_do_not_contact and customer.do_not_contact:
        return None
    if surveyed_within(crm, customer.id, conf.period_days):
        return None
    assignee = {"rep": interaction.rep or customer.owner, "owner": customer.owner, "none": None}[
        conf.assign_to
    ]
    return TaskDraft(
        kind=SURVEY_TASK,
        title="NPS survey: how likely is the customer to recommend us (0-10)?",
        due_at=interaction.occurred_at + timedelta(hours=conf.delay_hours),
        customer_id=customer.id,
        assignee=assignee,
        priority=Priority.LOW,
        dedupe_key=survey_key(customer.id),  # never two open surveys for one customer
        source="nps",
        ref=interaction.id,
    )


def surveyed_within(crm: CRM, customer_id: str, days: int) -> bool:
    """Whether the customer was sent a survey (open or carried out) or answered one in the
    last ``days`` days; one exactly ``days`` days ago no longer counts."""
    if days == 0:
        return False
    since = crm.now() - timedelta(days=days)
    asked = crm.tasks.count(
        {
            "customer_id": customer_id,
            "kind": SURVEY_TASK,
            "status": {"$in": ["open", "done"]},
            "created_at": {"$gt": since},
        }
    )
    return (
        asked > 0
        or answers(crm).count({"customer_id": customer_id, "answered_at": {"$gt": since}}) > 0
    )


def expired_surveys(crm: CRM, now: datetime) -> list[TaskUpdate]:
    """Cancel open surveys overdue by more than ``expire_days`` (idempotent: an already
    cancelled task is skipped by the core)."""
    cutoff = now - timedelta(days=settings(crm).expire_days)
    stale = crm.tasks.find({"kind": SURVEY_TASK, "status": "open", "due_at": {"$lt": cutoff}})
    return [
        TaskUpdate(task_id=t.id, cancel=True, reason="survey expired unanswered") for t in stale
    ]


def awaiting_answer(crm: CRM, now: datetime) -> list[Task]:
    """Surveys an answer would still count for: open ones, and ones completed (sent) within
    ``expire_days`` that nobody has answered yet. Oldest first."""
    since = now - timedelta(days=settings(crm).expire_days)
    found = crm.tasks.find(
        {
            "kind": SURVEY_TASK,
            "$or": [{"status": "open"}, {"status": "done", "completed_at": {"$gte": since}}],
        },
        sort=[("created_at", 1)],
    )
    return [t for t in found if answers(crm).count({"survey_task_id": t.id}) == 0]


# -- answers -----------------------------------------------------------------------------------


def record_answer(
    crm: CRM,
    customer_id: str,
    score: int,
    *,
    actor: str,
    comment: str | None = None,
    channel: str = "other",
    survey_task_id: str | None = None,
) -> Answer:
    """Record a customer's answer and act on it, all in one transaction.

    Stores an ``Answer`` in ``nps.answers``, logs an interaction of kind ``survey`` whose
    satisfaction is the score on the 1-5 scale, completes the customer's open survey task, and
    fires ``crm_nps_answered`` so other plugins can react.
    The answer belongs to ``survey_task_id`` if given, else to the open survey, else to a
    survey sent in the last ``expire_days`` and not yet answered, else to none. Everything is
    checked before anything is written. Under ``[security] enforce`` the actor needs
    permission for ``nps.answer`` on the customer (the default policy: their own customers).
    """
    score = check_score(score)
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError("every write needs an actor", field="actor")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > COMMENT_MAX:
        raise ValidationError(f"at most {COMMENT_MAX} characters", field="comment")
    customer = crm.customers.get(customer_id)
    crm.authorize(actor, "nps.answer", Resource("nps_answer", None, customer.owner, customer.id))
    survey = _survey_for(crm, customer.id, survey_task_id)
    now = crm.now()
    answer = Answer(
        id=crm.new_id("nps_"),
        customer_id=customer.id,
        score=score,
        answered_at=now,
        recorded_by=actor,
        comment=comment,
        survey_task_id=survey.id if survey else None,
    )
    kind = category(score)
    fields = {
        "channel": channel,
        "summary": f"NPS {score} ({kind})",
        "satisfaction": satisfaction(score),
        "ref": answer.survey_task_id,
        "ext": {"nps": {"answer_id": answer.id, "score": score, "category": kind}},
    }
    crm.interactions.validate(customer_id=customer.id, kind="survey", **fields)
    with crm.transaction(actor):  # one unit, attributed to the actor in the audit trail
        logged = crm.interactions.log(
            actor=actor, customer_id=customer.id, kind="survey", occurred_at=now, **fields
        )
        stored = answers(crm).insert(attrs.evolve(answer, interaction_id=logged.id))
        if survey is not None and survey.is_open:
            crm.tasks.complete(survey.id, actor=actor, outcome=f"answered {score} ({kind})")
        # The guard is for crmcore 0.1, which does not call crm_addhooks yet: until it does, the
        # hook exists only once some loaded plugin implements it.
        if hasattr(crm.plugins.hook, "crm_nps_answered"):
            crm.emit("crm_nps_answered", actor=actor, answer=stored, category=kind)
    # get the logger where it is used: one made at import time would miss the CLI's set-up
    get_logger("nps").info(
        "answer recorded",
        customer_id=customer.id,
        score=score,
        category=kind,
        survey_task_id=stored.survey_task_id,
    )
    return stored


def _survey_for(crm: CRM, customer_id: str, task_id: str | None) -> Task | None:
    if task_id is not None:
        task = crm.tasks.get(task_id)
        if task.kind != SURVEY_TASK or task.customer_id != customer_id:
            raise ValidationError(
                f"task {task_id} is not a survey of customer {customer_id}", field="survey_task_id"
            )
        if answers(crm).count({"survey_task_id": task_id}):
            raise ConflictError(f"survey {task_id} is already answered")
        return task
    open_survey = crm.tasks.open_by_key(survey_key(customer_id))
    if open_survey is not None:
        return open_survey
    since = crm.now() - timedelta(days=settings(crm).expire_days)
    for sent in crm.tasks.find(
        {
            "customer_id": customer_id,
            "kind": SURVEY_TASK,
            "status": "done",
            "completed_at": {"$gte": since},
        },
        sort=[("completed_at", -1)],
    ):
        if not answers(crm).count({"survey_task_id": sent.id}):
            return sent
    return None


# -- reading -----------------------------------------------------------------------------------


@attrs.frozen
class NpsReport:
    """NPS over the last ``days`` days and the ``days`` before, and all time."""

    days: int
    windows: tuple[tuple[str, NpsResult], ...]
    distribution: dict[int, int]  # score -> answers, in the last window
    surveys_sent: int  # survey tasks created in the last window
    surveys_answered: int  # of those, how many have an answer

    @property
    def response_rate(self) -> float | None:
        return self.surveys_answered / self.surveys_sent if self.surveys_sent else None


def build_report(crm: CRM, now: datetime, days: int | None = None) -> NpsReport:
    """Compute the NPS report at ``now``."""
    days = settings(crm).report_days if days is None else days
    if days < 1:
        raise ValidationError(f"expected 1 or more, got {days}", field="days")
    start, before = now - timedelta(days=days), now - timedelta(days=2 * days)
    recent, earlier, every = [], [], []
    for answer in answers(crm).iter():
        if answer.answered_at > now:
            continue
        every.append(answer.score)
        if answer.answered_at >= start:
            recent.append(answer.score)
        elif answer.answered_at >= before:
            earlier.append(answer.score)
    sent = crm.tasks.find({"kind": SURVEY_TASK, "created_at": {"$gte": start, "$lte": now}})
    answered = sum(1 for t in sent if answers(crm).count({"survey_task_id": t.id}))
    counts = Counter(recent)
    return NpsReport(
        days,
        (
            (f"last {days} days", compute_nps(recent)),
            (f"the {days} days before", compute_nps(earlier)),
            ("all time", compute_nps(every)),
        ),
        {score: counts[score] for score in range(11)},
        len(sent),
        answered,
    )


def report_section(crm: CRM, now: datetime) -> ReportSection:
    """The ``crm report`` section: NPS with its counts, and the last window's distribution."""
    report = build_report(crm, now)
    rate = report.response_rate
    rows = [
        (label, r.answers, r.promoters, r.passives, r.detractors, r.text())
        for label, r in report.windows
    ]
    return ReportSection(
        "Net Promoter Score",
        ("window", "answers", "promoters (9-10)", "passives (7-8)", "detractors (0-6)", "NPS"),
        rows,
        chart={f"score {s}": n for s, n in report.distribution.items()},
        note=(
            f"NPS = % promoters - % detractors. Surveys sent in the last {report.days} days: "
            f"{report.surveys_sent}, answered: {report.surveys_answered}"
            + ("" if rate is None else f" ({rate:.0%})")
        ),
        order=60,
    )


def summary_lines(crm: CRM, customer: Customer) -> list[SummaryLine]:
    """The customer's latest answer, their average, and any open survey."""
    parts = []
    given = answers(crm).find({"customer_id": customer.id}, sort=[("answered_at", -1)])
    if given:
        latest = given[0]
        parts.append(f"{latest.score} ({category(latest.score)}) on {latest.answered_at:%Y-%m-%d}")
        if len(given) > 1:
            mean = sum(a.score for a in given) / len(given)
            parts.append(f"{len(given)} answers, average {mean:.1f}")
    open_survey = crm.tasks.open_by_key(survey_key(customer.id))
    if open_survey is not None:
        parts.append(f"survey due {open_survey.due_at:%Y-%m-%d %H:%M} UTC")
    return [SummaryLine("NPS", "; ".join(parts))] if parts else []
