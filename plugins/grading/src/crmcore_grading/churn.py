"""Churn risk for valuable customers (DOMAIN §4: the big-customer churn watch).

A customer is watched while they hold a tier listed in ``[grading.churn] valuable`` in any
running scheme. Each warning sign adds risk points, and ``[grading.churn.levels]`` turns points
into none / low / medium / high. Unwatched customers are at "none".

The lapse sign depends on ``rule``:

- ``pace`` (the default), the larger of two signs. A slow pace: the purchases and visits
  the customer is expected to make in the next ``horizon_days`` at their pace, which is
  mostly recent (each day with a purchase counts ``exp(-age / recent_days)``, the last
  purchase or visit at least once) and ``history_weight`` of it the lifetime pace (activities
  over the days since the first); fewer than ``pace_low`` / ``pace_medium`` / ``pace_high``
  expected: 1 / 2 / 3 points. Overdue: no purchase or visit for more than ``multiple`` x the
  usual interval (as below): 1 point, so that a frequent customer who stops is caught before
  their pace runs out. This ranks customers about as well as a BG/NBD model fitted to the
  same history (the README's "How well the churn watch ranks") and says why in words;
- ``interval``: no purchase or visit for more than ``multiple`` x their usual interval (the
  mean gap between their purchases and visits, at least ``min_interval_days``;
  ``default_interval_days`` with fewer than two) — 1 point, 2 when it is more than twice that.

Either way: open complaints — 1 point each, at most 2 (tickets tracked through the complaints
plugin's hooks; without that plugin, complaint interactions of the last
``complaint_open_days``); falling spend — net spend in the last ``spend_window_days`` below
``1 - spend_drop`` of the window before — 1 point.

Ages are counted in whole UTC days (from the grading day), and the pace rule's reasons name
dates and threshold bands, not counts of days, so they read the same from one day to the next
and a nightly run rewrites a customer only when the picture changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date

import attrs

from crmcore.i18n import joined, msg
from crmcore.i18n import stored as stored_text
from crmcore_grading.scheme import Facts
from crmcore_grading.settings import LEVELS, ChurnSettings
from crmcore_grading.signals import Signals, Window

FAR_FUTURE = "9999-12-31"


@attrs.frozen
class ChurnRisk:
    level: str
    reasons: tuple[str, ...] = ()

    def stored(self) -> dict[str, object]:
        return {"level": self.level, "reasons": [stored_text(r) for r in self.reasons]}


NONE = ChurnRisk("none")


@attrs.frozen
class Pace:
    """A customer's buying pace as of one day."""

    expected: float  # purchases and visits expected in the next horizon_days
    usual: float  # the same at their lifetime pace
    idle_days: float  # since the last purchase or visit (whole days + 1/2)
    interval_days: float | None  # mean gap between purchases and visits (None: fewer than 2)


def rank(level: str | None) -> int:
    """none 0, low 1, medium 2, high 3 (unknown or absent: 0)."""
    return LEVELS.index(level) if level in LEVELS else 0


def watched(grades: Mapping[str, str], settings: ChurnSettings) -> list[str]:
    """The valuable tiers this customer holds, as "scheme tier"."""
    return [
        f"{scheme} {grades[scheme]}"
        for scheme, tiers in settings.valuable.items()
        if grades.get(scheme) in tiers
    ]


def pace(signals: Signals, today: str, settings: ChurnSettings) -> Pace | None:
    """The customer's pace as of the UTC day ``today`` (None: no purchase or visit yet)."""
    last = signals.last_activity
    first = signals.first_activity
    if last is None or first is None:
        return None
    day = date.fromisoformat(today)
    tau = settings.recent_days
    last_day = last.astimezone(UTC).date()
    idle = max(0, (day - last_day).days) + 0.5
    weight = 0.0
    counted_last = False
    for bucket, cents in (signals.data.get("spend_days") or {}).items():
        if cents <= 0:
            continue  # a day of refunds only
        age = max(0, (day - date.fromisoformat(bucket)).days) + 0.5
        weight += math.exp(-age / tau)
        counted_last = counted_last or bucket == last_day.isoformat()
    if not counted_last:  # a visit, or a purchase without an amount
        weight += math.exp(-idle / tau)
    tenure = max(
        settings.min_interval_days, max(0, (day - first.astimezone(UTC).date()).days) + 0.5
    )
    lifetime = signals.activities / tenure
    rate = (1 - settings.history_weight) * weight / tau + settings.history_weight * lifetime
    n = signals.activities
    interval = (last - first).total_seconds() / 86400 / (n - 1) if n >= 2 else None
    return Pace(rate * settings.horizon_days, lifetime * settings.horizon_days, idle, interval)


def _pace_sign(facts: Facts, settings: ChurnSettings, window: Window) -> tuple[int, str]:
    """Points for a slow pace (1 to 3) or for being overdue against the usual interval (1),
    whichever is more, and the reason in words that read the same from one day to the next
    (the stored reasons change only when the picture does)."""
    p = pace(facts.signals, window.today, settings)
    last = facts.signals.last_activity
    if p is None or last is None:
        return 0, ""
    bound, slow = next(
        (
            (b, n)
            for b, n in ((settings.pace_high, 3), (settings.pace_medium, 2), (settings.pace_low, 1))
            if p.expected < b
        ),
        (0.0, 0),
    )
    usual = (
        settings.default_interval_days
        if p.interval_days is None
        else max(settings.min_interval_days, p.interval_days)
    )
    overdue = p.idle_days > settings.multiple * usual
    if not (slow or overdue):
        return 0, ""
    since = last.astimezone(UTC).date().isoformat()
    reason: str
    if p.interval_days is None:
        reason = msg("no purchase or visit since %(day)s (their only one so far)", day=since)
    elif overdue:
        reason = msg(
            "no purchase or visit since %(day)s (usually every %(days)s days, more than "
            "%(times)s times that)",
            day=since,
            days=f"{usual:.0f}",
            times=f"{settings.multiple:g}",
        )
    else:
        reason = msg(
            "no purchase or visit since %(day)s (usually every %(days)s days)",
            day=since,
            days=f"{usual:.0f}",
        )
    if slow:
        reason = joined(
            reason,
            msg(
                "purchases and visits expected in the next %(days)s days: under %(bound)s at "
                "their pace, %(usual)s at their usual pace",
                days=f"{settings.horizon_days:g}",
                bound=f"{bound:g}",
                usual=f"{p.usual:.1f}",
            ),
        )
    return max(slow, int(overdue)), reason


def _interval_sign(facts: Facts, settings: ChurnSettings) -> tuple[int, str]:
    s = facts.signals
    last = s.last_activity
    if last is None:
        return 0, ""
    first = s.first_activity
    if s.activities >= 2 and first is not None:
        gap = (last - first).total_seconds() / 86400 / (s.activities - 1)
        usual = max(settings.min_interval_days, gap)
    else:
        usual = settings.default_interval_days
    idle = (facts.now - last).total_seconds() / 86400
    limit = settings.multiple * usual
    if idle <= limit:
        return 0, ""
    severe = idle > 2 * limit
    day, days = last.date().isoformat(), f"{usual:.0f}"
    if severe:
        return 2, msg(
            "no purchase or visit since %(day)s (usually every %(days)s days), long overdue",
            day=day,
            days=days,
        )
    return 1, msg(
        "no purchase or visit since %(day)s (usually every %(days)s days)", day=day, days=days
    )


def assess(
    facts: Facts, grades: Mapping[str, str], settings: ChurnSettings, window: Window
) -> ChurnRisk:
    """The churn risk of one customer with these (new) grades."""
    for scheme, tiers in settings.valuable.items():  # watched(), without building the list
        if grades.get(scheme) in tiers:
            break
    else:
        return NONE
    points, reason = (
        _pace_sign(facts, settings, window)
        if settings.rule == "pace"
        else _interval_sign(facts, settings)
    )
    reasons: list[str] = [reason] if reason else []
    s = facts.signals
    if facts.open_complaints:
        n = facts.open_complaints
        points += min(n, 2)
        reasons.append(
            msg("%(n)s open complaint", n=n) if n == 1 else msg("%(n)s open complaints", n=n)
        )
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
        reasons.append(
            msg(
                "spend fell to %(recent)s in the last %(days)s days from %(previous)s in the "
                "%(days)s before",
                recent=f"{recent:,.2f}",
                days=days,
                previous=f"{previous:,.2f}",
            )
        )
    level = settings.levels.level(points)
    return ChurnRisk(level, tuple(reasons) if level != "none" else ())
