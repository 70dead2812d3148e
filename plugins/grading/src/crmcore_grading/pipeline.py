"""The A-E pipeline grade (DOMAIN §2): demand and expected closing time, with deal status.

| grade | rule (defaults; month boundaries are ``[grading.pipeline]`` settings) |
|---|---|
| E | demand "dead": no need or no chance of a deal |
| ``closed_grade`` (D) | deal status "closed" and no later closing date (the deal is done) |
| D | demand "potential": potential need only |
| A | demand "target", expected to close within ``a_months`` (1) — or the date has passed |
| B | demand "target", expected to close within ``b_months`` (3) |
| C | demand "target", expected to close within ``c_months`` (6) |
| D | demand "target", expected to close later than ``c_months`` |
| ``no_date_grade`` (D) | demand "target" with no expected closing date yet |

"Within N months" is inclusive and counted in calendar months from the grading day in the
customer's time zone: graded on 2026-01-31, "within 1 month" reaches 2026-02-28. A closed deal
with demand "target" and an expected close after today is a repeat opportunity, graded by its
date. Importance does not move the letter (DOMAIN's table defines the letters by need and
timing alone); it is kept with the inputs, shown, and orders customers within a grade.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import attrs

from crmcore.i18n import N_, msg, term
from crmcore_grading.dates import add_months
from crmcore_grading.inputs import DEMANDS, stored_close
from crmcore_grading.nextchange import DAY, first_change
from crmcore_grading.scheme import Facts, Grade, Scheme, SchemeContext
from crmcore_grading.settings import GRADES, PipelineSettings


def _months(n: int) -> str:
    return msg("%(n)s month", n=n) if n == 1 else msg("%(n)s months", n=n)


def urgency(close: date | None, today: date) -> str | None:
    """DOMAIN §2's time urgency: urgent (within a week), soon (within a month), not urgent
    (within 3 months), slow (later)."""
    if close is None:
        return None
    if (close - today).days <= 7:
        return "urgent"
    if close <= add_months(today, 1):
        return "soon"
    if close <= add_months(today, 3):
        return "not urgent"
    return "slow"


class PipelineScheme(Scheme):
    """A-E by demand and expected closing date."""

    tiers = tuple(reversed(GRADES))  # E (lowest) … A (highest)
    ordered = True

    def __init__(self, settings: PipelineSettings) -> None:
        self.settings = settings

    def fingerprint(self) -> str:
        return repr(attrs.asdict(self.settings))

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        return grade_pipeline(facts.inputs, facts.today, self.settings)

    def next_change(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> date | None:
        """The letter and reason only move forward as the date approaches the expected close
        and passes it (then nothing moves): the first local day they differ, bisected."""
        close = stored_close(facts.inputs)
        if close is None or facts.inputs.get("demand") != "target":
            return None
        inputs, settings = facts.inputs, self.settings
        return first_change(
            lambda day: grade_pipeline(inputs, day, settings), facts.today, close + DAY
        )

    def describe(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> dict[str, Any]:
        close = stored_close(facts.inputs)
        return {
            "urgency": urgency(close, facts.today),
            "importance": facts.inputs.get("importance"),
        }


def grade_pipeline(
    inputs: Mapping[str, Any], today: date, settings: PipelineSettings
) -> Grade | None:
    """The pipeline grade for these inputs on ``today``; None without a (valid) demand."""
    demand = inputs.get("demand")
    if demand not in DEMANDS:
        return None
    if demand == "dead":
        return Grade("E", msg("no need or no chance of a deal (dead)"))
    close = stored_close(inputs)
    closed = inputs.get("deal_status") == "closed"
    if closed and not (demand == "target" and close is not None and close > today):
        return Grade(settings.closed_grade, msg("deal closed"))
    if demand == "potential":
        return Grade("D", msg("potential need only"))
    need = term(N_("repeat need")) if closed else term(N_("clear need"))
    if close is None:
        return Grade(
            settings.no_date_grade, msg("%(need)s, no expected closing date yet", need=need)
        )
    if close < today:
        return Grade(
            "A",
            msg(
                "%(need)s, expected to close %(day)s, date passed", need=need, day=close.isoformat()
            ),
        )
    for letter, months in (
        ("A", settings.a_months),
        ("B", settings.b_months),
        ("C", settings.c_months),
    ):
        if close <= add_months(today, months):
            return Grade(
                letter,
                msg(
                    "%(need)s, expected to close %(day)s, within %(months)s",
                    need=need,
                    day=close.isoformat(),
                    months=_months(months),
                ),
            )
    return Grade(
        "D",
        msg(
            "%(need)s, expected to close %(day)s, not within %(months)s",
            need=need,
            day=close.isoformat(),
            months=_months(settings.c_months),
        ),
    )


def make(context: SchemeContext) -> PipelineScheme:
    return PipelineScheme(context.settings.pipeline)
