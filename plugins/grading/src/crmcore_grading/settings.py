"""``[grading]`` settings: which schemes run and every boundary, weight and threshold they use.

Every value has a default taken from DOMAIN.md §2 and §4. Bad values are refused when the
configuration loads, with the full key path (``grading.hospital.thresholds.major: …``). Names
that depend on other plugins (scheme names, interaction kinds) are checked when grading first
runs in a CRM, by ``crmcore_grading.engine``, with the same kind of message.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from crmcore import ValidationError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
GRADES = ("A", "B", "C", "D", "E")
LEVELS = ("none", "low", "medium", "high")


# -- small validators ----------------------------------------------------------------------


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValidationError(f"must be a positive number, got {value!r}", field=attribute.name)


def _non_negative(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValidationError(f"must not be negative, got {value!r}", field=attribute.name)


def _share(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 < value <= 1:
        raise ValidationError(
            f"must be a share above 0 and at most 1, got {value!r}", field=attribute.name
        )


def _fraction(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValidationError(f"must be from 0 to 1, got {value!r}", field=attribute.name)


def _fraction_of_100(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0 <= value <= 100:
        raise ValidationError(f"must be from 0 to 100, got {value!r}", field=attribute.name)


def _name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not NAME.match(value):
        raise ValidationError(
            f"{value!r} is not a name (lower-case letters, digits, '_')", field=attribute.name
        )


def _names(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    seen: set[str] = set()
    for i, item in enumerate(value):
        if not NAME.match(item):
            raise ValidationError(
                f"[{i}] {item!r} is not a name (lower-case letters, digits, '_')",
                field=attribute.name,
            )
        if item in seen:
            raise ValidationError(f"[{i}] {item!r} is listed twice", field=attribute.name)
        seen.add(item)


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValidationError(
                f"unknown value {value!r} (allowed: {', '.join(allowed)})", field=attribute.name
            )

    return check


def _whole(low: int, high: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: int) -> None:
        if not low <= value <= high:
            raise ValidationError(
                f"must be a whole number from {low} to {high}, got {value}", field=attribute.name
            )

    return check


# -- the A-E pipeline grade (DOMAIN §2) ----------------------------------------------------


@attrs.frozen
class PipelineSettings:
    """Month boundaries of the A-E grade, counted in calendar months from the grading day."""

    a_months: int = attrs.field(default=1, validator=_whole(1, 120))
    b_months: int = attrs.field(default=3, validator=_whole(1, 120))
    c_months: int = attrs.field(default=6, validator=_whole(1, 120))
    no_date_grade: str = attrs.field(default="D", validator=_one_of(*GRADES))
    closed_grade: str = attrs.field(default="D", validator=_one_of(*GRADES))

    def __attrs_post_init__(self) -> None:
        if not self.b_months > self.a_months:
            raise ValidationError(
                f"must be more than a_months ({self.a_months}), got {self.b_months}",
                field="b_months",
            )
        if not self.c_months > self.b_months:
            raise ValidationError(
                f"must be more than b_months ({self.b_months}), got {self.c_months}",
                field="c_months",
            )


# -- which interactions feed which signal -----------------------------------------------------


@attrs.frozen
class SignalSettings:
    """Which interaction kinds count as spend, visits, items, referrals … (DOMAIN §4)."""

    spend_kinds: list[str] = attrs.field(
        factory=lambda: ["purchase", "treatment"], validator=_names
    )
    refund_kinds: list[str] = attrs.field(factory=lambda: ["refund"], validator=_names)
    visit_kinds: list[str] = attrs.field(factory=lambda: ["visit", "treatment"], validator=_names)
    item_kinds: list[str] = attrs.field(factory=lambda: ["purchase", "treatment"], validator=_names)
    referral_kinds: list[str] = attrs.field(factory=lambda: ["referral"], validator=_names)
    event_kinds: list[str] = attrs.field(factory=lambda: ["event"], validator=_names)
    complaint_kinds: list[str] = attrs.field(factory=lambda: ["complaint"], validator=_names)
    feedback_kinds: list[str] = attrs.field(
        factory=lambda: ["feedback", "survey", "callback"], validator=_names
    )
    default_margin: float = attrs.field(default=1.0, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        for i, kind in enumerate(self.refund_kinds):
            if kind in self.spend_kinds:
                raise ValidationError(
                    f"[{i}] {kind!r} is also in spend_kinds; a kind cannot "
                    "both add to spend and refund it",
                    field="refund_kinds",
                )

    def all_kinds(self) -> dict[str, list[str]]:
        """Setting name → kinds, for checking them against the declared kinds."""
        return {
            a.name: getattr(self, a.name)
            for a in attrs.fields(type(self))
            if a.name.endswith("_kinds")
        }


# -- RFM (DOMAIN §4) -------------------------------------------------------------------------


@attrs.frozen
class Segment:
    """A named RFM segment: score ranges ``[low, high]`` (inclusive); an omitted range is any."""

    name: str = attrs.field(validator=_name)
    r: list[int] | None = None
    f: list[int] | None = None
    m: list[int] | None = None

    def __attrs_post_init__(self) -> None:
        for key in ("r", "f", "m"):
            value = getattr(self, key)
            if value is not None and (len(value) != 2 or value[0] > value[1]):
                raise ValidationError(
                    f"expected [low, high] with low <= high, got {value}", field=key
                )

    def matches(self, r: int, f: int, m: int) -> bool:
        for rng, score in ((self.r, r), (self.f, f), (self.m, m)):
            if rng is not None and not rng[0] <= score <= rng[1]:
                return False
        return True


def _segments(
    *rows: tuple[str, tuple[int, int] | None, tuple[int, int] | None, tuple[int, int] | None],
) -> list[Segment]:
    return [
        Segment(
            name,
            None if r is None else list(r),
            None if f is None else list(f),
            None if m is None else list(m),
        )
        for name, r, f, m in rows
    ]


def default_segments() -> list[Segment]:
    """The classic 5-bin RFM segment table; the first matching row wins."""
    return _segments(
        ("champions", (4, 5), (4, 5), (4, 5)),
        ("loyal", (3, 5), (3, 5), (3, 5)),
        ("cant_lose", (1, 2), (4, 5), (4, 5)),
        ("new", (4, 5), (1, 1), None),
        ("promising", (3, 4), (1, 1), None),
        ("need_attention", (2, 3), (2, 3), (2, 3)),
        ("potential_loyalist", (3, 5), (1, 3), None),
        ("at_risk", (1, 2), (2, 5), (2, 5)),
        ("about_to_sleep", (2, 3), (1, 2), None),
        ("hibernating", (1, 2), (1, 2), (1, 2)),
        ("lost", (1, 1), None, None),
    )


@attrs.frozen
class RfmSettings:
    """Recency, frequency and monetary scores from 1 to ``bins`` (population quantiles)."""

    bins: int = attrs.field(default=5, validator=_whole(2, 10))
    segments: list[Segment] = attrs.field(factory=default_segments)
    default_segment: str = attrs.field(default="other", validator=_name)
    measure: str = attrs.field(default="revenue", validator=_one_of("revenue", "profit"))

    def __attrs_post_init__(self) -> None:
        names: set[str] = set()
        for i, seg in enumerate(self.segments):
            if seg.name in names or seg.name == self.default_segment:
                raise ValidationError(
                    f"segments[{i}].name {seg.name!r} is used twice", field="segments"
                )
            names.add(seg.name)
            for key in ("r", "f", "m"):
                rng = getattr(seg, key)
                if rng is not None and not (rng[0] >= 1 and rng[1] <= self.bins):
                    raise ValidationError(
                        f"segments[{i}].{key} {rng} is outside the scores 1..{self.bins} "
                        f"(bins = {self.bins}; give segments written for {self.bins} bins)",
                        field="segments",
                    )

    def tiers(self) -> tuple[str, ...]:
        return (*(s.name for s in self.segments), self.default_segment)


# -- the customer pyramid (DOMAIN §4) ---------------------------------------------------------


@attrs.frozen
class PyramidTier:
    """A tier holding the top ``top`` share (cumulative) of customers or of value."""

    name: str = attrs.field(validator=_name)
    top: float = attrs.field(validator=_share)


def default_pyramid() -> list[PyramidTier]:
    return [PyramidTier("vip", 0.05), PyramidTier("major", 0.20), PyramidTier("ordinary", 0.50)]


@attrs.frozen
class PyramidSettings:
    """VIP / major / ordinary / small by revenue or profit, relative to the population.

    ``basis = "customers"``: a tier holds the top ``top`` share of paying customers ranked by
    value (``top = 0.2`` is "the top 20% are big customers"). ``basis = "value"``: it holds the
    highest-value customers who together make the first ``top`` share of all value.
    """

    measure: str = attrs.field(default="revenue", validator=_one_of("revenue", "profit"))
    basis: str = attrs.field(default="customers", validator=_one_of("customers", "value"))
    tiers: list[PyramidTier] = attrs.field(factory=default_pyramid)
    rest: str = attrs.field(default="small", validator=_name)

    def __attrs_post_init__(self) -> None:
        if not self.tiers:
            raise ValidationError("give at least one tier", field="tiers")
        names = [t.name for t in self.tiers]
        for i, tier in enumerate(self.tiers):
            if tier.name in names[:i] or tier.name == self.rest:
                raise ValidationError(f"tiers[{i}].name {tier.name!r} is used twice", field="tiers")
            if i and not tier.top > self.tiers[i - 1].top:
                raise ValidationError(
                    f"top shares must increase from the first tier down: tiers[{i}].top = "
                    f"{tier.top} is not above tiers[{i - 1}].top = {self.tiers[i - 1].top}",
                    field="tiers",
                )

    def order(self) -> tuple[str, ...]:
        """Tier names from lowest to highest."""
        return (self.rest, *reversed([t.name for t in self.tiers]))


# -- the hospital's 8 signals (DOMAIN §4) -----------------------------------------------------


@attrs.frozen
class HospitalWeights:
    """Weight of each of the 8 signals in the 0-100 value score."""

    history: float = attrs.field(default=1.0, validator=_non_negative)
    spend: float = attrs.field(default=3.0, validator=_non_negative)
    visits: float = attrs.field(default=1.0, validator=_non_negative)
    frequency: float = attrs.field(default=1.0, validator=_non_negative)
    items: float = attrs.field(default=1.0, validator=_non_negative)
    referrals: float = attrs.field(default=1.5, validator=_non_negative)
    events: float = attrs.field(default=0.5, validator=_non_negative)
    feedback: float = attrs.field(default=1.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if sum(attrs.astuple(self)) <= 0:
            raise ValidationError("at least one weight must be above 0", field="spend")


@attrs.frozen
class HospitalFullMarks:
    """The amount of each signal that earns its full 100 points."""

    history_months: float = attrs.field(default=36.0, validator=_positive)
    spend: float = attrs.field(default=50_000.0, validator=_positive)
    visits: float = attrs.field(default=40.0, validator=_positive)
    visits_per_month: float = attrs.field(default=2.0, validator=_positive)
    items: float = attrs.field(default=30.0, validator=_positive)
    referrals: float = attrs.field(default=5.0, validator=_positive)
    people: float = attrs.field(default=5.0, validator=_positive)
    events: float = attrs.field(default=5.0, validator=_positive)


@attrs.frozen
class HospitalThresholds:
    """Minimum scores of the tiers, highest first (``big`` is used when ``big_rule`` is
    "threshold" and as the bar for "potential big")."""

    big: float = attrs.field(default=70.0, validator=_non_negative)
    major: float = attrs.field(default=45.0, validator=_non_negative)
    ordinary: float = attrs.field(default=20.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.big > 100:
            raise ValidationError(f"must be at most 100, got {self.big}", field="big")
        if not self.major < self.big:
            raise ValidationError(
                f"thresholds must descend: major ({self.major}) must be below big ({self.big})",
                field="major",
            )
        if not self.ordinary < self.major:
            raise ValidationError(
                f"thresholds must descend: ordinary ({self.ordinary}) must "
                f"be below major ({self.major})",
                field="ordinary",
            )


@attrs.frozen
class HospitalSettings:
    """Big-customer criteria of private hospitals: 8 weighted signals → a 0-100 score → tier."""

    weights: HospitalWeights = attrs.field(factory=HospitalWeights)
    full_marks: HospitalFullMarks = attrs.field(factory=HospitalFullMarks)
    thresholds: HospitalThresholds = attrs.field(factory=HospitalThresholds)
    big_rule: str = attrs.field(default="top_share", validator=_one_of("top_share", "threshold"))
    big_share: float = attrs.field(default=0.2, validator=_share)
    feedback_base: float = attrs.field(default=50.0, validator=_fraction_of_100)
    feedback_points: float = attrs.field(default=10.0, validator=_non_negative)
    complaint_points: float = attrs.field(default=15.0, validator=_non_negative)
    potential_within_months: float = attrs.field(default=6.0, validator=_positive)
    potential_horizon_months: float = attrs.field(default=12.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.potential_horizon_months < self.potential_within_months:
            raise ValidationError(
                f"must be at least potential_within_months ({self.potential_within_months})",
                field="potential_horizon_months",
            )


# -- churn risk (DOMAIN §4) ----------------------------------------------------------------


@attrs.frozen
class ChurnLevels:
    """Risk points (one per reason, two for a severe one) needed for each level, ascending."""

    low: int = attrs.field(default=1, validator=_whole(1, 20))
    medium: int = attrs.field(default=2, validator=_whole(1, 20))
    high: int = attrs.field(default=3, validator=_whole(1, 20))

    def __attrs_post_init__(self) -> None:
        if not self.medium > self.low:
            raise ValidationError(
                f"levels must ascend: medium ({self.medium}) must be above low ({self.low})",
                field="medium",
            )
        if not self.high > self.medium:
            raise ValidationError(
                f"levels must ascend: high ({self.high}) must be above medium ({self.medium})",
                field="high",
            )

    def level(self, points: int) -> str:
        if points >= self.high:
            return "high"
        if points >= self.medium:
            return "medium"
        if points >= self.low:
            return "low"
        return "none"


def default_valuable() -> dict[str, list[str]]:
    return {
        "pyramid": ["vip", "major"],
        "hospital": ["big", "major", "potential_big"],
        "rfm": ["champions", "loyal", "cant_lose", "at_risk"],
    }


@attrs.frozen
class ChurnSettings:
    """The churn-risk watch on valuable customers."""

    valuable: dict[str, list[str]] = attrs.field(factory=default_valuable)
    rule: str = attrs.field(default="pace", validator=_one_of("pace", "interval"))
    # rule "pace": purchases and visits expected in the next horizon_days at the customer's
    # pace (recent days weighted by exp(-age / recent_days), history_weight of the lifetime
    # pace); fewer than pace_low / pace_medium / pace_high expected: 1 / 2 / 3 points
    horizon_days: float = attrs.field(default=90.0, validator=_positive)
    recent_days: float = attrs.field(default=90.0, validator=_positive)
    history_weight: float = attrs.field(default=0.1, validator=_fraction)
    pace_low: float = attrs.field(default=1.0, validator=_positive)
    pace_medium: float = attrs.field(default=0.5, validator=_positive)
    pace_high: float = attrs.field(default=0.25, validator=_positive)
    # both rules: overdue against the customer's usual interval (pace: 1 point at most)
    multiple: float = attrs.field(default=2.0, validator=_positive)
    min_interval_days: float = attrs.field(default=7.0, validator=_positive)
    default_interval_days: float = attrs.field(default=60.0, validator=_positive)
    spend_window_days: int = attrs.field(default=90, validator=_whole(7, 730))
    spend_drop: float = attrs.field(default=0.5, validator=_fraction)
    complaint_open_days: int = attrs.field(default=30, validator=_whole(1, 365))
    levels: ChurnLevels = attrs.field(factory=ChurnLevels)
    retention_task: str = attrs.field(
        default="medium", validator=_one_of("off", "low", "medium", "high")
    )
    retention_due_days: float = attrs.field(default=2.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not self.pace_low > self.pace_medium > self.pace_high:
            raise ValidationError(
                f"pace thresholds must descend: pace_low ({self.pace_low}) > "
                f"pace_medium ({self.pace_medium}) > pace_high "
                f"({self.pace_high})",
                field="pace_medium",
            )
        for scheme in self.valuable:
            if not NAME.match(scheme):
                raise ValidationError(f"{scheme!r} is not a scheme name", field="valuable")


# -- the section ---------------------------------------------------------------------------


@attrs.frozen
class GradingSettings:
    """``[grading]``."""

    schemes: list[str] = attrs.field(
        factory=lambda: ["pipeline", "rfm", "pyramid"], validator=_names
    )
    population_interval_hours: float = attrs.field(default=24.0, validator=_positive)
    population_lease_minutes: float = attrs.field(default=30.0, validator=_positive)
    write_batch: int = attrs.field(default=500, validator=_whole(1, 100_000))
    pipeline: PipelineSettings = attrs.field(factory=PipelineSettings)
    signals: SignalSettings = attrs.field(factory=SignalSettings)
    rfm: RfmSettings = attrs.field(factory=RfmSettings)
    pyramid: PyramidSettings = attrs.field(factory=PyramidSettings)
    hospital: HospitalSettings = attrs.field(factory=HospitalSettings)
    churn: ChurnSettings = attrs.field(factory=ChurnSettings)
    options: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if "churn" in self.schemes:
            raise ValidationError(
                "'churn' is the churn-risk watch, not a grading scheme", field="schemes"
            )
