"""Quality assurance (DOMAIN §9): each month QA samples 1-5 of each rep's contacts into a review
queue, scores them on a scorecard (wording, attitude, tone, summarising needs, adaptability),
and the monthly service-quality report puts QA scores beside the complaints that name the rep,
survey results and first-response breaches.

Sampling is repeatable: the contacts drawn for a rep and month depend only on the month, the
rep and the contacts themselves, so a second run adds nothing and two workers agree."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from crmcore.customers import require_actor
from crmcore.effects import TaskDraft
from crmcore.errors import NotFoundError, ValidationError
from crmcore.i18n import msg, term
from crmcore_service.model import QA_REVIEWS, STAFF_COMPLAINTS, QaReview, StaffComplaint

if TYPE_CHECKING:
    from crmcore_service.api import Service

SECTION = "service"


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``"2026-01"`` → its first instant and the first instant of the next month."""
    try:
        year, number = (int(p) for p in month.split("-"))
        first = date(year, number, 1)
    except (TypeError, ValueError):
        raise ValidationError(f"{month!r} is not a month as YYYY-MM", field="month") from None
    following = date(year + number // 12, number % 12 + 1, 1)
    return (
        datetime.combine(first, time(0), tzinfo=zone),
        datetime.combine(following, time(0), tzinfo=zone),
    )


def month_of(when: datetime, zone: ZoneInfo) -> str:
    return when.astimezone(zone).strftime("%Y-%m")


def review_key(review_id: str) -> str:
    return f"qa-review:{review_id}"


@attrs.frozen
class QualityRow:
    """One rep's line of the monthly service-quality report."""

    rep: str
    contacts: int
    reviewed: int
    qa_score: float | None
    criteria: dict[str, float]
    complaints: int
    survey_mean: float | None  # mean satisfaction (1-5) of survey and care answers about them


class QualityAssurance:
    """Sample, review and report."""

    def __init__(self, api: Service) -> None:
        self.api = api
        self.crm = api.crm
        self.settings = api.settings.qa
        self.reviews = self.crm.records(QA_REVIEWS, QaReview)
        self.staff_complaints = self.crm.records(STAFF_COMPLAINTS, StaffComplaint)
        self.zone = ZoneInfo(self.crm.config.core.timezone)

    def _contacts(self, month: str) -> dict[str, list[Any]]:
        start, end = month_bounds(month, self.zone)
        by_rep: dict[str, list[Any]] = defaultdict(list)
        for item in self.crm.interactions.iter(
            {"kind": {"$in": self.settings.kinds}, "occurred_at": {"$gte": start, "$lt": end}}
        ):
            if item.rep:
                by_rep[item.rep].append(item)
        return by_rep

    def sample(self, month: str, *, actor: str) -> int:
        """Draw up to ``per_rep_per_month`` of each rep's contacts of ``month`` into the review
        queue (a review task each); returns how many were added."""
        actor = require_actor(actor)
        added = 0
        for rep, contacts in sorted(self._contacts(month).items()):
            have = self.reviews.count({"month": month, "rep": rep})
            wanted = self.settings.per_rep_per_month - have
            if wanted <= 0:
                continue
            taken = {r.interaction_id for r in self.reviews.find({"month": month, "rep": rep})}
            ranked = sorted(
                (c for c in contacts if c.id not in taken),
                key=lambda c: hashlib.sha256(f"{month}:{rep}:{c.id}".encode()).hexdigest(),
            )
            for contact in ranked[:wanted]:
                review = QaReview(
                    id=self.crm.new_id("qa_"),
                    month=month,
                    rep=rep,
                    interaction_id=contact.id,
                    customer_id=contact.customer_id,
                    sampled_at=self.crm.now(),
                    reviewer=self.settings.reviewer,
                )
                with self.crm.transaction(actor):
                    self.reviews.insert(review)
                    self.crm.tasks.create_from(
                        TaskDraft(
                            kind="qa_review",
                            title=msg(
                                "QA review of %(rep)s's %(kind)s contact (%(month)s)",
                                rep=rep,
                                kind=term(contact.kind),
                                month=month,
                            ),
                            due_at=self.crm.now(),
                            customer_id=None,
                            assignee=self.settings.reviewer,
                            dedupe_key=review_key(review.id),
                            source=SECTION,
                            ref=review.id,
                        ),
                        actor=actor,
                    )
                added += 1
        return added

    def queue(self, *, month: str | None = None) -> list[QaReview]:
        """Reviews waiting for their scorecard, oldest first."""
        query: dict[str, Any] = {"reviewed_at": None}
        if month is not None:
            query["month"] = month
        return self.reviews.find(query, sort=[("sampled_at", 1), ("id", 1)])

    def review(
        self, review_id: str, *, actor: str, scores: Mapping[str, Any], comment: str = ""
    ) -> QaReview:
        """Fill in the scorecard of a sampled contact (every criterion, 1..scale)."""
        actor = require_actor(actor)
        try:
            review = self.reviews.get(review_id)
        except NotFoundError:
            raise NotFoundError(f"no QA review {review_id!r}") from None
        if review.reviewed_at is not None:
            raise ValidationError(f"QA review {review_id} was already scored")
        if actor == review.rep:
            raise ValidationError("nobody reviews their own contacts", field="actor")
        clean: dict[str, int] = {}
        for key in self.settings.scorecard:
            raw = scores.get(key)
            try:
                value = int(str(raw).strip()) if raw is not None else None
            except ValueError:
                value = None
            if value is None or not 1 <= value <= self.settings.scale:
                raise ValidationError(
                    f"score {key} from 1 to {self.settings.scale} (scorecard: "
                    f"{', '.join(self.settings.scorecard)})",
                    field=key,
                )
            clean[key] = value
        extra = sorted(set(scores) - set(clean))
        if extra:
            raise ValidationError(f"not on the scorecard: {', '.join(extra)}", field=extra[0])
        with self.crm.transaction(actor):
            done = self.reviews.update(
                review,
                reviewer=actor,
                reviewed_at=self.crm.now(),
                scores=clean,
                comment=comment.strip(),
                score=round(sum(clean.values()) / len(clean), 2),
            )
            task = self.crm.tasks.open_by_key(review_key(review.id))
            if task is not None:
                self.crm.tasks.complete(task.id, actor=actor, outcome="reviewed")
        return done

    def name_staff(self, interaction_id: str, staff: str, *, actor: str) -> StaffComplaint:
        """Record that the complaint ``interaction_id`` is about staff member ``staff``."""
        actor = require_actor(actor)
        if not (staff or "").strip():
            raise ValidationError("name the staff member", field="staff")
        complaint = self.crm.interactions.get(interaction_id)
        if complaint.kind != "complaint":
            raise ValidationError(
                f"interaction {interaction_id} is a {complaint.kind}, not a complaint",
                field="interaction",
            )
        if self.staff_complaints.find_one(
            {"interaction_id": interaction_id, "staff": staff.strip()}
        ):
            raise ValidationError(f"complaint {interaction_id} already names {staff.strip()}")
        record = StaffComplaint(
            id=self.crm.new_id("stc_"),
            staff=staff.strip(),
            interaction_id=complaint.id,
            customer_id=complaint.customer_id,
            at=complaint.occurred_at,
            named_by=actor,
        )
        with self.crm.transaction(actor):
            return self.staff_complaints.insert(record)

    def monthly(self, month: str) -> list[QualityRow]:
        """The service-quality report of ``month``, one row per rep."""
        start, end = month_bounds(month, self.zone)
        contacts = self._contacts(month)
        reviews: dict[str, list[QaReview]] = defaultdict(list)
        for review in self.reviews.iter({"month": month}):
            reviews[review.rep].append(review)
        complaints: dict[str, int] = defaultdict(int)
        for item in self.staff_complaints.iter({"at": {"$gte": start, "$lt": end}}):
            complaints[item.staff] += 1
        satisfaction: dict[str, list[int]] = defaultdict(list)
        for contact in self.crm.interactions.iter(
            {
                "kind": {"$in": ["survey", "care", "callback"]},
                "occurred_at": {"$gte": start, "$lt": end},
            }
        ):
            if contact.rep and contact.satisfaction is not None:
                satisfaction[contact.rep].append(contact.satisfaction)
        rows = []
        for rep in sorted(set(contacts) | set(reviews) | set(complaints)):
            done = [r for r in reviews[rep] if r.score is not None]
            criteria = (
                {
                    key: round(sum(r.scores[key] for r in done) / len(done), 2)
                    for key in self.settings.scorecard
                }
                if done
                else {}
            )
            marks = satisfaction.get(rep, [])
            rows.append(
                QualityRow(
                    rep,
                    len(contacts.get(rep, [])),
                    len(done),
                    round(sum(r.score for r in done) / len(done), 2) if done else None,  # type: ignore[misc]
                    criteria,
                    complaints.get(rep, 0),
                    round(sum(marks) / len(marks), 2) if marks else None,
                )
            )
        return rows
