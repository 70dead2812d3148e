"""The core's three entities: Customer, Interaction and Task.

Plugin data never becomes a core field: it lives in a plugin's own collection or under the
plugin's namespace in ``ext`` (for example ``customer.ext["grading"]``).
"""

from __future__ import annotations

import enum
import re
from datetime import date, datetime
from typing import Any

import attrs

from crmcore.errors import ValidationError
from crmcore.schema import (
    enum_converter,
    field,
    free_text,
    in_range,
    name_text,
    non_negative,
    optional_name,
    optional_text,
    utc_converter,
)
from crmcore.text import check_encodable, check_name


class Gender(enum.Enum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class Channel(enum.Enum):
    """How a contact happened (DOMAIN §5: phone, e-mail, chat, letter, in person …)."""

    PHONE = "phone"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    LETTER = "letter"
    IN_PERSON = "in_person"
    WEB = "web"
    APP = "app"
    OTHER = "other"


class CustomerStatus(enum.Enum):
    ACTIVE = "active"
    MERGED = "merged"  # a tombstone pointing at ``merged_into``; personal fields are cleared
    ERASED = "erased"  # personal data forgotten on request; statistics remain


class TaskStatus(enum.Enum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Priority(enum.IntEnum):
    """Task urgency; larger is more urgent, and due queues sort by it."""

    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4


_KIND = re.compile(r"^[a-z][a-z0-9_]*$")


def _kind(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, str) or not _KIND.match(value):
        raise ValidationError(
            f"{value!r} is not a kind name (lower-case letters, digits, '_')", field=attribute.name
        )


def _ext(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in value.items()
    ):
        raise ValidationError(
            "expected a mapping of plugin name to a mapping", field=attribute.name
        )
    check_encodable(value, attribute.name)


def _handles(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValidationError("expected a mapping of channel to handle", field=attribute.name)
    for key, handle in value.items():
        check_name(key, attribute.name)
        check_name(handle, f"{attribute.name}.{key}")


def _tag_names(_inst: object, attribute: attrs.Attribute, value: tuple[str, ...]) -> None:
    for tag in value:
        check_name(tag, attribute.name)


def _tags(value: Any) -> tuple[str, ...]:
    """Tags stripped, without empty ones or repeats, in order. A tuple already so (a stored
    record's, read back) is returned as it is, without building it again."""
    if type(value) is tuple and _normal_tags(value):
        return value
    if isinstance(value, str):
        value = [value]
    return tuple(sorted({tag for tag in (str(t).strip() for t in value) if tag}))


def _normal_tags(value: tuple[Any, ...]) -> bool:
    """Whether ``value`` is what ``_tags`` makes: text, stripped, in strictly rising order
    (so neither empty nor repeated: "" is not above the start)."""
    previous = ""
    for tag in value:
        if type(tag) is not str or tag <= previous or tag != tag.strip():
            return False
        previous = tag
    return True


_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,39}$")


def _external_ids(_inst: object, attribute: attrs.Attribute, value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError("expected a mapping of source to id", field=attribute.name)
    for source, ident in value.items():
        if not isinstance(source, str) or not _SOURCE.match(source):
            raise ValidationError(
                f"source {source!r} must be lower-case letters, digits, '_', "
                "'.' or '-' (at most 40)",
                field=attribute.name,
            )
        if (
            not isinstance(ident, str)
            or not ident.strip()
            or len(ident) > 200
            or ident != ident.strip()
        ):
            raise ValidationError(
                f"the {source} id must be 1 to 200 characters of text without surrounding spaces",
                field=attribute.name,
            )


def _optional_date(value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValidationError(f"expected a date as YYYY-MM-DD, got {value!r}", field="birth_date")


@attrs.frozen
class Customer:
    """A customer's file (DOMAIN §1): who they are, how to reach them, who looks after them."""

    id: str
    name: str = field(personal=True, validator=name_text)
    created_at: datetime = field(converter=utc_converter("created_at"))
    created_by: str = field(validator=name_text)
    updated_at: datetime = field(converter=utc_converter("updated_at"))
    updated_by: str = field(validator=name_text)
    phone: str | None = field(personal=True, default=None, validator=optional_name)
    # what the phone is (mobile, fixed_line, toll_free …), set when it is normalised
    phone_type: str | None = field(default=None, validator=optional_name)
    email: str | None = field(personal=True, default=None, validator=optional_name)
    address: str | None = field(personal=True, default=None, validator=optional_text)
    birth_date: date | None = field(personal=True, default=None, converter=_optional_date)
    chat_handles: dict[str, str] = field(personal=True, factory=dict, validator=_handles)
    gender: Gender | None = field(
        default=None, converter=enum_converter(Gender, "gender", optional=True)
    )
    region: str | None = field(default=None, validator=optional_name)
    occupation: str | None = field(default=None, validator=optional_name)
    # personal: a one-person business or a small clinic names the person (erasure blanks it)
    organisation: str | None = field(personal=True, default=None, validator=optional_name)
    timezone: str = field(default="UTC", validator=name_text)
    do_not_contact: bool = False
    owner: str | None = field(default=None, validator=optional_name)
    tags: tuple[str, ...] = field(default=(), converter=_tags, validator=_tag_names)
    source: str | None = field(default=None, validator=optional_name)
    notes: str = field(personal=True, default="", validator=free_text)  # free remarks (备注)
    status: CustomerStatus = field(
        default=CustomerStatus.ACTIVE, converter=enum_converter(CustomerStatus, "status")
    )
    merged_into: str | None = field(default=None, validator=optional_name)
    # ids this customer has in other systems: {"shop": "C-1042"}; one customer per source and id;
    # personal (they point at the person in another system): erasure blanks them
    external_ids: dict[str, str] = field(personal=True, factory=dict, validator=_external_ids)
    ext: dict[str, dict[str, Any]] = field(factory=dict, validator=_ext)
    version: int = 0


@attrs.frozen
class Interaction:
    """One contact of any kind: a purchase, consultation, complaint, callback, care call, visit …"""

    id: str
    customer_id: str = field(validator=name_text)
    kind: str = field(validator=_kind)
    occurred_at: datetime = field(converter=utc_converter("occurred_at"))
    created_at: datetime = field(converter=utc_converter("created_at"))
    created_by: str = field(validator=name_text)
    channel: Channel = field(default=Channel.OTHER, converter=enum_converter(Channel, "channel"))
    summary: str = field(personal=True, default="", validator=free_text)
    amount: float | None = field(default=None, validator=non_negative)
    satisfaction: int | None = field(default=None, validator=in_range(1, 5))
    place: str | None = field(default=None, validator=optional_name)
    rep: str | None = field(default=None, validator=optional_name)
    ref: str | None = field(default=None, validator=optional_name)
    ext: dict[str, dict[str, Any]] = field(factory=dict, validator=_ext)
    version: int = 0


def title_message(title: str, key: str | None, args: dict[str, Any] | None) -> str:
    """A task title with its message id and parameters, as a ``Message`` (see above)."""
    from crmcore.messages import Message, restored

    if not key:
        return Message(title, {})
    return restored({"key": key, "args": args or {}, "text": title})


@attrs.frozen
class Task:
    """Something someone must do by a time: a follow-up, callback, complaint step, care call …"""

    id: str
    kind: str = field(validator=_kind)
    title: str = field(validator=name_text)
    due_at: datetime = field(converter=utc_converter("due_at"))
    created_at: datetime = field(converter=utc_converter("created_at"))
    created_by: str = field(validator=name_text)
    updated_at: datetime = field(converter=utc_converter("updated_at"))
    updated_by: str = field(validator=name_text)
    customer_id: str | None = field(default=None, validator=optional_name)
    assignee: str | None = field(default=None, validator=optional_name)
    status: TaskStatus = field(
        default=TaskStatus.OPEN, converter=enum_converter(TaskStatus, "status")
    )
    priority: Priority = field(
        default=Priority.NORMAL, converter=enum_converter(Priority, "priority")
    )
    dedupe_key: str | None = field(default=None, validator=optional_name)
    source: str | None = field(default=None, validator=optional_name)
    ref: str | None = field(default=None, validator=optional_name)
    notes: str = field(personal=True, default="", validator=free_text)
    outcome: str | None = field(default=None, validator=optional_text)
    completed_at: datetime | None = field(
        default=None, converter=utc_converter("completed_at", optional=True)
    )
    completed_by: str | None = field(default=None, validator=optional_name)
    lease_owner: str | None = field(default=None, validator=optional_name)
    lease_until: datetime | None = field(
        default=None, converter=utc_converter("lease_until", optional=True)
    )
    ext: dict[str, dict[str, Any]] = field(factory=dict, validator=_ext)
    version: int = 0
    #: The title's message id and parameters when a plugin gave a message (``msg(...)``):
    #: the title is then shown in the reader's language; ``title`` keeps the English.
    title_key: str | None = field(default=None, validator=optional_text)
    title_args: dict[str, Any] = field(factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status is TaskStatus.OPEN

    @property
    def title_message(self) -> str:
        """The title as a :class:`crmcore.messages.Message` (English as a ``str``,
        translated where it is shown); a title stored as text only is its own message id."""
        return title_message(self.title, self.title_key, self.title_args)
