"""``[followup]`` settings: cadence by grade, quiet hours, callbacks, care and assignment.

Every default comes from DOMAIN §3. Values are validated when the CRM opens; the config loader
prefixes each error with the full key path (``followup.quiet_hours: …``).
"""

from __future__ import annotations

import functools
import re
from datetime import date, time, timedelta
from typing import Any

import attrs

from crmcore import ValidationError
from crmcore.calendars import calendar_named

DEFAULT_CADENCE = {"A": 1, "B": 7, "C": 15, "D": 30, "E": 365}
DEFAULT_QUIET_HOURS = ["21:00-08:00", "12:00-14:00"]
CONTACT_KINDS = ["follow_up", "first_contact", "callback", "care"]

MAX_QUIET_MINUTES = 23 * 60  # at least an hour a day must stay open for contact

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(text: str) -> time:
    """``"21:00"`` → ``time(21, 0)``; ValidationError for anything but 24-hour ``HH:MM``."""
    match = _HHMM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValidationError(f"{text!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


@attrs.frozen
class QuietWindow:
    """A daily window, in the customer's own time zone, when nobody is contacted.

    ``start > end`` wraps past midnight (21:00-08:00). Both boundaries are allowed contact
    times; only the moments strictly between them are quiet.
    """

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietWindow:
        if not isinstance(text, str) or text.count("-") != 1:
            raise ValidationError(f"{text!r} is not a window like '21:00-08:00'")
        left, right = (part.strip() for part in text.split("-"))
        start, end = parse_hhmm(left), parse_hhmm(right)
        if start == end:
            raise ValidationError(f"{text!r} starts and ends at the same time")
        return cls(start, end)

    def minutes(self) -> set[int]:
        """Minutes of the day (0-1439) strictly inside the window, for coverage checks."""
        s = self.start.hour * 60 + self.start.minute
        e = self.end.hour * 60 + self.end.minute
        if s < e:
            return set(range(s + 1, e))
        return set(range(s + 1, 1440)) | set(range(0, e))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@attrs.frozen
class Holiday:
    """A configured holiday: a date and an optional name (``"2026-02-17 Spring Festival"``)."""

    day: date
    name: str = ""

    @classmethod
    def parse(cls, value: Any) -> Holiday:
        if isinstance(value, date) and not hasattr(value, "hour"):
            return cls(value)
        if isinstance(value, str):
            head, _, name = value.strip().partition(" ")
            try:
                return cls(date.fromisoformat(head), name.strip())
            except ValueError:
                pass
        raise ValidationError(
            f"{value!r} is not a date as YYYY-MM-DD (optionally followed by "
            "a name: '2026-02-17 Spring Festival')"
        )

    @property
    def label(self) -> str:
        return f"{self.name} ({self.day.isoformat()})" if self.name else self.day.isoformat()


# -- validators ---------------------------------------------------------------------------


def _positive(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ValidationError(
            f"must be a positive number of days, got {value}", field=attribute.name
        )


def _non_negative(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise ValidationError(f"must not be negative, got {value}", field=attribute.name)


def _cadence(_inst: object, attribute: attrs.Attribute, value: dict[str, int]) -> None:
    if not value:
        raise ValidationError("needs at least one grade", field=attribute.name)
    for grade, days in value.items():
        if not grade.strip():
            raise ValidationError("a grade name must not be empty", field=attribute.name)
        if days <= 0:
            raise ValidationError(
                f"grade {grade!r}: cadence must be a positive number of days, got {days}",
                field=attribute.name,
            )


def _quiet_hours(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    covered: set[int] = set()
    for i, text in enumerate(value):
        try:
            covered |= QuietWindow.parse(text).minutes()
        except ValidationError as exc:
            raise ValidationError(f"item {i + 1}: {exc}", field=attribute.name) from None
    if len(covered) > MAX_QUIET_MINUTES:
        raise ValidationError(
            "the windows leave less than an hour a day to contact anyone", field=attribute.name
        )


def _time_of_day(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    try:
        parse_hhmm(value)
    except ValidationError as exc:
        raise ValidationError(str(exc), field=attribute.name) from None


def _holidays(_inst: object, attribute: attrs.Attribute, value: list[Any]) -> None:
    for i, item in enumerate(value):
        try:
            Holiday.parse(item)
        except ValidationError as exc:
            raise ValidationError(f"item {i + 1}: {exc}", field=attribute.name) from None


def _calendar(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        try:
            calendar_named(value)
        except ValidationError as exc:
            raise ValidationError(str(exc), field=attribute.name) from None


def _ratio(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValidationError(f"must be between 0 and 1, got {value}", field=attribute.name)


def _names(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    for item in value:
        if not item.strip():
            raise ValidationError("names must not be empty", field=attribute.name)


def _key_customers(_inst: object, attribute: attrs.Attribute, value: dict[str, list[str]]) -> None:
    for scheme, grades in value.items():
        if not scheme.strip() or not all(g.strip() for g in grades):
            raise ValidationError(
                f"scheme {scheme!r}: scheme and grade names must not be empty", field=attribute.name
            )


def _tier_days(_inst: object, attribute: attrs.Attribute, value: dict[str, dict[str, int]]) -> None:
    for scheme, tiers in value.items():
        if not scheme.strip() or not isinstance(tiers, dict):
            raise ValidationError(
                f"{scheme!r}: expected {{tier = days}} per scheme", field=attribute.name
            )
        for tier, days in tiers.items():
            if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
                raise ValidationError(
                    f"{scheme}.{tier}: must be a positive number of days, got {days!r}",
                    field=attribute.name,
                )


@attrs.frozen
class Team:
    """``[followup.teams.<name>]``: who leads a team of reps (by roster ``team``) and which
    department it belongs to (for reports by department)."""

    lead: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str))
    )
    department: str | None = None


RECOVERY_ACTIONS = ("task", "ticket", "none")


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValidationError(
                f"{value!r} is not one of {', '.join(allowed)}", field=attribute.name
            )

    return check


def _positive_hours(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value <= 0:
        raise ValidationError(
            f"must be a positive number of hours, got {value}", field=attribute.name
        )


def _score(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= 4:
        raise ValidationError(f"expected a score from 1 to 4, got {value}", field=attribute.name)


@attrs.frozen
class FollowupSettings:
    """The ``[followup]`` table of crm.toml."""

    # cadence (DOMAIN §3 tracking-log table), by pipeline grade; ungraded customers use
    # ``default_cadence_days``
    cadence_days: dict[str, int] = attrs.field(
        factory=lambda: dict(DEFAULT_CADENCE), validator=_cadence
    )
    default_cadence_days: int = attrs.field(default=30, validator=_positive)
    # interaction kinds that count as a follow-up contact (they restart the cadence)
    follow_up_kinds: list[str] = attrs.field(factory=lambda: ["follow_up"], validator=_names)
    # a newly assigned customer is contacted by their rep within this many days
    first_contact_days: int = attrs.field(default=7, validator=_positive)
    # quiet hours, daily, in the customer's own time zone
    quiet_hours: list[str] = attrs.field(
        factory=lambda: list(DEFAULT_QUIET_HOURS), validator=_quiet_hours
    )
    # callbacks (回访): created by these interaction kinds and by closed complaints
    callback_kinds: list[str] = attrs.field(
        factory=lambda: ["business", "purchase"], validator=_names
    )
    callback_within_days: int = attrs.field(default=3, validator=_positive)
    callback_delay_hours: int = attrs.field(default=24, validator=_non_negative)
    # share of non-key customers' events that get a callback (key customers: always)
    callback_ratio: float = attrs.field(default=1.0, validator=_ratio)
    # key customers: a grade or tier in any grading scheme, or a customer tag
    key_customers: dict[str, list[str]] = attrs.field(
        factory=lambda: {"pipeline": ["A"], "hospital": ["big"]}, validator=_key_customers
    )
    key_tags: list[str] = attrs.field(factory=lambda: ["vip"], validator=_names)
    # plans per tier of any grading scheme ({hospital = {big = 7}}): the follow-up cadence
    # and the callback deadline are the shortest of the grade's and every matching tier's
    tier_cadence_days: dict[str, dict[str, int]] = attrs.field(factory=dict, validator=_tier_days)
    tier_callback_within_days: dict[str, dict[str, int]] = attrs.field(
        factory=dict, validator=_tier_days
    )
    # big customers routed to a dedicated rep of this team (None: any rep); key customers,
    # and customers with the dedicated_rep perk, are given an owner from it
    vip_team: str | None = None
    # an unsatisfied callback answer (DOMAIN §9): a recovery task for the owner's team lead
    # ("task"), a complaint ticket through the "complaint" interaction contract ("ticket"),
    # or nothing ("none"); a score at or below this counts as unsatisfied when not said
    unsatisfied_action: str = attrs.field(default="task", validator=_one_of(*RECOVERY_ACTIONS))
    unsatisfied_at_or_below: int = attrs.field(default=2, validator=_score)
    recovery_due_hours: int = attrs.field(default=24, validator=_positive_hours)
    recovery_category: str = "service"  # the ticket's category with unsatisfied_action "ticket"
    teams: dict[str, Team] = attrs.field(factory=dict)
    # care: birthday and holiday greetings, created this many days ahead
    birthday_days_ahead: int = attrs.field(default=7, validator=_non_negative)
    holiday_days_ahead: int = attrs.field(default=3, validator=_non_negative)
    holidays: list[Any] = attrs.field(factory=list, validator=_holidays)
    # a maintained calendar ("cn"): a greeting before the first day of each festival, on top
    # of the dates listed above
    holiday_calendar: str | None = attrs.field(default=None, validator=_calendar)
    care_time: str = attrs.field(default="10:00", validator=_time_of_day)
    # assignment to the rep roster
    assign_owners: bool = True
    assign_kinds: list[str] = attrs.field(factory=lambda: list(CONTACT_KINDS), validator=_names)
    # a task kind may want a rep with a skill ({callback = "callback"}); reps without it are
    # used only when no available rep has it
    skills_by_kind: dict[str, str] = attrs.field(factory=dict)
    # do-not-contact cancels open tasks of these kinds
    contact_kinds: list[str] = attrs.field(factory=lambda: list(CONTACT_KINDS), validator=_names)
    # handover: grades counted as prospects, and the default shift length
    prospect_grades: list[str] = attrs.field(factory=lambda: ["A", "B"], validator=_names)
    shift_hours: int = attrs.field(default=8, validator=_positive)
    # the sweep: customers looked at per tick, and the longest gap between two looks
    sweep_batch: int = attrs.field(default=1000, validator=_positive)
    recheck_days: int = attrs.field(default=30, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.callback_delay_hours > self.callback_within_days * 24:
            raise ValidationError(
                f"{self.callback_delay_hours} hours is later than the "
                f"{self.callback_within_days}-day callback deadline",
                field="callback_delay_hours",
            )

    # -- parsed views ----------------------------------------------------------------------

    @functools.cached_property
    def windows(self) -> tuple[QuietWindow, ...]:
        return tuple(QuietWindow.parse(w) for w in self.quiet_hours)

    @functools.cached_property
    def holiday_list(self) -> tuple[Holiday, ...]:
        return tuple(sorted((Holiday.parse(h) for h in self.holidays), key=lambda h: h.day))

    def holidays_from(self, today: date, days: int = 400) -> list[Holiday]:
        """Greeting occasions from ``today`` on: the listed dates and, with a
        ``holiday_calendar``, the first day of each festival in the covered years; in date
        order, one per day (a listed date's name wins)."""
        found = {h.day: h for h in self.holiday_list if h.day >= today}
        if self.holiday_calendar:
            calendar = calendar_named(self.holiday_calendar)
            for festival in calendar.festivals(today, today + timedelta(days=days)):
                found.setdefault(festival.first, Holiday(festival.first, festival.name))
        return [found[d] for d in sorted(found)]

    @functools.cached_property
    def care_time_of_day(self) -> time:
        return parse_hhmm(self.care_time)

    def tier_days(self, table: dict[str, dict[str, int]], grades: dict[str, Any]) -> int | None:
        """The shortest days of ``table`` for the customer's grades per scheme (None: none)."""
        found = [
            tiers[grades[scheme]] for scheme, tiers in table.items() if grades.get(scheme) in tiers
        ]
        return min(found) if found else None

    def cadence_of(self, grade: str | None, grades: dict[str, Any]) -> int:
        """The follow-up cadence: the pipeline grade's, shortened by any tier's plan."""
        by_tier = self.tier_days(self.tier_cadence_days, grades)
        base = self.cadence_for(grade)
        return base if by_tier is None else min(base, by_tier)

    def cadence_for(self, grade: str | None) -> int:
        """Days between follow-ups for a pipeline grade (None or unknown: the default)."""
        if grade is None:
            return self.default_cadence_days
        return self.cadence_days.get(grade, self.default_cadence_days)
