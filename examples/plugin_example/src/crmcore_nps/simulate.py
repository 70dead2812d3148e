"""``crm demo``: customers answer some of the surveys they were sent."""

from __future__ import annotations

import random
from datetime import datetime

from crmcore import CRM, CustomerStatus, NotFoundError

from crmcore_nps.surveys import awaiting_answer, record_answer

ANSWER_CHANCE = 0.05  # per survey and day: about half are answered within 14 days
WEIGHTS = (2, 1, 1, 2, 2, 4, 5, 9, 13, 16, 14)  # scores 0..10 when the callback went unrated
COMMENTS = (
    None,
    None,
    None,
    "quick and friendly",
    "took a while, but solved",
    "would like a call back sooner",
)
CHANNELS = ("sms", "email", "phone", "web")


def simulate_day(crm: CRM, now: datetime, rng: random.Random, actor: str) -> int:
    """Answer some waiting surveys; returns how many were answered."""
    answered = 0
    for survey in awaiting_answer(crm, now):
        if rng.random() >= ANSWER_CHANCE or survey.customer_id is None:
            continue
        if crm.customers.get_any(survey.customer_id).status is not CustomerStatus.ACTIVE:
            continue
        score = draw_score(rng, _callback_satisfaction(crm, survey.ref))
        record_answer(
            crm,
            survey.customer_id,
            score,
            actor=actor,
            comment=rng.choice(COMMENTS),
            channel=rng.choice(CHANNELS),
            survey_task_id=survey.id,
        )
        answered += 1
    return answered


def draw_score(rng: random.Random, callback_satisfaction: int | None) -> int:
    """A plausible score: near twice the callback's 1-5 satisfaction when it was rated."""
    if callback_satisfaction is None:
        return rng.choices(range(11), WEIGHTS)[0]
    return max(0, min(10, round(rng.gauss(2 * callback_satisfaction, 1.5))))


def _callback_satisfaction(crm: CRM, interaction_id: str | None) -> int | None:
    if interaction_id is None:
        return None
    try:
        return crm.interactions.get(interaction_id).satisfaction
    except NotFoundError:
        return None
