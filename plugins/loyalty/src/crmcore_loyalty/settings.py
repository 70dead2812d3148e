"""The ``[loyalty]`` settings section: every rule's numbers, with defaults from DOMAIN §4 and §6.

Validators raise ``ValidationError`` naming the field, so a bad ``crm.toml`` is reported with the
full key path (``loyalty.tiers.levels[1].threshold: …``).
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import attrs

from crmcore import ValidationError

NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Kinds whose points come from their own rules, so a kind_points entry would pay twice.
RESERVED_KINDS = frozenset({"purchase", "refund", "referral"})
STAGES = ("link", "first_purchase")
BASES = ("spend", "points")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def non_negative(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
    if not _number(value) or value < 0:
        raise ValidationError(f"must be a number >= 0, got {value!r}", field=attribute.name)


def positive(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
    if not _number(value) or value <= 0:
        raise ValidationError(f"must be a number > 0, got {value!r}", field=attribute.name)


def at_least(low: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValidationError(
                f"must be a whole number >= {low}, got {value!r}", field=attribute.name
            )

    return check


def one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
        if value not in allowed:
            raise ValidationError(
                f"must be one of {', '.join(allowed)}, got {value!r}", field=attribute.name
            )

    return check


def _name(_inst: object, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not NAME.match(value):
        raise ValidationError(
            f"{value!r} is not a name (lower-case letters, digits, '_')", field=attribute.name
        )


def _names(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    for item in value:
        if not isinstance(item, str) or not NAME.match(item):
            raise ValidationError(
                f"{item!r} is not a perk name (lower-case letters, digits, '_')",
                field=attribute.name,
            )


@attrs.frozen
class TierLevel:
    """One tier: reached when the qualifying value in the window is at least ``threshold``."""

    name: str = attrs.field(validator=_name)
    threshold: float = attrs.field(validator=positive)
    multiplier: float = attrs.field(default=1.0, validator=positive)
    perks: list[str] = attrs.field(factory=list, validator=_names)


def _default_levels() -> list[TierLevel]:
    return [
        TierLevel("silver", 500, 1.1, ["exclusive_offers"]),
        TierLevel("gold", 2000, 1.25, ["exclusive_offers", "priority_handling"]),
        TierLevel(
            "platinum",
            5000,
            1.5,
            ["exclusive_offers", "priority_handling", "dedicated_rep", "member_events"],
        ),
    ]


def _levels(_inst: object, attribute: attrs.Attribute, value: list[TierLevel]) -> None:
    names = [level.name for level in value]
    if len(set(names)) != len(names):
        raise ValidationError(
            f"tier names must be unique, got {', '.join(names)}", field=attribute.name
        )
    thresholds = [level.threshold for level in value]
    if any(b <= a for a, b in itertools.pairwise(thresholds)):
        raise ValidationError(
            "thresholds must be in strictly ascending order, got "
            f"{', '.join(f'{t:g}' for t in thresholds)}",
            field=attribute.name,
        )


@attrs.frozen
class EarnSettings:
    """``[loyalty.earn]``: points for purchases and for other interaction kinds."""

    points_per_currency: float = attrs.field(default=1.0, validator=non_negative)
    # the paid interaction kinds: they earn per currency, qualify referrals, count as spend
    # for tiers and can be refunded (a hospital adds "treatment")
    purchase_kinds: list[str] = attrs.field(factory=lambda: ["purchase"])
    kind_points: dict[str, int] = attrs.field(factory=lambda: {"event": 50, "survey": 20})

    @purchase_kinds.validator
    def _check_purchase_kinds(self, attribute: attrs.Attribute, value: list[str]) -> None:
        if not value:
            raise ValidationError("needs at least one kind", field=attribute.name)
        for kind in value:
            if not NAME.match(kind) or kind in ("refund", "referral"):
                raise ValidationError(f"{kind!r} cannot be a purchase kind", field=attribute.name)

    @kind_points.validator
    def _check_kinds(self, attribute: attrs.Attribute, value: dict[str, int]) -> None:
        for kind, points in value.items():
            if not NAME.match(kind):
                raise ValidationError(
                    f"{kind!r} is not an interaction kind name", field=attribute.name
                )
            if kind in RESERVED_KINDS or kind in self.purchase_kinds:
                raise ValidationError(
                    f"{kind!r} earns through its own rule ([loyalty.earn] "
                    "points_per_currency or [loyalty.referral]); remove it",
                    field=attribute.name,
                )
            if isinstance(points, bool) or not isinstance(points, int) or points < 0:
                raise ValidationError(
                    f"{kind}: must be a whole number >= 0, got {points!r}", field=attribute.name
                )


@attrs.frozen
class ExpirySettings:
    """``[loyalty.expiry]``: points expire ``days`` after they are credited (0: never)."""

    days: int = attrs.field(default=365, validator=at_least(0))
    reminder_days: int = attrs.field(default=30, validator=at_least(0))

    @reminder_days.validator
    def _before_expiry(self, attribute: attrs.Attribute, value: int) -> None:
        if self.days and value >= self.days:
            raise ValidationError(
                f"must be less than days ({self.days}), got {value}", field=attribute.name
            )


@attrs.frozen
class TierSettings:
    """``[loyalty.tiers]``: which value qualifies, over which window, and the levels."""

    basis: str = attrs.field(default="spend", validator=one_of(*BASES))
    window_days: int = attrs.field(default=365, validator=at_least(1))
    review_days: int = attrs.field(default=365, validator=at_least(1))
    levels: list[TierLevel] = attrs.field(factory=_default_levels, validator=_levels)
    # a grading tier grants at least a level ({hospital = {big = "platinum"}}): the two tier
    # systems are mapped instead of living side by side (grading's ext.grading.grades)
    from_grades: dict[str, dict[str, str]] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        names = {level.name for level in self.levels}
        for scheme, table in self.from_grades.items():
            for grade, level in table.items():
                if level not in names:
                    raise ValidationError(
                        f"{scheme}.{grade}: {level!r} is not a tier level "
                        f"(levels: {', '.join(sorted(names))})",
                        field="from_grades",
                    )


@attrs.frozen
class ReferralSettings:
    """``[loyalty.referral]``: rewards, the stage that pays them, and the abuse limits."""

    referrer_points: int = attrs.field(default=500, validator=at_least(0))
    referred_points: int = attrs.field(default=200, validator=at_least(0))
    reward_stage: str = attrs.field(default="first_purchase", validator=one_of(*STAGES))
    min_purchase_amount: float = attrs.field(default=0.0, validator=non_negative)
    link_window_days: int = attrs.field(default=30, validator=at_least(1))
    max_rewards_per_period: int = attrs.field(default=10, validator=at_least(1))
    period_days: int = attrs.field(default=30, validator=at_least(1))
    max_links_per_hour: int = attrs.field(default=3, validator=at_least(1))
    max_links_per_day: int = attrs.field(default=10, validator=at_least(1))
    code_length: int = attrs.field(default=6, validator=at_least(4))
    code_on_create: bool = True

    @max_links_per_day.validator
    def _day_covers_hour(self, attribute: attrs.Attribute, value: int) -> None:
        if value < self.max_links_per_hour:
            raise ValidationError(
                f"must be at least max_links_per_hour ({self.max_links_per_hour}), got {value}",
                field=attribute.name,
            )

    @code_length.validator
    def _short(self, attribute: attrs.Attribute, value: int) -> None:
        if value > 12:
            raise ValidationError(f"must be at most 12, got {value}", field=attribute.name)


@attrs.frozen
class AskSettings:
    """``[loyalty.asks]``: the three moments to ask for a referral (DOMAIN §6)."""

    enabled: bool = True
    after_purchase: bool = True
    after_purchase_due_hours: int = attrs.field(default=24, validator=at_least(0))
    satisfaction_threshold: int = attrs.field(default=5, validator=at_least(1))
    proven_after_days: int = attrs.field(default=30, validator=at_least(1))
    cooldown_days: int = attrs.field(default=60, validator=at_least(1))
    quiet_after_complaint_days: int = attrs.field(default=30, validator=at_least(0))

    @satisfaction_threshold.validator
    def _scale(self, attribute: attrs.Attribute, value: int) -> None:
        if value > 5:
            raise ValidationError(f"must be from 1 to 5, got {value}", field=attribute.name)


@attrs.frozen
class CompensationSettings:
    """``[loyalty.compensation]``: goodwill points for a complaint resolved with compensation."""

    points_per_currency: float = attrs.field(default=100.0, validator=positive)
    cap_points: int = attrs.field(default=10000, validator=at_least(1))
    cap_days: int = attrs.field(default=365, validator=at_least(1))


@attrs.frozen
class LoyaltySettings:
    """``[loyalty]``."""

    point_value: float = attrs.field(default=0.01, validator=positive)
    report_period_days: int = attrs.field(default=30, validator=at_least(1))
    earn: EarnSettings = attrs.field(factory=EarnSettings)
    expiry: ExpirySettings = attrs.field(factory=ExpirySettings)
    tiers: TierSettings = attrs.field(factory=TierSettings)
    referral: ReferralSettings = attrs.field(factory=ReferralSettings)
    asks: AskSettings = attrs.field(factory=AskSettings)
    compensation: CompensationSettings = attrs.field(factory=CompensationSettings)

    def level(self, name: str | None) -> TierLevel | None:
        """The tier level called ``name`` (None for no tier or a level no longer configured)."""
        for level in self.tiers.levels:
            if level.name == name:
                return level
        return None

    def rank(self, name: str | None) -> int:
        """0 for no tier, 1 for the lowest level, and so on (unknown names count as none)."""
        for i, level in enumerate(self.tiers.levels, start=1):
            if level.name == name:
                return i
        return 0
