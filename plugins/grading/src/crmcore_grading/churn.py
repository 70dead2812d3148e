"""Churn risk for valuable customers (DOMAIN §4: the big-customer churn watch).

A customer is watched while they hold a tier listed in ``[grading.churn] valuable`` in any
running scheme. Each warning sign adds risk points:

- no purchase or visit for more than ``multiple`` x their own usual interval (the mean gap
  between their purchases and visits, at least ``min_interval_days``; ``default_interval_days``
  with fewer than two) — 1 point, 2 when it is more than twice that;
- open complaints — 1 point each, at most 2 (tickets tracked through the complaints plugin's
  hooks; without that plugin, complaint interactions of the last ``complaint_open_days``);
- falling spend — net spend in the last ``spend_window_days`` below ``1 - spend_drop`` of the
  window before — 1 point.

``[grading.churn.levels]`` turns points into none / low / medium / high. Unwatched customers
are at "none".
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from crmcore_grading.scheme import Facts
from crmcore_grading.settings import LEVELS, ChurnSettings
from crmcore_grading.signals import Window

FAR_FUTURE = "9999-12-31"


@attrs.frozen
class ChurnRisk:
    level: str
    reasons: tuple[str, ...] = ()

    def stored(self) -> dict[str, object]:
        return {"level": self.level, "reasons": list(self.reasons)}


NONE = ChurnRisk("none")


def rank(level: str | None) -> int:
    """none 0, low 1, medium 2, high 3 (unknown or absent: 0)."""
    return LEVELS.index(level) if level in LEVELS else 0


def watched(grades: Mapping[str, str], settings: ChurnSettings) -> list[str]:
    """The valuable tiers this customer holds, as "scheme tier"."""
    return [f"{scheme} {grades[scheme]}" for scheme, tiers in settings.valuable.items()
            if grades.get(scheme) in tiers]


def assess(facts: Facts, grades: Mapping[str, str], settings: ChurnSettings,
           window: Window) -> ChurnRisk:
    """The churn risk of one customer with these (new) grades."""
    for scheme, tiers in settings.valuable.items():  # watched(), without building the list
        if grades.get(scheme) in tiers:
            break
    else:
        return NONE
    points = 0
    reasons: list[str] = []
    s = facts.signals
    last = s.last_activity
    if last is not None:
        first = s.first_activity
        if s.activities >= 2 and first is not None:
            gap = (last - first).total_seconds() / 86400 / (s.activities - 1)
            usual = max(settings.min_interval_days, gap)
        else:
            usual = settings.default_interval_days
        idle = (facts.now - last).total_seconds() / 86400
        limit = settings.multiple * usual
        if idle > limit:
            severe = idle > 2 * limit
            points += 2 if severe else 1
            reasons.append(f"no purchase or visit since {last.date().isoformat()} (usually "
                           f"every {usual:.0f} days){', long overdue' if severe else ''}")
    if facts.open_complaints:
        n = facts.open_complaints
        points += min(n, 2)
        reasons.append(f"{n} open complaint{'s' * (n != 1)}")
    # s.spend_between(recent_after, FAR_FUTURE) and s.spend_between(spend_cut, recent_after)
    # in one pass over the day buckets
    recent_cents = previous_cents = 0
    cut, split = window.spend_cut, window.recent_after
    for day, cents in (s.data.get("spend_days") or {}).items():
        if day > split:
            if day <= FAR_FUTURE:
                recent_cents += cents
        elif day > cut:
            previous_cents += cents
    recent, previous = recent_cents / 100, previous_cents / 100
    if previous > 0 and recent < previous * (1 - settings.spend_drop):
        points += 1
        days = settings.spend_window_days
        reasons.append(f"spend fell to {recent:,.2f} in the last {days} days from "
                       f"{previous:,.2f} in the {days} before")
    level = settings.levels.level(points)
    return ChurnRisk(level, tuple(reasons) if level != "none" else ())
