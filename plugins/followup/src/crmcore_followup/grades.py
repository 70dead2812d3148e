"""Reading grades from core data (``customer.ext["grading"]``, contracts.md): the followup plugin
works with the grading plugin when it is loaded and without it otherwise."""

from __future__ import annotations

from typing import Any

from crmcore import Customer
from crmcore_followup.settings import FollowupSettings

PIPELINE = "pipeline"


def grades_of(customer: Customer) -> dict[str, Any]:
    """Every grading scheme's grade or tier stored on the customer (may be empty)."""
    grades = customer.ext.get("grading", {}).get("grades", {})
    return grades if isinstance(grades, dict) else {}


def pipeline_grade(customer: Customer) -> str | None:
    """The A-E pipeline grade, or None when the customer is ungraded (or grading is absent)."""
    grade = grades_of(customer).get(PIPELINE)
    return grade if isinstance(grade, str) and grade else None


def is_key_customer(customer: Customer, settings: FollowupSettings) -> bool:
    """Key customers (DOMAIN §3, 100% callback coverage): a configured grade or tier in any
    scheme, or a configured tag."""
    grades = grades_of(customer)
    for scheme, wanted in settings.key_customers.items():
        if grades.get(scheme) in wanted:
            return True
    return any(tag in customer.tags for tag in settings.key_tags)
