"""The hospital's big-customer rule (DOMAIN §4): 8 weighted signals → a 0-100 value score.

Signals, each scored 0-100 against its "full marks" amount (``[grading.hospital.full_marks]``):

1. history — months since the first purchase or visit
2. spend — cumulative net spend
3. visits — cumulative visits
4. frequency — visits per month over the history (at least one month)
5. items — cumulative items or treatments
6. referrals — half referrals made, half distinct people brought ("old brings new")
7. events — events taken part in
8. feedback — ``feedback_base`` plus ``feedback_points`` per positive feedback (4-5), minus
   the same per negative one (1-2) and ``complaint_points`` per complaint, within 0-100

The score is the weighted mean. Tiers, from the top: **big** — with ``big_rule =
"top_share"`` (the default, DOMAIN's "the top 20% by value are the big customers") the
ceil(``big_share``) highest scores among customers with any purchase or visit at the last
population run, else a score of at least ``thresholds.big``; **major** — at least
``thresholds.major``; **potential_big** — a customer with less than
``potential_within_months`` of history whose score, with their counts projected to
``potential_horizon_months`` at their current pace, would reach the big bar; **ordinary** — at
least ``thresholds.ordinary``; **general** — the rest, and customers with no purchase or visit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from crmcore.i18n import msg
from crmcore_grading.pyramid import top_count
from crmcore_grading.scheme import Facts, Grade, Scheme, SchemeContext
from crmcore_grading.settings import HospitalSettings
from crmcore_grading.signals import Signals


def _at_least(score: float) -> str:
    return msg("value score at least %(score)s", score=f"{score:g}")


TIERS = ("general", "ordinary", "potential_big", "major", "big")  # lowest → highest
DAYS_PER_MONTH = 30.4375


def history_months(signals: Signals, now: datetime) -> float:
    """Months since the first purchase or visit (0 without any)."""
    first = signals.first_activity
    if first is None:
        return 0.0
    return max(0.0, (now - first).total_seconds() / 86400 / DAYS_PER_MONTH)


@attrs.frozen
class Breakdown:
    """The 8 signal scores (0-100 each) and the weighted total."""

    parts: dict[str, float]
    total: float


def breakdown(
    signals: Signals,
    now: datetime,
    settings: HospitalSettings,
    scale: float = 1.0,
    months: float | None = None,
) -> Breakdown:
    """Score the 8 signals. ``scale`` multiplies cumulative counts and ``months`` replaces the
    history length (used to project a new customer's pace)."""
    full = settings.full_marks
    history = history_months(signals, now) if months is None else months
    visits = signals.visits * scale

    def part(amount: float, at_full: float) -> float:
        return 100.0 * min(amount / at_full, 1.0)

    feedback = (
        settings.feedback_base
        + settings.feedback_points * (signals.feedback_pos - signals.feedback_neg)
        - settings.complaint_points * signals.complaints
    )
    parts = {
        "history": part(history, full.history_months),
        "spend": part(signals.spend * scale, full.spend),
        "visits": part(visits, full.visits),
        "frequency": part(
            signals.visits / max(history_months(signals, now), 1.0), full.visits_per_month
        ),
        "items": part(signals.items * scale, full.items),
        "referrals": (
            part(signals.referrals * scale, full.referrals)
            + part(signals.people_referred * scale, full.people)
        )
        / 2,
        "events": part(signals.events * scale, full.events),
        "feedback": min(100.0, max(0.0, feedback)),
    }
    weights = attrs.asdict(settings.weights)
    total = sum(weights[k] * v for k, v in parts.items()) / sum(weights.values())
    return Breakdown(parts, total)


class HospitalScheme(Scheme):
    """Big (VIP) / major / potential big / ordinary / general."""

    tiers = TIERS
    ordered = True

    def __init__(self, settings: HospitalSettings) -> None:
        self.settings = settings
        self.population = settings.big_rule == "top_share"

    def fingerprint(self) -> str:
        return repr(attrs.asdict(self.settings))

    def score(self, facts: Facts) -> float:
        return breakdown(facts.signals, facts.now, self.settings).total

    def fit(self, population: Sequence[Facts]) -> dict[str, Any]:
        scores = sorted(
            (self.score(f) for f in population if f.signals.activities > 0), reverse=True
        )
        n = len(scores)
        return {"n": n, "big": scores[top_count(self.settings.big_share, n) - 1] if n else None}

    def big_bar(self, cutoffs: Mapping[str, Any] | None) -> float | None:
        if self.settings.big_rule == "top_share":
            return None if not cutoffs else cutoffs.get("big")
        return self.settings.thresholds.big

    def projected(self, facts: Facts) -> float | None:
        """The score at the current pace over the horizon, for customers new enough."""
        s = self.settings
        months = history_months(facts.signals, facts.now)
        if facts.signals.activities <= 0 or months >= s.potential_within_months:
            return None
        scale = s.potential_horizon_months / max(months, 1.0)
        return breakdown(
            facts.signals, facts.now, s, scale=scale, months=s.potential_horizon_months
        ).total

    def grade(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> Grade | None:
        sig = facts.signals
        if sig.activities <= 0:
            return Grade("general", msg("no purchase or visit yet"))
        th = self.settings.thresholds
        total = self.score(facts)
        bar = self.big_bar(cutoffs)
        detail = msg(
            "spend %(spend)s, %(visits)s, %(referrals)s",
            spend=f"{sig.spend:,.2f}",
            visits=msg("%(n)s visit", n=sig.visits)
            if sig.visits == 1
            else msg("%(n)s visits", n=sig.visits),
            referrals=msg("%(n)s referral", n=sig.referrals)
            if sig.referrals == 1
            else msg("%(n)s referrals", n=sig.referrals),
        )
        if bar is not None and total >= bar:
            why: str
            if self.settings.big_rule == "top_share":
                why = msg("top %(pct)s by value score", pct=f"{self.settings.big_share * 100:g}%")
            else:
                why = _at_least(th.big)
            return Grade("big", msg("%(why)s (%(detail)s)", why=why, detail=detail))
        if total >= th.major:
            return Grade(
                "major", msg("%(why)s (%(detail)s)", why=_at_least(th.major), detail=detail)
            )
        projected = self.projected(facts)
        if projected is not None and projected >= (th.big if bar is None else bar):
            return Grade(
                "potential_big",
                msg(
                    "new customer on course for big over %(months)s months (%(detail)s)",
                    months=f"{self.settings.potential_horizon_months:g}",
                    detail=detail,
                ),
            )
        if total >= th.ordinary:
            return Grade(
                "ordinary", msg("%(why)s (%(detail)s)", why=_at_least(th.ordinary), detail=detail)
            )
        return Grade(
            "general",
            msg(
                "value score below %(score)s (%(detail)s)",
                score=f"{th.ordinary:g}",
                detail=detail,
            ),
        )

    def describe(self, facts: Facts, cutoffs: Mapping[str, Any] | None) -> dict[str, Any]:
        b = breakdown(facts.signals, facts.now, self.settings)
        out: dict[str, Any] = {
            "score": round(b.total, 1),
            "signals": {k: round(v, 1) for k, v in b.parts.items()},
        }
        bar = self.big_bar(cutoffs)
        if bar is not None:
            out["big_bar"] = round(bar, 1)
        projected = self.projected(facts)
        if projected is not None:
            out["projected"] = round(projected, 1)
        return out


def make(context: SchemeContext) -> HospitalScheme:
    return HospitalScheme(context.settings.hospital)
