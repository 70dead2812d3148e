"""Charts as plain data: what a report section or a dashboard card wants drawn.

A :class:`Chart` names its axes and unit in words people read; the x axis holds categories
(grades, reps, teams) or the periods of a trend (days, weeks, months: see :func:`buckets`).
``crmcore.chart_svg`` draws one as inline SVG; the terminal report draws it as bars.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs

from crmcore.markers import N_
from crmcore.messages import translate as _text

KINDS = ("bar", "stacked", "line")
GRAINS = ("day", "week", "month")


def _labels(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(labels)


def _series(series: Iterable[Series]) -> tuple[Series, ...]:
    return tuple(series)


def _values(values: Iterable[float | None]) -> tuple[float | None, ...]:
    return tuple(None if v is None else float(v) for v in values)


@attrs.frozen
class Series:
    """One named row of values, one value per x label (None: no value for that label)."""

    name: str
    values: tuple[float | None, ...] = attrs.field(converter=_values)


def _check_chart(chart: Chart) -> None:
    if chart.kind not in KINDS:
        raise ValueError(f"chart kind must be one of {KINDS}, not {chart.kind!r}")
    for series in chart.series:
        if len(series.values) != len(chart.x):
            raise ValueError(
                f"series {series.name!r} has {len(series.values)} values for "
                f"{len(chart.x)} x labels"
            )


@attrs.frozen
class Chart:
    """A bar, stacked-bar or line chart.

    ``x`` are the labels along the x axis (categories or periods), ``series`` one or more rows
    of values; ``unit`` is what one value counts ("customers", "%"), ``y_label`` and
    ``x_label`` name the axes. ``key`` is a stable identifier (for pages and tests), never
    shown; everything else is shown as given.
    """

    title: str
    x: tuple[str, ...] = attrs.field(converter=_labels)
    series: tuple[Series, ...] = attrs.field(converter=_series)
    kind: str = "bar"
    unit: str = ""
    y_label: str = ""
    x_label: str = ""
    key: str = ""

    def __attrs_post_init__(self) -> None:
        _check_chart(self)

    @classmethod
    def from_mapping(
        cls, title: str, data: dict[str, float], *, series: str = "", **options: str
    ) -> Chart:
        """A one-series chart from ``{label: value}``."""
        return cls(
            title, tuple(map(str, data)), (Series(series or title, data.values()),), **options
        )

    @property
    def empty(self) -> bool:
        """Whether there is nothing to draw (no label, or no value anywhere)."""
        return not self.x or all(v is None or v == 0 for s in self.series for v in s.values)

    def peak(self) -> float:
        """The largest value drawn: the largest stack for a stacked chart."""
        if not self.series:
            return 0.0
        if self.kind == "stacked":
            return max(
                (sum(s.values[i] or 0 for s in self.series) for i in range(len(self.x))),
                default=0.0,
            )
        return max((v for s in self.series for v in s.values if v is not None), default=0.0)


def translated(chart: Chart, translate: Callable[[str], str]) -> Chart:
    """``chart`` with its title, axis names, unit, series names and category labels passed
    through ``translate`` (a gettext function; :class:`crmcore.i18n.Message` labels part by
    part); labels it has no translation for stay."""
    return attrs.evolve(
        chart,
        title=_text(chart.title, translate),
        x=tuple(_text(x, translate) for x in chart.x),
        series=tuple(attrs.evolve(s, name=_text(s.name, translate)) for s in chart.series),
        unit=_text(chart.unit, translate),
        y_label=_text(chart.y_label, translate),
        x_label=_text(chart.x_label, translate),
    )


@attrs.frozen
class Bucket:
    """One period of a trend: [``start``, ``end``) in UTC, with its label for the x axis."""

    start: datetime
    end: datetime
    label: str
    grain: str = "day"


def grain_for(since: datetime, until: datetime) -> str:
    """The natural bucket for a period: days up to two weeks, weeks up to about four months,
    months beyond."""
    span = until - since
    if span <= timedelta(days=14):
        return "day"
    if span <= timedelta(days=124):
        return "week"
    return "month"


def _start_of(day: date, grain: str) -> date:
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def _next(day: date, grain: str) -> date:
    if grain == "day":
        return day + timedelta(days=1)
    if grain == "week":
        return day + timedelta(weeks=1)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _label(day: date, grain: str) -> str:
    if grain == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def buckets(
    since: datetime,
    until: datetime,
    zone: str | ZoneInfo,
    grain: str | None = None,
    *,
    limit: int = 400,
) -> list[Bucket]:
    """Calendar days, weeks (from Monday) or months in the business time zone covering
    [``since``, ``until``), oldest first; the first and last may be partial (clipped to the
    period). ``grain`` None picks one by the period's length (:func:`grain_for`)."""
    if until <= since:
        raise ValueError("a trend's period must end after it starts")
    grain = grain or grain_for(since, until)
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, not {grain!r}")
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    day = _start_of(since.astimezone(tz).date(), grain)
    out: list[Bucket] = []
    while True:
        start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        if start >= until:
            break
        following = _next(day, grain)
        end = datetime.combine(following, time(0), tzinfo=tz).astimezone(UTC)
        out.append(Bucket(max(start, since), min(end, until), _label(day, grain), grain))
        if len(out) >= limit:
            raise ValueError(f"more than {limit} {grain}s: choose a longer grain")
        day = following
    return out


def axis_name(points: Sequence[Bucket]) -> str:
    """What the x axis of a trend over ``points`` shows: "Day", "Week from" or "Month"."""
    grain = points[0].grain if points else "day"
    return {"day": N_("Day"), "week": N_("Week from"), "month": N_("Month")}[grain]


def bucket_index(points: Sequence[Bucket]) -> _Index:
    """A lookup from a moment to the index of the bucket holding it (None: outside)."""
    return _Index(points)


class _Index:
    def __init__(self, points: Sequence[Bucket]) -> None:
        self.starts = [b.start for b in points]
        self.end = points[-1].end if points else None

    def __call__(self, when: datetime) -> int | None:
        if not self.starts or self.end is None or when < self.starts[0] or when >= self.end:
            return None
        return bisect_right(self.starts, when) - 1


def trend_period(
    since: datetime | None, until: datetime, *, default_days: int = 56
) -> tuple[datetime, datetime]:
    """The period a trend covers: the report's own, or the last ``default_days`` days when it
    starts at the beginning of time."""
    return (since if since is not None else until - timedelta(days=default_days)), until


def percent(part: float, whole: float) -> float | None:
    """``part / whole`` as a percentage rounded to 0.1, None when ``whole`` is 0."""
    return None if not whole else round(part / whole * 100, 1)


def chart_tuple(charts: Iterable[Chart]) -> tuple[Chart, ...]:
    """``charts`` as a tuple (an attrs converter)."""
    return tuple(charts)
