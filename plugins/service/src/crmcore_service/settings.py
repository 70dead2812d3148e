"""``[service]`` settings: order types as small state machines, departments and the escalation
ladder. Every field has a default (the shipped types of ``types.py``); bad values name their key.

An order type lists its steps (states). Each step names the steps it may move to (``next``),
who acts there (``department``, ``role``, optionally a fixed ``assignee``), the fields that must
be known on entering it (``requires``), its SLA (``sla_hours`` in ``calendar`` or ``business``
hours), an optional record written on entering it (``record``), and an optional wait after which
the worker moves it on by itself (``wait_days`` then ``then``: a notice period). A step with no
way out is terminal; its ``outcome`` (done, cancelled, rejected) says how the order ended.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from crmcore.errors import ValidationError

CLOCKS = ("calendar", "business")
ROLES = ("agent", "shift_lead", "manager")
OUTCOMES = ("done", "cancelled", "rejected")
RECORDS = ("", "charge_adjustment", "fee_settlement")
TARGETS = ("shift_lead", "department_manager", "owner", "assignee")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _name(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"{value!r} is not a name (lower-case letters, digits, '_')", field=attribute.name
        )


def _names(_inst: object, attribute: attrs.Attribute, value: list[str]) -> None:
    for item in value:
        _name(_inst, attribute, item)
    if len(set(value)) != len(value):
        raise ValidationError("a name is listed twice", field=attribute.name)


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute, value: str) -> None:
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            raise ValidationError(
                f"unknown value {value!r} (allowed: {shown})", field=attribute.name
            )

    return check


def _non_negative(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ValidationError(f"must not be negative, got {value}", field=attribute.name)


def _target(_inst: object, attribute: attrs.Attribute, value: str) -> None:
    if value in TARGETS or (value.startswith("person:") and value[7:].strip()):
        return
    raise ValidationError(
        f"unknown target {value!r} (one of {', '.join(TARGETS)}; or 'person:<id>')",
        field=attribute.name,
    )


@attrs.frozen
class StepSpec:
    """One step (state) of an order type."""

    name: str = attrs.field(validator=_name)
    title: str = ""
    next: list[str] = attrs.field(factory=list, validator=_names)
    department: str | None = None
    role: str = attrs.field(default="agent", validator=_one_of(*ROLES))
    assignee: str | None = None  # a fixed person; else the department's lead, else the owner
    requires: list[str] = attrs.field(factory=list, validator=_names)
    sla_hours: float = attrs.field(default=0.0, validator=_non_negative)  # 0: no SLA
    clock: str = attrs.field(default="calendar", validator=_one_of(*CLOCKS))
    record: str = attrs.field(default="", validator=_one_of(*RECORDS))
    wait_days: float = attrs.field(default=0.0, validator=_non_negative)
    then: str | None = None  # where the worker moves the order once wait_days have passed
    outcome: str = attrs.field(default="done", validator=_one_of(*OUTCOMES))

    @property
    def terminal(self) -> bool:
        return not self.next and self.then is None

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ")


@attrs.frozen
class OrderType:
    """An order type: its steps (the first is where an order starts) and how it ends."""

    title: str
    steps: list[StepSpec]
    category: str = "request"  # for reports: business, change, cancellation, billing, fault …
    end_interaction: str | None = None  # interaction kind logged when it ends "done"
    callback_days: float = attrs.field(default=0.0, validator=_non_negative)
    choices: dict[str, list[str]] = attrs.field(factory=dict)  # allowed values of a field

    def step(self, name: str) -> StepSpec:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def first(self) -> StepSpec:
        return self.steps[0]

    def allowed_from(self, name: str) -> list[str]:
        step = self.step(name)
        return list(step.next) + ([step.then] if step.then and step.then not in step.next else [])

    def check(self, type_name: str) -> None:
        """Refuse a machine that cannot work (unknown targets, no end, a dead first step)."""
        where = f"types.{type_name}"
        if not self.steps:
            raise ValidationError("an order type needs at least one step", field=where)
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValidationError("two steps share a name", field=f"{where}.steps")
        for step in self.steps:
            for target in [*step.next, *([step.then] if step.then else [])]:
                if target not in names:
                    raise ValidationError(
                        f"step {step.name!r} leads to unknown step {target!r} (steps: "
                        f"{', '.join(names)})",
                        field=f"{where}.steps",
                    )
            if (step.wait_days > 0) != (step.then is not None):
                raise ValidationError(
                    f"step {step.name!r}: wait_days and then go together", field=f"{where}.steps"
                )
        if self.first.terminal:
            raise ValidationError(
                f"the first step {self.first.name!r} leads nowhere", field=f"{where}.steps"
            )
        if not any(s.terminal for s in self.steps):
            raise ValidationError(
                "no step ends the order (a step with no next)", field=f"{where}.steps"
            )
        for key, values in self.choices.items():
            if not values:
                raise ValidationError(f"no allowed values for {key!r}", field=f"{where}.choices")


@attrs.frozen
class DepartmentSpec:
    """``[service.departments.<name>]``: who leads the queue and who manages it."""

    lead: str | None = None
    manager: str | None = None
    members: list[str] = attrs.field(factory=list)


@attrs.frozen
class EscalationLevel:
    """One rung: ``after_hours`` past a step's SLA breach, raise it to ``target``."""

    after_hours: float = attrs.field(validator=_non_negative)
    target: str = attrs.field(validator=_target)


def _ladder(_inst: object, attribute: attrs.Attribute, value: list[EscalationLevel]) -> None:
    for i in range(1, len(value)):
        if value[i].after_hours <= value[i - 1].after_hours:
            raise ValidationError(
                f"levels must come in increasing order of after_hours (level "
                f"{i + 1} is not after level {i})",
                field=attribute.name,
            )


def _default_ladder() -> list[EscalationLevel]:
    return [EscalationLevel(0.0, "shift_lead"), EscalationLevel(24.0, "department_manager")]


@attrs.frozen
class Question:
    """One survey question; ``category`` groups results (service, network, billing …)."""

    key: str = attrs.field(validator=_name)
    text: str = ""
    category: str = "general"


@attrs.frozen
class Audience:
    """Who a survey or campaign reaches: every listed criterion must hold (within one, any of
    its values). ``grades`` and ``tiers`` name a grading scheme's values
    (``customer.ext["grading"]["grades"][scheme]``); ``loyalty_tiers`` the loyalty tier;
    ``fields`` core customer fields (region, occupation, source, owner, gender …)."""

    tags: list[str] = attrs.field(factory=list)
    grades: dict[str, list[str]] = attrs.field(factory=dict)
    loyalty_tiers: list[str] = attrs.field(factory=list)
    fields: dict[str, list[str]] = attrs.field(factory=dict)


def _scale(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if not 2 <= value <= 10:
        raise ValidationError(f"expected 2 to 10 points, got {value}", field=attribute.name)


def _positive(_inst: object, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ValidationError(f"must be more than 0, got {value}", field=attribute.name)


@attrs.frozen
class Survey:
    """``[service.surveys.<name>]``: a satisfaction survey run every ``period_days``."""

    title: str
    questions: list[Question] = attrs.field()
    scale: int = attrs.field(default=5, validator=_scale)  # answers 1..scale
    period_days: float = attrs.field(default=182.0, validator=_positive)  # every half year
    audience: Audience = attrs.field(factory=Audience)
    department: str | None = None  # whose service it measures (else the rep's department)
    due_days: float = attrs.field(default=14.0, validator=_positive)

    @questions.validator
    def _questions(self, attribute: attrs.Attribute, value: list[Question]) -> None:
        if not value:
            raise ValidationError("a survey needs at least one question", field=attribute.name)
        keys = [q.key for q in value]
        if len(set(keys)) != len(keys):
            raise ValidationError("two questions share a key", field=attribute.name)


def _optional_instant(_inst: object, attribute: attrs.Attribute, value: str | None) -> None:
    if value is None:
        return
    from datetime import datetime

    try:
        datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError(
            f"{value!r} is not a date or date-time (2026-11-23T14:00)", field=attribute.name
        ) from None


@attrs.frozen
class Incident:
    """The customers hit by a known problem: those tagged ``tag``, and/or those with an
    interaction of ``interaction_kind`` (optionally in ``[since, until]``, ISO dates, UTC),
    and/or the ``customers`` listed."""

    tag: str | None = None
    interaction_kind: str | None = None
    since: str | None = attrs.field(default=None, validator=_optional_instant)
    until: str | None = attrs.field(default=None, validator=_optional_instant)
    customers: list[str] = attrs.field(factory=list)


@attrs.frozen
class Campaign:
    """``[service.campaigns.<name>]``: care for a segment (``audience``) or for the customers
    hit by an incident (``incident``): a care task with the ``offer`` for each."""

    title: str
    offer: str = ""
    points: int = attrs.field(default=0, validator=_non_negative)  # through loyalty, if loaded
    due_days: float = attrs.field(default=3.0, validator=_positive)
    audience: Audience | None = None
    incident: Incident | None = None

    def __attrs_post_init__(self) -> None:
        if (self.audience is None) == (self.incident is None):
            raise ValidationError("give exactly one of audience and incident", field="audience")


def _default_targets() -> dict[str, float]:
    return {"chat": 60.0, "app": 60.0, "web": 60.0, "phone": 60.0, "sms": 3600.0, "email": 86400.0}


@attrs.frozen
class ResponseSettings:
    """``[service.response]``: first-response time of every enquiry (DOMAIN §7, §9)."""

    enquiry_kinds: list[str] = attrs.field(
        factory=lambda: ["inquiry", "consultation"], validator=_names
    )
    targets: dict[str, float] = attrs.field(factory=_default_targets)  # seconds per channel
    default_target: float = attrs.field(default=3600.0, validator=_positive)

    def target(self, channel: str) -> float:
        return self.targets.get(channel, self.default_target)


def _default_scorecard() -> list[str]:
    return ["wording", "attitude", "tone", "summarising_needs", "adaptability"]


def _default_qa_kinds() -> list[str]:
    return ["consultation", "inquiry", "complaint", "callback", "care", "business", "billing"]


@attrs.frozen
class QaSettings:
    """``[service.qa]``: how many of each rep's contacts QA reviews a month, and how."""

    per_rep_per_month: int = attrs.field(default=3, validator=_non_negative)  # handbook: 1-5
    kinds: list[str] = attrs.field(factory=_default_qa_kinds, validator=_names)
    scorecard: list[str] = attrs.field(factory=_default_scorecard, validator=_names)
    scale: int = attrs.field(default=5, validator=_scale)
    reviewer: str | None = None  # who gets the review tasks (else unassigned)

    def __attrs_post_init__(self) -> None:
        if not self.scorecard:
            raise ValidationError("the scorecard needs at least one criterion", field="scorecard")


@attrs.frozen
class ServiceSettings:
    """``[service]``."""

    types: dict[str, OrderType] = attrs.field(factory=dict)  # added to / replacing shipped ones
    disabled_types: list[str] = attrs.field(factory=list)
    departments: dict[str, DepartmentSpec] = attrs.field(factory=dict)
    escalation: list[EscalationLevel] = attrs.field(factory=_default_ladder, validator=_ladder)
    report_days: int = attrs.field(default=30)
    simulate_orders_per_day: float = attrs.field(default=2.0, validator=_non_negative)
    surveys: dict[str, Survey] = attrs.field(factory=dict)
    response: ResponseSettings = attrs.field(factory=ResponseSettings)
    campaigns: dict[str, Campaign] = attrs.field(factory=dict)
    qa: QaSettings = attrs.field(factory=QaSettings)

    def __attrs_post_init__(self) -> None:
        for name in self.types:
            _name(None, attrs.fields(ServiceSettings).types, name)
        for name, order_type in self.all_types.items():
            order_type.check(name)
        unknown = [n for n in self.disabled_types if n not in self.shipped_and_configured]
        if unknown:
            raise ValidationError(
                f"unknown order type(s) {', '.join(unknown)} (known: "
                f"{', '.join(self.shipped_and_configured)})",
                field="disabled_types",
            )
        for name in self.surveys:
            _name(None, attrs.fields(ServiceSettings).surveys, name)
        if self.report_days <= 0:
            raise ValidationError("must be more than 0", field="report_days")

    @property
    def shipped_and_configured(self) -> dict[str, OrderType]:
        from crmcore_service.types import SHIPPED

        return {**SHIPPED, **self.types}

    @property
    def all_types(self) -> dict[str, OrderType]:
        """The order types in force: shipped ones, overridden or added to, minus disabled."""
        return {
            k: v for k, v in self.shipped_and_configured.items() if k not in self.disabled_types
        }
