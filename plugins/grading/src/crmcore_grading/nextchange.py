"""When a customer's assessment could next change with nothing but time passing.

The worker's population run re-assesses a customer only when something could have changed
(``engine`` module docstring): an event since the last run, a population cut-off that moved
across their values, or the day stored in ``ext["grading"]["next"]`` (a UTC date) reached.
This module computes that day. It may be early (the customer is then re-assessed for
nothing, and a new day is stored); it must never be late.

What moves with time alone:

- the pipeline grade, with the customer's local day against the expected close (the letter
  and its reason only ever move forward: C, B, A, "date passed"; a closed deal's repeat need
  ends at its date). The first local day on which it differs is searched for; the stored UTC
  date is the day before it, since a local day starts up to 14 hours before the UTC one;
- the churn risk of a watched customer: the pace (recency-weighted purchase days and the
  lifetime pace) falls and the idle time grows every day, and day buckets move from the
  recent spend window to the one before and out of the windows on known dates. Between those
  dates every part of the assessment moves one way only (points never fall, the "usual pace"
  figure only falls), so the first day it differs is found by checking segment ends and
  bisecting; the search looks ``SEARCH_DAYS`` ahead at most;
- any scheme's own time dependence (``Scheme.next_change``; by default the next day, so a
  scheme that says nothing is re-assessed daily, as before).

RFM and the pyramid are placed against stored cut-offs and stored timestamps: they do not
move with time (their cut-offs moving is checked by the run itself, ``Scheme.placement``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmcore_grading import churn as churn_rules
from crmcore_grading.settings import ChurnSettings
from crmcore_grading.signals import Signals, Window, rewindow

FAR = "9999-12-31"  # stored for "no change with time alone"
SEARCH_DAYS = 120  # the churn search looks this far ahead; the customer is re-checked then
DAY = timedelta(days=1)


def first_change(
    key_at: Callable[[date], Hashable], start: date, limit: date, breaks: Iterable[date] = ()
) -> date | None:
    """The first day after ``start``, up to ``limit``, on which ``key_at`` differs from its
    value on ``start``; None if it does not before ``limit``.

    ``key_at`` must move one way only between consecutive ``breaks`` (once it differs from
    ``start``'s value inside such a stretch, it stays different to the stretch's end): each
    stretch is checked at both ends and bisected where it changed.
    """
    first = key_at(start)
    edges = sorted({b for b in breaks if start < b <= limit})
    low = start
    for end in [*edges, limit + DAY]:
        if low != start and key_at(low) != first:
            return low
        last = end - DAY
        if last > low and key_at(last) != first:
            same, differs = low, last
            while (differs - same).days > 1:
                middle = same + timedelta(days=(differs - same).days // 2)
                if key_at(middle) == first:
                    same = middle
                else:
                    differs = middle
            return differs
        low = end
    return None


def churn_next(
    signals: Mapping[str, Any],
    grades: Mapping[str, str],
    now: datetime,
    open_complaints: int | None,
    settings: ChurnSettings,
    window_at: Callable[[datetime], Window],
) -> date | None:
    """The first UTC day on which the churn risk of this customer could differ (None: never,
    as for a customer who is not watched). ``open_complaints`` is the count tracked through
    the complaints plugin, None where complaint interactions in their window count."""
    if not churn_rules.watched(grades, settings):
        return None
    today = now.astimezone(UTC).date()
    spend_days = [date.fromisoformat(d) for d in signals.get("spend_days") or ()]
    complaint_days = (
        [date.fromisoformat(d) for d in signals.get("complaint_days") or ()]
        if open_complaints is None
        else []
    )
    w = timedelta(days=settings.spend_window_days)
    c = timedelta(days=settings.complaint_open_days)
    breaks = [d + w for d in spend_days] + [d + 2 * w for d in spend_days]
    breaks += [d + c for d in complaint_days]
    found: list[date] = []
    if settings.rule == "interval":
        found += _interval_crossings(Signals(signals), now, settings)
    limit = today + timedelta(days=SEARCH_DAYS)
    key_at = _churn_key(signals, open_complaints, settings, window_at)
    change = first_change(key_at, today, limit, breaks)
    found.append(limit if change is None else change)
    return min(found)


def _churn_key(
    signals: Mapping[str, Any],
    open_complaints: int | None,
    settings: ChurnSettings,
    window_at: Callable[[datetime], Window],
) -> Callable[[date], Hashable]:
    """Everything ``churn.assess`` reads that moves with the UTC day (the grades held fixed):
    equal keys on two days mean equal assessments."""
    pace_rule = settings.rule == "pace"

    def key_at(day: date) -> Hashable:
        window = window_at(datetime(day.year, day.month, day.day, tzinfo=UTC))
        data = rewindow(signals, window)
        recent = previous = 0
        for bucket, cents in (data.get("spend_days") or {}).items():
            if bucket > window.recent_after:
                recent += cents
            elif bucket > window.spend_cut:
                previous += cents
        complaints = (
            open_complaints
            if open_complaints is not None
            else Signals(data).complaints_since(window.complaint_cut)
            if "complaint_days" in data
            else 0
        )
        if not pace_rule:
            return (complaints, recent, previous)
        sig = Signals(data)
        p = churn_rules.pace(sig, window.today, settings)
        if p is None:
            return (complaints, recent, previous)
        slow = next(
            (
                n
                for b, n in (
                    (settings.pace_high, 3),
                    (settings.pace_medium, 2),
                    (settings.pace_low, 1),
                )
                if p.expected < b
            ),
            0,
        )
        usual = (
            settings.default_interval_days
            if p.interval_days is None
            else max(settings.min_interval_days, p.interval_days)
        )
        overdue = p.idle_days > settings.multiple * usual
        shown = f"{p.usual:.1f}" if slow else None
        return (complaints, recent, previous, slow, overdue, shown)

    return key_at


def _interval_crossings(signals: Signals, now: datetime, settings: ChurnSettings) -> list[date]:
    """Rule "interval": the UTC days of the instants the customer becomes overdue and long
    overdue, where still ahead (the rule compares instants, not days)."""
    last = signals.last_activity
    if last is None:
        return []
    first = signals.first_activity
    n = signals.activities
    if n >= 2 and first is not None:
        usual = max(settings.min_interval_days, (last - first).total_seconds() / 86400 / (n - 1))
    else:
        usual = settings.default_interval_days
    limit = settings.multiple * usual
    out = []
    for days in (limit, 2 * limit):
        at = last + timedelta(days=days)
        if at >= now:
            out.append(at.astimezone(UTC).date())
    return out


def utc_before(local: date) -> date:
    """The UTC day on or before which the local day ``local`` starts, in any time zone."""
    return local - DAY
