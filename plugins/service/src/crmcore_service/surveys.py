"""Satisfaction surveys as data (``[service.surveys.<name>]``): a run asks every customer of
the audience once per period (a task for their rep), an answer is a ``survey`` interaction
with the scores, and results are read back by department, question category and rep.

The interaction's ``satisfaction`` (1-5, the mean answer put on the core's scale) is what the
grading plugin and every satisfaction report already read, so survey answers feed them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.customers import require_actor
from crmcore.effects import TaskDraft
from crmcore.entities import Interaction
from crmcore.errors import ValidationError
from crmcore.i18n import msg
from crmcore_service import audience as audiences
from crmcore_service.settings import Survey

if TYPE_CHECKING:
    from crmcore_service.api import Service

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SECTION = "service"


def survey_key(name: str, period: int, customer_id: str) -> str:
    return f"survey:{name}:{period}:{customer_id}"


@attrs.frozen
class RunResult:
    survey: str
    period: int
    asked: int  # tasks created by this run
    already: int  # customers already asked this period


@attrs.frozen
class ResultRow:
    """Mean score (on the survey's scale) and answer count for one group."""

    group: str
    answers: int
    mean: float


class Surveys:
    """Run, answer and read satisfaction surveys."""

    def __init__(self, api: Service) -> None:
        self.api = api
        self.crm = api.crm

    def survey(self, name: str) -> Survey:
        try:
            return self.api.settings.surveys[name]
        except KeyError:
            known = ", ".join(self.api.settings.surveys) or "none configured"
            raise ValidationError(
                f"unknown survey {name!r} (known: {known})", field="survey"
            ) from None

    def period(self, survey: Survey, when: datetime) -> int:
        """The number of the survey period ``when`` falls in (periods count from 2000)."""
        return math.floor((when - EPOCH) / timedelta(days=survey.period_days))

    def run(self, name: str, *, actor: str) -> RunResult:
        """Ask every customer of the audience not yet asked this period: a "survey" task for
        their rep (or unassigned), due in ``due_days``."""
        actor = require_actor(actor)
        survey = self.survey(name)
        now = self.crm.now()
        period = self.period(survey, now)
        asked = already = 0
        for customer in audiences.select(self.crm, survey.audience):
            key = survey_key(name, period, customer.id)
            if self._answered(name, period, customer.id):
                already += 1
                continue
            draft = TaskDraft(
                kind="survey",
                title=msg("Survey: %(title)s", title=survey.title[:180]),
                due_at=now + timedelta(days=survey.due_days),
                customer_id=customer.id,
                assignee=customer.owner,
                dedupe_key=key,
                source=SECTION,
                ext={SECTION: {"survey": name, "period": period}},
            )
            with self.crm.transaction(actor):
                _task, new = self.crm.tasks.create_from(draft, actor=actor)
            asked += new
            already += not new
        return RunResult(name, period, asked, already)

    def _answered(self, name: str, period: int, customer_id: str) -> bool:
        return any(
            i.ext.get(SECTION, {}).get("survey") == name and i.ext[SECTION].get("period") == period
            for i in self.crm.interactions.for_customer(customer_id, kinds=["survey"])
        )

    def answer(
        self,
        name: str,
        *,
        actor: str,
        customer_id: str,
        scores: Mapping[str, Any],
        comment: str = "",
        channel: str = "phone",
    ) -> Interaction:
        """Store an answer: every question scored 1..scale, as a "survey" interaction (rep: the
        customer's owner, whose service it rates). Completes the customer's survey task."""
        actor = require_actor(actor)
        survey = self.survey(name)
        clean: dict[str, int] = {}
        for question in survey.questions:
            raw = scores.get(question.key)
            if raw is None:
                raise ValidationError(
                    f"no score for question {question.key!r} (questions: "
                    f"{', '.join(q.key for q in survey.questions)})",
                    field=question.key,
                )
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValidationError(
                    f"score {raw!r} for {question.key} is not a whole number", field=question.key
                ) from None
            if not 1 <= value <= survey.scale:
                raise ValidationError(
                    f"score {value} for {question.key} is outside 1-{survey.scale}",
                    field=question.key,
                )
            clean[question.key] = value
        extra = sorted(set(scores) - set(clean))
        if extra:
            raise ValidationError(f"unknown question(s) {', '.join(extra)}", field=extra[0])
        customer = self.crm.customers.get(customer_id)
        now = self.crm.now()
        period = self.period(survey, now)
        if self._answered(name, period, customer.id):
            raise ValidationError(
                f"customer {customer.id} already answered survey {name} this period"
            )
        mean = sum(clean.values()) / len(clean)
        satisfaction = max(1, min(5, round(1 + (mean - 1) * 4 / (survey.scale - 1))))
        with self.crm.transaction(actor):
            logged = self.crm.interactions.log(
                actor=actor,
                customer_id=customer.id,
                kind="survey",
                channel=channel,
                satisfaction=satisfaction,
                rep=customer.owner,
                summary=comment[:500],
                ext={
                    SECTION: {
                        "survey": name,
                        "period": period,
                        "scores": clean,
                        "department": survey.department,
                    }
                },
            )
            task = self.crm.tasks.open_by_key(survey_key(name, period, customer.id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome="answered")
        return logged

    def answers(
        self,
        name: str | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        who: Callable[[str | None], bool] | None = None,
    ) -> list[Interaction]:
        """Answers in ``[since, until]``, of the reps ``who`` accepts (None: everyone)."""
        window: dict[str, Any] = {}
        if since is not None:
            window["$gte"] = since
        if until is not None:
            window["$lte"] = until
        query: dict[str, Any] = {"kind": "survey"}
        if window:
            query["occurred_at"] = window
        found = self.crm.interactions.find(query, sort=[("occurred_at", 1)])
        return [
            i
            for i in found
            if SECTION in i.ext
            and (name is None or i.ext[SECTION].get("survey") == name)
            and (who is None or who(i.rep))
        ]

    def results(
        self,
        name: str,
        by: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        who: Callable[[str | None], bool] | None = None,
    ) -> list[ResultRow]:
        """Mean scores grouped ``by`` "rep", "department" or "category" (of the question)."""
        if by not in ("rep", "department", "category"):
            raise ValidationError(f"group by rep, department or category, not {by!r}", field="by")
        survey = self.survey(name)
        categories = {q.key: q.category for q in survey.questions}
        groups: dict[str, list[int]] = defaultdict(list)
        for item in self.answers(name, since=since, until=until, who=who):
            data = item.ext[SECTION]
            for key, score in data.get("scores", {}).items():
                if by == "category":
                    group = categories.get(key, "general")
                elif by == "rep":
                    group = item.rep or "(no rep)"
                else:
                    group = data.get("department") or self._department(item.rep)
                groups[group].append(score)
        return [ResultRow(g, len(v), round(sum(v) / len(v), 2)) for g, v in sorted(groups.items())]

    def _department(self, rep: str | None) -> str:
        who = self.crm.actor(rep) if rep else None
        return (who.department if who is not None else None) or "(no department)"
