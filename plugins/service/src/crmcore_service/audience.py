"""Choosing customers for a survey or a campaign: an ``Audience`` over core fields, tags,
grades and tiers (read from the data other plugins keep on the customer, never by import)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from crmcore.entities import Customer
from crmcore.errors import ValidationError
from crmcore_service.settings import Audience

if TYPE_CHECKING:
    from crmcore import CRM

CUSTOMER_FIELDS = ("region", "occupation", "source", "owner", "gender", "timezone", "status")


def check(audience: Audience) -> None:
    """Refuse a criterion on a field that is not a core customer field."""
    unknown = sorted(set(audience.fields) - set(CUSTOMER_FIELDS))
    if unknown:
        raise ValidationError(
            f"unknown customer field(s) {', '.join(unknown)} (use {', '.join(CUSTOMER_FIELDS)})",
            field="audience.fields",
        )


def _plain(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def grade(customer: Customer, scheme: str) -> str | None:
    """The customer's grade in ``scheme`` as the grading plugin keeps it, if any."""
    grades = customer.ext.get("grading", {}).get("grades", {})
    value = grades.get(scheme) if isinstance(grades, dict) else None
    if isinstance(value, dict):  # a richer record: its grade
        value = value.get("grade")
    return value if isinstance(value, str) else None


def matches(audience: Audience, customer: Customer) -> bool:
    """Whether ``customer`` is in ``audience``."""
    if audience.tags and not set(audience.tags) & set(customer.tags):
        return False
    for scheme, wanted in audience.grades.items():
        if grade(customer, scheme) not in wanted:
            return False
    if audience.loyalty_tiers:
        tier = customer.ext.get("loyalty", {}).get("tier")
        if tier not in audience.loyalty_tiers:
            return False
    for name, wanted in audience.fields.items():
        if _plain(getattr(customer, name, None)) not in wanted:
            return False
    return True


def select(crm: CRM, audience: Audience) -> Iterator[Customer]:
    """Active customers in ``audience`` who may be contacted, in id order."""
    check(audience)
    for customer in crm.customers.iter():
        if not customer.do_not_contact and matches(audience, customer):
            yield customer
