"""``[complaints]`` settings: categories, SLA policies, the escalation ladder, the shift rota,
departments and the business calendar. Every field has a default; bad values name their key."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import attrs

from crmcore.calendars import calendar_named
from crmcore.config import time_zone
from crmcore.entities import Channel, Priority
from crmcore.errors import ValidationError
from crmcore_complaints.business_time import DAYS, BusinessClock, parse_hhmm, parse_spans

DEFAULT_CATEGORIES = ("product_quality", "service", "price", "false_advertising", "other")
PRIORITY_NAMES = tuple(p.name.lower() for p in Priority)
CLOCKS = ("calendar", "business")
CHANNELS = tuple(c.value for c in Channel)
ROLES = ("shift_lead", "department_manager", "owner", "dispatcher", "handler")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _names(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    seen: set[str] = set()
    for name in value:
        if not _NAME.match(name):
            raise ValidationError(
                f"{name!r} is not a name (lower-case letters, digits, '_')", field=attribute.name
            )
        if name in seen:
            raise ValidationError(f"{name!r} is listed twice", field=attribute.name)
        seen.add(name)


def _non_blank(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be empty", field=attribute.name)


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValidationError(f"must be more than 0, got {value}", field=attribute.name)


def _non_negative(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValidationError(f"must not be negative, got {value}", field=attribute.name)


def _between(low: int, high: int) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: int) -> None:
        if not low <= value <= high:
            raise ValidationError(f"expected {low} to {high}, got {value}", field=attribute.name)

    return check


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValidationError(
                f"unknown value {value!r} (allowed: {', '.join(allowed)})", field=attribute.name
            )

    return check


def _each_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
        for item in value:
            if item not in allowed:
                raise ValidationError(
                    f"unknown value {item!r} (allowed: {', '.join(allowed)})", field=attribute.name
                )

    return check


def _hhmm(end: bool) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        try:
            parse_hhmm(value, allow_end_of_day=end)
        except ValueError as exc:
            raise ValidationError(str(exc), field=attribute.name) from None

    return check


def _optional_zone(inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        time_zone(inst, attribute, value)


def _hours(_inst: object, attribute: attrs.Attribute, value: dict[str, str]) -> None:
    for day, text in value.items():
        if day not in DAYS:
            raise ValidationError(
                f"unknown weekday {day!r} (use {', '.join(DAYS)})", field=attribute.name
            )
        try:
            parse_spans(text)
        except ValueError as exc:
            raise ValidationError(f"{day}: {exc}", field=attribute.name) from None
    if not any(parse_spans(text) for text in value.values()):
        raise ValidationError("no working hours on any weekday", field=attribute.name)


def _dates(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    for text in value:
        try:
            date.fromisoformat(text)
        except (TypeError, ValueError):
            raise ValidationError(
                f"{text!r} is not a date as YYYY-MM-DD", field=attribute.name
            ) from None


def _calendar(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None:
        try:
            calendar_named(value)
        except ValidationError as exc:
            raise ValidationError(str(exc), field=attribute.name) from None


def _ladder(_inst: object, attribute: attrs.Attribute, value: list[EscalationLevel]) -> None:
    for i in range(1, len(value)):
        if value[i].after_hours <= value[i - 1].after_hours:
            raise ValidationError(
                f"levels must come in increasing order of after_hours: level {i + 1} "
                f"({value[i].after_hours}h) is not after level {i} ({value[i - 1].after_hours}h)",
                field=attribute.name,
            )


def _target(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value == "owner":
        raise ValidationError(
            "an escalation raises a ticket above its owner, so 'owner' is "
            "no target; use shift_lead, department_manager, dispatcher, "
            "handler or 'person:<id>'",
            field=attribute.name,
        )
    if value in ROLES or (value.startswith("person:") and value[7:].strip()):
        return
    raise ValidationError(
        f"unknown target {value!r} (a role: {', '.join(ROLES)}; or 'person:<id>')",
        field=attribute.name,
    )


_WEEKDAYS = {
    "mon": "09:00-18:00",
    "tue": "09:00-18:00",
    "wed": "09:00-18:00",
    "thu": "09:00-18:00",
    "fri": "09:00-18:00",
}


@attrs.frozen
class CalendarSettings:
    """``[complaints.calendar]``: what business hours are (for policies with
    ``clock = "business"`` and for the shift rota)."""

    timezone: str | None = attrs.field(default=None, validator=_optional_zone)  # [core] timezone
    hours: dict[str, str] = attrs.field(factory=lambda: dict(_WEEKDAYS), validator=_hours)
    holidays: list[str] = attrs.field(factory=list, validator=_dates)
    # a maintained public-holiday calendar ("cn": statutory days off and make-up working
    # days, 调休); the dates above are added to it
    holiday_calendar: str | None = attrs.field(default=None, validator=_calendar)


@attrs.frozen
class SlaPolicy:
    """``[[complaints.sla]]``: targets for tickets matching every non-empty criterion.

    The first policy that matches applies; the last one must match every ticket.
    """

    name: str = attrs.field(default="standard")
    first_response_hours: float = attrs.field(default=12.0, validator=_positive)
    resolution_hours: float = attrs.field(default=48.0, validator=_positive)
    clock: str = attrs.field(default="calendar", validator=_one_of(*CLOCKS))
    categories: list[str] = attrs.field(factory=list)
    priorities: list[str] = attrs.field(factory=list, validator=_each_of(*PRIORITY_NAMES))
    tiers: list[str] = attrs.field(factory=list)
    perks: list[str] = attrs.field(factory=list)  # any of the customer's perks (loyalty)
    channels: list[str] = attrs.field(factory=list, validator=_each_of(*CHANNELS))

    @property
    def catch_all(self) -> bool:
        return not (self.categories or self.priorities or self.tiers or self.channels)


@attrs.frozen
class EscalationLevel:
    """``[[complaints.escalation]]``: after this much SLA-clock time unresolved, raise it to
    ``target`` (a role resolved at that moment, or ``person:<id>``)."""

    after_hours: float = attrs.field(validator=_positive)
    target: str = attrs.field(validator=_target)
    priority: str = attrs.field(default="high", validator=_one_of(*PRIORITY_NAMES))


@attrs.frozen
class Shift:
    """``[[complaints.shifts]]``: who leads which shift. A shift whose ``end`` is not after its
    ``start`` runs overnight into the next day."""

    lead: str = attrs.field(validator=_non_blank)
    days: list[str] = attrs.field(factory=lambda: list(DAYS), validator=_each_of(*DAYS))
    start: str = attrs.field(default="08:00", validator=_hhmm(False))
    end: str = attrs.field(default="20:00", validator=_hhmm(True))
    departments: list[str] = attrs.field(factory=list)  # empty: leads every department


@attrs.frozen
class Department:
    """``[complaints.departments.<name>]``: who manages it, how many tickets it can hold at
    once (0: no limit) and the categories it handles (empty: any category no one else has)."""

    manager: str | None = None
    capacity: int = attrs.field(default=0, validator=_non_negative)
    categories: list[str] = attrs.field(factory=list)


def _default_sla() -> list[SlaPolicy]:
    return [
        SlaPolicy(
            name="urgent", priorities=["urgent"], first_response_hours=1.0, resolution_hours=24.0
        ),
        SlaPolicy(name="standard"),
    ]


def _default_ladder() -> list[EscalationLevel]:
    return [EscalationLevel(24.0, "shift_lead"), EscalationLevel(48.0, "department_manager")]


@attrs.frozen
class ComplaintsSettings:
    """``[complaints]``."""

    categories: list[str] = attrs.field(factory=lambda: list(DEFAULT_CATEGORIES), validator=_names)
    extra_categories: list[str] = attrs.field(factory=list, validator=_names)
    default_category: str = "other"
    default_priority: str = attrs.field(default="normal", validator=_one_of(*PRIORITY_NAMES))
    register_from_interactions: bool = True
    require_approval: bool = True
    callback_due_hours: float = attrs.field(default=24.0, validator=_positive)  # within 3 days
    unsatisfied_at_or_below: int = attrs.field(default=2, validator=_between(1, 4))
    auto_close_after_days: float = attrs.field(default=7.0, validator=_non_negative)
    tier_path: str = "grading.grades.pyramid"  # where the customer's tier is, inside ext
    # paid interaction kinds a refund may return (grading's spend kinds by default)
    purchase_kinds: list[str] = attrs.field(
        factory=lambda: ["purchase", "treatment"], validator=_names
    )
    # a customer holding this perk (loyalty's crm_customer_perks) gets at least ``high``
    priority_perk: str = "priority_handling"
    report_days: int = attrs.field(default=30, validator=_positive)
    calendar: CalendarSettings = attrs.field(factory=CalendarSettings)
    sla: list[SlaPolicy] = attrs.field(factory=_default_sla)
    escalation: list[EscalationLevel] = attrs.field(factory=_default_ladder, validator=_ladder)
    shifts: list[Shift] = attrs.field(factory=list)
    departments: dict[str, Department] = attrs.field(
        factory=lambda: {"customer_service": Department()}
    )

    def __attrs_post_init__(self) -> None:
        known = set(self.all_categories)
        twice = sorted(set(self.categories) & set(self.extra_categories))
        if twice:
            raise ValidationError(
                f"{twice[0]!r} is already in categories", field="extra_categories"
            )
        if self.default_category not in known:
            raise _bad("default_category", f"unknown category {self.default_category!r}", known)
        if not self.sla:
            raise ValidationError("at least one policy is needed", field="sla")
        names: set[str] = set()
        for i, policy in enumerate(self.sla):
            for category in policy.categories:
                if category not in known:
                    raise _bad(f"sla[{i}].categories", f"unknown category {category!r}", known)
            if policy.name in names:
                raise ValidationError(f"sla[{i}].name: {policy.name!r} is used twice")
            names.add(policy.name)
        if not self.sla[-1].catch_all:
            raise ValidationError(
                f"sla[{len(self.sla) - 1}]: the last policy must match every "
                "ticket (no categories, priorities, tiers or channels)"
            )
        if not self.departments:
            raise ValidationError("at least one department is needed", field="departments")
        for name, dept in self.departments.items():
            if not _NAME.match(name):
                raise ValidationError(
                    f"departments.{name}: not a name (lower-case letters, digits, '_')"
                )
            for category in dept.categories:
                if category not in known:
                    raise _bad(
                        f"departments.{name}.categories", f"unknown category {category!r}", known
                    )
        uncovered = [c for c in self.all_categories if not self.departments_for(c)]
        if uncovered:
            raise ValidationError(
                f"departments: no department handles {uncovered[0]!r} (list "
                "it in one department's categories, or leave one "
                "department's categories empty to take the rest)"
            )
        for i, shift in enumerate(self.shifts):
            for dept_name in shift.departments:
                if dept_name not in self.departments:
                    raise _bad(
                        f"shifts[{i}].departments",
                        f"unknown department {dept_name!r}",
                        set(self.departments),
                    )

    @property
    def all_categories(self) -> tuple[str, ...]:
        return (*self.categories, *self.extra_categories)

    def departments_for(self, category: str) -> list[str]:
        """Departments that handle ``category``: those listing it, else the catch-all ones."""
        named = [n for n, d in self.departments.items() if category in d.categories]
        return named or [n for n, d in self.departments.items() if not d.categories]

    def timezone(self, core_timezone: str) -> str:
        return self.calendar.timezone or core_timezone

    def business_clock(self, core_timezone: str) -> BusinessClock:
        return BusinessClock.from_text(
            self.timezone(core_timezone),
            self.calendar.hours,
            self.calendar.holidays,
            self.calendar.holiday_calendar,
        )


def _bad(where: str, message: str, known: set[str]) -> ValidationError:
    return ValidationError(f"{where}: {message} (known: {', '.join(sorted(known))})")
