"""What the pages show of people and customers: masked phones, badges, quiet hours, names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from crmcore.app import CRM
from crmcore.entities import Customer
from crmcore.registry import Badge
from crmcore_web.users import USERS, User

MASK = "****"


def mask_phone(phone: str | None) -> str:
    """``+8613812345678`` -> ``+86138****5678``: the first and last digits, so a rep can tell
    numbers apart without reading them out."""
    if not phone:
        return ""
    digits = [i for i, ch in enumerate(phone) if ch.isdigit()]
    if len(digits) <= 6:
        return MASK
    keep_head = digits[min(4, len(digits) - 5)]
    keep_tail = digits[-4]
    return phone[: keep_head + 1] + MASK + phone[keep_tail:]


def phone_visible(role: str, actor: str, customer: Customer, assigned: bool = False) -> bool:
    """Whether ``actor`` sees ``customer``'s full phone: admins always; a rep for their own
    customers and for customers they hold a task for (they are to call); leads and managers
    for what they are assigned; auditors never (they check, they do not call)."""
    if role == "admin":
        return True
    if role == "auditor":
        return False
    return customer.owner == actor or assigned


def shown_phone(role: str, actor: str, customer: Customer, assigned: bool = False) -> str:
    if phone_visible(role, actor, customer, assigned):
        return customer.phone or ""
    return mask_phone(customer.phone)


def badges(crm: CRM, customer: Customer) -> list[Badge]:
    """Every plugin's marks for ``customer``, most telling first."""
    found = [
        b
        for b in crm.plugins.crm_customer_badges(crm=crm, customer=customer)
        if isinstance(b, Badge)
    ]
    return sorted(found, key=lambda b: b.rank)


def badges_of(crm: CRM, customers: Iterable[Customer]) -> dict[str, list[Badge]]:
    """:func:`badges` for many customers (a queue's rows) by id, one hook call per plugin."""
    found = crm.plugins.crm_customers_badges(crm=crm, customers=list(customers))
    return {
        cid: sorted((b for b in marks if isinstance(b, Badge)), key=lambda b: b.rank)
        for cid, marks in found.items()
    }


def rank(marks: Iterable[Badge]) -> int:
    return min((b.rank for b in marks), default=1000)


def quiet_until(crm: CRM, customer: Customer, now: datetime) -> datetime | None:
    """When ``customer``'s quiet hours end if they are in them now, else None."""
    return crm.plugins.crm_quiet_until(crm=crm, customer=customer, now=now)


@attrs.frozen
class Person:
    """Someone who works in the CRM, as a page names them."""

    name: str
    role: str | None
    team: str | None


def staff(crm: CRM) -> list[Person]:
    """The people known to the directory ([security.actors]) and the workspace's users."""
    people: dict[str, Person] = {}
    for name, entry in crm.config.security.actors.items():
        people[name] = Person(name, entry.role, entry.team)
    for user in crm.records(USERS, User).find({"disabled_at": None}):
        known = people.get(user.name)
        people[user.name] = Person(
            user.name, user.role, (known.team if known else None) or user.team
        )
    return sorted(people.values(), key=lambda p: p.name)


def team_members(crm: CRM, team: str | None) -> list[str]:
    if team is None:
        return []
    return [p.name for p in staff(crm) if p.team == team]


def customers_by_id(crm: CRM, ids: Iterable[str | None]) -> dict[str, Customer]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {c.id: c for c in crm.customers.find({"id": {"$in": wanted}}, include_inactive=True)}


def display_name(customer: Customer | None, gettext: Any) -> str:
    if customer is None:
        return gettext("(no customer)")
    if customer.status.value == "erased":
        return gettext("(erased)")
    return customer.name
