"""The plugin's own collections: the per-customer schedule (the sweep's index), the rep roster,
and the sweep's small state."""

from __future__ import annotations

import re
from datetime import date, datetime

import attrs

from crmcore import ValidationError
from crmcore.schema import name_text, optional_name, to_utc, to_utc_or_none

# where the records are kept, and the indexes on the core's collections: ``storage``
from crmcore_followup.storage import GRADE_INDEX as GRADE_INDEX
from crmcore_followup.storage import PIPELINE_PATH as PIPELINE_PATH
from crmcore_followup.storage import REPS as REPS
from crmcore_followup.storage import SCHEDULE as SCHEDULE
from crmcore_followup.storage import STATE as STATE
from crmcore_followup.storage import TASK_KIND_INDEX as TASK_KIND_INDEX

FIRST_CONTACT_NONE = "none"  # not a newly assigned customer (existing before the plugin)
FIRST_CONTACT_PENDING = "pending"  # the first contact has not happened yet
FIRST_CONTACT_DONE = "done"
FIRST_CONTACT_STATES = (FIRST_CONTACT_NONE, FIRST_CONTACT_PENDING, FIRST_CONTACT_DONE)


def schedule_id(customer_id: str) -> str:
    """One schedule per customer, with an id derived from the customer's so that two workers
    or two hooks can never create two."""
    return f"fus_{customer_id}"


# Typed converters, one per field (its name goes into the error message).
def _since(value: datetime) -> datetime:
    return to_utc(value, "since")


def _check_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "check_at")


def _last_follow_up_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "last_follow_up_at")


def _next_due_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "next_due_at")


def _assigned_at(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "assigned_at")


def _lease_until(value: datetime | None) -> datetime | None:
    return to_utc_or_none(value, "lease_until")


def _one_of(*allowed: str):
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            raise ValidationError(
                f"{value!r} is not one of {', '.join(allowed)}", field=attribute.name
            )

    return check


@attrs.frozen
class Schedule:
    """What the plugin tracks per customer. ``check_at`` is the sweep's index: a tick only
    touches schedules whose ``check_at`` has come, never the whole customer base."""

    id: str
    customer_id: str = attrs.field(validator=name_text)
    since: datetime = attrs.field(converter=_since)
    check_at: datetime | None = attrs.field(default=None, converter=_check_at)
    active: bool = True
    grade: str | None = attrs.field(default=None, validator=optional_name)
    cadence_days: int = 30
    last_follow_up_at: datetime | None = attrs.field(default=None, converter=_last_follow_up_at)
    next_due_at: datetime | None = attrs.field(default=None, converter=_next_due_at)
    first_contact: str = attrs.field(
        default=FIRST_CONTACT_NONE, validator=_one_of(*FIRST_CONTACT_STATES)
    )
    assigned_at: datetime | None = attrs.field(default=None, converter=_assigned_at)
    birthday_year: int | None = None  # the latest year a birthday task was created for
    holiday_through: date | None = None  # holidays up to this date are handled
    route_vip: bool = False  # became a big customer: the next tick gives them a VIP rep
    lease_owner: str | None = None
    lease_until: datetime | None = attrs.field(default=None, converter=_lease_until)
    version: int = 0

    @property
    def anchor(self) -> datetime:
        """Where the cadence counts from: the last follow-up, else when tracking began."""
        return self.last_follow_up_at or self.assigned_at or self.since


_REP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def _rep_name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _REP_NAME.match(value):
        raise ValidationError(
            f"{value!r} is not a rep name (letters, digits and . _ - @, "
            "up to 64, as used for task assignees)",
            field=attribute.name,
        )


def _ability(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError(
            f"expected a whole number from 1 to 5, got {value!r}", field=attribute.name
        )


def _capacity(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(
            f"expected a whole number of open tasks, at least 1, got {value!r}",
            field=attribute.name,
        )


def _skills(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValidationError("expected a list of skills", field="skills")
    return tuple(sorted({str(s).strip().lower() for s in value if str(s).strip()}))


@attrs.frozen
class Rep:
    """A service rep on the roster (DOMAIN §3: customers are shared balancing number and
    ability). ``capacity`` is the most open tasks the rep should hold at once."""

    id: str
    name: str = attrs.field(validator=_rep_name)
    team: str | None = attrs.field(default=None, validator=optional_name)
    skills: tuple[str, ...] = attrs.field(default=(), converter=_skills)
    ability: int = attrs.field(default=3, validator=_ability)
    capacity: int = attrs.field(default=50, validator=_capacity)
    available: bool = True
    shift: str | None = attrs.field(default=None, validator=optional_name)
    version: int = 0


@attrs.frozen
class SweepState:
    """The one-off backfill of customers who existed before the plugin was enabled."""

    id: str
    cursor: str | None = None
    done: bool = False
    touch_existing: bool = False  # a resync: existing schedules are looked at again too
    lease_owner: str | None = None
    lease_until: datetime | None = attrs.field(default=None, converter=_lease_until)
    version: int = 0


BACKFILL = "backfill"
